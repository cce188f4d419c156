"""The names of the legacy e-doc.vn SOAP profile (legacy-edoc-vn.md §2, §4, §6): namespaces, operations,
SOAPAction values, media types, element names.

Both sides spell them from here — the server edge (``gateway.web.legacy``) and the peer adapter
(``adapters.edocvn``) — so they cannot disagree with each other while both disagree with Bkav's axis.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from gateway import ns

#: The e-doc.vn schema namespace (§2.3 lookup style A; every result element of §4–§6).
EDOC: Final = ns.EDXML_LEGACY
#: The prefix Bkav's responses use for it (§4.1); clients must match by namespace, never by prefix.
EDOC_PREFIX: Final = "edXML"
SOAP11: Final = ns.SOAP11
#: Recognised only to refuse it with a Report (§2.2, §16): Bkav's axis fails every operation on it.
SOAP12: Final = "http://www.w3.org/2003/05/soap-envelope"
#: The envelope prefix Bkav's runtime writes (§2.4); any prefix is accepted on input.
SOAP_PREFIX: Final = "soapenv"
XLINK: Final = ns.XLINK
XOP: Final = "http://www.w3.org/2004/08/xop/include"
#: The header block one real GetOrganizations client adds (§6.2); tolerated and never read.
CLIENT_HEADER_NS: Final = "http://e-doc.vn/xsd"

TEXT_XML: Final = "text/xml"
XOP_XML: Final = "application/xop+xml"
MULTIPART_RELATED: Final = "multipart/related"
SOAP12_TYPE: Final = "application/soap+xml"
#: The root part's Content-Type, as Bkav's runtime and the real client write it (§2.4).
ROOT_PART_TYPE: Final = "text/xml; charset=utf-8"
PLAIN_RESPONSE_TYPE: Final = "text/xml; charset=UTF-8"


class Operation(StrEnum):
    """The eight operations (§6); the value is the SOAPAction, compared exactly and case-sensitively (§2.1)."""

    CHECK_PERMISSION = "CheckPermission"
    GET_ORGANIZATIONS = "GetOrganizations"
    SEND_DOCUMENT = "SendDocument"
    GET_PENDING_DOCUMENT_IDS = "GetPendingDocumentIds"
    GET_DOCUMENT = "GetDocument"
    CONFIRM_RECEIVED = "ConfirmReceived"
    UPDATE_TRACES = "UpdateTraces"
    GET_TRACES = "GetTraces"

    @property
    def response_name(self) -> str:
        """``<SOAPAction>Response`` (§4.1). GetDocument has no wrapper: see :data:`UNWRAPPED`."""
        return f"{self.value}Response"


#: GetDocument answers without a ``…Response`` wrapper, its Report (on failure) directly in the Body (§6.5).
UNWRAPPED: Final = frozenset({Operation.GET_DOCUMENT})

#: The body wrapper each operation reads its fields from (§2.3 style B). CheckPermission's sits in the Header;
#: SendDocument and UpdateTraces have none (their credentials are in ``Header/Signature/KeyInfo``).
BODY_WRAPPER: Final = {
    Operation.GET_ORGANIZATIONS: "GetOrganizations",
    Operation.GET_PENDING_DOCUMENT_IDS: "GetPendingDocumentIdsRequest",
    Operation.GET_DOCUMENT: "GetDocumentRequest",
    Operation.CONFIRM_RECEIVED: "ConfirmReceived",
    Operation.GET_TRACES: "GetTraces",
}
HEADER_WRAPPER: Final = {Operation.CHECK_PERMISSION: "CheckPermission"}
#: Operations authenticated by ``Header/edXML:Signature/KeyInfo{OrganId, Token}`` (§3).
SIGNATURE_AUTH: Final = frozenset({Operation.SEND_DOCUMENT, Operation.UPDATE_TRACES})
#: Operations that carry the axis numeric document id (§2.3 style D).
DOCUMENT_ID_OPS: Final = frozenset({Operation.GET_DOCUMENT, Operation.CONFIRM_RECEIVED})

#: Timestamp formats of the profile (§9): statuses and GetTraces' filter; MessageHeader dates.
STATUS_TIME_FORMAT: Final = "%Y/%m/%d %H:%M:%S"
DATE_FORMAT: Final = "%Y/%m/%d"
#: What Bkav writes in GetDocument's database path (§6.5, §9).
DB_DATE_FORMAT: Final = "%d/%m/%Y"
DB_TIME_FORMAT: Final = "%d/%m/%Y %H:%M:%S"


def parse_soap_action(value: str | None) -> Operation | None:
    """The operation a ``SOAPAction`` header names, or None (§2.1).

    One pair of surrounding double quotes is stripped (the WSO2 transport does the same), then the value is
    compared exactly: ``"GetTraces"`` and ``GetTraces`` are one operation, ``gettraces`` is none. Surrounding
    blanks are dropped too (an HTTP header value has none that mean anything).
    """
    if value is None:
        return None
    text = value.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1]
    try:
        return Operation(text)
    except ValueError:
        return None


def soap_action_header(operation: Operation, *, quoted: bool = False) -> str:
    """The ``SOAPAction`` value a client sends: unquoted as the one real client does (§2.1), quoted on request
    (SOAP 1.1 §6.1.1 writes it quoted; Bkav accepts both)."""
    return f'"{operation.value}"' if quoted else operation.value
