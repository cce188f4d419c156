"""The JSON edge for modern systems and REST peers: ``POST /rest/v1/packages``.

A system sends a package in the canonical JSON form (``xsd/edxml-package.schema.json``) — a document, or a
status update about one — and gets the same receipt as over SOAP. The gateway renders the JSON as a canonical
edXML package and runs it through the one intake pipeline (gateway.md: every entry point ends in the same
pipeline), so statuses reported by REST peers flow back to senders like any other.

Authentication is the webhook scheme of the ``rest`` channel (:mod:`adapters.rest`), keyed by the system's
secret: ``X-Edoc-System: <system id>``, ``X-Edoc-Timestamp: <unix seconds>`` (±5 min) and
``X-Edoc-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>``. The body size is checked before
reading. A replay inside the window re-submits the same package, which idempotent intake answers as a
duplicate without storing anything. Errors are the JSON edges' (:mod:`gateway.web.jsonapi`):
``{"code", "message", "message_vi", "path"?, "detail"?}`` with a 4xx status (503 when retryable).

Note: what is stored as "received bytes" for a JSON submission is our canonical rendering; the JSON body the
peer signed is kept in the audit trail only by its SHA-256 (``detail.json_sha256``).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from typing import Final

from flask import Blueprint, Response, g, request

from gateway import logs
from gateway.config import Settings
from gateway.edxml import from_json, parse_json, render
from gateway.errors import AuthError, RequestError, SizeLimitError
from gateway.services.api import GatewayApi
from gateway.web.jsonapi import json_response
from gateway.web.rawhttp import log_safe

log = logging.getLogger(__name__)

PREFIX: Final = "/rest/v1"
MAX_SKEW_SECONDS: Final = 300
SYSTEM_HEADER: Final = "X-Edoc-System"
TIMESTAMP_HEADER: Final = "X-Edoc-Timestamp"
SIGNATURE_HEADER: Final = "X-Edoc-Signature"


class RestEdge:
    """The ``/rest/v1`` blueprint over the use cases."""

    def __init__(self, api: GatewayApi, settings: Settings) -> None:
        self._api = api
        self._max = settings.max_body_bytes

    def blueprint(self) -> Blueprint:
        bp = Blueprint("rest", __name__, url_prefix=PREFIX)
        bp.before_request(_start_clock)
        bp.after_request(_log_request)
        bp.add_url_rule("/packages", view_func=self._packages, methods=["POST"])
        return bp

    def _packages(self) -> Response:
        system = request.headers.get(SYSTEM_HEADER, "")
        body = self._read()
        self._authenticate(system, body)
        logs.bind(system=system)
        doc = parse_json(body)  # EDXML.PARSE for anything json.loads could fail on, deep nesting included
        receipt = self._api.submit(system, render(from_json(doc)))
        return json_response(
            {
                "docId": receipt.doc_id,
                "kind": receipt.kind.value,
                "documentId": receipt.document_id,
                "sha256": receipt.sha256,
                "receivedAt": receipt.received_at.isoformat(),
                "duplicate": receipt.duplicate,
            }
        )

    def _read(self) -> bytes:
        """The JSON body, its size checked against the limit before anything of it is read."""
        if request.mimetype != "application/json":
            raise RequestError("Content-Type must be application/json")
        length = request.content_length
        if length is None:
            raise RequestError("Content-Length is required")
        if length > self._max:
            raise SizeLimitError(
                f"body is {length} bytes, above the limit of {self._max}", size=length, limit=self._max
            )
        body = request.get_data(cache=False)
        if len(body) != length:
            raise RequestError("the body is shorter than its Content-Length")
        return body

    def _authenticate(self, system: str, body: bytes) -> None:
        ts = request.headers.get(TIMESTAMP_HEADER, "")
        sig = request.headers.get(SIGNATURE_HEADER, "")
        if not system or not ts or not sig:
            raise AuthError(f"{SYSTEM_HEADER}, {TIMESTAMP_HEADER} and {SIGNATURE_HEADER} are required")
        try:
            skew = abs(time.time() - int(ts))
        except ValueError:
            raise AuthError(f"{TIMESTAMP_HEADER} must be Unix seconds") from None
        if skew > MAX_SKEW_SECONDS:
            raise AuthError(f"{TIMESTAMP_HEADER} is outside the allowed window")

        def verify(secret: str) -> None:
            expected = "sha256=" + hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(expected, sig):
                raise AuthError("signature does not match")

        # Through the authenticator: failures counted (and throttled) per address and system, audited (issue 10).
        self._api.authenticate_hmac(system, verify, "rest-hmac")


def _start_clock() -> None:
    g.rest_started = time.perf_counter()


def _log_request(response: Response) -> Response:
    """One line per request (answered or refused): method, path, claimed system, elapsed; never the body."""
    log.info(
        "rest %s %s system=%s %.1fms",
        log_safe(request.method, 16),
        log_safe(request.path, 120),
        log_safe(request.headers.get(SYSTEM_HEADER, "")) if request.headers.get(SYSTEM_HEADER) else "-",
        (time.perf_counter() - g.rest_started) * 1000,
    )
    return response
