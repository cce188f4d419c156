"""The VDXP-compatible REST edge, ``POST /vdxp/<operation>`` (edxml.md §11): a system built on the VNPT SDK
connects to the gateway by changing only its endpoint URL to ``https://<gateway>/vdxp`` (gateway.md Interfaces).

The protocol — names, signing, parameters, answer shapes — is :mod:`gateway.protocols.vdxp`, shared with our
client (:mod:`adapters.vdxp`); this module is the server's HTTP layer and the mapping onto the use cases.

Per request, in this order (the SOAP guard's order, :mod:`gateway.web.guard`):

1. ``POST`` only (405); the last path segment names the operation (404 for a name VDXP does not have; a VDXP
   operation we do not serve — ``registerAgency``, ``getSynchronizeUnit`` … — answers FAIL ``REQUEST.INVALID``);
2. ``Content-Length`` present (411) and within the limit BEFORE the body is read (413): ``max_package_bytes`` + 2
   (the SDK's CRLF) for ``sendEdoc`` — the raw body is not base64-inflated like SOAP's — and
   :data:`MAX_JSON_BODY` for the others, whose JSON body (``{}`` or empty from the SDK) is parsed with that cap
   and otherwise ignored: parameters are trusted only from SIGNED headers;
3. authentication, audited by the service (:meth:`GatewayApi.authenticate_hmac`): the claimed
   ``XroadVnpt-systemid`` (or ``systemid``) → that system's secret → :func:`gateway.protocols.vdxp.verify_request`,
   and for ``sendEdoc`` the package is cut from the body by its signed ``hash-file``
   (:func:`gateway.protocols.vdxp.package_from_payload`, on the body spooled with both candidates' digests counted
   as it was read: issue 14) inside the same check; then, still inside it, the
   system's replay protection (:meth:`GatewayApi.admit_vdxp`, :mod:`gateway.services.vdxp_guard`): ``strict``
   systems sign a fresh timestamp (``AUTH.STALE``) and each signature once (``AUTH.REPLAY``), ``legacy-sdk``
   ones (the stock SDK's fixed timestamp) are bound to source networks and/or a TLS client certificate
   (``ACCESS.SOURCE``) — where the request came from is :func:`gateway.web.origin.client_origin`'s finding;
4. the operation, through the use cases (:class:`GatewayApi`), which enforce access themselves.

Every answer, refusals included, is the SDK's JSON shape (:mod:`gateway.protocols.vdxp.answers`): a refusal of an
operation carries that operation's answer keys empty (``DocId: ""``, ``data: ""`` or ``[]``), because the SDK
reads them before it reads ``status``. HTTP status: 200
for every refusal a client must read (the SDK reads the body only of a 200 answer), 503 for
``SERVICE.UNAVAILABLE`` (retry later), 500 ``GATEWAY.INTERNAL`` for a defect, and 404/405/411/413/415/400 for
failures at the HTTP layer — each with the same FAIL body. So this edge translates its errors itself and never
lets one reach the JSON edges' handler (:mod:`gateway.web.jsonapi`).

Lenient by design, each choice a named parameter of :class:`VdxpEdge`:

* ``messagetype`` is checked (``edoc`` | ``status``) but a package of the other kind is accepted as what it is:
  the package classifies itself in intake, and the SDK's own captured call sends a status package with
  ``messagetype=edoc``. ``strict_messagetype=True`` refuses the mismatch instead (``EDXML.STRUCTURE``);
* whether the timestamp must be fresh is each system's setting, not the edge's (issue 10 finding 7: the SDK
  fixes it when its client object is created);
* which headers count per operation is the protocol's decision
  (:data:`gateway.protocols.vdxp.names.LIST_FILTERS`): in a request re-signing another call's entries (the
  SDK's stale header map), the lists' ``docId``/``fromDate``/``toDate`` filters are not applied (the log line
  says ``ignored=…``), so a long-lived SDK client's getSentEdocList after a getEdoc lists its sent documents.

One log line per request (method, path, HTTP status, sizes, claimed system, elapsed, code, document id); never
a body, never a header value other than the bounded, sanitised system id and docId.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from flask import Blueprint, request
from werkzeug.routing import BaseConverter
from werkzeug.wrappers import Request, Response

from gateway import logs
from gateway.config import Settings
from gateway.errors import AuthError, GatewayError, NotFoundError, RateLimitedError, RequestError, SizeLimitError
from gateway.payload import Payload, PayloadWriter
from gateway.protocols import vdxp
from gateway.protocols.vdxp import Operation, VerifiedRequest
from gateway.services.api import AckOutcome, DeliveryState, GatewayApi, PendingItem, SentItem
from gateway.web.faults import INTERNAL_CODE
from gateway.web.origin import client_origin, trusted_networks
from gateway.web.rawhttp import (
    Refusal,
    StartResponse,
    body_chunks,
    declared_length,
    length_for_log,
    log_safe,
    read_body,
)

log = logging.getLogger(__name__)

PREFIX: Final = "/vdxp"
#: Cap of the JSON body of every operation but sendEdoc (the SDK sends ``{}`` or nothing).
MAX_JSON_BODY: Final = 64 * 1024
#: Most items one getReceivedEdocList answer lists (the client fetches, acknowledges, and asks again).
MAX_LIST: Final = 1000
INTERNAL_DESC: Final = "Loi noi bo cua cong truc: internal error in the gateway; see the gateway log"
_ALL_METHODS: Final = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

_STATUS: Final = {
    200: "200 OK",
    400: "400 Bad Request",
    404: "404 Not Found",
    405: "405 Method Not Allowed",
    411: "411 Length Required",
    413: "413 Content Too Large",
    415: "415 Unsupported Media Type",
    429: "429 Too Many Requests",
    500: "500 Internal Server Error",
    503: "503 Service Unavailable",
}
#: How a mailbox item / a recipient's delivery reads in VDXP's vocabulary (edxml.md §12.1).
_RECEIVE_STATUS: Final[Mapping[DeliveryState, tuple[vdxp.ReceiveStatus, str]]] = {
    DeliveryState.QUEUED: (vdxp.ReceiveStatus.INITIAL, "Moi"),
    DeliveryState.FETCHED: (vdxp.ReceiveStatus.PROCESSING, "Da tai ve, chua xac nhan"),
    DeliveryState.DELIVERED: (vdxp.ReceiveStatus.DONE, "Da nhan"),
    DeliveryState.FAILED: (vdxp.ReceiveStatus.FAIL, "Nhan loi"),
    DeliveryState.DEAD: (vdxp.ReceiveStatus.FAIL, "Khong chuyen duoc (het so lan thu)"),
}


class _RestOfPath(BaseConverter):
    """Whatever follows ``/vdxp/``, empty and extra slashes included (``/vdxp//sendEdoc`` from an endpoint
    configured with a trailing slash is served, as the operation is the path without its slashes)."""

    regex = ".*"
    part_isolating = False


@dataclass
class _Trace:
    """What the log line says about a request besides method and path."""

    system: str = "-"
    code: str = "-"
    doc: str = "-"
    note: str = ""


#: An operation: the verified request, its body (sendEdoc: the package, spooled), the log line's trace.
_Handler = Callable[[VerifiedRequest, Any, _Trace], vdxp.Answer]


class VdxpEdge:
    """The ``/vdxp`` edge: :meth:`blueprint` mounts it in the Flask app; called directly it is a WSGI app whose
    ``PATH_INFO`` is ``/<operation>`` (any mount that strips the prefix)."""

    def __init__(
        self,
        api: GatewayApi,
        settings: Settings,
        *,
        strict_messagetype: bool = False,
    ) -> None:
        self._api = api
        self._max_package_body = settings.max_package_bytes + len(vdxp.CRLF)
        self._spool_dir = Path(settings.data_dir) / "spool"
        self._strict_messagetype = strict_messagetype
        self._trusted = trusted_networks(settings.trusted_proxies)
        self._handlers: Mapping[Operation, _Handler] = {
            Operation.SEND_EDOC: self._send_edoc,
            Operation.GET_RECEIVED_EDOC_LIST: self._received_list,
            Operation.GET_EDOC: self._get_edoc,
            Operation.UPDATE_STATUS: self._update_status,
            Operation.GET_SENT_EDOC_LIST: self._sent_list,
            Operation.GET_AGENCIES_LIST: self._agencies,
        }

    def blueprint(self) -> Blueprint:
        """Every method and every path under ``/vdxp/`` comes here: refusals too are answered in the SDK's shape."""
        bp = Blueprint("vdxp", __name__, url_prefix=PREFIX)
        bp.record_once(lambda state: state.app.url_map.converters.setdefault("vdxp_rest", _RestOfPath))
        bp.add_url_rule("/<vdxp_rest:operation>", view_func=self._view, methods=list(_ALL_METHODS))
        return bp

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        req = Request(environ)
        return self.answer(req, req.path.strip("/"))(environ, start_response)

    def _view(self, operation: str) -> Response:
        return self.answer(request, operation.strip("/"))

    def answer(self, req: Request, operation: str) -> Response:
        """The answer to one request for ``operation`` (the path segment), refusals included; logs one line."""
        started = time.perf_counter()
        path = req.script_root + req.path
        trace = _Trace()
        logs.bind(edge="vdxp", operation="other")  # the operation once recognised (_post); never the path
        close = False
        try:
            if req.method != "POST":
                message = f"method {req.method} is not allowed: VDXP operations are POST"
                raise Refusal(405, RequestError(message), close=True)
            status, payload = 200, self._post(req, operation, trace)
        except Refusal as refusal:
            status, payload, close = refusal.status, vdxp.error_answer(refusal.error, operation), refusal.close
            trace.code = refusal.error.code
        except GatewayError as exc:
            # RATE.LIMITED: 429 (Retry-After from the throttle front); other refusals in the SDK's 200 FAIL shape.
            status = 503 if exc.retryable else 429 if isinstance(exc, RateLimitedError) else 200
            payload = vdxp.error_answer(exc, operation)
            trace.code = exc.code
        except Exception:
            # A defect: the client gets a FAIL answer, never an HTML page; the log gets the traceback (no body in it).
            log.exception("internal error at the VDXP edge (%s %s)", req.method, path)
            status, payload = 500, vdxp.fail_answer(INTERNAL_CODE, INTERNAL_DESC, operation)
            trace.code = INTERNAL_CODE
        body = vdxp.encode_answer(payload)
        response = Response(body, status=_STATUS[status], content_type=vdxp.ANSWER_CONTENT_TYPE)
        response.headers["Cache-Control"] = "no-store"
        if close:
            response.headers["Connection"] = "close"
        if status == 405:
            response.headers["Allow"] = "POST"
        elapsed_ms = (time.perf_counter() - started) * 1000
        log.info(
            "%s %s %d in=%s out=%d system=%s %.1fms code=%s doc=%s%s",
            req.method,
            log_safe(path, 120),
            status,
            length_for_log(req.environ),
            len(body),
            trace.system,
            elapsed_ms,
            trace.code,
            trace.doc,
            trace.note,
            extra={"status": status, "duration_ms": round(elapsed_ms, 1), "code": trace.code},
        )
        return response

    # ------------------------------------------------------------------------------------------ request

    def _post(self, req: Request, name: str, trace: _Trace) -> vdxp.Answer:
        operation = _operation(name)
        logs.bind(operation=operation.value)
        length = declared_length(req.headers)
        if operation is Operation.SEND_EDOC:
            limit = self._max_package_body
            if vdxp.media_type(req.headers.get("Content-Type", "")).startswith("multipart/"):
                message = (
                    "multipart sendEdoc is not accepted: send the package as the raw body "
                    "(application/octet-stream), as SDKVXP 2.0.x does"
                )
                raise Refusal(415, RequestError(message), close=True)
        else:
            limit = MAX_JSON_BODY
        if length > limit:
            message = f"request body is {length} bytes, above the limit of {limit} bytes"
            raise Refusal(413, SizeLimitError(message, size=length, limit=limit), close=True)
        # The raw stream, exactly Content-Length bytes: the body is what hash-file is checked over. A sendEdoc body
        # is spooled (issue 14: a big package is never held whole as bytes), with both candidates' digests.
        if operation is not Operation.SEND_EDOC:
            body = read_body(req.environ["wsgi.input"], length)
            vdxp.check_json_body(body)
            return self._authenticated(req, operation, body, trace)
        writer = PayloadWriter(self._spool_dir, max_bytes=limit)
        with contextlib.closing(vdxp.SendEdocBody.read(body_chunks(req.environ["wsgi.input"], length), writer)) as sent:
            return self._authenticated(req, operation, sent, trace)

    def _authenticated(
        self, req: Request, operation: Operation, body: bytes | vdxp.SendEdocBody, trace: _Trace
    ) -> vdxp.Answer:
        """HMAC authentication (and, for sendEdoc, the package cut from the body by ``hash-file``), then the
        operation."""
        header = vdxp.wsgi_headers(req.environ)
        claimed = vdxp.claimed_system_id(header)
        if claimed is None:
            raise AuthError(f"{vdxp.PREFIX}{vdxp.SYSTEMID} is required")
        trace.system = log_safe(claimed)
        origin = client_origin(req.environ, self._trusted)
        package: list[Payload] = []

        def verify(secret: str) -> VerifiedRequest:
            verified = vdxp.verify_request(header, secret, operation, system_id=claimed)
            if isinstance(body, vdxp.SendEdocBody):
                package.append(vdxp.package_from_payload(body, verified.get(vdxp.HASH_FILE)))
            # Last: a strict system's signature is remembered only once the whole request has authenticated.
            self._api.admit_vdxp(verified, origin)
            return verified

        verified = self._api.authenticate_hmac(claimed, verify)
        logs.bind(system=verified.system_id)
        if verified.ignored:
            # A stale SDK header map (LIST_FILTERS): the filters it re-sent are not applied; the log says so.
            trace.note += f" ignored={','.join(verified.ignored)}"
        return self._handlers[operation](verified, package[0] if package else body, trace)

    # ------------------------------------------------------------------------------------------ operations

    def _send_edoc(self, req: VerifiedRequest, package: Payload, trace: _Trace) -> vdxp.Answer:
        declared = vdxp.read_message_type(req, required=True)
        vdxp.check_service_type(req)
        sender = vdxp.read_sender(req)
        expected = declared if self._strict_messagetype else None
        receipt = self._api.submit(req.system_id, package, expected, declared_sender=sender)
        trace.doc = receipt.doc_id
        if receipt.kind is not declared:
            trace.note = f" declared={declared.value} kind={receipt.kind.value}"
        return vdxp.ok_answer(DocId=receipt.doc_id)

    def _received_list(self, req: VerifiedRequest, _body: bytes, _trace: _Trace) -> vdxp.Answer:
        kind = vdxp.read_message_type(req, required=True)
        vdxp.check_service_type(req)
        since, until = vdxp.read_date_range(req)
        items = self._api.pending_for_system(req.system_id, kind, MAX_LIST, since=since, until=until)
        return vdxp.ok_answer(data=[_received_item(i).to_wire() for i in items])

    def _get_edoc(self, req: VerifiedRequest, _body: bytes, trace: _Trace) -> vdxp.Answer:
        data = self._api.fetch(req.system_id, _doc_id(req, trace))
        return vdxp.ok_answer(data=vdxp.encode_package(data))

    def _update_status(self, req: VerifiedRequest, _body: bytes, trace: _Trace) -> vdxp.Answer:
        delivery_id = _doc_id(req, trace)
        status, description = vdxp.read_update_status(req)
        if status is vdxp.UpdateStatus.PROCESSING:
            # VDXP's "being processed" has no transport meaning here: accepted for a delivery the system may see.
            self._api.delivery_state(req.system_id, delivery_id)
        else:
            self._api.acknowledge(req.system_id, delivery_id, AckOutcome(status.value), description)
        return vdxp.ok_answer()

    def _sent_list(self, req: VerifiedRequest, _body: bytes, trace: _Trace) -> vdxp.Answer:
        kind = vdxp.read_message_type(req, required=False)
        vdxp.check_service_type(req)
        since, until = vdxp.read_date_range(req)
        doc_id = vdxp.read_doc_id(req, required=False)
        if doc_id:
            trace.doc = log_safe(doc_id)
        items = self._api.sent_list(req.system_id, kind, doc_id=doc_id, since=since, until=until)
        return vdxp.ok_answer(data=[_sent_item(i).to_wire() for i in items])

    def _agencies(self, _req: VerifiedRequest, _body: bytes, _trace: _Trace) -> vdxp.Answer:
        agencies = (
            vdxp.AgencyItem(id=a.organ_id, code=a.organ_id, name=a.name, mail="", pid=a.parent or "0")
            for a in self._api.agencies()
            if a.active
        )
        return vdxp.ok_answer(data=[a.to_wire() for a in agencies])


# ================================================================================================ helpers


def _operation(name: str) -> Operation:
    try:
        return Operation(name)
    except ValueError:
        pass
    # Both refusals come before the body is read: the connection is closed so that it is never parsed.
    if name in vdxp.UNSERVED:
        raise Refusal(200, RequestError(f"the VDXP operation {name} is not served by this gateway"), close=True)
    raise Refusal(404, NotFoundError(f"no VDXP operation {log_safe(name)!r}"), close=True)


def _doc_id(req: VerifiedRequest, trace: _Trace) -> str:
    value = vdxp.read_doc_id(req) or ""
    trace.doc = log_safe(value)
    return value


def _received_item(item: PendingItem) -> vdxp.ReceivedItem:
    status, desc = _RECEIVE_STATUS[DeliveryState.QUEUED]
    if item.state is DeliveryState.FETCHED:
        # Still "initial" for clients that filter on it: fetched but never acknowledged must be fetched again.
        desc = _RECEIVE_STATUS[DeliveryState.FETCHED][1]
    return vdxp.ReceivedItem(
        doc_id=item.delivery_id,
        message_type=item.kind.value,
        sender=item.sender,
        recipient=item.recipient,
        status=status.value,
        status_desc=desc,
        created_time=vdxp.format_list_date(item.received_at),
        updated_time=vdxp.format_list_date(item.fetched_at or item.received_at),
    )


def _sent_item(item: SentItem) -> vdxp.SentItem:
    """A recipient's delivery of a document the caller sent (``item``, the use cases' value) in VDXP's terms."""
    status, desc = _RECEIVE_STATUS[item.state]
    if item.state is DeliveryState.FAILED and item.ack_reason:
        desc = f"{desc}: {item.ack_reason[:500]}"
    return vdxp.SentItem(
        message_type=item.kind.value,
        sender_doc_id=item.doc_id,
        receiver_doc_id=item.delivery_id,
        from_code=item.sender,
        to_code=item.recipient,
        title=item.subject or "",
        notation=item.code or "",
        sent_time=vdxp.format_list_date(item.received_at),
        received_time=vdxp.format_list_date(item.acknowledged_at or item.fetched_at),
        receive_status=status.value,
        receive_status_desc=desc,
        delivery_state=item.state.value,
        status_code=item.status_code.value if item.status_code else "",
        document_id=item.document_id,
    )


__all__ = ["MAX_JSON_BODY", "MAX_LIST", "PREFIX", "VdxpEdge"]
