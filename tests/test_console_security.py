"""The console's security table (issue 12 "Show"): every route the console declares × every role, over HTTP against
a served gateway on SQLite and PostgreSQL (tests/consolerig.py), and no secret or package body in any log.

The routes are not listed here: they are read from :func:`gateway.web.console.build_console` (tests/consoleroutes.py),
so a page added later is covered the day it is merged. For each route and method:

* anonymous → 303 to the login page (never the page, never a server error);
* a role below the route's → 403; at or above → neither 401/403 nor a server error (a real id of the seeded history
  fills each ``<converter>``, so the view itself runs);
* every POST without the session's CSRF token, or with a forged one → 403, and the database is unchanged;
* every answer carries the Content-Security-Policy and ``Cache-Control: no-store``.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from consolerig import DEPT, OTHER_DEPT, PASSWORD, ConsoleClient, ConsoleGateway, console_gateway
from consoleroutes import concrete, declared_routes, kinds, outside
from consoletraffic import send_package, system_secret
from sqlalchemy import MetaData, select

from gateway.services.admin_roles import Role
from gateway.web.console.edge import CSP, LOGIN_COOKIE, SESSION_COOKIE, Route

ROLES: dict[str, Role | None] = {"anonymous": None, "vera": Role.VIEWER, "oscar": Role.OPERATOR, "ada": Role.ADMIN}
ROUTES = declared_routes()
POSTS = [r for r in ROUTES if "POST" in r.methods]
#: Tables whose rows a refused request may add to (its audit row, the session's last-seen time, the throttle's
#: counters); every other table must be byte-for-byte the same after a forged POST.
BOOKKEEPING = {"audit_log", "console_sessions", "refusal_counts", "worker_heartbeats", "alembic_version"}
WRONG = "sai mật khẩu bí mật 7Qx"  # a failed login's password: it must not be written anywhere


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def gw(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, pki: Any) -> Iterator[ConsoleGateway]:
    tmp = tmp_path_factory.mktemp("console-security")
    url = f"sqlite:///{tmp / 'gateway.db'}"
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_cluster").new_database()
    with console_gateway(tmp, url, pki, LOG_LEVEL="DEBUG") as gw:  # every logger at its most talkative
        yield gw


@pytest.fixture(scope="module")
def ids(gw: ConsoleGateway) -> dict[str, str]:
    """A real id of each kind a route may take: a DEPT document, a dead letter, an agency, a system, an operator."""
    doc = next(d for d in gw.plan.documents if d.sender == DEPT)
    dead = next(r for d in gw.plan.documents for r in d.deliveries if r.state == "dead")
    done = gw.cli("operators", "add", "tam", "--role", "viewer", "--password-stdin", stdin=PASSWORD + "\n")
    assert done.returncode == 0, done.stderr
    return {"doc": doc.doc_id, "delivery": dead.delivery_id, "organ": OTHER_DEPT, "system": doc.submitted_by,
            "operator": "tam", "int": "1"}  # fmt: skip


@pytest.fixture(scope="module")
def clients(gw: ConsoleGateway) -> dict[str, ConsoleClient]:
    out = {"anonymous": gw.client()}
    for who in ROLES:
        if who != "anonymous":
            out[who] = gw.client(who)
            assert out[who].last is not None and out[who].last.status_code == 200
    return out


def _call(c: ConsoleClient, method: str, path: str, *, csrf: str | None = None) -> requests.Response:
    r = c.get(path) if method == "GET" else c.post(path, csrf=csrf)
    assert r.headers.get("Content-Security-Policy") == CSP, f"{method} {path}: no CSP"
    assert r.headers.get("Cache-Control") == "no-store", f"{method} {path}: {r.headers.get('Cache-Control')}"
    return r


def _id(route: Route) -> str:
    return f"{'+'.join(route.methods)} {route.rule}"


def test_the_table_covers_the_console() -> None:
    """The table is read from the console itself; at least the dashboard must be in it."""
    assert any(r.rule == "/console/" for r in ROUTES), ROUTES


@pytest.mark.parametrize("route", POSTS, ids=_id)
def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(gw, ids, clients, route: Route) -> None:
    path = concrete(route.rule, ids)
    for who, role in ROLES.items():
        if role is None or not role.rank >= route.role.rank:
            continue
        before = _fingerprint(gw)
        for token in ("", "forged-" + clients[who].csrf[:20]):
            r = _call(clients[who], "POST", path, csrf=token)
            assert r.status_code == 403, f"{who}: POST {path} with csrf={token!r} → {r.status_code}"
        assert _fingerprint(gw) == before, f"{who}: a refused POST {path} changed the database"


@pytest.mark.parametrize("route", ROUTES, ids=_id)
def test_every_route_answers_each_role_as_declared(gw, ids, clients, route: Route) -> None:
    path = concrete(route.rule, ids)
    for method in route.methods:
        for who, role in ROLES.items():
            r = _call(clients[who], method, path)
            answer = f"{who}: {method} {path} → {r.status_code}"
            if role is None:
                assert r.status_code == 303 and r.headers["Location"].startswith("/console/login"), answer
            elif role.rank < route.role.rank:
                assert r.status_code == 403, answer
            else:
                assert r.status_code not in (401, 403) and r.status_code < 500, answer


def test_a_scoped_viewer_gets_403_on_routes_above_viewer(gw, ids) -> None:
    """sam (viewer, DEPT subtree) is a viewer first: every operator/admin route refuses it, scope or not."""
    sam = gw.client("sam")
    for route in ROUTES:
        if route.role.rank > Role.VIEWER.rank:
            for method in route.methods:
                path = concrete(route.rule, ids)
                assert _call(sam, method, path).status_code == 403, f"sam: {method} {path}"


def test_a_scoped_viewer_gets_404_for_another_subtrees_ids(gw) -> None:
    """sam (viewer, DEPT subtree) guessing the URL of another subtree's document, delivery or agency meets the
    same NOT FOUND as an id that does not exist (issue 12: scope checked on every route, by URL guessing too)."""
    others = outside(gw.plan, DEPT)
    delivery = next(r for d in others for r in d.deliveries if r.state == "dead")
    foreign = {"doc": others[0].doc_id, "delivery": delivery.delivery_id, "organ": OTHER_DEPT}
    sam = gw.client("sam")
    checked = []
    for route in ROUTES:
        taken = kinds(route.rule)
        if taken and taken <= set(foreign) and route.role == Role.VIEWER:
            path = concrete(route.rule, foreign)
            assert _call(sam, "GET", path).status_code == 404, f"sam: GET {path}"
            checked.append(path)
    print(f"scoped 404 on {len(checked)} route(s): {checked}")


def test_no_password_session_token_or_package_body_in_any_log(gw, ids, pki) -> None:
    package = send_package(gw, pki, (DEPT,), "77")
    secrets: dict[str, str] = {"password": PASSWORD, "wrong password": WRONG, "system secret": system_secret(gw)}
    for who in ("vera", "oscar", "ada"):
        c = gw.client()
        assert c.login(who, WRONG).status_code == 401
        c.get("/console/login")
        secrets[f"{who} login form token"] = c.http.cookies.get(LOGIN_COOKIE, path="/console") or ""
        assert c.login(who).status_code == 303
        secrets[f"{who} session"] = c.http.cookies.get(SESSION_COOKIE, path="/console") or ""
        secrets[f"{who} csrf"] = c.csrf
        for route in ROUTES:
            if "GET" in route.methods and ROLES[who].rank >= route.role.rank:
                _call(c, "GET", concrete(route.rule, {**ids, "doc": package.doc_id}))
        c.post("/console/logout")
    assert all(secrets.values()), secrets
    log = (gw.tmp / "gunicorn.log").read_text(encoding="utf-8", errors="replace")
    audit = _audit_text(gw)
    leaks = [(name, where) for name, value in {**secrets, **_pieces(package.raw)}.items()
             for where, text in (("gunicorn.log", log), ("audit table", audit)) if value in text]  # fmt: skip
    assert leaks == [], leaks
    assert "console.login" in audit and "/console/login" in log  # the logs were written, and read


# ---------------------------------------------------------------------------------------------- helpers


def _pieces(raw: bytes) -> dict[str, str]:
    """Pieces that only a package's body holds: windows of its text, and its opening as base64 (its SHA-256 is no
    secret: intake audits it, to identify the package without holding it)."""
    text = raw.decode("utf-8", errors="replace")
    n = len(text)
    out = {f"package bytes @{at}": text[at : at + 48] for at in (n // 4, n // 2, 3 * n // 4)}
    out["package base64"] = base64.b64encode(raw[:96]).decode()
    return out


def _fingerprint(gw: ConsoleGateway) -> str:
    """A digest of every row of every table except the bookkeeping ones (order-independent)."""
    store = gw.store()
    try:
        meta = MetaData()
        meta.reflect(store.engine)
        digest = hashlib.sha256()
        with store.engine.connect() as conn:
            for name in sorted(set(meta.tables) - BOOKKEEPING):
                rows = sorted(repr(tuple(row)) for row in conn.execute(select(meta.tables[name])))
                digest.update(f"{name}:{len(rows)}:".encode())
                for row in rows:
                    digest.update(row.encode())
        return digest.hexdigest()
    finally:
        store.engine.dispose()


def _audit_text(gw: ConsoleGateway) -> str:
    store = gw.store()
    try:
        return "\n".join(f"{e.action} {e.outcome} {e.system_id} {e.detail}" for e in store.audit.entries(limit=100000))
    finally:
        store.engine.dispose()


def test_the_checks_can_fail(gw, ids) -> None:
    """The table's tools have teeth: a real change shows in the fingerprint, and each kind of id fills its rule."""
    before = _fingerprint(gw)
    assert gw.cli("operators", "disable", "tam").returncode == 0
    assert _fingerprint(gw) != before
    assert gw.cli("operators", "enable", "tam").returncode == 0
    rule = "/console/documents/<doc_id>/deliveries/<int:delivery_id>/agency/<path:organ_id>"
    assert concrete(rule, ids) == f"/console/documents/{ids['doc']}/deliveries/{ids['delivery']}/agency/{ids['organ']}"
    with pytest.raises(AssertionError, match="no plausible id"):
        concrete("/console/x/<colour>", ids)
