"""The Flask side of the web layer in-process: the one JSON error translation (the admin API is tested under
gunicorn with real tokens and a real store in test_admin_api).

The edges are mounted on a bare Flask app with the same error handlers as :func:`gateway.web.app.create_app`
(which also mounts spyne; its own routes are covered under gunicorn in test_web_soap, test_e2e and test_vdxp_api).
"""

from __future__ import annotations

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
from gateway.web.jsonapi import http_status, install_error_handlers


def _app() -> Flask:
    app = Flask("test")
    install_error_handlers(app)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret detail of a defect")

    @app.get("/refuse")
    def refuse() -> None:
        raise EdxmlSchemaError("bad package", path="/edXMLEnvelope")

    return app


@pytest.fixture
def client():
    return _app().test_client()


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


class _NoSystems:
    """Just enough of GatewayApi for the VDXP edge to reach authentication."""

    def authenticate_hmac(self, system_id: str, verify: Any) -> Any:
        raise AuthError("authentication failed")


def test_vdxp_blueprint_answers_every_path_under_vdxp_in_the_sdk_shape(tmp_path):
    from types import SimpleNamespace

    from gateway.web.vdxp import VdxpEdge

    app = Flask("test")
    install_error_handlers(app)
    app.url_map.merge_slashes = False
    settings = SimpleNamespace(max_package_bytes=1024, trusted_proxies=(), data_dir=str(tmp_path))
    app.register_blueprint(VdxpEdge(_NoSystems(), settings).blueprint())
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
