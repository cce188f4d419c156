"""The names of the VDXP protocol (edxml.md §11.1–§11.2): operations, headers, parameters, media types.

Both sides spell them from here, so a typo cannot make our client and our edge disagree with each other while
both disagree with the SDK. Parameter names are written as the SDK writes them; on the wire (and in WSGI) header
names are case-insensitive.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Final

PREFIX: Final = "XroadVnpt-"
SIGN_HEADER: Final = PREFIX + "sign-header"
SIGN_HEADER_KEY: Final = PREFIX + "sign-header-key"
HASH_HEADER: Final = PREFIX + "hash-header"
VERSION_HEADER: Final = PREFIX + "version"
#: What the SDK sends in ``XroadVnpt-version`` and ``User-Agent`` (edxml.md §11.2 step 5).
PROTOCOL_VERSION: Final = "3.0.201608"
SDK_USER_AGENT: Final = "JAVASDKAgent/1.0.0 XRoad/VPCP"

# Parameter (entry) names: each travels as the header ``XroadVnpt-<name>`` and inside the signed sign-header.
SYSTEMID: Final = "systemid"
TIMESTAMP: Final = "timestamp"
CONTENT_TYPE: Final = "Content-Type"
FROM: Final = "from"
TO: Final = "to"
SERVICETYPE: Final = "servicetype"
MESSAGETYPE: Final = "messagetype"
HASH_FILE: Final = "hash-file"
DOC_ID: Final = "docId"
STATUS: Final = "status"
DESCRIPTION: Final = "description"
FROM_DATE: Final = "fromDate"
TO_DATE: Final = "toDate"

#: The only ``servicetype`` of document exchange.
SERVICE_TYPE_EDOC: Final = "eDoc"
OCTET_STREAM: Final = "application/octet-stream"
JSON_TYPE: Final = "application/json"
#: What the SDK appends to the body of ``sendEdoc``.
CRLF: Final = b"\r\n"
#: Date format of ``fromDate``/``toDate`` and of the list answers' times (Vietnam local time).
LIST_DATE_FORMAT: Final = "%d/%m/%Y %H:%M:%S"

#: Largest ``XroadVnpt-sign-header`` accepted; gunicorn already caps a header line at 8190 bytes.
MAX_SIGN_HEADER_BYTES: Final = 16 * 1024


class Operation(StrEnum):
    """The VDXP operations our edge serves and our client calls (edxml.md §11.1); the value is the path segment:
    a request is ``POST {endpoint}/{operation}``."""

    SEND_EDOC = "sendEdoc"
    GET_RECEIVED_EDOC_LIST = "getReceivedEdocList"
    GET_EDOC = "getEdoc"
    UPDATE_STATUS = "updateStatus"
    GET_SENT_EDOC_LIST = "getSentEdocList"
    GET_AGENCIES_LIST = "getAgenciesList"


#: VDXP operations that exist but this gateway does not serve (edxml.md §11.1): a server answers them FAIL, not 404,
#: so that SDK users read why.
UNSERVED: Final = frozenset({"getSynchronizeUnit", "registerAgency", "deleteAgency"})

#: Entries every request signs, whatever the operation.
BASE_ENTRIES: Final = frozenset({SYSTEMID, TIMESTAMP, CONTENT_TYPE})

#: The parameters each operation reads (besides :data:`BASE_ENTRIES`). Anything else that arrives signed is a
#: stale SDK entry and is ignored; anything here that arrives unsigned is refused.
OPERATION_PARAMS: Final[Mapping[Operation, frozenset[str]]] = {
    Operation.SEND_EDOC: frozenset({FROM, TO, SERVICETYPE, MESSAGETYPE, HASH_FILE}),
    Operation.GET_RECEIVED_EDOC_LIST: frozenset({SERVICETYPE, MESSAGETYPE, FROM_DATE, TO_DATE}),
    Operation.GET_EDOC: frozenset({DOC_ID}),
    Operation.UPDATE_STATUS: frozenset({DOC_ID, STATUS, DESCRIPTION}),
    Operation.GET_SENT_EDOC_LIST: frozenset({SERVICETYPE, MESSAGETYPE, DOC_ID, FROM_DATE, TO_DATE}),
    Operation.GET_AGENCIES_LIST: frozenset(),
}

#: Which headers count, per operation, when a request comes from a client whose header map is stale.
#:
#: The VNPT SDK never clears its header map (edxml.md §11.4): every parameter of every earlier call is sent, and
#: signed, again. A value it re-sends is indistinguishable from one the caller set for this call, so the
#: question is only what a stale value could do:
#:
#: ============================ ============================================================================
#: operation                    counts
#: ============================ ============================================================================
#: ``sendEdoc``                 ``from``, ``servicetype``, ``messagetype``, ``hash-file`` — set by every call
#:                              (``hash-file`` by the SDK itself); ``to`` is checked but never acted on:
#:                              routing is by the package's own ``To``
#: ``getReceivedEdocList``      ``servicetype``, ``messagetype`` (every call sets them); ``fromDate``/``toDate``
#:                              only in a clean request (below)
#: ``getEdoc``                  ``docId`` (required, so every call sets it)
#: ``updateStatus``             ``docId``, ``status`` (required); ``description`` — a stale one is only text,
#:                              and a description the caller did set must not be lost
#: ``getSentEdocList``          ``servicetype``, ``messagetype``; ``docId``, ``fromDate``, ``toDate`` only in a
#:                              clean request (below)
#: ``getAgenciesList``          nothing
#: ============================ ============================================================================
#:
#: A request is *clean* when it signs nothing but :data:`BASE_ENTRIES` and the operation's own parameters. A
#: request that also signs another operation's entries (``filePath``, ``status``, ``hash-file`` … in a list
#: call) proves the client's map is stale; in it, the optional FILTERS of a list below are ignored, because a
#: filter left over from an earlier call (getEdoc's ``docId``) silently hides what the caller asked for — a
#: long-lived SDK client saw an empty sent list (issue 8, finding 8). Ignoring one only widens the answer,
#: which the client filters anyway. Our own client signs only the call's parameters, so its filters count.
#: Signature verification still covers every signed entry, used or not.
LIST_FILTERS: Final[Mapping[Operation, frozenset[str]]] = {
    Operation.GET_RECEIVED_EDOC_LIST: frozenset({FROM_DATE, TO_DATE}),
    Operation.GET_SENT_EDOC_LIST: frozenset({DOC_ID, FROM_DATE, TO_DATE}),
}

#: The body type the SDK sends per operation (``sendEdoc`` posts the raw file, the others ``{}``).
CONTENT_TYPES: Final[Mapping[Operation, str]] = {
    op: (OCTET_STREAM if op is Operation.SEND_EDOC else JSON_TYPE) for op in Operation
}


class UpdateStatus(StrEnum):
    """What ``updateStatus`` may say about a received message."""

    DONE = "done"
    FAIL = "fail"
    #: "Being processed": no transport meaning; a server only checks the message is the caller's.
    PROCESSING = "processing"


class ReceiveStatus(StrEnum):
    """How a list answer describes a message at its recipient (``status``, ``receiveStatus``; edxml.md §12.1)."""

    INITIAL = "initial"
    PROCESSING = "processing"
    DONE = "done"
    FAIL = "fail"
