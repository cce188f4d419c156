"""The admin API (/admin/v1) under gunicorn with real tokens, a real store and real traffic (issue 9 item 5).

One gateway per module and database: a province (P) with two departments (D, E) and a unit under D (U), plus the
Government Office (G). G sends one edoc to D, U and E and one to E alone, over SOAP; U and E are pushed to an
endpoint where nobody listens, so one worker pass past the retry budget dead-letters their deliveries. Tokens are
made with the ``admin-tokens`` CLI. A D-scoped token must see D and U only: their deliveries, dead letters, report
rows and agencies — and get 403/404 for E's. Every call leaves an ``admin.<route>`` audit row.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from gatewayproc import free_port, gateway_env, served
from jsonschema import Draft202012Validator

from gateway.client import GatewayClient
from gateway.config import Settings, load_settings
from gateway.db import Store, create_engine
from gateway.db.migrations import upgrade
from gateway.demo.documents import demo_package
from gateway.edxml import Organization, render
from gateway.services.registry import Registry
from gateway.tracking.calendar import local_date
from gateway.xmlcheck.signing import SigningKey, sign_package

P, D, U, E, G = "000.00.00.H53", "000.00.01.H53", "000.01.01.H53", "000.00.02.H53", "000.00.00.G22"
BOOTSTRAP = secrets.token_urlsafe(24)
OPENAPI = Path(__file__).resolve().parents[1] / "docs" / "openapi" / "admin-v1.json"
EXE = Path(sys.executable).with_name("edoc-gateway")


@dataclasses.dataclass
class AdminGateway:
    port: int
    settings: Settings
    env: dict[str, str]
    tokens: dict[str, str]
    docs: dict[str, str]

    def call(self, method: str, path: str, token: str | None = None, body: Any = None) -> tuple[int, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            return resp.status, json.loads(resp.read() or b"null")
        finally:
            conn.close()

    def get(self, path: str, who: str) -> tuple[int, Any]:
        return self.call("GET", path, self.tokens[who])

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("EDOC_GATEWAY_")}
        return subprocess.run(
            [EXE, *args], capture_output=True, text=True, env={**clean, **self.env}, timeout=60, check=False
        )

    def audit(self, action: str | None = None) -> list[Any]:
        engine = create_engine(self.settings)
        try:
            return Store(engine).audit.entries(action=action, limit=1000)
        finally:
            engine.dispose()


def _agencies_csv(dead_endpoint: str) -> str:
    return f"""organ_id,name,channel,endpoint
{P},UBND tỉnh Tây Ninh,mailbox,
{D},Văn phòng UBND tỉnh Tây Ninh,mailbox,
{U},Ban Tiếp Công dân,soap,{dead_endpoint}
{E},Sở Tài chính,soap,{dead_endpoint}
{G},Văn phòng Chính phủ,mailbox,
"""


def _send(client: GatewayClient, pki: Any, number: str, to: tuple[str, ...]) -> str:
    base = demo_package()
    h = base.message_header
    h = dataclasses.replace(
        h,
        from_=Organization(organ_id=G, organ_name="Văn phòng Chính phủ"),
        to=tuple(Organization(organ_id=o, organ_name=o) for o in to),
        document_id=f"{G},2026/11/28,{number}/VPCP-HC",
        code=dataclasses.replace(h.code, code_number=number),
    )
    cred = pki.agencies[G]
    data = sign_package(
        render(dataclasses.replace(base, message_header=h)), SigningKey.from_files(cred.key, cred.cert, pki.chain)
    )
    return client.send_edoc(data).docId


def _traffic(gw: AdminGateway, pki: Any, secret: str) -> None:
    from gateway.worker import run_worker

    client = GatewayClient(f"http://127.0.0.1:{gw.port}/soap", "SG", secret)
    try:
        gw.docs["to_d_u_e"] = _send(client, pki, "101", (D, U, E))
        gw.docs["to_e"] = _send(client, pki, "102", (E,))
    finally:
        client.close()
    no_budget = dataclasses.replace(gw.settings, retry_limit_seconds=1)
    later = datetime.now(UTC) + timedelta(seconds=60)
    run_worker(no_budget, once=True, clock=lambda: later)  # past the 1 s budget: the first failure is final


def _token(gw: AdminGateway, name: str, role: str, scope: str | None = None) -> str:
    done = gw.cli("admin-tokens", "create", name, "--role", role, *(["--scope", scope] if scope else []))
    assert done.returncode == 0, done.stderr
    found = re.search(r"^token: (\S+)$", done.stdout, re.M)
    assert found, done.stdout
    return found.group(1)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def gw(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, pki: Any) -> Iterator[AdminGateway]:
    tmp = tmp_path_factory.mktemp("admin")
    url = f"sqlite:///{tmp / 'gateway.db'}"
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_cluster").new_database()
    env = gateway_env(tmp, url, pki, max_package_bytes=2 * 1024 * 1024, ADMIN_TOKEN=BOOTSTRAP)
    settings = load_settings(env=env)
    upgrade(settings)
    registry = Registry.from_settings(settings)
    (tmp / "agencies.csv").write_text(_agencies_csv(f"http://127.0.0.1:{free_port()}/"), encoding="utf-8")
    registry.import_file(tmp / "agencies.csv")
    secret = registry.add_system("SG", [G])
    port = int(settings.bind.rsplit(":", 1)[1])
    gw = AdminGateway(port, settings, env, {"bootstrap": BOOTSTRAP}, {})
    for name, role, scope in (
        ("d-viewer", "viewer", D),
        ("d-operator", "operator", D),
        ("d-admin", "admin", D),
        ("all-viewer", "viewer", None),
    ):
        gw.tokens[name] = _token(gw, name, role, scope)
    with served(settings, env, tmp / "gunicorn.log"):
        _traffic(gw, pki, secret)
        yield gw


def _schema(name: str) -> Draft202012Validator:
    doc = json.loads(OPENAPI.read_text(encoding="utf-8"))
    return Draft202012Validator({"$ref": f"#/components/schemas/{name}", "components": doc["components"]})


def test_me_names_each_token_its_role_and_scope(gw):
    expected = {
        "bootstrap": ("admin-token", "admin", None, True, True),
        "d-viewer": ("d-viewer", "viewer", D, False, False),
        "d-operator": ("d-operator", "operator", D, True, False),
        "d-admin": ("d-admin", "admin", D, True, False),  # scoped: no token management
        "all-viewer": ("all-viewer", "viewer", None, False, False),
    }
    for who, (name, role, scope, redrive, manage) in expected.items():
        status, me = gw.get("/admin/v1/me", who)
        assert status == 200
        _schema("Me").validate(me)
        assert (me["name"], me["role"], me["scope"]) == (name, role, scope)
        assert (me["can"]["redrive"], me["can"]["manage_tokens"]) == (redrive, manage)
    assert gw.call("GET", "/admin/v1/me", "not-a-token")[0] == 401
    assert gw.call("GET", "/admin/v1/me")[0] == 401
    assert gw.call("GET", "/admin/v1/no/such/route")[0] == 401  # the route map is not probed without a token
    assert gw.get("/admin/v1/no/such/route", "d-viewer")[0] == 404


def test_a_department_token_sees_only_its_units_deliveries(gw):
    status, everything = gw.get("/admin/v1/deliveries", "all-viewer")
    assert status == 200
    _schema("DeliveryList").validate(everything)
    assert sorted(d["recipient"] for d in everything["items"]) == sorted([D, U, E, E])
    status, mine = gw.get("/admin/v1/deliveries", "d-viewer")
    assert status == 200
    assert sorted(d["recipient"] for d in mine["items"]) == sorted([D, U])
    status, dead = gw.get("/admin/v1/dead-letters", "d-viewer")
    assert (status, [d["recipient"] for d in dead["items"]]) == (200, [U])
    assert {d["state"] for d in dead["items"]} == {"dead"}
    status, all_dead = gw.get("/admin/v1/deliveries?state=dead", "all-viewer")
    assert sorted(d["recipient"] for d in all_dead["items"]) == sorted([U, E, E])

    theirs = next(d["delivery_id"] for d in all_dead["items"] if d["recipient"] == E)
    status, body = gw.get(f"/admin/v1/deliveries/{theirs}", "d-viewer")
    assert (status, body["code"]) == (404, "NOT_FOUND")  # outside the scope: as if unknown
    assert gw.get(f"/admin/v1/deliveries/{theirs}", "all-viewer")[0] == 200
    status, body = gw.get(f"/admin/v1/deliveries?recipient={E}", "d-viewer")
    assert (status, body["code"]) == (403, "ACCESS.DENIED")
    status, body = gw.get("/admin/v1/deliveries?limit=many", "d-viewer")
    assert (status, body["code"]) == (400, "REQUEST.INVALID")


def test_lists_page_with_total_and_cursor_and_refuse_a_foreign_cursor(gw):
    status, everything = gw.get("/admin/v1/deliveries", "all-viewer")
    assert (status, everything["total"], everything["next_cursor"]) == (200, 4, None)
    walked, cursor = [], ""
    while True:
        status, page = gw.get(f"/admin/v1/deliveries?limit=1&cursor={cursor}", "all-viewer")
        assert status == 200 and page["total"] == 4
        _schema("DeliveryList").validate(page)
        walked += [d["delivery_id"] for d in page["items"]]
        if page["next_cursor"] is None:
            break
        cursor = page["next_cursor"]
    assert walked == [d["delivery_id"] for d in everything["items"]]
    status, third = gw.get("/admin/v1/deliveries?limit=1&offset=2", "all-viewer")
    assert [d["delivery_id"] for d in third["items"]] == walked[2:3]
    status, mine = gw.get("/admin/v1/dead-letters?limit=1", "d-viewer")
    assert (status, mine["total"], mine["next_cursor"]) == (200, 1, None)  # the scope counts only its own
    status, tokens = gw.call("GET", "/admin/v1/tokens?limit=1", BOOTSTRAP)
    assert status == 200 and tokens["total"] >= 4 and tokens["next_cursor"]
    _schema("TokenList").validate(tokens)
    for bad in ("nonsense", tokens["next_cursor"]):
        status, body = gw.get(f"/admin/v1/deliveries?cursor={bad}", "all-viewer")
        assert (status, body["code"]) == (400, "REQUEST.CURSOR"), body
    status, docs = gw.get("/admin/v1/documents?limit=1", "all-viewer")
    assert status == 200 and docs["total"] >= 2 and len(docs["items"]) == 1 and docs["next_cursor"]
    _schema("DocumentPage").validate(docs)
    status, second = gw.get("/admin/v1/documents?limit=1&offset=1", "all-viewer")
    status, walked_docs = gw.get(f"/admin/v1/documents?limit=1&cursor={docs['next_cursor']}", "all-viewer")
    assert second["items"] == walked_docs["items"] and second["total"] == docs["total"]
    status, body = gw.get(f"/admin/v1/documents?cursor={tokens['next_cursor']}", "all-viewer")
    assert (status, body["code"]) == (400, "REQUEST.CURSOR")
    for query in ("limit=1001", "limit=0", "offset=-1", "offset=x"):
        status, body = gw.get(f"/admin/v1/deliveries?{query}", "all-viewer")
        assert (status, body["code"]) == (400, "REQUEST.INVALID"), query


def test_report_and_agencies_are_limited_to_the_scope(gw):
    today = local_date(datetime.now(UTC)).isoformat()
    period = f"from={today}&to={today}"
    status, report = gw.get(f"/admin/v1/report?{period}", "d-viewer")
    assert status == 200, report
    _schema("Report").validate(report)
    assert [r["organ_id"] for r in report["agencies"]] == [D, U]
    assert (report["total"]["received"], report["total"]["dead_letters"]) == (2, 1)
    status, whole = gw.get(f"/admin/v1/report?{period}", "all-viewer")
    assert {r["organ_id"] for r in whole["agencies"]} == {P, D, U, E, G}
    assert (whole["total"]["sent"], whole["total"]["received"]) == (2, 4)
    for outside in (E, P):
        status, body = gw.get(f"/admin/v1/report?{period}&agency={outside}", "d-viewer")
        assert (status, body["code"]) == (403, "ACCESS.DENIED")
    assert gw.get(f"/admin/v1/report?{period}&agency={U}", "d-viewer")[0] == 200
    status, body = gw.get("/admin/v1/report?from=2026-02-01", "d-viewer")
    assert (status, body["code"]) == (400, "REQUEST.INVALID")
    assert gw.get("/admin/v1/report?from=2026-02-02&to=2026-02-01", "d-viewer")[0] == 400

    status, table = gw.get("/admin/v1/agencies", "d-viewer")  # default period: the last 30 days
    assert status == 200, table
    _schema("AgencyTable").validate(table)
    rows = {r["organ_id"]: r for r in table["agencies"]}
    assert set(rows) == {D, U}
    assert (rows[U]["received"], rows[U]["dead_letters"], rows[U]["channel"], rows[U]["parent"]) == (1, 1, "soap", D)
    assert (rows[D]["received"], rows[D]["level"], rows[D]["active"]) == (1, 2, True)
    status, table = gw.get(f"/admin/v1/agencies?{period}", "all-viewer")
    rows = {r["organ_id"]: r for r in table["agencies"]}
    assert (rows[G]["sent"], rows[E]["received"], rows[E]["dead_letters"]) == (2, 2, 2)
    by_report = {r["organ_id"]: r["own"] for r in whole["agencies"]}
    for organ, row in rows.items():  # one definition: the table's figures are the report's own figures
        assert row["breached"] == {k: v["count"] for k, v in by_report[organ]["rules"].items()}


def test_tokens_are_managed_by_an_unscoped_admin_only_and_revocation_is_immediate(gw):
    body = {"name": "console-e", "role": "viewer", "scope": E}
    for who in ("d-admin", "d-operator", "all-viewer"):
        status, answer = gw.call("POST", "/admin/v1/tokens", gw.tokens[who], body)
        assert (status, answer["code"]) == (403, "ACCESS.DENIED"), who
    status, created = gw.call("POST", "/admin/v1/tokens", BOOTSTRAP, body)
    assert status == 201, created
    _schema("NewToken").validate(created)
    status, me = gw.call("GET", "/admin/v1/me", created["token"])
    assert (status, me["scope"]) == (200, E)
    status, dead = gw.call("GET", "/admin/v1/dead-letters", created["token"])
    assert sorted(d["recipient"] for d in dead["items"]) == [E, E]
    assert gw.call("POST", "/admin/v1/tokens", BOOTSTRAP, body)[0] == 400  # the name is taken
    status, listed = gw.call("GET", "/admin/v1/tokens", BOOTSTRAP)
    assert "console-e" in {t["name"] for t in listed["items"]}
    assert all("token" not in t and "token_hash" not in t for t in listed["items"])

    listing = gw.cli("admin-tokens", "list")
    assert listing.returncode == 0 and "console-e" in listing.stdout and created["token"] not in listing.stdout
    revoked = gw.cli("admin-tokens", "revoke", "console-e")
    assert revoked.returncode == 0, revoked.stderr
    status, body = gw.call("GET", "/admin/v1/me", created["token"])
    assert (status, body["code"]) == (401, "AUTH.DENIED")
    assert gw.cli("admin-tokens", "revoke", "nobody").returncode == 1
    bad = gw.cli("admin-tokens", "create", "x", "--role", "viewer", "--scope", "000.00.09.H99")
    assert bad.returncode == 1 and "REQUEST.INVALID" in bad.stderr


def test_every_call_is_audited_with_the_token_name_and_never_the_token(gw):
    wrong = "wrong-" + secrets.token_urlsafe(16)
    assert gw.call("GET", "/admin/v1/me", wrong)[0] == 401
    assert gw.get("/admin/v1/deliveries?recipient=" + U, "d-viewer")[0] == 200
    assert gw.get("/admin/v1/deliveries?recipient=" + E, "d-viewer")[0] == 403
    refused = gw.audit("admin.me")
    denied = [e for e in refused if e.outcome == "AUTH.DENIED"]
    assert denied and denied[0].system_id is None
    assert dict(denied[0].detail) == {"method": "GET", "route": "/admin/v1/me", "status": 401, "scope": None}
    listed = gw.audit("admin.deliveries_list")
    ok = next(e for e in listed if e.system_id == "d-viewer" and e.outcome == "ok")
    assert dict(ok.detail) == {"method": "GET", "route": "/admin/v1/deliveries", "status": 200, "scope": D}
    forbidden = [e for e in listed if e.outcome == "ACCESS.DENIED"]
    assert forbidden and forbidden[0].detail["status"] == 403
    everything = json.dumps([dataclasses.asdict(e) for e in gw.audit()], default=str)
    for token in (wrong, *gw.tokens.values()):
        assert token not in everything
    assert "recipient=" not in everything  # the route rule, never the query string


@pytest.mark.parametrize("who", ["d-viewer", "all-viewer"])
def test_a_viewer_cannot_redrive(gw, who):
    status, dead = gw.get("/admin/v1/dead-letters", "all-viewer")
    target = next(d["delivery_id"] for d in dead["items"] if d["recipient"] == U)
    status, body = gw.call("POST", f"/admin/v1/deliveries/{target}/redrive", gw.tokens[who])
    assert (status, body["code"], body["detail"]["required_role"]) == (403, "ACCESS.DENIED", "operator")
    status, body = gw.call("POST", f"/admin/v1/deliveries/redrive?recipient={U}", gw.tokens[who])
    assert (status, body["code"]) == (403, "ACCESS.DENIED")
    assert gw.get(f"/admin/v1/deliveries/{target}", who)[1]["state"] == "dead"


def test_an_operator_redrives_within_its_scope_only(gw):
    # After every test that counts dead letters: this one re-drives one.
    status, dead = gw.get("/admin/v1/dead-letters", "all-viewer")
    mine = next(d["delivery_id"] for d in dead["items"] if d["recipient"] == U)
    theirs = next(d["delivery_id"] for d in dead["items"] if d["recipient"] == E)
    operator = gw.tokens["d-operator"]
    status, body = gw.call("POST", f"/admin/v1/deliveries/{theirs}/redrive", operator)
    assert (status, body["code"]) == (404, "NOT_FOUND")
    status, body = gw.call("POST", f"/admin/v1/deliveries/redrive?recipient={E}", operator)
    assert (status, body["code"]) == (403, "ACCESS.DENIED")
    assert gw.get(f"/admin/v1/deliveries/{theirs}", "all-viewer")[1]["state"] == "dead"  # nothing changed
    status, body = gw.call("POST", f"/admin/v1/deliveries/{mine}/redrive", operator)
    assert (status, body) == (200, {"redriven": [mine]})
    assert gw.get(f"/admin/v1/deliveries/{mine}", "d-viewer")[1]["state"] == "queued"
    redrive_rows = [e for e in gw.audit("delivery.redrive") if e.doc_id == gw.docs["to_d_u_e"]]
    assert [e.system_id for e in redrive_rows] == ["d-operator"]
    calls = [e for e in gw.audit("admin.deliveries_redrive") if e.system_id == "d-operator"]
    assert sorted(e.outcome for e in calls) == ["NOT_FOUND", "ok"]


def test_documents_and_stories_are_limited_to_the_scope(gw):
    pytest.importorskip("gateway.services.timeline", reason="the Timelines service (DocumentsApi) is not in this build")
    today = local_date(datetime.now(UTC)).isoformat()
    status, page = gw.get(f"/admin/v1/documents?from={today}&to={today}&text=secret-word", "d-viewer")
    assert (status, page["items"]) == (200, [])
    status, page = gw.get(f"/admin/v1/documents?from={today}&to={today}&limit=50", "d-viewer")
    assert status == 200, page
    _schema("DocumentPage").validate(page)
    assert [i["doc_id"] for i in page["items"]] == [gw.docs["to_d_u_e"]]
    status, page = gw.get(f"/admin/v1/documents?from={today}&to={today}&flag=late_receipt&flag=not_taken", "all-viewer")
    assert status == 200, page
    status, page = gw.get(f"/admin/v1/documents?recipient={E}", "all-viewer")
    assert {i["doc_id"] for i in page["items"]} == {gw.docs["to_d_u_e"], gw.docs["to_e"]}

    status, story = gw.get(f"/admin/v1/documents/{gw.docs['to_d_u_e']}", "d-viewer")
    assert status == 200, story
    _schema("DocumentStory").validate(story)
    assert sorted(r["recipient"] for r in story["recipients"]) == sorted([D, U])
    status, body = gw.get(f"/admin/v1/documents/{gw.docs['to_e']}", "d-viewer")
    assert (status, body["code"]) == (404, "NOT_FOUND")
    assert gw.get(f"/admin/v1/documents/{gw.docs['to_e']}", "all-viewer")[0] == 200
    assert gw.get("/admin/v1/documents?limit=0", "d-viewer")[0] == 400
    assert "secret-word" not in json.dumps(
        [dataclasses.asdict(e) for e in gw.audit("admin.documents_list")], default=str
    )


def test_the_served_contract_is_the_committed_document(gw):
    status, served_doc = gw.get("/admin/v1/openapi.json", "d-viewer")
    assert (status, served_doc) == (200, json.loads(OPENAPI.read_text(encoding="utf-8")))
    assert gw.call("GET", "/admin/v1/openapi.json")[0] == 401


def test_every_documented_operation_is_served(gw):
    """Each operation of the contract reaches its own view on the real app, not the catch-all 404."""
    doc = json.loads(OPENAPI.read_text(encoding="utf-8"))
    for path, item in doc["paths"].items():
        for method in item:
            concrete = path.replace("{delivery_id}", "0" * 32).replace("{doc_id}", "0" * 32).replace("{name}", "nobody")
            status, body = gw.call(method.upper(), concrete, BOOTSTRAP, {} if method == "post" else None)
            message = body.get("message", "") if isinstance(body, dict) else ""
            assert status != 405 and not message.startswith("no such admin route"), (method, path, status, body)
