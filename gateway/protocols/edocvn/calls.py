"""Building requests as a client of a Bkav axis must send them (legacy-edoc-vn.md §2.3, §3, §6) — what the peer
adapter sends, and what our edge must read back unchanged.

Bkav is strict where these builders are: envelope prefix ``SOAP-ENV``; the body wrappers, ``CheckPermission`` and
UpdateTraces' ``Status`` unqualified with **no default namespace in scope** (style B); ``DocumentId`` unprefixed
(style D); ``Signature``, ``MessageHeader``, ``TraceHeaderList``, ``ErrorList`` and ``Manifest`` in the e-doc.vn
namespace (style A); the SendDocument Header always with an ``ErrorList`` and a ``Manifest`` even without
attachments (§6.3, §7.4); ``href`` unprefixed (§7.1).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from lxml import etree

from gateway.edxml.model import Attachment, EdocPackage, StatusPackage
from gateway.protocols.edocvn.attachments import PAYLOAD_RAW, Payload, manifest_element, out_parts
from gateway.protocols.edocvn.documents import message_header_element, trace_header_list_element
from gateway.protocols.edocvn.mimebuild import MultipartBody
from gateway.protocols.edocvn.names import (
    BODY_WRAPPER,
    DOCUMENT_ID_OPS,
    EDOC,
    HEADER_WRAPPER,
    SOAP11,
    STATUS_TIME_FORMAT,
    Operation,
)
from gateway.protocols.edocvn.statuses import status_element

CLIENT_SOAP_PREFIX = "SOAP-ENV"


def _envelope(header: Sequence[etree._Element], body: Sequence[etree._Element], *, edoc_ns: bool = False) -> bytes:
    nsmap = {CLIENT_SOAP_PREFIX: SOAP11, **({"edXML": EDOC} if edoc_ns else {})}
    root = etree.Element(f"{{{SOAP11}}}Envelope", nsmap=nsmap)
    head = etree.SubElement(root, f"{{{SOAP11}}}Header")
    head.extend(header)
    soap_body = etree.SubElement(root, f"{{{SOAP11}}}Body")
    soap_body.extend(body)
    etree.cleanup_namespaces(root, top_nsmap=nsmap)
    etree.indent(root, space="  ")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _plain(local: str, *fields: tuple[str, str]) -> etree._Element:
    """An unqualified element with unqualified text children (no namespace, none in scope)."""
    el = etree.Element(local)
    for name, value in fields:
        etree.SubElement(el, name).text = value
    return el


def simple_request(
    operation: Operation,
    organ_id: str,
    token: str,
    *,
    document_id: str | None = None,
    since: datetime | None = None,
) -> bytes:
    """The envelope of every operation authenticated by a wrapper (all but SendDocument and UpdateTraces)."""
    fields = [("OrganId", organ_id), ("Token", token)]
    if operation in DOCUMENT_ID_OPS:
        if not document_id:
            raise ValueError(f"{operation} needs the axis document id")
        fields.append(("DocumentId", document_id))
    if operation is Operation.GET_TRACES and since is not None:
        fields.append(("TimeStamp", since.strftime(STATUS_TIME_FORMAT)))
    if operation in HEADER_WRAPPER:
        return _envelope([_plain(HEADER_WRAPPER[operation], *fields)], [])
    if operation not in BODY_WRAPPER:
        raise ValueError(f"{operation} is sent with send_document_request / update_traces_request")
    return _envelope([], [_plain(BODY_WRAPPER[operation], *fields)])


def signature_element(organ_id: str, token: str) -> etree._Element:
    """``edXML:Signature/KeyInfo{OrganId, Token}`` (§3) — a credential holder, not an XML signature."""
    sig = etree.Element(f"{{{EDOC}}}Signature")
    key = etree.SubElement(sig, f"{{{EDOC}}}KeyInfo")
    etree.SubElement(key, f"{{{EDOC}}}OrganId").text = organ_id
    etree.SubElement(key, f"{{{EDOC}}}Token").text = token
    return sig


def send_document_envelope(pkg: EdocPackage, attachments: Sequence[Attachment], organ_id: str, token: str) -> bytes:
    header = [
        message_header_element(pkg),
        trace_header_list_element(pkg),
        etree.Element(f"{{{EDOC}}}ErrorList"),
        signature_element(organ_id, token),
    ]
    return _envelope(header, [manifest_element(attachments)], edoc_ns=True)


def send_document_request(
    pkg: EdocPackage, organ_id: str, token: str, *, payload: Payload = PAYLOAD_RAW
) -> MultipartBody:
    """SendDocument with SwA (§6.3): the envelope as root part, one part per attachment of ``pkg`` (raw bytes, as
    Bkav's intake expects). Send ``body.content_type`` as Content-Type and the body itself (``len()`` known)."""
    envelope = send_document_envelope(pkg, pkg.attachments, organ_id, token)
    return MultipartBody(envelope, out_parts(pkg.attachments, payload))


def update_traces_request(status: StatusPackage, organ_id: str, token: str) -> bytes:
    """UpdateTraces (§6.7): credentials in ``Header/edXML:Signature``, the unqualified ``Status`` in the Body."""
    return _envelope([signature_element(organ_id, token)], [status_element(status, qualified=False)], edoc_ns=True)
