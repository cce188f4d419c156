"""The admin REST API for operators: dead letters and re-drive without SQL (gateway.md "Delivery").

Routes (JSON; ``Authorization: Bearer <admin_token>``; not mounted — 404 — unless ``admin_token`` is set):

- ``GET  /admin/v1/deliveries?state=dead&recipient=<OrganId>&limit=100`` — deliveries, newest first;
- ``GET  /admin/v1/deliveries/<id>`` — one delivery with its attempt log;
- ``POST /admin/v1/deliveries/<id>/redrive`` — queue it again with a fresh retry budget;
- ``POST /admin/v1/deliveries/redrive?recipient=<OrganId>`` — every dead delivery of that agency.

The same use cases as ``edoc-gateway deliveries …``, reached through :class:`DeliveryAdminApi` (met by
:class:`gateway.services.delivery_admin.DeliveryAdmin`): the edge talks to services, never to the store. The token is a
shared operator secret compared in constant time, checked before anything else — an unknown admin path answers
401 to a caller without it, so the route map is not probed for free. Put the admin API behind the TLS proxy,
ideally on an internal listener (deploy/README.md). Errors are the JSON edges' (:mod:`gateway.web.jsonapi`).
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from typing import Any, Final, Protocol

from flask import Blueprint, Response, request
from werkzeug.routing import BaseConverter

from gateway.errors import AuthError, NotFoundError, RequestError
from gateway.services.api import DeliveryState
from gateway.web.jsonapi import json_response

PREFIX: Final = "/admin/v1"
#: Who the audit trail names for a re-drive through this API.
ACTOR: Final = "admin-api"
_ALL_METHODS: Final = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


class JsonRecord(Protocol):
    def to_dict(self) -> dict[str, Any]: ...


class DeliveryAdminApi(Protocol):
    """What the admin edge asks of the delivery use cases."""

    def list_deliveries(
        self, *, state: DeliveryState | None = None, recipient: str | None = None, limit: int = 100
    ) -> Sequence[JsonRecord]: ...

    def show_delivery(self, delivery_id: str) -> JsonRecord: ...

    def redrive(
        self, *, delivery_id: str | None = None, recipient: str | None = None, actor: str | None = None
    ) -> list[str]: ...


class DeliveryIdConverter(BaseConverter):
    """A delivery id in a path: hex, as the store writes them; anything else is not an admin route."""

    regex = "[0-9a-fA-F]{8,64}"


class AdminEdge:
    """The ``/admin/v1`` blueprint over the delivery use cases, guarded by the operators' bearer token."""

    def __init__(self, deliveries: DeliveryAdminApi, token: str) -> None:
        self._deliveries = deliveries
        self._token = token.encode()

    def blueprint(self) -> Blueprint:
        bp = Blueprint("admin", __name__, url_prefix=PREFIX)
        bp.record_once(lambda state: state.app.url_map.converters.setdefault("delivery_id", DeliveryIdConverter))
        bp.before_request(self._authenticate)
        bp.add_url_rule("/deliveries", view_func=self._list, methods=["GET"])
        bp.add_url_rule("/deliveries/<delivery_id:delivery_id>", view_func=self._show, methods=["GET"])
        bp.add_url_rule("/deliveries/<delivery_id:delivery_id>/redrive", view_func=self._redrive_one, methods=["POST"])
        bp.add_url_rule("/deliveries/redrive", view_func=self._redrive_recipient, methods=["POST"])
        # Everything else under the prefix: 404 after authentication (see the module docstring).
        bp.add_url_rule("/<path:rest>", view_func=self._no_route, methods=list(_ALL_METHODS))
        return bp

    def _authenticate(self) -> None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), self._token):
            raise AuthError("a valid admin bearer token is required")

    def _list(self) -> Response:
        state = request.args.get("state") or None
        try:
            wanted = DeliveryState(state) if state else None
        except ValueError:
            raise RequestError(f"unknown state {state!r}") from None
        try:
            limit = int(request.args.get("limit") or "100")
        except ValueError:
            raise RequestError("limit must be an integer") from None
        rows = self._deliveries.list_deliveries(
            state=wanted, recipient=request.args.get("recipient") or None, limit=limit
        )
        return json_response({"deliveries": [r.to_dict() for r in rows]})

    def _show(self, delivery_id: str) -> Response:
        return json_response(self._deliveries.show_delivery(delivery_id).to_dict())

    def _redrive_one(self, delivery_id: str) -> Response:
        return json_response({"redriven": self._deliveries.redrive(delivery_id=delivery_id, actor=ACTOR)})

    def _redrive_recipient(self) -> Response:
        recipient = request.args.get("recipient")
        if not recipient:
            raise RequestError("recipient is required")
        return json_response({"redriven": self._deliveries.redrive(recipient=recipient, actor=ACTOR)})

    def _no_route(self, rest: str) -> Response:
        raise NotFoundError(f"no such admin route {request.method} {PREFIX}/{rest}")
