"""The console's dead letters and re-drives (issue 12 item 1, "Dead letters and retries"), against a real gunicorn
gateway over the seeded history (tests/consolerig.py), on SQLite and PostgreSQL.

Expected rows come from the history plan (what the generator decided), states after a re-drive from the store —
never from the page under test.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from consolerig import DEPT, OTHER_DEPT, PASSWORD, ConsoleGateway, console_gateway, text_of

PUSH = ("soap", "rest", "vdxp")
LINK = re.compile(r'href="/console/deliveries/([0-9a-f]+)"')


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def gw(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, pki: Any) -> Iterator[ConsoleGateway]:
    tmp = tmp_path_factory.mktemp("console-deliveries")
    url = f"sqlite:///{tmp / 'gateway.db'}"
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_cluster").new_database()
    with console_gateway(tmp, url, pki) as gw:
        for name, scope in (("otto", DEPT), ("olga", OTHER_DEPT)):  # operators scoped to one department
            done = gw.cli("operators", "add", name, "--role", "operator", "--scope", scope, "--password-stdin",
                          stdin=PASSWORD + "\n")  # fmt: skip
            assert done.returncode == 0, done.stderr
        yield gw


def _dead(gw: ConsoleGateway, state: str = "dead") -> dict[str, str]:
    """delivery id → recipient of every delivery the plan left in ``state``."""
    return {d.delivery_id: d.recipient for doc in gw.plan.documents for d in doc.deliveries if d.state == state}


def _subtree(gw: ConsoleGateway, root: str) -> set[str]:
    children: dict[str | None, list[str]] = {}
    for a in gw.plan.agencies:
        children.setdefault(a.parent, []).append(a.organ_id)
    found, todo = set(), [root]
    while todo:
        unit = todo.pop()
        found.add(unit)
        todo += children.get(unit, [])
    return found


def _state(gw: ConsoleGateway, delivery_id: str) -> Any:
    store = gw.store()
    try:
        return store.deliveries.delivery_overview(delivery_id)
    finally:
        store.engine.dispose()


def _audit(gw: ConsoleGateway, action: str) -> list[Any]:
    store = gw.store()
    try:
        return store.audit.entries(action=action, limit=1000)
    finally:
        store.engine.dispose()


def _listed(c: Any, query: str = "") -> set[str]:
    """Every delivery id the dead-letter list shows, following its pager to the end."""
    seen: set[str] = set()
    path = "/console/dead-letters" + query
    while path:
        r = c.get(path)
        assert r.status_code == 200, r.text
        seen |= set(LINK.findall(r.text))
        more = re.search(r'href="(/console/dead-letters\?[^"]*cursor=[^"]+)"', r.text)
        path = more.group(1).replace("&amp;", "&") if more else ""
    return seen


def _untouched(gw: ConsoleGateway) -> list[str]:
    """Dead letters still dead in the store, outside both departments' subtrees (those are for the scoped
    operators' tests), in a stable order."""
    kept = _subtree(gw, DEPT) | _subtree(gw, OTHER_DEPT)
    return sorted(d for d, r in _dead(gw).items() if r not in kept and _state(gw, d).state == "dead")


def test_the_list_shows_every_dead_letter_and_only_those(gw):
    dead = _dead(gw)
    assert dead, "the seeded history has dead letters"
    c = gw.client("vera")
    first = c.get("/console/dead-letters?lang=en")
    page = text_of(c.get("/console/dead-letters").text)
    assert first.status_code == 303
    assert f"of {len(dead)} deliveries" in page
    assert _listed(c) == set(dead)
    small = c.get("/console/dead-letters?limit=5")
    assert len(set(LINK.findall(small.text))) == 5 and "cursor=" in small.text
    assert _listed(c, "?limit=5") == set(dead)  # page by page, nothing lost or repeated
    recipient = max(set(dead.values()), key=lambda r: sum(1 for x in dead.values() if x == r))
    assert _listed(c, f"?recipient={recipient}") == {d for d, r in dead.items() if r == recipient}
    assert "Re-drive" not in page  # a viewer is offered no re-drive


def test_a_scoped_viewer_sees_its_subtree_only(gw):
    dept = _subtree(gw, DEPT)
    dead, failed = _dead(gw), _dead(gw, "failed")
    assert not any(r in dept for r in dead.values()), "the seeded history has no dead letter in DEPT"
    inside = sorted(d for d, r in failed.items() if r in dept)
    assert inside and set(failed) - set(inside)
    sam = gw.client("sam")
    assert _listed(sam) == set()
    assert _listed(sam, "?state=failed") == set(inside)
    page = sam.get(f"/console/deliveries/{inside[0]}")
    assert page.status_code == 200 and failed[inside[0]] in text_of(page.text)
    assert "/redrive" not in page.text  # a viewer is offered no re-drive
    for outside in sorted(dead)[:3] + sorted(set(failed) - set(inside))[:3]:
        assert sam.get(f"/console/deliveries/{outside}").status_code == 404
    assert sam.get("/console/deliveries/not-an-id").status_code == 404
    assert sam.get(f"/console/dead-letters?recipient={OTHER_DEPT}").status_code == 403
    assert sam.get(f"/console/deliveries/{inside[0]}/redrive").status_code == 403  # a viewer, even in scope


def test_an_operator_re_drives_one_delivery_after_confirming(gw):
    target = _untouched(gw)[0]
    oscar = gw.client("oscar")
    page = oscar.get(f"/console/deliveries/{target}")
    assert f'href="/console/deliveries/{target}/redrive"' in page.text
    confirm = oscar.get(f"/console/deliveries/{target}/redrive")
    assert confirm.status_code == 200 and 'name="confirm" value="yes"' in confirm.text
    unconfirmed = oscar.post(f"/console/deliveries/{target}/redrive")
    assert unconfirmed.status_code == 400 and _state(gw, target).state == "dead"
    done = oscar.post(f"/console/deliveries/{target}/redrive", {"confirm": "yes"})
    assert done.status_code == 200 and target in done.text
    after = _state(gw, target)
    assert after.state == "queued"
    if after.channel in ("soap", "rest", "vdxp"):
        assert after.next_attempt_at is not None  # due at once for the worker
    (row,) = [e for e in _audit(gw, "console.deliveries.redrive") if e.detail.get("delivery_id") == target]
    assert row.system_id == "operator:oscar" and row.outcome == "ok" and row.detail["redriven"] == 1
    (store_row,) = [e for e in _audit(gw, "delivery.redrive") if e.detail["delivery_id"] == target]
    assert store_row.system_id == "operator:oscar" and store_row.detail["by"] == "console"


def test_a_viewer_and_a_forged_form_change_nothing(gw):
    target = _untouched(gw)[0]
    before = len(_audit(gw, "delivery.redrive"))
    vera = gw.client("vera")
    vera.get(f"/console/deliveries/{target}")
    assert vera.post(f"/console/deliveries/{target}/redrive", {"confirm": "yes"}).status_code == 403
    oscar = gw.client("oscar")
    oscar.get(f"/console/deliveries/{target}/redrive")
    for forged in ("", "not-the-token"):
        assert oscar.post(f"/console/deliveries/{target}/redrive", {"confirm": "yes"}, csrf=forged).status_code == 403
    assert _state(gw, target).state == "dead"
    assert len(_audit(gw, "delivery.redrive")) == before


def test_a_scoped_operator_re_drives_inside_its_subtree_only(gw):
    dead, other = _dead(gw), _subtree(gw, OTHER_DEPT)
    target = _untouched(gw)[0]
    otto = gw.client("otto")
    otto.get("/console/dead-letters")
    assert otto.post(f"/console/deliveries/{target}/redrive", {"confirm": "yes"}).status_code == 404
    r = otto.post("/console/dead-letters/redrive", {"recipient": dead[target], "confirm": "yes"})
    assert r.status_code == 403
    assert _state(gw, target).state == "dead"
    refused = [e for e in _audit(gw, "console.deliveries.redrive") if e.system_id == "operator:otto"]
    assert {e.outcome for e in refused} == {"NOT_FOUND", "ACCESS.DENIED"}
    mine = sorted(d for d, r in dead.items() if r in other)
    olga = gw.client("olga")
    assert _listed(olga) == set(mine)
    olga.get(f"/console/deliveries/{mine[0]}/redrive")
    assert olga.post(f"/console/deliveries/{mine[0]}/redrive", {"confirm": "yes"}).status_code == 200
    assert _state(gw, mine[0]).state == "queued"
    assert olga.post(f"/console/deliveries/{target}/redrive", {"confirm": "yes"}).status_code == 404
    assert _state(gw, target).state == "dead"


def test_re_drive_all_moves_exactly_that_recipients_dead_letters(gw):
    dead = _dead(gw)
    still = _untouched(gw)
    recipients = {dead[d] for d in still}
    recipient = max(recipients, key=lambda r: sum(1 for d in still if dead[d] == r))
    theirs = {d for d in still if dead[d] == recipient}
    others = {d for d in dead if dead[d] != recipient and _state(gw, d).state == "dead"}
    oscar = gw.client("oscar")
    listing = oscar.get(f"/console/dead-letters?recipient={recipient}")
    assert f'href="/console/dead-letters/redrive?recipient={recipient}"' in listing.text
    confirm = oscar.get(f"/console/dead-letters/redrive?recipient={recipient}")
    assert confirm.status_code == 200
    assert oscar.post("/console/dead-letters/redrive", {"recipient": recipient}).status_code == 400
    assert all(_state(gw, d).state == "dead" for d in theirs)
    done = oscar.post("/console/dead-letters/redrive", {"recipient": recipient, "confirm": "yes"})
    assert done.status_code == 200
    assert set(LINK.findall(done.text)) == theirs
    assert all(_state(gw, d).state == "queued" for d in theirs)
    assert all(_state(gw, d).state == "dead" for d in others)
    rows = _audit(gw, "console.deliveries.redrive")
    (row,) = [e for e in rows if e.detail.get("recipient") == recipient and e.system_id == "operator:oscar"]
    assert row.detail["redriven"] == len(theirs) and row.outcome == "ok"


def test_the_worker_s_attempt_after_a_re_drive_shows_in_the_attempt_log(gw):
    dead = _dead(gw)
    push = [d for d in sorted(dead) if _state(gw, d).state == "dead" and _state(gw, d).channel in PUSH]
    assert push, "the history has dead letters to push agencies"
    target = push[0]
    oscar = gw.client("oscar")
    oscar.get(f"/console/deliveries/{target}/redrive")
    assert oscar.post(f"/console/deliveries/{target}/redrive", {"confirm": "yes"}).status_code == 200
    ran = gw.cli("worker", "--once")
    assert ran.returncode == 0, ran.stderr
    store = gw.store()
    try:
        attempts = store.outbox.delivery_attempts(target)
    finally:
        store.engine.dispose()
    assert attempts, "the worker tried the re-driven delivery"
    oscar.get("/console/?lang=en")
    page = text_of(oscar.get(f"/console/deliveries/{target}").text)
    for a in attempts:
        assert a.error_code and a.error_code in page
    assert dead[target] in page
