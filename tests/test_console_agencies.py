"""The console's agency pages (issue 12 item 1, "Agencies"): the registry tree with its figures, one agency's page,
and the add / edit form — against a real gunicorn gateway over a seeded month of history (tests/consolerig.py), on
SQLite and PostgreSQL. Expected values come from the history plan, from the store, or from the admin API's own
service (``AdminTracking.agencies``) for the same period and the same ``as_of`` — never from the page's code."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import lxml.html
import pytest
from consolerig import DEPT, OTHER_DEPT, PASSWORD, ROOT, ConsoleGateway, console_gateway, text_of

from gateway.db import SignerCertificate, Store
from gateway.db.certificates import record_signer
from gateway.services.admin import AdminServices
from gateway.tracking.calendar import LOCAL_TZ, local_date, local_start

DISTRICT = "000.01.01.H53"  # level 3, under DEPT
OTHER_DISTRICT = "000.01.02.H53"  # level 3, under OTHER_DEPT
FIGURES = ("late_receipt", "not_taken", "late_sending")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def gw(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, pki: Any) -> Iterator[ConsoleGateway]:
    tmp = tmp_path_factory.mktemp("console-agencies")
    url = f"sqlite:///{tmp / 'gateway.db'}"
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_cluster").new_database()
    with console_gateway(tmp, url, pki) as gw:
        done = gw.cli("operators", "add", "dana", "--role", "admin", "--scope", DEPT, "--password-stdin",
                      stdin=PASSWORD + "\n")  # fmt: skip
        assert done.returncode == 0, done.stderr
        yield gw


def _tree(page: str) -> dict[str, tuple[str | None, str]]:
    """Each agency of the tree page → (the agency of the list item it is nested in, its data-level)."""
    doc = lxml.html.fromstring(page)
    (tree,) = doc.xpath("//ul[contains(@class, 'agency-tree')]")
    out = {}
    for li in tree.xpath(".//li[@data-organ]"):
        up = [a for a in li.iterancestors("li") if a.get("data-organ")]
        out[li.get("data-organ")] = (up[0].get("data-organ") if up else None, li.get("data-level"))
    return out


def _figure(page: str, organ: str, name: str) -> tuple[int, int] | None:
    """(count, of) of the figure ``name`` of ``organ`` as the tree shows it; None for "–"."""
    doc = lxml.html.fromstring(page)
    (cell,) = doc.xpath(f'//li[@data-organ="{organ}"]/div[@class="agency"]//dd[@class="fig-{name}"]')
    found = re.search(r"\(([\d.]+)/([\d.]+)\)", cell.text_content())
    if found is None:
        assert cell.text_content().strip() == "–", cell.text_content()
        return None
    return int(found.group(1).replace(".", "")), int(found.group(2).replace(".", ""))


def _cell(page: str, organ: str, name: str) -> Any:
    (cell,) = lxml.html.fromstring(page).xpath(
        f'//li[@data-organ="{organ}"]/div[@class="agency"]//dd[@class="fig-{name}"]'
    )
    return cell


def _store(gw: ConsoleGateway) -> Iterator[Store]:
    store = gw.store()
    try:
        yield store
    finally:
        store.engine.dispose()


def _audit(gw: ConsoleGateway, action: str) -> list[Any]:
    for store in _store(gw):
        return store.audit.entries(action=action)
    return []


def _agency(gw: ConsoleGateway, organ: str) -> Any:
    for store in _store(gw):
        return store.registry.agencies([organ]).get(organ)
    return None


def test_the_tree_nests_every_agency_under_its_parent_with_its_level(gw):
    c = gw.client("vera")
    r = c.get("/console/agencies")
    assert r.status_code == 200
    tree = _tree(r.text)
    for a in gw.plan.agencies:
        assert tree[a.organ_id] == (a.parent, str(a.level)), a.organ_id
    assert tree[ROOT][0] is None
    assert "Cây danh mục" in text_of(r.text)
    assert "Thêm cơ quan" not in r.text  # a viewer is not offered the form


def test_the_figures_are_the_admin_apis_for_the_same_period(gw):
    last = local_date(datetime.now(LOCAL_TZ))
    first = last - timedelta(days=20)
    r = gw.client("ada").get(f"/console/agencies?from={first}&to={last}")
    assert r.status_code == 200
    as_of = datetime.fromisoformat(lxml.html.fromstring(r.text).xpath("//time[@class='as-of']")[0].get("datetime"))
    since, until = local_start(first), local_start(last + timedelta(days=1))
    for store in _store(gw):
        table = AdminServices.over(store, gw.settings).tracking.agencies(since, until, as_of=as_of)
    rows = {row["organ_id"]: row for row in table.agencies}
    assert set(rows) == {a.organ_id for a in gw.plan.agencies}
    seen = {name: 0 for name in FIGURES}
    for organ, row in rows.items():
        for name in FIGURES:
            share = row["rules"][name]
            expected = (share["count"], share["of"]) if share["of"] else None
            assert _figure(r.text, organ, name) == expected, (organ, name)
            seen[name] += share["count"]
        # The signed share, worked out from the plan on its own: valid signatures of the documents it sent.
        sent = [d for d in gw.plan.documents if d.sender == organ and since <= d.received_at < until]
        signed = sum(d.signature_state == "valid" for d in sent)
        assert _figure(r.text, organ, "signed") == ((signed, len(sent)) if sent else None), organ
    assert all(seen.values()), seen  # the seeded month has late and not-taken deliveries: the check is not vacuous


def test_last_activity_channel_and_systems_per_agency(gw):
    done = gw.cli("systems", "add", "dept.docs", "--agency", DEPT, "--name", "Phần mềm QLVB")
    assert done.returncode == 0, done.stderr
    page = gw.client("oscar").get("/console/agencies").text
    for a in gw.plan.agencies:
        times = [d.received_at for d in gw.plan.documents if d.sender == a.organ_id]
        for doc in gw.plan.documents:
            for d in doc.deliveries:
                if d.recipient == a.organ_id:
                    times += [t for t in (d.fetched_at, d.acknowledged_at) if t is not None]
        shown = _cell(page, a.organ_id, "activity").xpath(".//time")
        if not times:
            assert not shown, a.organ_id
            continue
        at = datetime.fromisoformat(shown[0].get("datetime"))
        assert abs((at - max(times)).total_seconds()) < 1, a.organ_id
        assert _cell(page, a.organ_id, "channel").xpath(".//span[@class='tag']")[0].text_content() == a.channel
    assert "dept.docs" in _cell(page, DEPT, "systems").text_content()
    assert "dept.docs" not in _cell(page, OTHER_DEPT, "systems").text_content()


def test_certificate_expiry_is_the_nearest_of_the_certificates_not_renewed(gw):
    now = datetime.now(UTC).replace(microsecond=0)

    def cert(organ: str, fp: str, days: int) -> SignerCertificate:
        return SignerCertificate(organ, fp * 64, f"CN={organ}", "CN=CA", fp * 8, now - timedelta(days=300),
                                 now + timedelta(days=days, hours=1), now - timedelta(days=30), now)  # fmt: skip

    for store in _store(gw):
        with store.engine.begin() as conn:
            record_signer(conn, cert(DEPT, "a", 5))  # renewed by the next one: no longer anyone's problem
            record_signer(conn, cert(DEPT, "b", 400))
            record_signer(conn, cert(OTHER_DEPT, "c", 10))  # within the alert window
    page = gw.client("vera").get("/console/agencies").text
    dept = _cell(page, DEPT, "cert")
    assert "còn hiệu lực" in dept.text_content() and "còn 400 ngày" in dept.text_content()
    other = _cell(page, OTHER_DEPT, "cert")
    assert "sắp hết hạn" in other.text_content() and "còn 10 ngày" in other.text_content()
    assert "chưa ghi nhận" in _cell(page, ROOT, "cert").text_content()
    one = gw.client("vera").get(f"/console/agencies/{DEPT}")
    assert one.status_code == 200 and text_of(one.text).count("CN=CA") == 2


def test_one_agencys_page_shows_its_facts_and_direct_units(gw):
    r = gw.client("ada").get(f"/console/agencies/{DEPT}")
    assert r.status_code == 200
    doc = lxml.html.fromstring(r.text)
    units = {tr.get("data-organ") for tr in doc.xpath("//table[@class='units']//tr[@data-organ]")}
    assert units == {a.organ_id for a in gw.plan.agencies if a.parent == DEPT}
    text = text_of(r.text)
    assert DEPT in text and ROOT in text  # its parent
    assert doc.xpath(f'//a[@href="/console/agencies/{DEPT}/edit"]')
    assert gw.client("ada").get("/console/agencies/000.00.99.H53").status_code == 404


def test_an_admin_adds_a_level_4_unit_under_a_district_and_edits_it(gw):
    c = gw.client("ada")
    assert c.get(f"/console/new-agency?parent={DISTRICT}").status_code == 200
    form = {
        "organ_id": "009.01.01.H53",
        "name": "UBND xã số 9",
        "parent": DISTRICT,
        "channel": "rest",
        "endpoint": "https://xa9.example.vn/edoc",
        "signature_policy": "require",
        "active": "true",
        "contact_email": "vanthu@xa9.example.vn",
    }
    r = c.post("/console/new-agency", form)
    assert r.status_code == 303 and r.headers["Location"] == "/console/agencies/009.01.01.H53?saved=1"
    a = _agency(gw, "009.01.01.H53")
    assert (a.level, a.parent, a.channel, a.endpoint, a.signature_policy, a.contact_email) == (
        4, DISTRICT, "rest", "https://xa9.example.vn/edoc", "require", "vanthu@xa9.example.vn"
    )  # fmt: skip
    assert _tree(c.get("/console/agencies").text)["009.01.01.H53"] == (DISTRICT, "4")
    (entry,) = [e for e in _audit(gw, "console.agencies.add") if e.detail["organ_id"] == "009.01.01.H53"]
    assert entry.outcome == "ok" and entry.system_id == "operator:ada" and entry.detail["parent"] == DISTRICT
    assert entry.organ_id == "009.01.01.H53"  # the indexed column too

    c.get("/console/agencies/009.01.01.H53/edit")
    edit = {**form, "channel": "mailbox", "endpoint": "", "contact_email": "", "name": "UBND xã Chín"}
    edit.pop("organ_id")
    r = c.post("/console/agencies/009.01.01.H53/edit", edit)
    assert r.status_code == 303
    a = _agency(gw, "009.01.01.H53")
    assert (a.name, a.channel, a.endpoint, a.contact_email, a.signature_policy) == (
        "UBND xã Chín", "mailbox", None, None, "require"
    )  # fmt: skip
    (entry,) = [e for e in _audit(gw, "console.agencies.edit") if e.detail["organ_id"] == "009.01.01.H53"]
    assert set(entry.detail["changed"]) == {"name", "channel", "endpoint", "contact_email"}


@pytest.mark.parametrize(
    ("form", "expected"),
    [
        ({"organ_id": "000.09.01.H53", "parent": "000.00.09.H53"}, ["parent 000.00.09.H53 is not registered"]),
        ({"organ_id": "008.01.01.H53", "parent": DEPT}, ["a unit is exactly one level below its parent"]),
        ({"organ_id": "000.00.00.H54", "parent": ROOT}, ["a unit is exactly one level below its parent"]),
        ({"organ_id": "008.01.01.H53", "channel": "soap", "endpoint": "ftp://xa8.example.vn/"}, ["not an http://"]),
        ({"organ_id": "008.01.01.H53", "channel": "soap"}, ["channel soap needs an endpoint"]),
        ({"organ_id": "not an id!"}, ["is not an agency identifier"]),
        (
            {"organ_id": "bad id", "endpoint": "javascript:alert(1)", "contact_email": "nobody", "name": ""},
            ["is not an agency identifier", "not an http://", "not an e-mail address", "name is required"],
        ),
        ({"organ_id": DISTRICT}, ["already registered"]),
    ],
)
def test_refused_inputs_come_back_with_every_problem_and_store_nothing(gw, form, expected):
    c = gw.client("ada")
    c.get("/console/new-agency")
    for store in _store(gw):
        before = store.counts()
        registry_before = store.registry.list_agencies()
    r = c.post("/console/new-agency", {"name": "Đơn vị thử", "channel": "mailbox", **form})
    assert r.status_code == 400
    text = text_of(r.text)
    assert "Chưa lưu gì" in text
    for words in expected:
        assert words in text, (words, text)
    for store in _store(gw):
        counts = store.counts()
        assert {k: v for k, v in counts.items() if k != "audit_log"} == {
            k: v for k, v in before.items() if k != "audit_log"
        }
        assert store.registry.list_agencies() == registry_before
    assert _audit(gw, "console.agencies.add")[0].outcome == "refused"


def test_an_edit_is_validated_the_same_way(gw):
    c = gw.client("ada")
    c.get(f"/console/agencies/{OTHER_DISTRICT}/edit")
    before = _agency(gw, OTHER_DISTRICT)
    r = c.post(f"/console/agencies/{OTHER_DISTRICT}/edit", {"name": "X", "channel": "soap", "endpoint": ""})
    assert r.status_code == 400 and "channel soap needs an endpoint" in text_of(r.text)
    r = c.post(f"/console/agencies/{OTHER_DISTRICT}/edit", {"name": "X", "parent": "000.00.03.H53", "channel": "x"})
    assert r.status_code == 400 and "channel must be one of" in text_of(r.text)
    assert _agency(gw, OTHER_DISTRICT) == before
    # A unit is moved to another registered parent one level up: the tree follows.
    r = c.post(f"/console/agencies/{OTHER_DISTRICT}/edit", {"name": before.name, "parent": "000.00.03.H53",
                                                            "channel": before.channel, "active": "true",
                                                            "endpoint": before.endpoint or ""})  # fmt: skip
    assert r.status_code == 303
    assert _tree(c.get("/console/agencies").text)[OTHER_DISTRICT] == ("000.00.03.H53", "3")
    c.get(f"/console/agencies/{OTHER_DISTRICT}/edit")
    c.post(f"/console/agencies/{OTHER_DISTRICT}/edit", {"name": before.name, "parent": OTHER_DEPT, "channel":
                                                        before.channel, "active": "true",
                                                        "endpoint": before.endpoint or ""})  # fmt: skip
    assert _agency(gw, OTHER_DISTRICT).parent == OTHER_DEPT


@pytest.mark.parametrize("who", ["vera", "oscar", "sam"])
def test_viewers_and_operators_cannot_add_or_edit(gw, who):
    c = gw.client(who)
    assert c.get("/console/new-agency").status_code == 403
    assert (
        c.post("/console/new-agency", {"organ_id": "007.01.01.H53", "name": "x", "parent": DISTRICT}).status_code == 403
    )
    assert c.get(f"/console/agencies/{DEPT}/edit").status_code == 403
    assert c.post(f"/console/agencies/{DEPT}/edit", {"name": "taken over"}).status_code == 403
    assert _agency(gw, "007.01.01.H53") is None and _agency(gw, DEPT).name != "taken over"


def test_a_scoped_viewer_sees_only_its_subtree_and_guessing_another_is_not_found(gw):
    c = gw.client("sam")
    r = c.get("/console/agencies")
    assert r.status_code == 200
    tree = _tree(r.text)
    subtree = {DEPT} | {a.organ_id for a in gw.plan.agencies if a.organ_id.endswith(".01.H53") and a.level > 2}
    assert {a for a in tree if a in {p.organ_id for p in gw.plan.agencies}} == subtree
    assert tree[DEPT][0] is None  # its scope is the root of its tree
    assert c.get(f"/console/agencies/{DEPT}").status_code == 200
    for guessed in (OTHER_DEPT, ROOT, OTHER_DISTRICT, "000.00.99.H53"):
        r = c.get(f"/console/agencies/{guessed}")
        assert r.status_code == 404, guessed
        assert "Không tìm thấy trang" in text_of(r.text)


def test_a_scoped_admin_adds_and_edits_only_inside_its_subtree(gw):
    c = gw.client("dana")
    c.get("/console/new-agency")
    r = c.post("/console/new-agency", {"organ_id": "006.01.01.H53", "name": "Xã 6", "channel": "mailbox"})
    assert r.status_code == 303 and _agency(gw, "006.01.01.H53").parent == DISTRICT  # the parent its code names
    c.get("/console/new-agency")
    r = c.post("/console/new-agency", {"organ_id": "006.01.02.H53", "name": "Xã 6", "channel": "mailbox"})
    assert r.status_code == 400 and "outside your scope" in text_of(r.text)
    r = c.post("/console/new-agency", {"organ_id": "000.00.08.H53", "name": "Sở", "parent": ROOT, "channel": "mailbox"})
    assert r.status_code == 400 and "outside your scope" in text_of(r.text)
    assert _agency(gw, "006.01.02.H53") is None and _agency(gw, "000.00.08.H53") is None
    # Out of its subtree: not found, as for a viewer; moving a unit out of it, or moving its root: refused.
    assert c.get(f"/console/agencies/{OTHER_DISTRICT}/edit").status_code == 404
    r = c.post(f"/console/agencies/{OTHER_DISTRICT}/edit", {"name": "taken over", "channel": "mailbox"})
    assert r.status_code == 404 and _agency(gw, OTHER_DISTRICT).name != "taken over"
    c.get("/console/agencies/006.01.01.H53/edit")
    r = c.post("/console/agencies/006.01.01.H53/edit", {"name": "Xã 6", "parent": OTHER_DISTRICT, "channel": "mailbox"})
    assert r.status_code == 400 and _agency(gw, "006.01.01.H53").parent == DISTRICT
    r = c.post(f"/console/agencies/{DEPT}/edit", {"name": "Sở", "parent": "000.00.00.H54", "channel": "mailbox"})
    assert r.status_code == 400 and "root of your scope" in text_of(r.text)
    assert _agency(gw, DEPT).parent == ROOT


def test_a_bad_period_is_said_and_the_default_period_shown(gw):
    c = gw.client("vera")
    r = c.get("/console/agencies?from=2026-05-01&to=2026-04-01")
    assert r.status_code == 400 and "Kỳ không hợp lệ" in text_of(r.text)
    assert _tree(r.text)[ROOT][0] is None
    today = local_date(datetime.now(LOCAL_TZ))
    assert f'value="{today - timedelta(days=29)}"' in r.text and f'value="{today}"' in r.text
    assert isinstance(today, date)
