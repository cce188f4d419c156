"""The console's systems pages (issue 12 item 1, "Systems"), against a real gunicorn gateway over the seeded history
(tests/consolerig.py), on SQLite and PostgreSQL: a secret shown once authenticates a real SOAP call, a rotated one
replaces it, a disabled system is refused; roles, scope, CSRF and bad input change nothing.
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
import zeep.exceptions
from consolerig import DEPT, OTHER_DEPT, PASSWORD, ConsoleGateway, console_gateway, text_of

from gateway.client import GatewayClient

SECRET = re.compile(r'<code class="secret">([^<]+)</code>')
#: A district under DEPT (the history's tree: department → district → communes).
DEPT_DISTRICT = "000.01.01.H53"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def gw(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, pki: Any) -> Iterator[ConsoleGateway]:
    tmp = tmp_path_factory.mktemp("console-systems")
    url = f"sqlite:///{tmp / 'gateway.db'}"
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_cluster").new_database()
    with console_gateway(tmp, url, pki) as gw:
        done = gw.cli("operators", "add", "adele", "--role", "admin", "--scope", DEPT, "--password-stdin",
                      stdin=PASSWORD + "\n")  # fmt: skip
        assert done.returncode == 0, done.stderr
        for system, agencies in (("cli-other", [OTHER_DEPT]), ("cli-both", [DEPT, OTHER_DEPT])):
            added = gw.cli("systems", "add", system, *[f"--agency={a}" for a in agencies])
            assert added.returncode == 0, added.stderr
        yield gw


def _client(gw: ConsoleGateway, system_id: str, secret: str) -> GatewayClient:
    return GatewayClient(gw.base + "/soap", system_id, secret, timeout=30)


def _accepted(gw: ConsoleGateway, system_id: str, secret: str, organ_id: str = DEPT) -> None:
    """``system_id`` + ``secret`` pass the gateway's authentication on a real SOAP call (a Fault fails the test)."""
    _client(gw, system_id, secret).pending(organ_id)


def _refused(gw: ConsoleGateway, system_id: str, secret: str, organ_id: str = DEPT) -> None:
    """The same call is refused at authentication (AUTH.DENIED, not any other failure)."""
    with pytest.raises(zeep.exceptions.Fault) as refused:
        _client(gw, system_id, secret).pending(organ_id)
    assert refused.value.message.split(":", 1)[0] == "AUTH.DENIED", refused.value.message


def _systems(gw: ConsoleGateway) -> dict[str, Any]:
    store = gw.store()
    try:
        return {s.id: s for s in store.registry.list_systems()}
    finally:
        store.engine.dispose()


def _audit(gw: ConsoleGateway) -> list[Any]:
    store = gw.store()
    try:
        return store.audit.entries(limit=1000)
    finally:
        store.engine.dispose()


def _create(c: Any, system_id: str, agencies: str, name: str = "") -> Any:
    c.get("/console/new-system")
    return c.post("/console/new-system", {"system_id": system_id, "name": name, "agencies": agencies})


def _nowhere(gw: ConsoleGateway, secret: str) -> None:
    """The secret is in no audit row and no line of the gateway's log."""
    assert all(secret not in repr(e) for e in _audit(gw))
    assert secret not in (gw.tmp / "gunicorn.log").read_text(errors="replace")


def test_a_created_system_s_secret_is_shown_once_and_authenticates(gw):
    ada = gw.client("ada")
    r = _create(ada, "qlvb-so-1", f"{DEPT}\n{DEPT_DISTRICT}", "Phần mềm QLVB Sở 1")
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
    (secret,) = [html.unescape(s) for s in SECRET.findall(r.text)]
    _accepted(gw, "qlvb-so-1", secret)
    stored = _systems(gw)["qlvb-so-1"]
    assert stored.active and set(stored.agencies) == {DEPT, DEPT_DISTRICT} and stored.name == "Phần mềm QLVB Sở 1"
    for path in ("/console/systems", "/console/systems/qlvb-so-1"):
        page = ada.get(path)
        assert page.status_code == 200 and "qlvb-so-1" in page.text and secret not in page.text
    (row,) = [e for e in _audit(gw) if e.action == "console.systems.add" and e.detail["system_id"] == "qlvb-so-1"]
    assert row.system_id == "operator:ada" and row.outcome == "ok"
    _nowhere(gw, secret)


def test_bad_input_shows_the_form_again_with_the_problem_and_stores_nothing(gw):
    ada = gw.client("ada")
    before = _systems(gw)
    ada.get("/console/?lang=en")
    cases = {
        ("bad id!", DEPT): "not a valid system id",
        ("qlvb-x", "999.99.99.H99"): "999.99.99.H99",
        ("qlvb-y", ""): "at least one agency",
        ("cli-other", OTHER_DEPT): "already exists",
        ("qlvb-z", f"{DEPT} 999.99.98.H99"): "999.99.98.H99",
    }
    for (system_id, agencies), problem in cases.items():
        r = _create(ada, system_id, agencies)
        assert r.status_code == 400, (system_id, agencies)
        page = text_of(r.text)
        assert "The system was not created" in page and problem in page
        assert f'value="{html.escape(system_id)}"' in r.text  # the form keeps what was typed
        assert not SECRET.search(r.text)
    assert _systems(gw).keys() == before.keys()


def test_rotating_the_secret_refuses_the_old_one_and_accepts_the_new(gw):
    ada = gw.client("ada")
    (old,) = SECRET.findall(_create(ada, "qlvb-so-2", DEPT).text)
    _accepted(gw, "qlvb-so-2", old)
    confirm = ada.get("/console/systems/qlvb-so-2/rotate")
    assert confirm.status_code == 200 and 'name="confirm" value="yes"' in confirm.text
    assert ada.post("/console/systems/qlvb-so-2/rotate").status_code == 400  # not confirmed: nothing changes
    _accepted(gw, "qlvb-so-2", old)
    r = ada.post("/console/systems/qlvb-so-2/rotate", {"confirm": "yes"})
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
    (new,) = SECRET.findall(r.text)
    assert new != old
    _refused(gw, "qlvb-so-2", old)
    _accepted(gw, "qlvb-so-2", new)
    assert new not in ada.get("/console/systems/qlvb-so-2").text
    assert [e.outcome for e in _audit(gw) if e.action == "console.systems.rotate"] == ["ok"]
    _nowhere(gw, old)
    _nowhere(gw, new)


def test_a_disabled_system_is_refused_until_enabled(gw):
    ada = gw.client("ada")
    (secret,) = SECRET.findall(_create(ada, "qlvb-so-3", DEPT).text)
    ada.get("/console/systems/qlvb-so-3/disable")
    assert ada.post("/console/systems/qlvb-so-3/disable", {"confirm": "yes"}).status_code == 200
    assert not _systems(gw)["qlvb-so-3"].active
    _refused(gw, "qlvb-so-3", secret)
    ada.get("/console/systems/qlvb-so-3/enable")
    assert ada.post("/console/systems/qlvb-so-3/enable", {"confirm": "yes"}).status_code == 200
    assert _systems(gw)["qlvb-so-3"].active
    _accepted(gw, "qlvb-so-3", secret)
    actions = [e.action for e in _audit(gw) if e.detail and e.detail.get("system_id") == "qlvb-so-3"]
    assert actions == ["console.systems.enable", "console.systems.disable", "console.systems.add"]


def test_viewers_and_operators_see_but_change_nothing_and_forged_forms_fail(gw):
    before = _systems(gw)
    vera = gw.client("vera")
    page = vera.get("/console/systems/cli-both")
    assert page.status_code == 200 and OTHER_DEPT in page.text
    assert "/rotate" not in page.text and "/new-system" not in vera.get("/console/systems").text
    assert vera.get("/console/new-system").status_code == 403
    assert vera.post("/console/new-system", {"system_id": "by-vera", "agencies": DEPT}).status_code == 403
    oscar = gw.client("oscar")
    oscar.get("/console/systems")
    for path in ("/console/systems/cli-both/rotate", "/console/systems/cli-both/disable"):
        assert oscar.get(path).status_code == 403
        assert oscar.post(path, {"confirm": "yes"}).status_code == 403
    ada = gw.client("ada")
    ada.get("/console/systems/cli-both/disable")
    for forged in ("", "not-the-token"):
        assert ada.post("/console/systems/cli-both/disable", {"confirm": "yes"}, csrf=forged).status_code == 403
        r = ada.post("/console/new-system", {"system_id": "forged", "agencies": DEPT}, csrf=forged)
        assert r.status_code == 403
    after = _systems(gw)
    assert after.keys() == before.keys() and after["cli-both"].active
    assert after["cli-both"].secret_hash == before["cli-both"].secret_hash


def test_a_scoped_operator_sees_and_manages_only_systems_wholly_in_its_subtree(gw):
    ada = gw.client("ada")
    _create(ada, "qlvb-huyen", DEPT_DISTRICT)
    sam = gw.client("sam")
    listed = set(re.findall(r'href="/console/systems/([^"/]+)"', sam.get("/console/systems").text))
    expected = {s.id for s in _systems(gw).values() if all(a in (DEPT, DEPT_DISTRICT) for a in s.agencies)}
    assert "qlvb-huyen" in listed and listed == expected
    for hidden in ("cli-other", "cli-both", "no-such-system"):
        assert sam.get(f"/console/systems/{hidden}").status_code == 404
    before = _systems(gw)
    adele = gw.client("adele")
    r = _create(adele, "qlvb-ngoai", OTHER_DEPT)
    assert r.status_code == 400 and OTHER_DEPT in text_of(r.text)
    for hidden in ("cli-other", "cli-both"):
        adele.get("/console/systems")
        assert adele.post(f"/console/systems/{hidden}/rotate", {"confirm": "yes"}).status_code == 404
        assert adele.post(f"/console/systems/{hidden}/disable", {"confirm": "yes"}).status_code == 404
    after = _systems(gw)
    assert after.keys() == before.keys()
    assert all(after[s].secret_hash == before[s].secret_hash and after[s].active for s in ("cli-other", "cli-both"))
    (secret,) = SECRET.findall(_create(adele, "qlvb-xa", DEPT_DISTRICT).text)
    _accepted(gw, "qlvb-xa", secret, DEPT_DISTRICT)


def _pages(c: Any, path: str) -> list[list[str]]:
    """The system ids of every page of the list, following its Next link to the end."""
    pages = []
    while path:
        r = c.get(path)
        if r.status_code == 429:  # the gateway's per-address rate limit: wait as asked, like a browser's user
            time.sleep(int(r.headers.get("Retry-After", "1")))
            continue
        assert r.status_code == 200, r.text
        pages.append(re.findall(r'<td><a href="/console/systems/([^"/]+)">', r.text))
        more = re.search(r'href="(/console/systems\?[^"]*(?:cursor|offset)=[^"]+)"', r.text)
        path = html.unescape(more.group(1)) if more else ""
    return pages


def test_the_system_list_pages_to_the_end_scoped_or_not(gw):
    ada = gw.client("ada")
    for n in range(4):  # more than one page of DEPT's systems, whatever ran before
        _create(ada, f"qlvb-trang-{n}", DEPT)
    everything = sorted(_systems(gw))
    pages = _pages(ada, "/console/systems?limit=3")
    assert len(pages) > 1 and all(len(p) <= 3 for p in pages)
    assert [s for p in pages for s in p] == everything, pages
    mine = sorted(s.id for s in _systems(gw).values() if set(s.agencies) <= {DEPT, DEPT_DISTRICT})
    pages = _pages(gw.client("sam"), "/console/systems?limit=3")
    assert len(pages) > 1 and [s for p in pages for s in p] == mine


def test_a_legacy_system_shows_its_login_organ_and_scope_never_its_token(gw):
    done = gw.cli("systems", "add", "legacy-district", "--legacy-organ", DEPT_DISTRICT, "--legacy-scope", "subtree")
    assert done.returncode == 0, done.stderr
    token = re.search(r"[A-Za-z0-9+/]{27}=", done.stdout)
    assert token, done.stdout
    ada = gw.client("ada")
    listed = ada.get("/console/systems?limit=200")
    row = next(tr for tr in re.findall(r"(?s)<tr>.*?</tr>", listed.text) if "legacy-district" in tr)
    assert DEPT_DISTRICT in text_of(row) and "chuẩn cũ" in text_of(row)
    page = text_of(ada.get("/console/systems/legacy-district").text)
    assert f"Đăng nhập chuẩn e-doc.vn cũ (OrganId) {DEPT_DISTRICT}" in page and "subtree" in page
    assert token.group(0) not in listed.text and token.group(0) not in page
