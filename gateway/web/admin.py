"""The admin REST API for operators: dead letters and re-drive without SQL (gateway.md "Delivery").

Routes (JSON; ``Authorization: Bearer <admin_token>``; disabled — 404 — unless ``admin_token`` is set):

- ``GET  /admin/v1/deliveries?state=dead&recipient=<OrganId>&limit=100`` — deliveries, newest first;
- ``GET  /admin/v1/deliveries/<id>`` — one delivery with its attempt log;
- ``POST /admin/v1/deliveries/<id>/redrive`` — queue it again with a fresh retry budget;
- ``POST /admin/v1/deliveries/redrive?recipient=<OrganId>`` — every dead delivery of that agency.

The same use cases as ``edoc-gateway deliveries …`` (:mod:`gateway.services.delivery`). The token is a
shared operator secret compared in constant time; put the admin API behind the TLS proxy, ideally on an
internal listener (deploy/README.md).
"""

from __future__ import annotations

import hmac
import json
import logging
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qs

from gateway.db import Store
from gateway.errors import AuthError, GatewayError, NotFoundError, RequestError
from gateway.services import delivery_admin
from gateway.services.api import DeliveryState
from gateway.web.guard import StartResponse

log = logging.getLogger(__name__)

PREFIX = "/admin/v1"
_ONE = re.compile(r"^/deliveries/([0-9a-fA-F]{8,64})$")
_REDRIVE_ONE = re.compile(r"^/deliveries/([0-9a-fA-F]{8,64})/redrive$")
_STATUS = {AuthError: 401, NotFoundError: 404, RequestError: 400}
_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    500: "Internal Server Error",
}


class AdminEdge:
    """WSGI app for ``/admin/v1/...`` (the router strips nothing: paths arrive whole)."""

    def __init__(self, store: Store, token: str) -> None:
        self._store = store
        self._token = token.encode()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = (environ.get("PATH_INFO") or "")[len(PREFIX) :]
        method = environ.get("REQUEST_METHOD", "GET")
        try:
            self._authenticate(environ)
            query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
            if path == "/deliveries" and method == "GET":
                state = query.get("state")
                try:
                    wanted = DeliveryState(state) if state else None
                except ValueError:
                    raise RequestError(f"unknown state {state!r}") from None
                try:
                    limit = int(query.get("limit", "100"))
                except ValueError:
                    raise RequestError("limit must be an integer") from None
                rows = delivery_admin.list_deliveries(
                    self._store, state=wanted, recipient=query.get("recipient"), limit=limit
                )
                return _json(start_response, 200, {"deliveries": [r.to_dict() for r in rows]})
            if (m := _ONE.match(path)) and method == "GET":
                return _json(start_response, 200, delivery_admin.show_delivery(self._store, m.group(1)).to_dict())
            if (m := _REDRIVE_ONE.match(path)) and method == "POST":
                ids = delivery_admin.redrive(self._store, delivery_id=m.group(1), actor="admin-api")
                return _json(start_response, 200, {"redriven": ids})
            if path == "/deliveries/redrive" and method == "POST":
                recipient = query.get("recipient")
                if not recipient:
                    raise RequestError("recipient is required")
                ids = delivery_admin.redrive(self._store, recipient=recipient, actor="admin-api")
                return _json(start_response, 200, {"redriven": ids})
            raise NotFoundError(f"no such admin route {method} {PREFIX}{path}")
        except GatewayError as exc:
            return _json(start_response, _STATUS.get(type(exc), 400), exc.to_dict())
        except Exception:
            log.exception("admin request failed: %s %s", method, path)
            return _json(start_response, 500, {"code": "GATEWAY.INTERNAL", "message": "internal error"})

    def _authenticate(self, environ: dict[str, Any]) -> None:
        header = environ.get("HTTP_AUTHORIZATION", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), self._token):
            raise AuthError("a valid admin bearer token is required")


def _json(start_response: StartResponse, status: int, body: dict[str, Any]) -> Iterable[bytes]:
    data = json.dumps(body, ensure_ascii=False).encode("utf-8")
    start_response(
        f"{status} {_REASONS.get(status, 'Error')}",
        [("Content-Type", "application/json; charset=utf-8"), ("Content-Length", str(len(data)))],
    )
    return [data]
