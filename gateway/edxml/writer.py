"""Render the model as a canonical edXML package (edxml.md §2, §15).

Canonical means the official sample shape that receivers built on the VNPT/C# SDK parsers expect:
root ``<edXML xmlns="…QCVN_102_2016">``, ``<edXML:edXMLEnvelope xmlns:edXML="…">`` with prefixed
children, ``AttachmentEncoded`` after the envelope with unprefixed children, element order of the
official samples, ``yyyy/MM/dd`` dates, ``yyyy/MM/dd HH:mm:ss`` timestamps, ``cid:`` ContentIds,
single-line base64, two-space indentation, UTF-8 with a double-quoted XML declaration.

Elements that the samples always carry (Organization children, SignerInfo children, DueDate, …) are
written empty when the model has no value, as producers do; the reader reads them back as ``None``.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from datetime import date, datetime

from lxml import etree

from gateway import ns
from gateway.edxml import dates
from gateway.edxml.model import (
    Attachment,
    Bussiness,
    EdocPackage,
    ManifestReference,
    MessageHeader,
    Organization,
    Package,
    ResponseFor,
    StaffInfo,
    StatusPackage,
    TraceHeaderList,
)

XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'
_NS = ns.EDXML


def _q(local: str) -> str:
    return f"{{{_NS}}}{local}"


def _el(parent: etree._Element, local: str, text: str | None = None) -> etree._Element:
    child = etree.SubElement(parent, _q(local))
    if text is not None:
        child.text = text
    return child


def _opt(parent: etree._Element, local: str, value: str | None) -> None:
    """Write the element only when there is a value."""
    if value is not None:
        _el(parent, local, value)


def _always(parent: etree._Element, local: str, value: str | None) -> None:
    """Write the element, empty when there is no value (the samples' habit)."""
    _el(parent, local, value)


def _date(value: date | None) -> str | None:
    return dates.format_date(value) if value is not None else None


def _ts(value: datetime | None) -> str | None:
    return dates.format_timestamp(value) if value is not None else None


def _int(value: int | None) -> str | None:
    return str(value) if value is not None else None


def _bool01(value: bool | None) -> str | None:
    return None if value is None else ("1" if value else "0")


def _list(parent: etree._Element, container: str, item: str, values: Iterable[str]) -> None:
    values = list(values)
    if values:
        box = _el(parent, container)
        for v in values:
            _el(box, item, v)


# ------------------------------------------------------------------------------------------- parts


def _organization(parent: etree._Element, local: str, org: Organization) -> None:
    el = _el(parent, local)
    _always(el, "OrganId", org.organ_id)
    _always(el, "OrganizationInCharge", org.organization_in_charge)
    _always(el, "OrganName", org.organ_name)
    _always(el, "OrganAdd", org.organ_add)
    _always(el, "Email", org.email)
    _always(el, "Telephone", org.telephone)
    _always(el, "Fax", org.fax)
    _always(el, "Website", org.website)


def _response_for(parent: etree._Element, rf: ResponseFor) -> None:
    el = _el(parent, "ResponseFor")
    _always(el, "OrganId", rf.organ_id or None)
    _always(el, "Code", rf.code or None)
    _always(el, "PromulgationDate", _date(rf.promulgation_date))
    _always(el, "DocumentId", rf.document_id or None)


def _staff_info(parent: etree._Element, info: StaffInfo | None) -> None:
    if info is None:
        return
    el = _el(parent, "StaffInfo")
    _always(el, "Department", info.department)
    _opt(el, "DepartmentId", info.department_id)
    _always(el, "Staff", info.staff)
    _opt(el, "StaffId", info.staff_id)
    _always(el, "Mobile", info.mobile)
    _always(el, "Email", info.email)


def _message_header(parent: etree._Element, h: MessageHeader) -> None:
    mh = _el(parent, "MessageHeader")
    _organization(mh, "From", h.from_)
    for to in h.to:
        _organization(mh, "To", to)
    _always(mh, "DocumentId", h.document_id or None)
    code = _el(mh, "Code")
    _always(code, "CodeNumber", h.code.code_number or None)
    _always(code, "CodeNotation", h.code.code_notation or None)
    prom = _el(mh, "PromulgationInfo")
    _always(prom, "Place", h.promulgation_info.place)
    _always(prom, "PromulgationDate", _date(h.promulgation_info.promulgation_date))
    dtype = _el(mh, "DocumentType")
    _always(dtype, "Type", h.document_type.type or None)
    _opt(dtype, "TypeDetail", h.document_type.type_detail)
    _always(dtype, "TypeName", h.document_type.type_name or None)
    _always(mh, "Subject", h.subject or None)
    _always(mh, "Content", h.content)
    signer = _el(mh, "SignerInfo")
    _always(signer, "Competence", h.signer_info.competence)
    _always(signer, "Position", h.signer_info.position)
    _always(signer, "FullName", h.signer_info.full_name)
    _always(mh, "DueDate", _date(h.due_date))
    o = h.other_info
    other = _el(mh, "OtherInfo")
    _always(other, "Priority", o.priority.wire)
    _always(other, "SphereOfPromulgation", o.sphere_of_promulgation)
    _always(other, "TyperNotation", o.typer_notation)
    _opt(other, "PromulgationAmount", _int(o.promulgation_amount))
    _opt(other, "PageAmount", _int(o.page_amount))
    _opt(other, "ReplyFors", o.reply_fors)
    _opt(other, "Direction", None if o.direction is None else ("true" if o.direction else "false"))
    _opt(other, "ReferenceCodes", o.reference_codes)
    _list(other, "Appendixes", "Appendix", o.appendixes)
    for rf in h.response_for:
        _response_for(mh, rf)
    _opt(mh, "SteeringType", h.steering_type.wire if h.steering_type is not None else None)
    _list(mh, "ToPlaces", "Place", h.to_places)
    _list(mh, "ResponseForTask", "TaskCode", h.response_for_task)
    _opt(mh, "ApplicationType", h.application_type)


def _bussiness(parent: etree._Element, b: Bussiness) -> None:
    el = _el(parent, "Bussiness")
    _opt(el, "DocumentId", b.document_id)
    _always(el, "BussinessDocType", b.bussiness_doc_type.wire)
    _always(el, "BussinessDocReason", b.bussiness_doc_reason)
    _opt(el, "Paper", _bool01(b.paper))
    info = b.bussiness_document_info
    if info is not None:
        box = _el(el, "BussinessDocumentInfo")
        _always(box, "DocumentInfo", _bool01(info.document_info))
        _always(box, "DocumentReceiver", _bool01(info.document_receiver))
        if info.receivers:
            rl = _el(box, "ReceiverList")
            for r in info.receivers:
                rec = _el(rl, "Receiver")
                _always(rec, "OrganId", r.organ_id)
                _always(rec, "ReceiverType", r.receiver_type.wire)
    if b.replacement_info_list:
        rl = _el(el, "ReplacementInfoList")
        for ri in b.replacement_info_list:
            item = _el(rl, "ReplacementInfo")
            _always(item, "DocumentId", ri.document_id)
            _list(item, "OrganIdList", "OrganId", ri.organ_ids)
    _staff_info(el, b.staff_info)


def _trace_header_list(parent: etree._Element, t: TraceHeaderList) -> None:
    el = _el(parent, "TraceHeaderList")
    if t.id is not None:
        el.set("id", t.id)
    if t.version is not None:
        el.set("version", t.version)
    for th in t.trace_headers:
        item = _el(el, "TraceHeader")
        _always(item, "OrganId", th.organ_id)
        _always(item, "Timestamp", _ts(th.timestamp))
    if t.bussiness is not None:
        _bussiness(el, t.bussiness)


def _reference(parent: etree._Element, r: ManifestReference) -> None:
    el = _el(parent, "Reference")
    _always(el, "ContentId", f"cid:{r.content_id}")
    _always(el, "ContentType", r.content_type)
    _always(el, "Description", r.description)
    _always(el, "AttachmentName", r.attachment_name)


def _attachment(parent: etree._Element, a: Attachment) -> None:
    el = _el(parent, "Attachment")
    _always(el, "ContentId", f"cid:{a.content_id}")
    _always(el, "AttachmentName", a.attachment_name)
    _always(el, "Description", a.description)
    _always(el, "ContentType", a.content_type)
    _opt(el, "Format", a.format)
    _opt(el, "FieldName", a.field_name)
    _opt(el, "MimeType", a.mime_type)
    # The VNPT library declares the prefix on this one element (edxml.md §2); we keep its shape.
    enc = etree.SubElement(el, _q("ContentTransferEncoded"), nsmap={ns.EDXML_PREFIX: _NS})
    enc.text = base64.b64encode(a.data).decode("ascii")


# ------------------------------------------------------------------------------------------ entries


def _envelope(root: etree._Element) -> tuple[etree._Element, etree._Element]:
    env = etree.SubElement(root, _q("edXMLEnvelope"), nsmap={ns.EDXML_PREFIX: _NS})
    return env, _el(env, "edXMLHeader")


def build_tree(pkg: Package) -> etree._Element:
    """The canonical element tree of a package (indented, signature block included as carried)."""
    root = etree.Element(_q("edXML"), nsmap={None: _NS})
    env, head = _envelope(root)
    if isinstance(pkg, StatusPackage):
        mh = _el(head, "MessageHeader")
        _organization(mh, "From", pkg.from_)
        _response_for(mh, pkg.response_for)
        _staff_info(mh, pkg.staff_info)
        _always(mh, "StatusCode", pkg.status_code.value)
        _opt(mh, "Description", pkg.description)
        _always(mh, "Timestamp", _ts(pkg.timestamp))
        etree.indent(root, space="  ")
        return root
    _message_header(head, pkg.message_header)
    _trace_header_list(head, pkg.trace_header_list)
    body = _el(env, "edXMLBody")
    manifest = _el(body, "edXMLManifest")
    if pkg.manifest_version is not None:
        manifest.set("version", pkg.manifest_version)
    for r in pkg.references:
        _reference(manifest, r)
    if pkg.attachments:
        encoded = _el(root, "AttachmentEncoded")
        for a in pkg.attachments:
            _attachment(encoded, a)
    if pkg.signature is not None:
        # A placeholder, replaced by the carried block's bytes in render(): splicing text keeps the
        # block exactly as carried, where appending a parsed element would let lxml re-prefix it.
        head.append(etree.ProcessingInstruction(_SIGNATURE_PI))
    etree.indent(root, space="  ")
    return root


_SIGNATURE_PI = "edoc-gateway-signature"


def render(pkg: Package) -> bytes:
    """The canonical bytes of a package."""
    out = etree.tostring(build_tree(pkg), encoding="UTF-8")
    if isinstance(pkg, EdocPackage) and pkg.signature is not None:
        marker = etree.tostring(etree.ProcessingInstruction(_SIGNATURE_PI))
        if out.count(marker) != 1:  # cannot happen: the PI name is ours and appears once
            raise AssertionError("signature placeholder not found exactly once")
        out = out.replace(marker, pkg.signature.xml.encode("utf-8"))
    return XML_DECLARATION + out + b"\n"
