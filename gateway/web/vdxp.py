"""The VDXP-compatible REST edge, ``POST /vdxp/<operation>`` (edxml.md §11): a system built on the VNPT SDK
connects to the gateway by changing only its endpoint URL to ``https://<gateway>/vdxp`` (gateway.md Interfaces).

Per request, in this order (the SOAP guard's order, :mod:`gateway.web.guard`):

1. ``POST`` only (405); the last path segment names the operation (404 for a name VDXP does not have; a VDXP
   operation we do not serve — ``registerAgency``, ``getSynchronizeUnit`` … — answers FAIL ``REQUEST.INVALID``);
2. ``Content-Length`` present (411) and within the limit BEFORE the body is read (413): ``max_package_bytes`` + 2
   (the SDK's CRLF) for ``sendEdoc`` — the raw body is not base64-inflated like SOAP's — and
   :data:`MAX_JSON_BODY` for the others, whose JSON body (``{}`` or empty from the SDK) is parsed with that cap
   and otherwise ignored: parameters are trusted only from SIGNED headers;
3. authentication, audited by the service (:meth:`GatewayApi.authenticate_hmac`): the claimed
   ``XroadVnpt-systemid`` (or ``systemid``) → that system's secret → :func:`gateway.vdxp.verify_request`, and
   for ``sendEdoc`` the package is cut from the body by its signed ``hash-file``
   (:func:`gateway.vdxp.package_from_body`) inside the same check;
4. the operation, through the use cases (:class:`GatewayApi`), which enforce access themselves.

Answers are what the SDK parses (``requests.json`` ``responses_the_sdk_accepted``): a JSON object with
``status`` ``"OK"``/``"FAIL"``, ``ErrorCode`` (``"0"`` on success), ``ErrorDesc``, and ``DocId`` or ``data``.
JSON is written ASCII-only (``\\uXXXX``), so a client reading it with any platform charset gets the same text.

Errors. Every refusal has the same body ``{"status": "FAIL", "ErrorCode": <code>, "ErrorDesc": <message>}`` where
``ErrorCode`` is the gateway's stable wire code (``AUTH.DENIED``, ``EDXML.SCHEMA``, ``ROUTE.UNKNOWN_RECIPIENT``,
``NOT_FOUND`` … — the codes of the SOAP Faults and of the README), and ``ErrorDesc`` is
``"<Vietnamese message>: <English detail>"``. Why not VDXP's numeric codes: only ``"0"`` is confirmed; the
numeric table (10/15/18…) is an unverified third-party reading of one province's guide (edxml.md §11.1 [U]),
and our codes name the cause. HTTP status: 200 for every refusal a client must read (the SDK reads the body
only of a 200 answer), 503 for ``SERVICE.UNAVAILABLE`` (retry later), 500 ``GATEWAY.INTERNAL`` for a defect,
and 404/405/411/413/415/400 for failures at the HTTP layer — each with the same FAIL body.

Lenient by design, each choice a named parameter of :class:`VdxpEdge`:

* ``messagetype`` is checked (``edoc`` | ``status``) but a package of the other kind is accepted as what it is:
  the package classifies itself in intake, and the SDK's own captured call sends a status package with
  ``messagetype=edoc``. ``strict_messagetype=True`` refuses the mismatch instead (``EDXML.STRUCTURE``);
* the timestamp is not checked for freshness (the SDK fixes it when its client object is created);
  ``max_age`` enforces a window for deployments whose clients sign fresh timestamps (``AUTH.REPLAY``).

One log line per request (method, path, HTTP status, sizes, claimed system, elapsed, code, document id); never
a body, never a header value other than the bounded, sanitised system id and docId.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from gateway import vdxp
from gateway.config import Settings
from gateway.edxml.codes import PackageKind
from gateway.edxml.dates import VN_TZ
from gateway.errors import (
    AuthError,
    GatewayError,
    NotFoundError,
    RequestError,
    SizeLimitError,
)
from gateway.services.api import AckOutcome, DeliveryState, GatewayApi, PendingItem, SentItem
from gateway.vdxp import Operation, VerifiedRequest
from gateway.web.faults import INTERNAL_CODE

log = logging.getLogger(__name__)

#: The WSGI ``start_response`` callable (defined here too: this edge must not import the SOAP stack).
StartResponse = Callable[..., Any]

#: Cap of the JSON body of every operation but sendEdoc (the SDK sends ``{}`` or nothing).
MAX_JSON_BODY: Final = 64 * 1024
#: Most items one getReceivedEdocList answer lists (the client fetches, acknowledges, and asks again).
MAX_LIST: Final = 1000
OK_DESC: Final = "Thanh cong"

#: VDXP operations we know of but do not serve (edxml.md §11.1): answered FAIL, not 404, so SDK users read why.
UNSERVED: Final = frozenset({"getSynchronizeUnit", "registerAgency", "deleteAgency"})

_STATUS: Final = {
    200: "200 OK",
    400: "400 Bad Request",
    404: "404 Not Found",
    405: "405 Method Not Allowed",
    411: "411 Length Required",
    413: "413 Content Too Large",
    415: "415 Unsupported Media Type",
    500: "500 Internal Server Error",
    503: "503 Service Unavailable",
}
_READ_CHUNK: Final = 1 << 20
#: How a mailbox item / a recipient's delivery reads in VDXP's vocabulary (initial|processing|done|fail, §12.1).
_RECEIVE_STATUS: Final[Mapping[DeliveryState, tuple[str, str]]] = {
    DeliveryState.QUEUED: ("initial", "Moi"),
    DeliveryState.FETCHED: ("processing", "Da tai ve, chua xac nhan"),
    DeliveryState.DELIVERED: ("done", "Da nhan"),
    DeliveryState.FAILED: ("fail", "Nhan loi"),
    DeliveryState.DEAD: ("fail", "Khong chuyen duoc (het so lan thu)"),
}


class _Refusal(Exception):
    """A refusal at the HTTP layer, with its status; ``close`` when the body was not read."""

    def __init__(self, status: int, error: GatewayError, *, close: bool = False) -> None:
        super().__init__(error.message)
        self.status = status
        self.error = error
        self.close = close


@dataclass
class _Trace:
    """What the log line says about a request besides method and path."""

    system: str = "-"
    code: str = "-"
    doc: str = "-"
    note: str = ""


def _safe(value: str, limit: int = 64) -> str:
    """Attacker-controlled text for the log: printable, no spaces, bounded (no forged or split lines)."""
    return "".join(ch if ch.isprintable() and not ch.isspace() else "?" for ch in value[:limit]) or "?"


class VdxpEdge:
    """WSGI app for the ``/vdxp`` mount (``PATH_INFO`` is ``/<operation>``)."""

    def __init__(
        self,
        api: GatewayApi,
        settings: Settings,
        *,
        strict_messagetype: bool = False,
        max_age: timedelta | None = None,
    ) -> None:
        self._api = api
        self._max_package_body = settings.max_package_bytes + len(vdxp.CRLF)
        self._strict_messagetype = strict_messagetype
        self._max_age = max_age
        self._handlers: Mapping[Operation, Callable[[VerifiedRequest, bytes, _Trace], dict[str, Any]]] = {
            Operation.SEND_EDOC: self._send_edoc,
            Operation.GET_RECEIVED_EDOC_LIST: self._received_list,
            Operation.GET_EDOC: self._get_edoc,
            Operation.UPDATE_STATUS: self._update_status,
            Operation.GET_SENT_EDOC_LIST: self._sent_list,
            Operation.GET_AGENCIES_LIST: self._agencies,
        }

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        method = environ.get("REQUEST_METHOD", "")
        path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
        trace = _Trace()
        close = False
        try:
            if method != "POST":
                raise _Refusal(
                    405, RequestError(f"method {method} is not allowed: VDXP operations are POST"), close=True
                )
            status, payload = 200, self._post(environ, trace)
        except _Refusal as refusal:
            status, payload, close = refusal.status, _fail(refusal.error), refusal.close
            trace.code = refusal.error.code
        except GatewayError as exc:
            status, payload = (503 if exc.retryable else 200), _fail(exc)
            trace.code = exc.code
        except Exception:
            # A defect: the client gets a FAIL answer, never an HTML page; the log gets the traceback (no body in it).
            log.exception("internal error at the VDXP edge (%s %s)", method, path)
            status = 500
            payload = {
                "status": "FAIL",
                "ErrorCode": INTERNAL_CODE,
                "ErrorDesc": "Loi noi bo cua cong truc: internal error in the gateway; see the gateway log",
            }
            trace.code = INTERNAL_CODE
        body = json.dumps(payload, ensure_ascii=True, separators=(",", ":")).encode("ascii")
        headers = [
            ("Content-Type", "application/json; charset=utf-8"),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
        ]
        if close:
            headers.append(("Connection", "close"))
        if status == 405:
            headers.append(("Allow", "POST"))
        start_response(_STATUS[status], headers)
        log.info(
            "%s %s %d in=%s out=%d system=%s %.1fms code=%s doc=%s%s",
            method,
            _safe(path, 120),
            status,
            _length_for_log(environ),
            len(body),
            trace.system,
            (time.perf_counter() - started) * 1000,
            trace.code,
            trace.doc,
            trace.note,
        )
        return [body]

    # ------------------------------------------------------------------------------------------ request

    def _post(self, environ: dict[str, Any], trace: _Trace) -> dict[str, Any]:
        operation = _operation(environ.get("PATH_INFO", ""))
        length = _content_length(environ)
        header = vdxp.wsgi_headers(environ)
        if operation is Operation.SEND_EDOC:
            limit = self._max_package_body
            if vdxp.media_type(environ.get("CONTENT_TYPE", "")).startswith("multipart/"):
                raise _Refusal(
                    415,
                    RequestError(
                        "multipart sendEdoc is not accepted: send the package as the raw body "
                        "(application/octet-stream), as SDKVXP 2.0.x does"
                    ),
                    close=True,
                )
        else:
            limit = MAX_JSON_BODY
        if length > limit:
            raise _Refusal(
                413,
                SizeLimitError(
                    f"request body is {length} bytes, above the limit of {limit} bytes", size=length, limit=limit
                ),
                close=True,
            )
        body = _read_body(environ["wsgi.input"], length)
        if operation is not Operation.SEND_EDOC:
            _check_json_body(body)

        claimed = vdxp.claimed_system_id(header)
        if claimed is None:
            raise AuthError(f"{vdxp.PREFIX}{vdxp.SYSTEMID} is required")
        trace.system = _safe(claimed)
        package: list[bytes] = []

        def verify(secret: str) -> VerifiedRequest:
            verified = vdxp.verify_request(
                header, secret, operation, system_id=claimed, max_age=self._max_age, now=datetime.now(VN_TZ)
            )
            if operation is Operation.SEND_EDOC:
                package.append(vdxp.package_from_body(body, verified.get(vdxp.HASH_FILE)))
            return verified

        verified = self._api.authenticate_hmac(claimed, verify)
        return self._handlers[operation](verified, package[0] if package else body, trace)

    # ------------------------------------------------------------------------------------------ operations

    def _send_edoc(self, req: VerifiedRequest, package: bytes, trace: _Trace) -> dict[str, Any]:
        declared = _message_type(req, required=True)
        _check_service_type(req)
        sender = req.get(vdxp.FROM)
        if not sender:
            raise RequestError(f"sendEdoc needs {vdxp.PREFIX}{vdxp.FROM} (the sending agency's OrganId)")
        receipt = self._api.submit(
            req.system_id,
            package,
            declared if self._strict_messagetype else None,
            declared_sender=sender.strip(),
        )
        trace.doc = receipt.doc_id
        if receipt.kind is not declared:
            trace.note = f" declared={declared.value} kind={receipt.kind.value}"
        return {"status": "OK", "ErrorCode": "0", "ErrorDesc": OK_DESC, "DocId": receipt.doc_id}

    def _received_list(self, req: VerifiedRequest, _body: bytes, _trace: _Trace) -> dict[str, Any]:
        kind = _message_type(req, required=True)
        _check_service_type(req)
        since, until = _date_range(req)
        items = self._api.pending_for_system(req.system_id, kind, MAX_LIST, since=since, until=until)
        return _ok([_received_item(i) for i in items])

    def _get_edoc(self, req: VerifiedRequest, _body: bytes, trace: _Trace) -> dict[str, Any]:
        delivery_id = _doc_id(req, trace)
        data = self._api.fetch(req.system_id, delivery_id)
        return _ok(base64.b64encode(data).decode("ascii"))

    def _update_status(self, req: VerifiedRequest, _body: bytes, trace: _Trace) -> dict[str, Any]:
        delivery_id = _doc_id(req, trace)
        status = (req.get(vdxp.STATUS) or "").strip().lower()
        description = req.get(vdxp.DESCRIPTION) or None
        if status == "processing":
            # VDXP's "being processed" has no transport meaning here: accepted for a delivery the system may see.
            self._api.delivery_state(req.system_id, delivery_id)
        elif status in ("done", "fail"):
            self._api.acknowledge(req.system_id, delivery_id, AckOutcome(status), description)
        else:
            raise RequestError(f"{vdxp.PREFIX}{vdxp.STATUS} must be done, fail or processing (got {status[:20]!r})")
        return {"status": "OK", "ErrorCode": "0", "ErrorDesc": OK_DESC}

    def _sent_list(self, req: VerifiedRequest, _body: bytes, trace: _Trace) -> dict[str, Any]:
        kind = _message_type(req, required=False)
        _check_service_type(req)
        since, until = _date_range(req)
        doc_id = (req.get(vdxp.DOC_ID) or "").strip() or None
        if doc_id:
            trace.doc = _safe(doc_id)
        items = self._api.sent_list(req.system_id, kind, doc_id=doc_id, since=since, until=until)
        return _ok([_sent_item(i) for i in items])

    def _agencies(self, _req: VerifiedRequest, _body: bytes, _trace: _Trace) -> dict[str, Any]:
        return _ok(
            [
                {"id": a.organ_id, "code": a.organ_id, "name": a.name, "mail": "", "pid": a.parent or "0"}
                for a in self._api.agencies()
                if a.active
            ]
        )


# ================================================================================================ helpers


def _operation(path_info: str) -> Operation:
    name = path_info.strip("/")
    try:
        return Operation(name)
    except ValueError:
        pass
    # Both refusals come before the body is read: the connection is closed so that it is never parsed.
    if name in UNSERVED:
        raise _Refusal(200, RequestError(f"the VDXP operation {name} is not served by this gateway"), close=True)
    raise _Refusal(404, NotFoundError(f"no VDXP operation {_safe(name)!r}"), close=True)


def _content_length(environ: Mapping[str, Any]) -> int:
    raw = (environ.get("CONTENT_LENGTH") or "").strip()
    if not raw:
        # No Content-Length and no chunked framing (gunicorn refuses the malformed ones): an empty body.
        if "chunked" in (environ.get("HTTP_TRANSFER_ENCODING") or "").lower():
            raise _Refusal(
                411, RequestError("Content-Length is required (chunked request bodies are not accepted)"), close=True
            )
        return 0
    if not raw.isdigit():
        raise _Refusal(400, RequestError("Content-Length is not a number"), close=True)
    return int(raw)


def _read_body(stream: Any, length: int) -> bytes:
    """Exactly ``length`` bytes (already checked against the limit), or REQUEST.INVALID if the client stopped."""
    chunks: list[bytes] = []
    remaining = length
    while remaining > 0:
        chunk = stream.read(min(_READ_CHUNK, remaining))
        if not chunk:
            raise _Refusal(
                400, RequestError(f"request body ended after {length - remaining} of {length} bytes"), close=True
            )
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _check_json_body(body: bytes) -> None:
    """Empty, or a JSON object (the SDK sends ``{}``); its content is not used — only signed headers are."""
    if not body.strip():
        return
    try:
        doc = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise RequestError("the request body must be empty or a JSON object") from None
    if not isinstance(doc, dict):
        raise RequestError("the request body must be empty or a JSON object")


def _message_type(req: VerifiedRequest, *, required: bool) -> PackageKind:
    raw = (req.get(vdxp.MESSAGETYPE) or "").strip().lower()
    if not raw and not required:
        return PackageKind.EDOC
    try:
        return PackageKind(raw)
    except ValueError:
        raise RequestError(f"{vdxp.PREFIX}{vdxp.MESSAGETYPE} must be edoc or status (got {raw[:20]!r})") from None


def _check_service_type(req: VerifiedRequest) -> None:
    value = req.get(vdxp.SERVICETYPE)
    if value is not None and value.strip().lower() != vdxp.SERVICE_TYPE_EDOC.lower():
        raise RequestError(f"{vdxp.PREFIX}{vdxp.SERVICETYPE} must be {vdxp.SERVICE_TYPE_EDOC} (got {value[:20]!r})")


def _doc_id(req: VerifiedRequest, trace: _Trace) -> str:
    value = (req.get(vdxp.DOC_ID) or "").strip()
    if not value:
        raise RequestError(f"{vdxp.PREFIX}{vdxp.DOC_ID} is required")
    trace.doc = _safe(value)
    return value


def _date_range(req: VerifiedRequest) -> tuple[datetime | None, datetime | None]:
    return _list_date(req, vdxp.FROM_DATE, end=False), _list_date(req, vdxp.TO_DATE, end=True)


def _list_date(req: VerifiedRequest, name: str, *, end: bool) -> datetime | None:
    """``dd/MM/yyyy HH:mm:ss`` (or ``dd/MM/yyyy``: a whole day) in Vietnam local time (edxml.md §11.1)."""
    raw = (req.get(name) or "").strip()
    if not raw:
        return None
    for fmt, whole_day in ((vdxp.LIST_DATE_FORMAT, False), ("%d/%m/%Y", True)):
        try:
            value = datetime.strptime(raw, fmt).replace(tzinfo=VN_TZ)
        except ValueError:
            continue
        if whole_day and end:
            value = value.replace(hour=23, minute=59, second=59, microsecond=999_999)
        return value
    raise RequestError(f"{vdxp.PREFIX}{name} must be dd/MM/yyyy HH:mm:ss (got {raw[:30]!r})")


def _time(value: datetime | None) -> str:
    return value.astimezone(VN_TZ).strftime(vdxp.LIST_DATE_FORMAT) if value is not None else ""


def _received_item(item: PendingItem) -> dict[str, str]:
    status, desc = _RECEIVE_STATUS[DeliveryState.QUEUED]
    if item.state is DeliveryState.FETCHED:
        # Still "initial" for clients that filter on it: fetched but never acknowledged must be fetched again.
        desc = _RECEIVE_STATUS[DeliveryState.FETCHED][1]
    return {
        "docId": item.delivery_id,
        "serviceType": vdxp.SERVICE_TYPE_EDOC,
        "messageType": item.kind.value,
        "created_time": _time(item.received_at),
        "updated_time": _time(item.fetched_at or item.received_at),
        "from": item.sender,
        "to": item.recipient,
        "status": status,
        "status_desc": desc,
    }


def _sent_item(item: SentItem) -> dict[str, str]:
    status, desc = _RECEIVE_STATUS[item.state]
    if item.state is DeliveryState.FAILED and item.ack_reason:
        desc = f"{desc}: {item.ack_reason[:500]}"
    return {
        "serviceType": vdxp.SERVICE_TYPE_EDOC,
        "messageType": item.kind.value,
        "senderDocId": item.doc_id,
        "receiverDocId": item.delivery_id,
        "fromCode": item.sender,
        "toCode": item.recipient,
        "title": item.subject or "",
        "notation": item.code or "",
        "sentTime": _time(item.received_at),
        "receivedTime": _time(item.acknowledged_at or item.fetched_at),
        "sendStatus": "done",
        "sendStatusDesc": "Cong truc da tiep nhan",
        "receiveStatus": status,
        "receiveStatusDesc": desc,
        # Beyond VDXP's keys: the gateway's own transport state and the latest business status (01…16).
        "deliveryState": item.state.value,
        "statusCode": item.status_code.value if item.status_code else "",
        "documentId": item.document_id,
    }


def _ok(data: Any) -> dict[str, Any]:
    return {"status": "OK", "ErrorCode": "0", "ErrorDesc": OK_DESC, "data": data}


def _fail(exc: GatewayError) -> dict[str, Any]:
    return {"status": "FAIL", "ErrorCode": exc.code, "ErrorDesc": f"{exc.message_vi}: {exc.message}"}


def _length_for_log(environ: Mapping[str, Any]) -> str:
    raw = (environ.get("CONTENT_LENGTH") or "").strip()
    return raw if raw.isdigit() else "-"


__all__ = ["MAX_JSON_BODY", "MAX_LIST", "UNSERVED", "VdxpEdge"]
