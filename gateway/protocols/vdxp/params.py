"""The parameters of each VDXP operation: the client builds them here, the edge reads them (signed) here.

Parameters travel as signed headers (:mod:`gateway.protocols.vdxp.signing`); a request body other than
``sendEdoc``'s is ``{}`` or empty and carries nothing. The builders return the (name, value) pairs in the order
the SDK signs them; the readers take a :class:`~gateway.protocols.vdxp.verify.VerifiedRequest`, so an edge can
only act on values the HMAC covered, and refuse a malformed value with ``REQUEST.INVALID``.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime

from gateway.edxml.codes import PackageKind
from gateway.edxml.dates import VN_TZ
from gateway.errors import RequestError
from gateway.payload import Payload
from gateway.protocols.vdxp.names import (
    DESCRIPTION,
    DOC_ID,
    FROM,
    FROM_DATE,
    HASH_FILE,
    LIST_DATE_FORMAT,
    MESSAGETYPE,
    PREFIX,
    SERVICE_TYPE_EDOC,
    SERVICETYPE,
    STATUS,
    TO,
    TO_DATE,
    UpdateStatus,
)
from gateway.protocols.vdxp.signing import sdk_hex
from gateway.protocols.vdxp.verify import VerifiedRequest

Params = dict[str, str]

# ================================================================================================ dates


def format_list_date(value: datetime | None) -> str:
    """``dd/MM/yyyy HH:mm:ss`` in Vietnam local time (list filters and list answers); ``""`` for no time."""
    return value.astimezone(VN_TZ).strftime(LIST_DATE_FORMAT) if value is not None else ""


def parse_list_date(raw: str, *, end: bool) -> datetime | None:
    """``dd/MM/yyyy HH:mm:ss``, or ``dd/MM/yyyy`` for a whole day (its last instant when ``end``), in Vietnam
    local time (edxml.md §11.1); None for an empty value, ValueError for a malformed one."""
    text = raw.strip()
    if not text:
        return None
    for fmt, whole_day in ((LIST_DATE_FORMAT, False), ("%d/%m/%Y", True)):
        try:
            value = datetime.strptime(text, fmt).replace(tzinfo=VN_TZ)
        except ValueError:
            continue
        if whole_day and end:
            value = value.replace(hour=23, minute=59, second=59, microsecond=999_999)
        return value
    raise ValueError(f"not a list date: {text[:30]!r}")


def _date_params(since: datetime | None, until: datetime | None) -> Params:
    out: Params = {}
    if since is not None:
        out[FROM_DATE] = format_list_date(since)
    if until is not None:
        out[TO_DATE] = format_list_date(until)
    return out


# ================================================================================================ client: builders


def send_edoc_params(package: bytes | Payload, *, sender: str, kind: PackageKind, to: str | None = None) -> Params:
    """``sendEdoc``: the sender, the kind, and the ``hash-file`` that binds the body (in the SDK's form).
    ``to`` is passed through verbatim when given (the SDK sends it as raw JSON text; routing is by the package's
    own ``To``). For a :class:`~gateway.payload.Payload` the SHA-256 it counted while it was written is used: a
    spooled package is never read whole to hash it (issue 14)."""
    digest = bytes.fromhex(package.sha256) if isinstance(package, Payload) else hashlib.sha256(package).digest()
    params = {
        FROM: sender,
        SERVICETYPE: SERVICE_TYPE_EDOC,
        MESSAGETYPE: PackageKind(kind).value,
        HASH_FILE: sdk_hex(digest),
    }
    if to is not None:
        params[TO] = to
    return params


def received_list_params(kind: PackageKind, *, since: datetime | None, until: datetime | None) -> Params:
    """``getReceivedEdocList``: messages of one kind, optionally within a time range."""
    return {SERVICETYPE: SERVICE_TYPE_EDOC, MESSAGETYPE: PackageKind(kind).value, **_date_params(since, until)}


def get_edoc_params(doc_id: str) -> Params:
    """``getEdoc``: the ``docId`` of a listed message."""
    return {DOC_ID: doc_id}


def update_status_params(doc_id: str, status: UpdateStatus | str, description: str | None = None) -> Params:
    """``updateStatus``: ``done`` | ``fail`` | ``processing`` (ValueError otherwise), with an optional reason."""
    params = {DOC_ID: doc_id, STATUS: UpdateStatus(status).value}
    if description:
        params[DESCRIPTION] = description
    return params


def sent_list_params(
    kind: PackageKind, *, doc_id: str | None, since: datetime | None, until: datetime | None
) -> Params:
    """``getSentEdocList``: messages of one kind the caller sent, optionally one ``docId`` or a time range."""
    params = {SERVICETYPE: SERVICE_TYPE_EDOC, MESSAGETYPE: PackageKind(kind).value}
    if doc_id:
        params[DOC_ID] = doc_id
    return {**params, **_date_params(since, until)}


# ================================================================================================ server: readers


def read_message_type(req: VerifiedRequest, *, required: bool) -> PackageKind:
    """``messagetype`` (``edoc`` | ``status``); ``edoc`` when absent and not ``required``."""
    raw = (req.get(MESSAGETYPE) or "").strip().lower()
    if not raw and not required:
        return PackageKind.EDOC
    try:
        return PackageKind(raw)
    except ValueError:
        raise RequestError(f"{PREFIX}{MESSAGETYPE} must be edoc or status (got {raw[:20]!r})") from None


def check_service_type(req: VerifiedRequest) -> None:
    """``servicetype``, when sent, must be ``eDoc`` (case-insensitively): nothing else is exchanged here."""
    value = req.get(SERVICETYPE)
    if value is not None and value.strip().lower() != SERVICE_TYPE_EDOC.lower():
        raise RequestError(f"{PREFIX}{SERVICETYPE} must be {SERVICE_TYPE_EDOC} (got {value[:20]!r})")


def read_sender(req: VerifiedRequest) -> str:
    """``from`` of ``sendEdoc``: the sending agency's OrganId (intake checks it against the package)."""
    sender = req.get(FROM)
    if not sender:
        raise RequestError(f"sendEdoc needs {PREFIX}{FROM} (the sending agency's OrganId)")
    return sender.strip()


def read_doc_id(req: VerifiedRequest, *, required: bool = True) -> str | None:
    """``docId``, stripped; REQUEST.INVALID when ``required`` and absent."""
    value = (req.get(DOC_ID) or "").strip()
    if not value and required:
        raise RequestError(f"{PREFIX}{DOC_ID} is required")
    return value or None


def read_update_status(req: VerifiedRequest) -> tuple[UpdateStatus, str | None]:
    """``status`` (``done`` | ``fail`` | ``processing``) and the optional ``description``."""
    raw = (req.get(STATUS) or "").strip().lower()
    try:
        status = UpdateStatus(raw)
    except ValueError:
        raise RequestError(f"{PREFIX}{STATUS} must be done, fail or processing (got {raw[:20]!r})") from None
    return status, req.get(DESCRIPTION) or None


def read_date_range(req: VerifiedRequest) -> tuple[datetime | None, datetime | None]:
    """``fromDate`` … ``toDate`` (a bare day ends at its last instant)."""
    return _read_date(req, FROM_DATE, end=False), _read_date(req, TO_DATE, end=True)


def _read_date(req: VerifiedRequest, name: str, *, end: bool) -> datetime | None:
    raw = req.get(name) or ""
    try:
        return parse_list_date(raw, end=end)
    except ValueError:
        raise RequestError(f"{PREFIX}{name} must be dd/MM/yyyy HH:mm:ss (got {raw.strip()[:30]!r})") from None


def check_json_body(body: bytes) -> None:
    """Empty, or a JSON object (the SDK sends ``{}``); its content is not used — only signed headers are."""
    if not body.strip():
        return
    try:
        doc = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise RequestError("the request body must be empty or a JSON object") from None
    if not isinstance(doc, dict):
        raise RequestError("the request body must be empty or a JSON object")
