"""The JSON edge for modern systems and REST peers: ``POST /rest/v1/packages``.

A system sends a package in the canonical JSON form (``xsd/edxml-package.schema.json``) — a document, or a
status update about one — and gets the same receipt as over SOAP. The gateway renders the JSON as a canonical
edXML package and runs it through the one intake pipeline (gateway.md: every entry point ends in the same
pipeline), so statuses reported by REST peers flow back to senders like any other.

Authentication is the webhook scheme of the ``rest`` channel (:mod:`adapters.rest`), keyed by the system's
secret: ``X-Edoc-System: <system id>``, ``X-Edoc-Timestamp: <unix seconds>`` (±5 min) and
``X-Edoc-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>``. The body size is checked before
reading. A replay inside the window re-submits the same package, which idempotent intake answers as a
duplicate without storing anything. Errors are JSON ``{"code", "message", "message_vi", "path"?, "detail"?}``
with a 4xx status.

Note: what is stored as "received bytes" for a JSON submission is our canonical rendering; the JSON body the
peer signed is kept in the audit trail only by its SHA-256 (``detail.json_sha256``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Iterable
from typing import Any

from gateway.config import Settings
from gateway.edxml import from_json, render
from gateway.errors import (
    AccessError,
    AuthError,
    DuplicateError,
    EdxmlParseError,
    GatewayError,
    NotFoundError,
    RequestError,
    RouteError,
    SizeLimitError,
)
from gateway.services.api import GatewayApi
from gateway.web.guard import StartResponse

log = logging.getLogger(__name__)

PACKAGES_PATH = "/rest/v1/packages"
MAX_SKEW_SECONDS = 300
_STATUS = {
    AuthError: 401,
    AccessError: 403,
    NotFoundError: 404,
    RouteError: 422,
    DuplicateError: 409,
    SizeLimitError: 413,
}
_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    411: "Length Required",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Entity",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def _header(environ: dict[str, Any], name: str) -> str:
    return environ.get("HTTP_" + name.upper().replace("-", "_"), "")


class RestEdge:
    """WSGI app for ``/rest/v1/...``."""

    def __init__(self, api: GatewayApi, settings: Settings) -> None:
        self._api = api
        self._max = settings.max_body_bytes

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        system = _header(environ, "X-Edoc-System")
        try:
            if environ.get("PATH_INFO") != PACKAGES_PATH:
                raise NotFoundError(f"no such path {environ.get('PATH_INFO')!r}")
            if environ.get("REQUEST_METHOD") != "POST":
                return self._error(start_response, 405, RequestError("POST only"))
            body = self._read(environ)
            self._authenticate(system, environ, body)
            try:
                doc = json.loads(body)
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise EdxmlParseError(f"not valid JSON: {exc}") from None
            package = render(from_json(doc))
            receipt = self._api.submit(system, package)
            answer = {
                "docId": receipt.doc_id,
                "kind": receipt.kind.value,
                "documentId": receipt.document_id,
                "sha256": receipt.sha256,
                "receivedAt": receipt.received_at.isoformat(),
                "duplicate": receipt.duplicate,
            }
            status = 200
            return _json(start_response, status, answer)
        except GatewayError as exc:
            status = _STATUS.get(type(exc), 400)
            if exc.retryable:
                status = 503
            return self._error(start_response, status, exc)
        except Exception:
            log.exception("REST request failed (system %s)", system or "-")
            status = 500
            return _json(start_response, 500, {"code": "GATEWAY.INTERNAL", "message": "internal error"})
        finally:
            log.info(
                "rest %s %s system=%s %.1fms",
                environ.get("REQUEST_METHOD"),
                environ.get("PATH_INFO"),
                system or "-",
                (time.perf_counter() - started) * 1000,
            )

    def _read(self, environ: dict[str, Any]) -> bytes:
        ctype = environ.get("CONTENT_TYPE", "")
        if not ctype.split(";")[0].strip().lower() == "application/json":
            raise RequestError("Content-Type must be application/json")
        try:
            length = int(environ.get("CONTENT_LENGTH") or "")
        except ValueError:
            raise RequestError("Content-Length is required") from None
        if length > self._max:
            raise SizeLimitError(
                f"body is {length} bytes, above the limit of {self._max}", size=length, limit=self._max
            )
        body = environ["wsgi.input"].read(length)
        if len(body) != length:
            raise RequestError("the body is shorter than its Content-Length")
        return body

    def _authenticate(self, system: str, environ: dict[str, Any], body: bytes) -> None:
        ts = _header(environ, "X-Edoc-Timestamp")
        sig = _header(environ, "X-Edoc-Signature")
        if not system or not ts or not sig:
            raise AuthError("X-Edoc-System, X-Edoc-Timestamp and X-Edoc-Signature are required")
        try:
            skew = abs(time.time() - int(ts))
        except ValueError:
            raise AuthError("X-Edoc-Timestamp must be Unix seconds") from None
        if skew > MAX_SKEW_SECONDS:
            raise AuthError("X-Edoc-Timestamp is outside the allowed window")
        secret = self._api.system_secret(system)  # AuthError for unknown or inactive systems
        expected = "sha256=" + hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, sig):
            raise AuthError("signature does not match")

    @staticmethod
    def _error(start_response: StartResponse, status: int, exc: GatewayError) -> Iterable[bytes]:
        return _json(start_response, status, exc.to_dict())


def _json(start_response: StartResponse, status: int, body: dict[str, Any]) -> Iterable[bytes]:
    data = json.dumps(body, ensure_ascii=False).encode("utf-8")
    start_response(
        f"{status} {_REASONS.get(status, 'Error')}",
        [("Content-Type", "application/json; charset=utf-8"), ("Content-Length", str(len(data)))],
    )
    return [data]
