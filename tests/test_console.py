"""The operator console's foundation (issue 12 item 2): accounts, sessions, CSRF, throttling, languages, headers —
against a real gunicorn gateway over a seeded history (tests/consolerig.py), on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from consolerig import PASSWORD, ConsoleGateway, console_gateway, text_of

from gateway.web.console import i18n
from gateway.web.console.edge import CSP, SESSION_COOKIE

TEMPLATES = Path(__file__).resolve().parents[1] / "gateway" / "web" / "console" / "templates" / "console"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def gw(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, pki: Any) -> Iterator[ConsoleGateway]:
    tmp = tmp_path_factory.mktemp("console")
    url = f"sqlite:///{tmp / 'gateway.db'}"
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_cluster").new_database()
    with console_gateway(tmp, url, pki) as gw:
        yield gw


def test_a_page_needs_a_login_and_the_login_leads_back_to_it(gw):
    c = gw.client()
    r = c.get("/console/")
    assert r.status_code == 303 and r.headers["Location"] == "/console/login?next=%2Fconsole%2F"
    c.get("/console/login")
    r = c.post("/console/login", {"username": "vera", "password": PASSWORD, "next": "/console/"})
    assert r.status_code == 303 and r.headers["Location"] == "/console/"
    cookie = next(h for h in r.raw.headers.getlist("Set-Cookie") if h.startswith(f"{SESSION_COOKIE}="))
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/console" in cookie
    page = c.get("/console/")
    assert page.status_code == 200 and "vera" in text_of(page.text)


def test_a_wrong_password_and_an_unknown_user_get_the_same_answer(gw):
    answers = []
    for who, password in (("vera", "not the password"), ("nobody-here", PASSWORD)):
        c = gw.client()
        r = c.login(who, password)
        answers.append((r.status_code, re.sub(r'value="[^"]*"', "", r.text)))
    assert answers[0][0] == 401
    assert answers[0] == answers[1]
    assert "Sai tên đăng nhập hoặc mật khẩu" in answers[0][1]


def test_the_login_form_is_csrf_protected_and_an_open_redirect_is_refused(gw):
    c = gw.client()
    c.get("/console/login")
    r = c.post("/console/login", {"username": "vera", "password": PASSWORD}, csrf="forged")
    assert r.status_code == 403
    c.get("/console/login")
    r = c.post("/console/login", {"username": "vera", "password": PASSWORD, "next": "https://evil.example/"})
    assert r.status_code == 303 and r.headers["Location"] == "/console/"


def test_session_fixation_a_cookie_planted_before_login_is_never_the_session(gw):
    c = gw.client()
    c.http.cookies.set(SESSION_COOKIE, "planted-by-an-attacker", domain="127.0.0.1", path="/console")
    c.login("vera")
    (first,) = _session_cookies(c)
    assert first != "planted-by-an-attacker"
    c.login("vera")  # a second login is a new session too
    assert _session_cookies(c) != [first]
    planted = gw.client()
    planted.http.cookies.set(SESSION_COOKIE, "planted-by-an-attacker", domain="127.0.0.1", path="/console")
    assert planted.get("/console/").status_code == 303


def test_logout_needs_the_csrf_token_and_ends_the_session_for_good(gw):
    c = gw.client("vera")
    (session,) = _session_cookies(c)
    r = c.post("/console/logout", csrf="forged")
    assert r.status_code == 403
    assert c.get("/console/").status_code == 200  # a forged logout did nothing
    c.post("/console/logout")
    other = gw.client()
    other.http.cookies.set(SESSION_COOKIE, session, domain="127.0.0.1", path="/console")
    assert other.get("/console/").status_code == 303  # the old identifier is dead, not just forgotten


def test_disabling_an_operator_ends_its_sessions_at_once(gw):
    done = gw.cli("operators", "add", "temp", "--role", "viewer", "--password-stdin", stdin=PASSWORD + "\n")
    assert done.returncode == 0, done.stderr
    c = gw.client("temp")
    assert c.get("/console/").status_code == 200
    assert gw.cli("operators", "disable", "temp").returncode == 0
    assert c.get("/console/").status_code == 303
    assert c.login("temp").status_code == 401
    audit = _audit(gw, "operators.disable")
    assert [(e.system_id, e.detail["operator"]) for e in audit] == [("operator:cli", "temp")]


def test_a_new_password_ends_the_sessions_and_the_old_password_no_longer_works(gw):
    added = gw.cli("operators", "add", "pat", "--role", "viewer", "--password-stdin", stdin=PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    c = gw.client("pat")
    new = "một mật khẩu mới khác hẳn"
    done = gw.cli("operators", "reset-password", "pat", "--password-stdin", stdin=new + "\n")
    assert done.returncode == 0, done.stderr
    assert c.get("/console/").status_code == 303
    assert gw.client().login("pat").status_code == 401
    assert gw.client().login("pat", new).status_code == 303
    short = gw.cli("operators", "reset-password", "pat", "--password-stdin", stdin="short\n")
    assert short.returncode == 1 and "REQUEST.INVALID" in short.stderr
    listed = gw.cli("operators", "list", "--json")
    assert {o["username"]: o["role"] for o in __import__("json").loads(listed.stdout)["items"]}["pat"] == "viewer"
    assert "password" not in listed.stdout and "argon2" not in listed.stdout


def test_logins_are_throttled_per_user_name(gw):
    c = gw.client()
    codes = [c.login("oscar", f"wrong password {n}").status_code for n in range(gw.settings.console_login_failures)]
    assert set(codes) == {401}
    r = c.login("oscar")  # even the right password waits now
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    assert "Thử lại sau" in text_of(r.text)
    assert 'value="oscar"' in r.text  # the name stays in the field


def test_every_page_has_strict_headers_and_is_never_cached(gw):
    c = gw.client("vera")
    for path in ("/console/login", "/console/", "/console/no/such/page"):
        r = c.get(path)
        assert r.headers["Content-Security-Policy"] == CSP
        assert r.headers["Cache-Control"] == "no-store"
        assert r.headers["X-Frame-Options"] == "DENY" and r.headers["X-Content-Type-Options"] == "nosniff"
        assert "<script>" not in r.text and " style=" not in r.text and " onclick=" not in r.text
    assert c.get("/console/no/such/page").status_code == 404
    static = c.get("/console/static/console.css?v=" + __import__("gateway").__version__)
    assert static.status_code == 200 and "max-age=2592000" in static.headers["Cache-Control"]


def test_the_language_switch_is_remembered(gw):
    c = gw.client("vera")
    assert '<html lang="vi">' in c.get("/console/").text
    r = c.get("/console/?lang=en")
    assert r.status_code == 303 and r.headers["Location"] == "/console/"
    page = c.get("/console/").text
    assert '<html lang="en">' in page and "Dashboard" in page
    c.get("/console/?lang=vi")
    assert "Tổng quan" in c.get("/console/").text


def test_every_message_in_the_templates_has_a_vietnamese_text():
    import gateway.web.console as console

    for name in console.page_modules():
        __import__(f"gateway.web.console.{name}")
    ids = set()
    for template in TEMPLATES.glob("*.html"):
        ids |= set(re.findall(r"""_\(\s*"([^"]+)"\s*[,)]""", template.read_text(encoding="utf-8")))
        ids |= set(re.findall(r"""_\(\s*'([^']+)'\s*[,)]""", template.read_text(encoding="utf-8")))
    assert ids, "no message ids found"
    assert sorted(m for m in ids if not i18n.translated(m)) == []


def _audit(gw: ConsoleGateway, action: str) -> list[Any]:
    store = gw.store()
    try:
        return store.audit.entries(action=action)
    finally:
        store.engine.dispose()


def _session_cookies(c: Any) -> list[str]:
    return [k.value for k in c.http.cookies if k.name == SESSION_COOKIE and k.value]


def test_an_operator_changes_its_own_password_with_the_current_one(gw):
    added = gw.cli("operators", "add", "kim", "--role", "operator", "--password-stdin", stdin=PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    c = gw.client("kim")
    assert "kim" in text_of(c.get("/console/account").text)
    new = "mật khẩu riêng của Kim 2026"
    r = c.post("/console/account/password", {"current": "not my password", "new": new, "again": new})
    assert r.status_code == 400 and "Mật khẩu hiện tại không đúng" in text_of(r.text)
    r = c.post("/console/account/password", {"current": PASSWORD, "new": new, "again": new + "x"})
    assert r.status_code == 400
    r = c.post("/console/account/password", {"current": PASSWORD, "new": new, "again": new}, csrf="forged")
    assert r.status_code == 403
    assert gw.client().login("kim").status_code == 303  # nothing changed so far
    r = c.post("/console/account/password", {"current": PASSWORD, "new": new, "again": new})
    assert r.status_code == 303 and r.headers["Location"] == "/console/login?changed=1"
    assert c.get("/console/").status_code == 303  # this session ended too
    assert gw.client().login("kim").status_code == 401
    assert gw.client().login("kim", new).status_code == 303
    assert [e.system_id for e in _audit(gw, "operators.password")][:1] == ["operator:kim"]
