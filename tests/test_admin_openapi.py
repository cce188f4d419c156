"""The admin API's OpenAPI 3.1 document (docs/openapi/admin-v1.json) against the routes the app serves.

openapi-spec-validator is not a dependency, so the document's shape is checked here with jsonschema: the
required top-level keys, every operation with an operationId (unique, equal to its Flask endpoint — the audit
action is ``admin.<operationId>``) and responses, every ``$ref`` resolvable, every schema a valid JSON Schema
2020-12 (OpenAPI 3.1's dialect). Then both directions: every Flask rule under /admin/v1 (but the catch-all that
answers 404) is in the document with the same methods and path parameters, and every documented path is served.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from gatewayproc import gateway_env
from jsonschema import Draft202012Validator

from gateway.config import load_settings
from gateway.db import Store, create_engine
from gateway.db.migrations import upgrade
from gateway.services.admin import AdminServices
from gateway.web.admin import BLUEPRINT, PREFIX, AdminEdge

OPENAPI = Path(__file__).resolve().parents[1] / "docs" / "openapi" / "admin-v1.json"
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
#: The route that answers 404 for any other path under the prefix (after authentication): not an operation.
CATCH_ALL = f"{BLUEPRINT}.no_route"


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return json.loads(OPENAPI.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def served_rules(tmp_path_factory: pytest.TempPathFactory, pki: Any) -> dict[str, dict[str, str]]:
    """``{openapi path: {method: endpoint}}`` of the admin blueprint the WSGI entry point mounts (on a bare Flask
    app: this process must not import spyne, see web_fake_app.make_app; test_admin_api calls every documented
    operation on the real gunicorn app)."""
    tmp = tmp_path_factory.mktemp("openapi")
    env = gateway_env(tmp, f"sqlite:///{tmp / 'gateway.db'}", pki, max_package_bytes=1024 * 1024)
    settings = load_settings(env=env)
    upgrade(settings)
    engine = create_engine(settings)
    app = Flask("test")
    app.register_blueprint(AdminEdge(AdminServices.over(Store(engine), settings)).blueprint())
    found: dict[str, dict[str, str]] = {}
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(PREFIX + "/") or rule.endpoint == CATCH_ALL:
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            found.setdefault(path, {})[method.lower()] = rule.endpoint
    engine.dispose()
    return found


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(p, m, op) for p, item in doc["paths"].items() for m, op in item.items() if m in HTTP_METHODS]


def test_the_document_has_the_shape_of_openapi_3_1(doc):
    assert doc["openapi"].startswith("3.1.")
    assert doc["info"]["title"] and doc["info"]["version"]
    assert doc["components"]["securitySchemes"]["bearer"] == {
        **doc["components"]["securitySchemes"]["bearer"],
        "type": "http",
        "scheme": "bearer",
    }
    ids = [op["operationId"] for _p, _m, op in _operations(doc)]
    assert len(ids) == len(set(ids)) and all(ids)
    for path, method, op in _operations(doc):
        assert op["responses"], f"{method} {path}"
        assert any(code.startswith("2") for code in op["responses"]), f"{method} {path} has no success answer"
        params = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
        assert params == set(re.findall(r"{([^}]+)}", path)), f"{method} {path}"
    for name, schema in doc["components"]["schemas"].items():
        Draft202012Validator.check_schema(schema)  # SchemaError names the bad part
        assert name
    for ref in re.findall(r'"\$ref": "#/([^"]+)"', OPENAPI.read_text(encoding="utf-8")):
        node: Any = doc
        for part in ref.split("/"):
            node = node[part]  # KeyError: a dangling $ref


def test_every_admin_route_is_documented_and_every_documented_path_is_served(doc, served_rules):
    documented = {
        path: {method: op["operationId"] for method, op in item.items() if method in HTTP_METHODS}
        for path, item in doc["paths"].items()
    }
    assert set(served_rules) == set(documented)
    for path, methods in served_rules.items():
        assert set(methods) == set(documented[path]), path
        for method, endpoint in methods.items():
            # The audit action of a call is the endpoint: admin.<operationId>.
            assert endpoint == f"{BLUEPRINT}.{documented[path][method]}", (method, path)
