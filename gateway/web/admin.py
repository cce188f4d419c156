"""The admin REST API (``/admin/v1``): the operators' and the web console's one way into deliveries, documents,
reports and tokens — never SQL (gateway.md "Delivery"; issue 9 item 5). ``docs/openapi/admin-v1.json`` is its
contract, served at ``GET /admin/v1/openapi.json``; tests/test_admin_api.py holds the two to each other.

Every call carries ``Authorization: Bearer <token>``: a named token with a role (viewer reads, operator also
re-drives, admin also manages tokens) and an optional scope (an OrganId: the caller sees that registry subtree
only). :mod:`gateway.services.admin_auth` checks it before anything else — an unknown admin path answers 401 to a
caller without a token, so the route map is not probed for free — and every call, refused ones included, leaves an
audit row ``admin.<route>`` naming the token (never the token itself, never the query string) and a log line.

This module holds the blueprint, authentication, the audit, ``/me``, the contract and the delivery and token
routes; the tracking reads (documents, report, agencies) are :mod:`gateway.web.admin_tracking`. Errors are the
JSON edges' (:mod:`gateway.web.jsonapi`): 401 AUTH.DENIED, 403 ACCESS.DENIED (role or scope), 404 NOT_FOUND
(also a delivery outside the caller's scope), 400 REQUEST.INVALID, 400 REQUEST.CURSOR (a paging cursor the list did
not hand out). Every list (deliveries, dead letters, tokens, documents) takes ``limit``, ``offset`` and ``cursor``
and answers ``{"items": […], "total": N, "next_cursor": …}`` (:mod:`gateway.services.paging`; issue 11 item 7).
Put the admin API behind the TLS proxy, ideally on an internal listener (deploy/README.md).
"""

from __future__ import annotations

import json
import logging
from typing import Any, Final, Protocol

from flask import Blueprint, Response, g, request
from werkzeug.routing import BaseConverter

from gateway.errors import AccessError, AuthError, GatewayError, NotFoundError, RequestError
from gateway.resources import resource_path
from gateway.services.admin_roles import Principal, Role
from gateway.services.api import DeliveryState
from gateway.services.paging import PageRequest
from gateway.services.tracking_api import DocumentsApi
from gateway.web.admin_tracking import TrackingApi, TrackingRoutes, page_args
from gateway.web.jsonapi import json_response

log = logging.getLogger(__name__)

PREFIX: Final = "/admin/v1"
#: Who the audit trail of a re-drive names as the actor (the token is its ``system_id``).
ACTOR: Final = "admin-api"
BLUEPRINT: Final = "admin"
_ALL_METHODS: Final = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


class JsonRecord(Protocol):
    def to_dict(self) -> dict[str, Any]: ...


class JsonPage(Protocol):
    """A page of a list (:class:`gateway.services.paging.Page`): ``{"items", "total", "next_cursor"}``."""

    def to_dict(self) -> dict[str, Any]: ...


class AdminAuthApi(Protocol):
    """Tokens and the audit (met by :class:`gateway.services.admin_auth.AdminAuth`)."""

    def authenticate(self, presented: str) -> Principal: ...

    def audit(self, action: str, *, caller: Principal | None, outcome: str, detail: dict[str, Any]) -> None: ...

    def create(self, name: str, role: str, scope: str | None = None) -> tuple[JsonRecord, str]: ...

    def list_tokens(self, page: PageRequest | None = None) -> JsonPage: ...

    def revoke(self, name: str) -> JsonRecord: ...


class DeliveryAdminApi(Protocol):
    """The delivery use cases, limited to a scope (met by :class:`gateway.services.delivery_admin.DeliveryAdmin`)."""

    def list_deliveries(
        self,
        *,
        state: DeliveryState | None = None,
        recipient: str | None = None,
        page: PageRequest | None = None,
        scope: str | None = None,
    ) -> JsonPage: ...

    def show_delivery(self, delivery_id: str, *, scope: str | None = None) -> JsonRecord: ...

    def redrive(
        self,
        *,
        delivery_id: str | None = None,
        recipient: str | None = None,
        actor: str | None = None,
        system_id: str | None = None,
        scope: str | None = None,
    ) -> list[str]: ...


class AdminBackend(Protocol):
    """What the admin edge is handed (met by :class:`gateway.services.admin.AdminServices`)."""

    @property
    def auth(self) -> AdminAuthApi: ...

    @property
    def deliveries(self) -> DeliveryAdminApi: ...

    @property
    def tracking(self) -> TrackingApi: ...

    @property
    def documents(self) -> DocumentsApi | None: ...


class DeliveryIdConverter(BaseConverter):
    """A delivery id in a path: hex, as the store writes them; anything else is not an admin route."""

    regex = "[0-9a-fA-F]{8,64}"


def caller() -> Principal:
    """The authenticated caller of the current admin request (set before any view runs)."""
    found: Principal | None = g.get("admin_caller")
    if found is None:  # pragma: no cover - the blueprint authenticates before every view
        raise AuthError("a valid admin bearer token is required")
    return found


class AdminEdge:
    """The ``/admin/v1`` blueprint over the admin services."""

    def __init__(self, backend: AdminBackend) -> None:
        self._auth = backend.auth
        self._deliveries = backend.deliveries
        self._tracking = TrackingRoutes(backend.tracking, backend.documents, caller)

    def blueprint(self) -> Blueprint:
        bp = Blueprint(BLUEPRINT, __name__, url_prefix=PREFIX)
        bp.record_once(lambda state: state.app.url_map.converters.setdefault("delivery_id", DeliveryIdConverter))
        bp.before_request(self._authenticate)
        bp.after_request(self._audit)
        bp.add_url_rule("/me", "me", self._me, methods=["GET"])
        bp.add_url_rule("/openapi.json", "openapi", self._openapi, methods=["GET"])
        bp.add_url_rule("/deliveries", "deliveries_list", self._list, methods=["GET"])
        bp.add_url_rule("/deliveries/<delivery_id:delivery_id>", "deliveries_show", self._show, methods=["GET"])
        bp.add_url_rule(
            "/deliveries/<delivery_id:delivery_id>/redrive", "deliveries_redrive", self._redrive_one, methods=["POST"]
        )
        bp.add_url_rule("/deliveries/redrive", "deliveries_redrive_all", self._redrive_recipient, methods=["POST"])
        bp.add_url_rule("/dead-letters", "dead_letters", self._dead_letters, methods=["GET"])
        bp.add_url_rule("/tokens", "tokens_list", self._tokens, methods=["GET"])
        bp.add_url_rule("/tokens", "tokens_create", self._token_create, methods=["POST"])
        bp.add_url_rule("/tokens/<name>", "tokens_revoke", self._token_revoke, methods=["DELETE"])
        self._tracking.register(bp)
        # Everything else under the prefix: 404 after authentication (see the module docstring).
        bp.add_url_rule("/", "no_route", self._no_route, methods=list(_ALL_METHODS), defaults={"rest": ""})
        bp.add_url_rule("/<path:rest>", "no_route", self._no_route, methods=list(_ALL_METHODS))
        return bp

    # ---------------------------------------------------------------------------------- every call

    def _authenticate(self) -> None:
        g.admin_caller = None
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            raise AuthError("a valid admin bearer token is required")
        g.admin_caller = self._auth.authenticate(token.strip())

    def _audit(self, response: Response) -> Response:
        """One audit row and one log line per call, whatever its outcome (the token is never recorded)."""
        who: Principal | None = g.get("admin_caller")
        outcome = "ok"
        if response.status_code >= 400:
            body = response.get_json(silent=True)
            outcome = str(body.get("code")) if isinstance(body, dict) else f"HTTP.{response.status_code}"
        action = request.endpoint or f"{BLUEPRINT}.no_route"
        detail = {
            "method": request.method,
            "route": request.url_rule.rule if request.url_rule is not None else None,
            "status": response.status_code,
            "scope": who.scope if who is not None else None,
        }
        log.info(
            "admin %s %s -> %s %s (token %s)",
            detail["method"],
            detail["route"],
            detail["status"],
            outcome,
            who.name if who else "-",
        )
        try:
            self._auth.audit(action, caller=who, outcome=outcome, detail=detail)
        except GatewayError as exc:  # the database is down: the answer stands, the operators see the gap
            log.error("admin call not audited (%s): %s %s", exc.code, detail["method"], detail["route"])
        return response

    def _me(self) -> Response:
        return json_response(caller().to_dict())

    def _openapi(self) -> Response:
        text = resource_path("openapi", "admin-v1.json").read_text(encoding="utf-8")
        return json_response(json.loads(text))

    def _no_route(self, rest: str) -> Response:
        raise NotFoundError(f"no such admin route {request.method} {PREFIX}/{rest}")

    # ---------------------------------------------------------------------------------- deliveries

    def _list(self) -> Response:
        state = request.args.get("state") or None
        try:
            wanted = DeliveryState(state) if state else None
        except ValueError:
            raise RequestError(f"unknown state {state!r}") from None
        return self._listing(wanted)

    def _dead_letters(self) -> Response:
        return self._listing(DeliveryState.DEAD)

    def _listing(self, state: DeliveryState | None) -> Response:
        page = self._deliveries.list_deliveries(
            state=state, recipient=request.args.get("recipient") or None, page=page_args(), scope=caller().scope
        )
        return json_response(page.to_dict())

    def _show(self, delivery_id: str) -> Response:
        return json_response(self._deliveries.show_delivery(delivery_id, scope=caller().scope).to_dict())

    def _redrive_one(self, delivery_id: str) -> Response:
        who = caller()
        who.require(Role.OPERATOR, "re-driving a delivery")
        ids = self._deliveries.redrive(delivery_id=delivery_id, actor=ACTOR, system_id=who.name, scope=who.scope)
        return json_response({"redriven": ids})

    def _redrive_recipient(self) -> Response:
        who = caller()
        who.require(Role.OPERATOR, "re-driving deliveries")
        recipient = request.args.get("recipient")
        if not recipient:
            raise RequestError("recipient is required")
        ids = self._deliveries.redrive(recipient=recipient, actor=ACTOR, system_id=who.name, scope=who.scope)
        return json_response({"redriven": ids})

    # ---------------------------------------------------------------------------------- tokens

    def _token_admin(self) -> None:
        """Only an unscoped admin manages tokens: a scoped one could otherwise mint itself a wider token."""
        who = caller()
        who.require(Role.ADMIN, "managing admin tokens")
        if who.scope is not None:
            raise AccessError(
                f"token {who.name!r} is scoped to {who.scope}: only an unscoped admin token manages tokens",
                required_role=Role.ADMIN.value,
                scope=who.scope,
            )

    def _tokens(self) -> Response:
        self._token_admin()
        return json_response(self._auth.list_tokens(page_args()).to_dict())

    def _token_create(self) -> Response:
        self._token_admin()
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or not isinstance(body.get("name"), str) or not isinstance(body.get("role"), str):
            raise RequestError('the body must be JSON {"name": …, "role": …, "scope": OrganId or null}')
        scope = body.get("scope")
        if scope is not None and not isinstance(scope, str):
            raise RequestError("scope must be an OrganId or null")
        info, token = self._auth.create(body["name"], body["role"], scope)
        return json_response({**info.to_dict(), "token": token}, 201)

    def _token_revoke(self, name: str) -> Response:
        self._token_admin()
        return json_response(self._auth.revoke(name).to_dict())
