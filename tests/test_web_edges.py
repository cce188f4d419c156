"""The Flask side of the web layer in-process: the one JSON error translation and the admin blueprint.

The edges are mounted on a bare Flask app with the same error handlers as :func:`gateway.web.app.create_app`
(which also mounts spyne; its own routes are covered under gunicorn in test_web_soap, test_e2e and test_vdxp_api).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask

from gateway.errors import (
    AccessError,
    AuthError,
    DuplicateError,
    EdxmlSchemaError,
    GatewayError,
    NotFoundError,
    ReplayError,
    RequestError,
    RouteError,
    SizeLimitError,
    UnavailableError,
)
from gateway.services.api import DeliveryState
from gateway.web.admin import AdminEdge
from gateway.web.jsonapi import http_status, install_error_handlers

TOKEN = "admin-token-0123456789"
DELIVERY = "0123456789abcdef0123456789abcdef"


@dataclass
class _Row:
    body: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return self.body


@dataclass
class FakeDeliveries:
    """The DeliveryAdminApi Protocol over a list of calls."""

    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def list_deliveries(self, **kw: Any) -> list[_Row]:
        self.calls.append(("list", kw))
        return [_Row({"delivery_id": DELIVERY, "state": "dead"})]

    def show_delivery(self, delivery_id: str) -> _Row:
        self.calls.append(("show", {"delivery_id": delivery_id}))
        if delivery_id != DELIVERY:
            raise NotFoundError(f"no delivery {delivery_id}")
        return _Row({"delivery_id": delivery_id, "attempt_log": []})

    def redrive(self, **kw: Any) -> list[str]:
        self.calls.append(("redrive", kw))
        return [DELIVERY]


def _app(deliveries: FakeDeliveries) -> Flask:
    app = Flask("test")
    install_error_handlers(app)
    app.register_blueprint(AdminEdge(deliveries, TOKEN).blueprint())

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret detail of a defect")

    @app.get("/refuse")
    def refuse() -> None:
        raise EdxmlSchemaError("bad package", path="/edXMLEnvelope")

    return app


@pytest.fixture
def deliveries() -> FakeDeliveries:
    return FakeDeliveries()


@pytest.fixture
def client(deliveries: FakeDeliveries):
    return _app(deliveries).test_client()


def _auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (AuthError("x"), 401),
        (ReplayError("x"), 401),
        (AccessError("x"), 403),
        (NotFoundError("x"), 404),
        (DuplicateError("x"), 409),
        (SizeLimitError("x"), 413),
        (RouteError("x"), 422),
        (RequestError("x"), 400),
        (EdxmlSchemaError("x"), 400),
        (UnavailableError("x"), 503),
        (GatewayError("x"), 400),
    ],
)
def test_one_status_table_for_the_json_edges(error: GatewayError, status: int):
    assert http_status(error) == status


def test_errors_are_json_with_the_gateway_error_shape(client):
    resp = client.get("/refuse")
    assert resp.status_code == 400
    assert resp.json == {
        "code": "EDXML.SCHEMA",
        "message": "bad package",
        "message_vi": EdxmlSchemaError.message_vi,
        "path": "/edXMLEnvelope",
    }
    assert resp.headers["Cache-Control"] == "no-store"
    unknown = client.get("/nope")
    assert (unknown.status_code, unknown.json["code"]) == (404, "NOT_FOUND")
    wrong_method = client.post("/refuse")
    assert (wrong_method.status_code, wrong_method.json["code"]) == (405, "REQUEST.INVALID")
    assert "GET" in wrong_method.headers["Allow"]


def test_a_defect_is_a_json_500_without_its_details(client, caplog):
    resp = client.get("/boom")
    assert (resp.status_code, resp.json) == (500, {"code": "GATEWAY.INTERNAL", "message": "internal error"})
    assert "secret detail" not in resp.get_data(as_text=True)
    assert "secret detail" in caplog.text  # the operators have it


def test_admin_token_is_checked_before_anything_else(client, deliveries):
    for path in ("/admin/v1/deliveries", "/admin/v1/no/such/route", f"/admin/v1/deliveries/{DELIVERY}"):
        assert client.get(path).status_code == 401
        assert client.get(path, headers=_auth("wrong-token")).status_code == 401
    assert deliveries.calls == []
    resp = client.get("/admin/v1/no/such/route", headers=_auth())
    assert (resp.status_code, resp.json["code"]) == (404, "NOT_FOUND")


def test_admin_routes_reach_the_delivery_use_cases(client, deliveries):
    resp = client.get("/admin/v1/deliveries?state=dead&recipient=000.00.00.H02&limit=5", headers=_auth())
    assert resp.status_code == 200
    assert resp.json == {"deliveries": [{"delivery_id": DELIVERY, "state": "dead"}]}
    assert deliveries.calls[-1] == ("list", {"state": DeliveryState.DEAD, "recipient": "000.00.00.H02", "limit": 5})
    assert client.get(f"/admin/v1/deliveries/{DELIVERY}", headers=_auth()).json["delivery_id"] == DELIVERY
    assert client.get(f"/admin/v1/deliveries/{'0' * 32}", headers=_auth()).status_code == 404
    assert client.get("/admin/v1/deliveries/not-hex", headers=_auth()).status_code == 404
    resp = client.post(f"/admin/v1/deliveries/{DELIVERY}/redrive", headers=_auth())
    assert (resp.status_code, resp.json) == (200, {"redriven": [DELIVERY]})
    assert deliveries.calls[-1] == ("redrive", {"delivery_id": DELIVERY, "actor": "admin-api"})
    resp = client.post("/admin/v1/deliveries/redrive?recipient=000.00.00.H02", headers=_auth())
    assert deliveries.calls[-1] == ("redrive", {"recipient": "000.00.00.H02", "actor": "admin-api"})
    # refusals
    assert client.post("/admin/v1/deliveries/redrive", headers=_auth()).status_code == 400
    assert client.get("/admin/v1/deliveries?state=lost", headers=_auth()).json["code"] == "REQUEST.INVALID"
    assert client.get("/admin/v1/deliveries?limit=many", headers=_auth()).status_code == 400
    assert client.get(f"/admin/v1/deliveries/{DELIVERY}/redrive", headers=_auth()).status_code == 404


class _NoSystems:
    """Just enough of GatewayApi for the VDXP edge to reach authentication."""

    def authenticate_hmac(self, system_id: str, verify: Any) -> Any:
        raise AuthError("authentication failed")


def test_vdxp_blueprint_answers_every_path_under_vdxp_in_the_sdk_shape():
    from types import SimpleNamespace

    from gateway.web.vdxp import VdxpEdge

    app = Flask("test")
    install_error_handlers(app)
    app.url_map.merge_slashes = False
    app.register_blueprint(VdxpEdge(_NoSystems(), SimpleNamespace(max_package_bytes=1024)).blueprint())
    client = app.test_client()
    headers = {"XroadVnpt-systemid": "sys-a", "Content-Type": "application/json"}
    # an endpoint configured with a trailing slash: the operation is still found, authentication decides
    for path in ("/vdxp/getAgenciesList", "/vdxp//getAgenciesList", "/vdxp/getAgenciesList/"):
        resp = client.post(path, data=b"{}", headers=headers)
        assert (resp.status_code, resp.json["status"], resp.json["ErrorCode"]) == (200, "FAIL", "AUTH.DENIED"), path
    resp = client.get("/vdxp/getAgenciesList")
    assert (resp.status_code, resp.json["ErrorCode"], resp.headers["Allow"]) == (405, "REQUEST.INVALID", "POST")
    resp = client.post("/vdxp/nosuchOperation", data=b"")
    assert (resp.status_code, resp.json["ErrorCode"]) == (404, "NOT_FOUND")
    assert set(resp.json) == {"status", "ErrorCode", "ErrorDesc"}
