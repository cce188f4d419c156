"""The legacy e-doc.vn SOAP edge (issue 13 item 1; legacy-edoc-vn.md): a provincial document system built for
Bkav's eDoc axis connects to the gateway by changing only its endpoint URL.

Served on ``/legacy/edoc`` and on every path of ``legacy_paths`` (a Bkav axis lives at a deployment-specific proxy
path such as ``/services/EdocProxy``: mimic it and the client changes only its host). The protocol — envelope
reading, MIME, the §6 answer shapes, Bkav's code strings — is :mod:`gateway.protocols.edocvn`, shared with our
legacy peer adapter; this module is the HTTP layer, :mod:`gateway.web.legacy_ops` the eight operations on the use
cases (:mod:`gateway.services.legacy`). The VDXP edge (:mod:`gateway.web.vdxp`) is the model.

Per request, in this order:

1. ``GET``/``HEAD`` ``?wsdl`` → ``wsdl/edoc-vn-legacy.wsdl`` whose ``soap:address`` is ``public_base_url`` plus the
   path asked (the configured public URL, as the SOAP edge does — never the client's ``Host`` header, which it
   controls); any other method but ``POST`` → 405;
2. ``Content-Length`` present (411 for chunked bodies) and at most ``max_package_bytes`` (413) BEFORE the body is
   read — the SwA parts are raw files, smaller than the canonical package they become;
3. the body: ``multipart/related`` (SwA, MTOM/XOP) split by :func:`gateway.protocols.edocvn.read_related`, parts
   streamed to spool files under ``data_dir/tmp`` and always closed; anything else is the envelope itself;
4. the operation: ``SOAPAction`` (quoted or not, exact, :func:`~gateway.protocols.edocvn.parse_soap_action`); when
   it is absent, the Body's wrapper (by local name, any namespace: ``GetTraces`` → GetTraces, ``Status`` →
   UpdateTraces, ``Manifest`` → SendDocument) or the Header's ``CheckPermission`` / ``MessageHeader``;
5. the request read liberally (any envelope prefix; wrappers qualified or not, in any namespace — JAX-WS clients
   put them in the WSDL's; ``mustUnderstand`` headers ignored, as the axis ignores them), SOAP 1.2 refused;
6. the operation (:data:`gateway.web.legacy_ops.HANDLERS`), which authenticates first.

Answers: every one in the §6 shapes, every refusal a ``Report{IsSuccess=false, ErrorList}`` (Bkav's code string
first where it has one, then ours: :func:`gateway.web.legacy_ops.report_of`), with HTTP 200 as the axis answers —
except 411/413/405 at the HTTP layer, 503 ``SERVICE.UNAVAILABLE`` when the database is down (retry later) and 500
``GATEWAY.INTERNAL`` for a defect, each still with a Report body. An answer is ``multipart/related`` (SwA) when the
request was, or when it carries attachments (GetDocument); else ``text/xml; charset=UTF-8`` (§2.4).

One log line per request (method, path, HTTP status, sizes, operation, OrganId, system, code, document, elapsed);
never a body, a token or a header value other than the bounded, sanitised OrganId and ids.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from flask import Blueprint, request
from werkzeug.wrappers import Request, Response

from gateway import logs
from gateway.config import LEGACY_PATH, Settings
from gateway.errors import GatewayError, RequestError, SizeLimitError
from gateway.protocols import edocvn
from gateway.protocols.edocvn import Operation
from gateway.protocols.edocvn.names import PLAIN_RESPONSE_TYPE, TEXT_XML
from gateway.resources import resource_path
from gateway.services.api import GatewayApi
from gateway.web.faults import INTERNAL_CODE
from gateway.web.legacy_ops import HANDLERS, Answer, Call, report_of
from gateway.web.rawhttp import Refusal, StartResponse, declared_length, length_for_log, log_safe

log = logging.getLogger(__name__)

PATH: Final = LEGACY_PATH
WSDL_FILE: Final = ("wsdl", "edoc-vn-legacy.wsdl")
#: The placeholder address of the committed WSDL, replaced by the served one.
WSDL_PLACEHOLDER: Final = b'location="http://localhost:8080/legacy/edoc"'
INTERNAL_DESC: Final = "internal error in the gateway; see the gateway log"
_ALL_METHODS: Final = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
_STATUS: Final = {
    200: "200 OK",
    400: "400 Bad Request",
    405: "405 Method Not Allowed",
    411: "411 Length Required",
    413: "413 Content Too Large",
    500: "500 Internal Server Error",
    503: "503 Service Unavailable",
}
#: The operation a request without SOAPAction names by its Body's first element (§2.3 B, any namespace)…
_BY_BODY: Final = {
    "GetOrganizations": Operation.GET_ORGANIZATIONS,
    "GetPendingDocumentIdsRequest": Operation.GET_PENDING_DOCUMENT_IDS,
    "GetDocumentRequest": Operation.GET_DOCUMENT,
    "ConfirmReceived": Operation.CONFIRM_RECEIVED,
    "GetTraces": Operation.GET_TRACES,
    "Status": Operation.UPDATE_TRACES,
    "Manifest": Operation.SEND_DOCUMENT,
}
#: …or, with an empty Body, by its Header.
_BY_HEADER: Final = {"CheckPermission": Operation.CHECK_PERMISSION, "MessageHeader": Operation.SEND_DOCUMENT}


class LegacyEdge:
    """The legacy edge: :meth:`blueprint` mounts it on its paths; called directly it is a WSGI app (any path)."""

    def __init__(self, api: GatewayApi, settings: Settings) -> None:
        self._api = api
        self._settings = settings
        self._limit = settings.max_package_bytes
        self._paths = settings.legacy_endpoint_paths
        self._spool_dir = _spool_dir(settings.data_dir)
        self._wsdl_template = resource_path(*WSDL_FILE).read_bytes()

    @property
    def paths(self) -> tuple[str, ...]:
        return self._paths

    def blueprint(self) -> Blueprint:
        """Every method on every legacy path (with or without a trailing slash) comes here."""
        bp = Blueprint("legacy", __name__)
        for n, path in enumerate(self._paths):
            for rule in (path, path + "/"):
                bp.add_url_rule(rule, endpoint=f"edoc{n}{'s' if rule.endswith('/') else ''}",
                                view_func=self._view, methods=list(_ALL_METHODS))  # fmt: skip
        return bp

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        return self.answer(Request(environ))(environ, start_response)

    def _view(self) -> Response:
        return self.answer(request)

    def answer(self, req: Request) -> Response:
        """The answer to one request, refusals included; logs one line."""
        started = time.perf_counter()
        path = req.script_root + req.path
        call = Call(self._api, self._settings, {})
        logs.bind(edge="legacy", operation="other")
        if req.method in ("GET", "HEAD") and _is_wsdl_query(req.query_string.decode("latin-1")):
            return self._log(req, path, started, call, self._wsdl_response(req), "wsdl")
        state = _State()
        status, close = 200, False
        try:
            result = self._post(req, call, state)
        except Refusal as refusal:
            status, close = refusal.status, refusal.close
            result = self._refused(refusal.error, state, call)
        except GatewayError as exc:
            status = 503 if exc.retryable else 200
            result = self._refused(exc, state, call)
        except Exception:
            log.exception("internal error at the legacy edge (%s %s)", req.method, path)
            status, call.code = 500, INTERNAL_CODE
            internal = edocvn.Report(False, (edocvn.ReportError(INTERNAL_CODE, INTERNAL_DESC),))
            result = edocvn.report_answer(state.operation, internal)
        response = _response(status, result, edocvn.is_multipart(req.headers.get("Content-Type")))
        if close:
            response.headers["Connection"] = "close"
        if status == 405:
            response.headers["Allow"] = "GET, HEAD, POST"
        return self._log(req, path, started, call, response, state.operation.value if state.operation else "-")

    def _post(self, req: Request, call: Call, state: _State) -> Answer:
        if req.method != "POST":
            raise Refusal(405, RequestError(f"method {req.method} is not allowed: POST SOAP 1.1, or GET ?wsdl"))
        with self._read(req) as related:
            call.parts = related.attachments
            data = related.root.read()
            state.operation = operation = _operation(req, data)
            logs.bind(operation=operation.value)
            state.request = parsed = edocvn.read_request(data, operation, max_bytes=max(len(data), 1))
            if parsed.warnings:
                call.notes.append(f"warnings={len(parsed.warnings)}")
            return HANDLERS[operation](parsed, call)

    # ------------------------------------------------------------------------------------------ request

    def _read(self, req: Request) -> edocvn.Related:
        """The body as a :class:`~gateway.protocols.edocvn.Related` (parts spooled), after the size checks."""
        length = declared_length(req.headers)
        if length > self._limit:
            message = f"request body is {length} bytes, above the limit of {self._limit} bytes"
            raise Refusal(413, SizeLimitError(message, size=length, limit=self._limit), close=True)
        stream = _Bounded(req.environ["wsgi.input"], length)
        ctype = req.headers.get("Content-Type", "")
        if edocvn.is_multipart(ctype):
            return edocvn.read_related(stream, ctype, max_bytes=self._limit, spool_dir=self._spool_dir)
        return edocvn.single_part(stream.read(length), ctype or TEXT_XML)

    @staticmethod
    def _refused(exc: GatewayError, state: _State, call: Call) -> bytes:
        call.code = exc.code
        return edocvn.report_answer(state.operation, report_of(state.operation, exc, state.request))

    # ------------------------------------------------------------------------------------------ WSDL, log

    def _wsdl_response(self, req: Request) -> Response:
        address = f'location="{self._settings.public_base_url}{req.path.rstrip("/")}"'.encode()
        body = self._wsdl_template.replace(WSDL_PLACEHOLDER, address, 1)
        response = Response(body, status=200, content_type="text/xml; charset=utf-8")
        response.headers["Cache-Control"] = "no-store"
        return response

    def _log(self, req: Request, path: str, started: float, call: Call, response: Response, op: str) -> Response:
        elapsed_ms = (time.perf_counter() - started) * 1000
        log.info(
            "%s %s %d in=%s out=%s op=%s organ=%s system=%s %.1fms code=%s doc=%s%s",
            req.method,
            log_safe(path, 120),
            response.status_code,
            length_for_log(req.environ),
            response.headers.get("Content-Length", "-"),
            op,
            call.organ,
            log_safe(call.system),
            elapsed_ms,
            call.code,
            call.doc,
            "".join(f" {n}" for n in call.notes),
            extra={"status": response.status_code, "duration_ms": round(elapsed_ms, 1), "code": call.code},
        )
        return response


# ================================================================================================ helpers


@dataclass
class _State:
    """What is known of the request so far (a refusal's Report names the operation once it is known)."""

    operation: Operation | None = None
    request: edocvn.Request | None = None


class _Bounded:
    """The request stream limited to ``Content-Length`` bytes (the MIME reader reads until it gets b"")."""

    def __init__(self, stream: Any, length: int) -> None:
        self._stream = stream
        self._left = length

    def read(self, size: int = -1, /) -> bytes:
        if self._left <= 0:
            return b""
        size = self._left if size < 0 else min(size, self._left)
        chunk = self._stream.read(size)
        if not chunk:
            raise Refusal(400, RequestError(f"request body ended {self._left} bytes early"), close=True)
        self._left -= len(chunk)
        return chunk


def _spool_dir(data_dir: Path) -> str | None:
    """``data_dir/tmp`` for the spooled parts of large requests (the system's temp dir if it cannot be made)."""
    path = data_dir / "tmp"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        log.warning("cannot create %s: large legacy requests spool to the system temp directory", path)
        return None
    return str(path)


def _operation(req: Request, data: bytes) -> Operation:
    """The operation: SOAPAction when sent (module docstring, step 4), else the envelope's wrapper."""
    header = req.headers.get("SOAPAction")
    if header is not None and header.strip().strip('"'):
        operation = edocvn.parse_soap_action(header)
        if operation is None:
            names = ", ".join(o.value for o in Operation)
            raise RequestError(f"unknown SOAPAction {log_safe(header, 60)!r}: the e-doc.vn operations are {names}")
        return operation
    _root, head, body = edocvn.split_envelope(data, max_bytes=max(len(data), 1))
    for scope, names in ((body, _BY_BODY), (head, _BY_HEADER)):
        for el in scope if scope is not None else ():
            if isinstance(el.tag, str) and (found := names.get(el.tag.rpartition("}")[2])) is not None:
                return found
    raise RequestError("no SOAPAction header, and the envelope names no e-doc.vn operation")


def _response(status: int, result: Answer, multipart: bool) -> Response:
    """``multipart/related`` when the request was, or the answer carries parts (§2.4); else plain text/xml."""
    if isinstance(result, bytes) and not multipart:
        response = Response(result, status=_STATUS[status], content_type=PLAIN_RESPONSE_TYPE)
    else:
        body = result if isinstance(result, edocvn.MultipartBody) else edocvn.MultipartBody(result)
        response = Response(iter(body), status=_STATUS[status], content_type=body.content_type, direct_passthrough=True)
        response.headers["Content-Length"] = str(len(body))
    response.headers["Cache-Control"] = "no-store"
    return response


def _is_wsdl_query(query: str) -> bool:
    return query.split("&", 1)[0].split("=", 1)[0].lower() == "wsdl"


__all__ = ["PATH", "LegacyEdge"]
