"""Reading a request envelope of the e-doc.vn profile (server side): bytes → :class:`Request`
(legacy-edoc-vn.md §2.2, §2.3, §3, §6, §16).

Liberal where Bkav's axis is accidentally strict (§16): any envelope prefix; body wrappers, ``Status`` and
``CheckPermission`` found unqualified *or* qualified (a warning records the qualified form); ``DocumentId`` found by
local name, prefixed or not, in any case (``documentId``, ``DOCUMENTID``); ``OrganId``/``Token`` trimmed (Bkav does
not trim, so a line break inside ``<Token>`` fails there — we accept it). Strict where it matters: the safe parser
(no DOCTYPE, no entities, size first), SOAP 1.1 only — a SOAP 1.2 envelope is refused with a clear message instead
of Bkav's silent failure.

The reader extracts what every operation needs (credentials, the axis document id, GetTraces' ``TimeStamp``) and
hands over the elements an operation reads further (``MessageHeader``, ``TraceHeaderList``, ``Manifest``,
``Status``): :mod:`.documents`, :mod:`.attachments` and :mod:`.statuses` turn those into the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from lxml import etree

from gateway.edxml.dates import parse_timestamp
from gateway.errors import EdxmlValueError
from gateway.protocols.edocvn.errors import ProfileError
from gateway.protocols.edocvn.names import (
    BODY_WRAPPER,
    DOCUMENT_ID_OPS,
    EDOC,
    HEADER_WRAPPER,
    SIGNATURE_AUTH,
    SOAP11,
    SOAP12,
    Operation,
)
from gateway.xmlcheck.safe import DEFAULT_MAX_BYTES, parse_bytes


@dataclass(frozen=True)
class Request:
    """One parsed request. ``organ_id``/``token`` are trimmed; ``None`` when the request has none."""

    operation: Operation
    organ_id: str
    token: str
    #: GetDocument / ConfirmReceived: the axis document id, trimmed (§2.3 style D).
    document_id: str | None = None
    #: GetTraces: the replay filter (§6.8); None = consume mode.
    since: datetime | None = None
    header: etree._Element | None = None
    body: etree._Element | None = None
    #: SendDocument: ``Header/MessageHeader``, ``Header/TraceHeaderList``, ``Body/Manifest`` (None if absent).
    message_header: etree._Element | None = None
    trace_header_list: etree._Element | None = None
    manifest: etree._Element | None = None
    #: UpdateTraces: ``Body/Status``.
    status: etree._Element | None = None
    warnings: tuple[str, ...] = ()


def _qname(el: etree._Element) -> tuple[str | None, str]:
    q = etree.QName(el)
    return q.namespace, q.localname


def children(
    parent: etree._Element | None, local: str, namespaces: frozenset[str | None] | None = None
) -> list[etree._Element]:
    """Child elements named ``local`` in ``namespaces`` (None in the set = no namespace; ``namespaces=None`` =
    any namespace: Bkav's lookup style C)."""
    if parent is None:
        return []
    out: list[etree._Element] = []
    for child in parent:
        if isinstance(child.tag, str):
            uri, name = _qname(child)
            if name == local and (namespaces is None or uri in namespaces):
                out.append(child)
    return out


def child(
    parent: etree._Element | None, local: str, namespaces: frozenset[str | None] | None = None
) -> etree._Element | None:
    found = children(parent, local, namespaces)
    return found[0] if found else None


def text(el: etree._Element | None, local: str) -> str | None:
    """The trimmed text of the first child named ``local`` (any namespace), None if absent or empty."""
    c = child(el, local)
    value = "".join(c.itertext()).strip() if c is not None else ""
    return value or None


#: Where the profile's own elements may sit: e-doc.vn namespace (style A) or none (what a Bkav client sends for the
#: body wrappers, and a common producer slip elsewhere).
OURS: frozenset[str | None] = frozenset({EDOC, None})


def split_envelope(
    data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES
) -> tuple[etree._Element, etree._Element | None, etree._Element]:
    """Safe-parse a SOAP 1.1 envelope; returns ``(root, header, body)``. SOAP 1.2 and non-envelopes refused."""
    root = parse_bytes(data, max_bytes=max_bytes, what="SOAP envelope").getroot()
    uri, name = _qname(root)
    if uri == SOAP12:
        raise ProfileError(
            f"SOAP 1.2 is not served by the e-doc.vn profile: send a SOAP 1.1 envelope ({SOAP11})",
            reason="soap12",
        )
    if uri != SOAP11 or name != "Envelope":
        raise ProfileError(f"the request is not a SOAP 1.1 Envelope (root element {name!r})", reason="not-envelope")
    header = child(root, "Header", frozenset({SOAP11}))
    body = child(root, "Body", frozenset({SOAP11}))
    if body is None:
        raise ProfileError("the SOAP envelope has no Body", reason="no-body")
    return root, header, body


def read_request(data: bytes, operation: Operation, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Request:
    """Read the request of ``operation`` (already chosen from SOAPAction, :func:`.names.parse_soap_action`).

    Raises :class:`ProfileError` carrying Bkav's Report code where Bkav has one (§3, §6)."""
    _root, header, body = split_envelope(data, max_bytes=max_bytes)
    warnings: list[str] = []
    if operation in SIGNATURE_AUTH:
        organ_id, token = _signature_credentials(header)
        return _signed_request(operation, organ_id, token, header, body, warnings)
    if operation in HEADER_WRAPPER:
        wrapper = _wrapper(header, HEADER_WRAPPER[operation], warnings)
        if wrapper is None:
            raise ProfileError("Error when process check permission null", report_code="M.CheckPermission")
    else:
        wrapper = _wrapper(body, BODY_WRAPPER[operation], warnings)
        if wrapper is None:
            raise _missing_wrapper(operation)
    organ_id, token = _credentials(wrapper)
    document_id = _document_id(wrapper, body, operation, warnings) if operation in DOCUMENT_ID_OPS else None
    since = _since(wrapper) if operation is Operation.GET_TRACES else None
    return Request(operation, organ_id, token, document_id, since, header, body, warnings=tuple(warnings))


def _wrapper(parent: etree._Element | None, local: str, warnings: list[str]) -> etree._Element | None:
    """Unqualified (what Bkav requires) first; else the same name in any namespace, with a warning."""
    found = child(parent, local, frozenset({None}))
    if found is None:
        found = child(parent, local)
        if found is not None:
            warnings.append(f"{local} read in namespace {etree.QName(found).namespace} (Bkav requires none)")
    return found


def _missing_wrapper(operation: Operation) -> ProfileError:
    local = BODY_WRAPPER[operation]
    message = f"the SOAP Body has no {local} element"
    codes = {
        Operation.GET_ORGANIZATIONS: ("M.GetOrganizations", f"Error when process get organization: {message}"),
        Operation.GET_DOCUMENT: ("M.GetDocument", "OrganId and documentId required!"),
        Operation.CONFIRM_RECEIVED: ("M.ConfirmReceived", f"Error process confirm received: {message}"),
        Operation.GET_TRACES: ("M.GetTraces", f"Error when process get traces: {message}"),
    }
    code, description = codes.get(operation, (None, message))  # GetPendingDocumentIds: Bkav answers nothing
    return ProfileError(description, report_code=code, reason="wrapper")


def _credentials(wrapper: etree._Element) -> tuple[str, str]:
    """§3: children ``OrganId``/``Token`` of the wrapper, by local name, trimmed."""
    if not any(isinstance(c.tag, str) for c in wrapper):
        raise ProfileError("Error get check permission request null", report_code="CheckPermission")
    organ_id, token = text(wrapper, "OrganId"), text(wrapper, "Token")
    if organ_id is None or token is None:
        raise ProfileError("OrganId or Token is required", report_code="CheckPermission")
    return organ_id, token


def _signature_credentials(header: etree._Element | None) -> tuple[str, str]:
    """§3: ``Header/edXML:Signature/KeyInfo{OrganId, Token}`` (SendDocument, UpdateTraces)."""
    signature = child(header, "Signature", OURS)
    key_info = child(signature, "KeyInfo")
    if key_info is None:
        raise ProfileError("Error get KeyInfo", report_code="CheckSignature")
    organ_id, token = text(key_info, "OrganId"), text(key_info, "Token")
    if organ_id is None or token is None:
        raise ProfileError("OrganId or Token is required", report_code="CheckSignature")
    return organ_id, token


def _signed_request(
    operation: Operation,
    organ_id: str,
    token: str,
    header: etree._Element | None,
    body: etree._Element,
    warnings: list[str],
) -> Request:
    if operation is Operation.UPDATE_TRACES:
        status = _wrapper(body, "Status", warnings)
        if status is None:
            raise ProfileError(
                "Error process get update: the SOAP Body has no Status element", report_code="M.UpdateTraces"
            )
        return Request(operation, organ_id, token, header=header, body=body, status=status, warnings=tuple(warnings))
    manifest = child(body, "Manifest", OURS)
    if manifest is None:
        warnings.append("no Manifest in the SOAP Body (read as a document without attachments)")
    return Request(
        operation,
        organ_id,
        token,
        header=header,
        body=body,
        message_header=child(header, "MessageHeader", OURS),
        trace_header_list=child(header, "TraceHeaderList", OURS),
        manifest=manifest,
        warnings=tuple(warnings),
    )


def _document_id(wrapper: etree._Element, body: etree._Element, operation: Operation, warnings: list[str]) -> str:
    """§2.3 style D, liberal: the first element named ``documentid`` in any case and any namespace, in the wrapper,
    else anywhere in the Body; trimmed. Bkav reads only an unprefixed one; a prefixed one is noted."""
    for scope in (wrapper, body):
        for el in scope.iter():
            if isinstance(el.tag, str) and etree.QName(el).localname.lower() == "documentid":
                value = "".join(el.itertext()).strip()
                if el.prefix:
                    warnings.append(f"DocumentId read with prefix {el.prefix!r} (Bkav reads only an unprefixed one)")
                if value:
                    return value
                break
    if operation is Operation.GET_DOCUMENT:
        raise ProfileError("OrganId and documentId required!", report_code="M.GetDocument")
    raise ProfileError("DocumentId is required.", report_code="M.DocumentId")


def _since(wrapper: etree._Element) -> datetime | None:
    """GetTraces' optional ``TimeStamp`` (``yyyy/MM/dd HH:mm:ss``, §6.8); ``Timestamp`` accepted too."""
    raw = text(wrapper, "TimeStamp") or text(wrapper, "Timestamp")
    if raw is None:
        return None
    try:
        return parse_timestamp(raw, "/GetTraces/TimeStamp")
    except EdxmlValueError as exc:
        raise ProfileError(f"Error when process get traces: {exc.message}", report_code="M.GetTraces") from None
