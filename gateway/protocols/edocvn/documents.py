"""SendDocument / GetDocument headers: the e-doc.vn ``MessageHeader`` + ``TraceHeaderList`` ↔ the edXML model
(legacy-edoc-vn.md §6.3, §6.5, §9).

Reading reuses the model's tolerant reader (``gateway.edxml.reader`` already reads the e-doc.vn namespace,
``Business``/``Bussiness``, every tolerated date form): the two SOAP Header elements are placed in an
``edXML/edXMLEnvelope/edXMLHeader`` skeleton and read as a package — one reader for every channel.

Writing follows what Bkav's structural check demands of a SendDocument (§6.3: every listed element present, empty
when there is no value; ``Business`` block always present; ``yyyy/MM/dd`` dates). ``db_shape=True`` writes what
Bkav's GetDocument database path writes instead (§6.5): ``OrganInCharge``, ``dd/MM/yyyy`` dates, its child orders,
and the axis id in ``MessageHeader/DocumentId``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

from lxml import etree

from gateway.edxml.model import EdocPackage, MessageHeader, Organization, StaffInfo, TraceHeaderList
from gateway.edxml.reader import read_tree
from gateway.errors import EdxmlStructureError
from gateway.protocols.edocvn.names import DATE_FORMAT, DB_DATE_FORMAT, DB_TIME_FORMAT, EDOC, STATUS_TIME_FORMAT


def read_header(message_header: etree._Element | None, trace_header_list: etree._Element | None) -> EdocPackage:
    """The package (no attachments yet) of a SendDocument request or a GetDocument answer. EDXML.* errors with the
    element path, as for every other channel."""
    if message_header is None:
        raise EdxmlStructureError("the SOAP Header has no MessageHeader element", path="/Envelope/Header/MessageHeader")
    root = etree.Element(f"{{{EDOC}}}edXML")
    env = etree.SubElement(root, f"{{{EDOC}}}edXMLEnvelope")
    head = etree.SubElement(env, f"{{{EDOC}}}edXMLHeader")
    head.append(copy.deepcopy(message_header))
    if trace_header_list is not None:
        head.append(copy.deepcopy(trace_header_list))  # the reader takes both Business spellings (§9)
    pkg = read_tree(root)
    assert isinstance(pkg, EdocPackage)  # a MessageHeader without StatusCode is read as an edoc
    return pkg


def _add(parent: etree._Element, local: str, value: object = "") -> etree._Element:
    el = etree.SubElement(parent, f"{{{EDOC}}}{local}")
    if value is not None and value != "":
        el.text = str(value)
    return el


def _organization(parent: etree._Element, local: str, org: Organization, in_charge: str | None) -> None:
    el = _add(parent, local)
    _add(el, "OrganId", org.organ_id)
    _add(el, "OrganName", org.organ_name)
    if in_charge is not None:
        _add(el, in_charge, org.organization_in_charge)
    for name, value in (("OrganAdd", org.organ_add), ("Email", org.email), ("Telephone", org.telephone)):
        _add(el, name, value)
    _add(el, "Fax", org.fax)
    _add(el, "Website", org.website)


def message_header_element(pkg: EdocPackage, *, db_shape: bool = False, axis_id: str | None = None) -> etree._Element:
    """``edXML:MessageHeader`` as Bkav requires it on SendDocument (or, ``db_shape``, as its GetDocument writes)."""
    h: MessageHeader = pkg.message_header
    day = DB_DATE_FORMAT if db_shape else DATE_FORMAT
    mh = etree.Element(f"{{{EDOC}}}MessageHeader", nsmap={"edXML": EDOC})
    _organization(mh, "From", h.from_, "OrganInCharge" if db_shape else "OrganizationInCharge")
    for to in h.to:
        _organization(mh, "To", to, None)
    _add(mh, "DocumentId", axis_id if db_shape and axis_id else h.document_id)
    code = _add(mh, "Code")
    _add(code, "CodeNumber", h.code.code_number)
    _add(code, "CodeNotation", h.code.code_notation)
    info = _add(mh, "PromulgationInfo")
    date_text = h.promulgation_info.promulgation_date.strftime(day) if h.promulgation_info.promulgation_date else ""
    place_date = [("Place", h.promulgation_info.place), ("PromulgationDate", date_text)]
    for name, value in reversed(place_date) if db_shape else place_date:
        _add(info, name, value)
    kind = _add(mh, "DocumentType")
    _add(kind, "Type", h.document_type.type)
    _add(kind, "TypeName", h.document_type.type_name)
    _add(mh, "Subject", h.subject)
    _add(mh, "Content", h.content)
    signer = _add(mh, "SignerInfo")
    s = h.signer_info
    order = [("Competence", s.competence), ("Position", s.position), ("FullName", s.full_name)]
    for name, value in reversed(order) if db_shape else order:
        _add(signer, name, value)
    _add(mh, "DueDate", h.due_date.strftime(DATE_FORMAT) if h.due_date else "")
    places = _add(mh, "ToPlaces")
    for place in h.to_places:
        _add(places, "Place", place)
    _other_info(mh, h, db_shape)
    if h.steering_type is not None:
        _add(mh, "SteeringType", h.steering_type.value)
    return mh


def _other_info(mh: etree._Element, h: MessageHeader, db_shape: bool) -> None:
    o = h.other_info
    other = _add(mh, "OtherInfo")
    _add(other, "Priority", o.priority.value)
    _add(other, "SphereOfPromulgation", o.sphere_of_promulgation)
    _add(other, "TyperNotation", o.typer_notation)
    _add(other, "PromulgationAmount", o.promulgation_amount if o.promulgation_amount is not None else 0)
    _add(other, "PageAmount", o.page_amount if o.page_amount is not None else 0)
    if not db_shape:
        appendixes = _add(other, "Appendixes")
        for item in o.appendixes:
            _add(appendixes, "Appendix", item)


def staff_info_element(parent: etree._Element, info: StaffInfo | None, add: Callable[..., etree._Element]) -> None:
    if info is None:
        return
    el = add(parent, "StaffInfo")
    for name, value in (
        ("Department", info.department),
        ("DepartmentId", info.department_id),
        ("Staff", info.staff),
        ("StaffId", info.staff_id),
        ("Mobile", info.mobile),
        ("Email", info.email),
    ):
        if value is not None:
            add(el, name, value)


def trace_header_list_element(pkg: EdocPackage, *, db_shape: bool = False) -> etree._Element:
    """``edXML:TraceHeaderList``: the trace headers and the one ``Business`` block Bkav's duplicate check needs."""
    t: TraceHeaderList = pkg.trace_header_list
    fmt = DB_TIME_FORMAT if db_shape else STATUS_TIME_FORMAT
    el = etree.Element(f"{{{EDOC}}}TraceHeaderList", nsmap={"edXML": EDOC})
    headers = t.trace_headers or ()
    for th in headers:
        item = _add(el, "TraceHeader")
        _add(item, "OrganId", th.organ_id)
        _add(item, "Timestamp", th.timestamp.strftime(fmt) if th.timestamp else "")
    b = t.bussiness
    business = _add(el, "Business")
    _add(business, "BusinessDocType", (b.bussiness_doc_type.value if b else 0))
    _add(business, "BusinessDocReason", b.bussiness_doc_reason if b else "")
    _add(business, "Paper", 1 if b and b.paper else 0)
    staff_info_element(business, b.staff_info if b else None, _add)
    if b is not None and b.document_id:
        _add(business, "DocumentId", b.document_id)
    return el
