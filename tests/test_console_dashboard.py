"""The console's dashboard (issue 12 item 1): every figure shown equals one computed independently — from the
seeded history's plan (what was written), from the Decision-28 report of the same day at the same ``as_of``, and
from ``Tracking.open_judgements`` — for an unscoped viewer and for one scoped to a department; the charts are SVG
with one bar per non-zero (day, series) and one point per day and series; English works; render time printed."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from consolerig import DEPT, ConsoleGateway, console_gateway, text_of
from lxml import html as lxml_html

from gateway.db import WorkerHeartbeat
from gateway.demo.history_model import HistoryPlan
from gateway.services.console_dashboard import ConsoleDashboard
from gateway.services.tracking import Tracking
from gateway.tracking.calendar import local_date, local_start
from gateway.tracking.settings import rules_from

STALE_AFTER = 60  # worker_stale_seconds' default


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def gw(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, pki: Any) -> Iterator[ConsoleGateway]:
    tmp = tmp_path_factory.mktemp("dashboard")
    url = f"sqlite:///{tmp / 'gateway.db'}"
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_cluster").new_database()
    with console_gateway(tmp, url, pki) as gw:
        now = datetime.now(UTC)
        store = gw.store()
        try:
            for worker_id, seen, stopped in (
                ("w-running", now, None),
                ("w-stale", now - timedelta(seconds=10 * STALE_AFTER), None),
                ("w-stopped", now - timedelta(hours=2), now - timedelta(hours=2)),
            ):
                store.workers.beat(WorkerHeartbeat(worker_id, "node-1", 4242, now - timedelta(days=1), seen, stopped))
        finally:
            store.engine.dispose()
        yield gw


# ---------------------------------------------------------------------------------------------- reading the page


def _page(gw: ConsoleGateway, who: str, lang: str = "vi") -> tuple[str, Any]:
    c = gw.client(who)
    assert c.get(f"/console/?lang={lang}").status_code == 303
    r = c.get("/console/")
    assert r.status_code == 200, r.text[:500]
    return r.text, lxml_html.fromstring(r.text)


def _int(text: str) -> int:
    return int(re.sub(r"[.,\s]", "", text))


def _shown(doc: Any) -> dict[str, Any]:
    """The page's figures: per day, the summary columns, the queue per channel, the links."""
    days = {
        date.fromisoformat(tr.get("data-day")): {
            td.get("data-figure"): _int(td.text_content()) for td in tr.xpath("td")
        }
        for tr in doc.xpath("//table[@id='days']/tbody/tr")
    }
    summary = {
        tr.get("data-figure"): {
            td.get("data-col"): _int(td.text_content()) if td.text_content().strip() else None for td in tr.xpath("td")
        }
        for tr in doc.xpath("//table[@id='summary']/tbody/tr")
    }
    queue = {
        tr.get("data-channel"): {td.get("data-state"): _int(td.text_content()) for td in tr.xpath("td[@data-state]")}
        for tr in doc.xpath("//table[@id='queue']/tbody/tr")
    }
    cards = {div.get("data-figure"): _int(div.xpath("div[@class='value']")[0].text_content()) for div in
             doc.xpath("//div[@data-figure]")}  # fmt: skip
    as_of = datetime.fromisoformat(doc.xpath("//*[@id='as-of']")[0].get("data-as-of"))
    return {"days": days, "summary": summary, "queue": queue, "cards": cards, "as_of": as_of}


# ---------------------------------------------------------------------------------------------- expectations


def _subtree(plan: HistoryPlan, scope: str | None) -> set[str] | None:
    if scope is None:
        return None
    children: dict[str, list[str]] = {}
    for a in plan.agencies:
        if a.parent:
            children.setdefault(a.parent, []).append(a.organ_id)
    seen, todo = set(), [scope]
    while todo:
        current = todo.pop()
        seen.add(current)
        todo += children.get(current, [])
    return seen


def _planned(plan: HistoryPlan, visible: set[str] | None) -> dict[date, Counter[str]]:
    """Per Vietnam day of intake, what the generator wrote: documents, deliveries by state, refusals."""
    inside = (lambda organ: True) if visible is None else (lambda organ: organ in visible)
    out: dict[date, Counter[str]] = {}
    outcome = {"queued": "waiting", "fetched": "waiting", "delivered": "delivered", "failed": "failed", "dead": "dead"}
    for doc in plan.documents:
        day = out.setdefault(local_date(doc.received_at), Counter())
        day["received"] += inside(doc.sender)
        for d in doc.deliveries:
            if inside(d.recipient):
                day["deliveries"] += 1
                day[outcome[d.state]] += 1
    for refusal in plan.refusals:
        if visible is None or refusal.organ_id in visible:
            out.setdefault(local_date(refusal.at), Counter())["refused"] += 1
    return out


def _reported(gw: ConsoleGateway, first: date, last: date, as_of: datetime, scope: str | None) -> dict[str, int]:
    """The Decision-28 report of [first, last] at ``as_of``: the figures the dashboard shares with it."""
    store = gw.store()
    try:
        report = Tracking(store, rules_from(gw.settings)).report(
            local_start(first), local_start(last + timedelta(days=1)), as_of=as_of, scope=scope
        )
    finally:
        store.engine.dispose()
    total = report.grand_total.to_dict()
    figures = {"received": total["sent"], "deliveries": total["received"], "dead": total["dead_letters"]}
    figures["refused"] = sum(total["refusals"].values())
    figures |= {rule: share["count"] for rule, share in total["rules"].items()}
    return figures


def _open_now(gw: ConsoleGateway, since: date, as_of: datetime, scope: str | None) -> Counter[str]:
    store = gw.store()
    try:
        tracking = Tracking(store, rules_from(gw.settings))
        judged = tracking.open_judgements(since=local_start(since), as_of=as_of, scope=scope)
        return Counter(rule.value for _a, rule in judged)
    finally:
        store.engine.dispose()


# ---------------------------------------------------------------------------------------------- tests


@pytest.mark.parametrize(("who", "scope"), [("vera", None), ("sam", DEPT)])
def test_every_figure_equals_the_plan_the_report_and_the_open_judgements(gw, who, scope):
    _text, doc = _page(gw, who)
    shown = _shown(doc)
    as_of, days = shown["as_of"], shown["days"]
    today = local_date(as_of)
    assert sorted(days) == [today - timedelta(days=n) for n in range(29, -1, -1)]
    planned = _planned(gw.plan, _subtree(gw.plan, scope))
    for day, figures in days.items():
        expected = planned.get(day, Counter())
        for name in ("received", "deliveries", "delivered", "waiting", "failed", "dead", "refused"):
            assert figures[name] == expected[name], (day, name)
        reported = _reported(gw, day, day, as_of, scope)
        assert {k: figures[k] for k in reported} == reported, day
    assert sum(d["deliveries"] for d in days.values()) > 0 and sum(d["not_taken"] for d in days.values()) > 0
    period = _reported(gw, min(days), today, as_of, scope)
    for name, row in shown["summary"].items():
        assert row["today"] == days[today][name], name
        assert row["period"] == sum(d[name] for d in days.values()), name
        if name in period:
            assert row["period"] == period[name], name
    opened = _open_now(gw, min(days), as_of, scope)
    for rule in ("late_receipt", "not_taken", "not_registered", "overdue"):
        assert shown["summary"][rule]["open"] == opened[rule], rule
    assert sum(opened.values()) > 0
    assert shown["cards"] == {name: days[today][name] for name in shown["cards"]}


@pytest.mark.parametrize(("who", "scope"), [("vera", None), ("sam", DEPT)])
def test_the_queue_per_channel_counts_what_waits_and_what_is_dead_in_scope(gw, who, scope):
    _text, doc = _page(gw, who)
    visible = _subtree(gw.plan, scope)
    expected: dict[str, Counter[str]] = {}
    for d in (d for document in gw.plan.documents for d in document.deliveries):
        if d.state in ("queued", "fetched", "dead") and (visible is None or d.recipient in visible):
            expected.setdefault(d.channel, Counter())[d.state] += 1
    shown = _shown(doc)["queue"]
    assert shown == {ch: {s: c[s] for s in ("queued", "fetched", "dead")} for ch, c in expected.items()}
    assert expected, "the seeded history has something waiting"


def test_a_scoped_viewer_sees_only_its_subtree(gw):
    everything = _shown(_page(gw, "vera")[1])
    department = _shown(_page(gw, "sam")[1])
    for name in ("received", "deliveries"):
        assert 0 < department["summary"][name]["period"] < everything["summary"][name]["period"], name
    text = text_of(_page(gw, "sam")[0])
    assert DEPT in text


def test_the_charts_are_svg_with_a_bar_per_value_and_a_point_per_day(gw):
    _text, doc = _page(gw, "vera")
    days = _shown(doc)["days"]
    volume = doc.xpath("//figure[@id='chart-volume']/*[local-name()='svg']")
    lateness = doc.xpath("//figure[@id='chart-lateness']/*[local-name()='svg']")
    assert len(volume) == 1 and len(lateness) == 1
    bars = volume[0].xpath(".//*[local-name()='rect'][*[local-name()='title']]")
    expected = sum(1 for d in days.values() for name in ("delivered", "waiting", "failed", "dead") if d[name])
    assert len(bars) == expected > 0
    heights = Counter(bar.xpath("*[local-name()='title']")[0].text.rsplit(": ", 1)[1] for bar in bars)
    assert sum(float(v) * n for v, n in heights.items()) == sum(d["deliveries"] for d in days.values())
    points = lateness[0].xpath(".//*[local-name()='circle']")
    assert len(points) == 3 * 30
    assert len(lateness[0].xpath(".//*[local-name()='polyline']")) == 3


def test_each_figure_links_to_the_page_that_lists_it(gw):
    _text, doc = _page(gw, "vera")
    shown = _shown(doc)
    first, today = min(shown["days"]), local_date(shown["as_of"])
    links = {tr.get("data-figure"): [a.get("href") for a in tr.xpath("td/a")] for tr in
             doc.xpath("//table[@id='summary']/tbody/tr")}  # fmt: skip
    period = f"from={first.isoformat()}&to={today.isoformat()}"
    assert f"/console/documents?{period}&flag=not_taken" in links["not_taken"]
    assert f"/console/documents?{period}&flag=not_taken%3Aopen" in links["not_taken"]
    assert f"/console/documents?{period}&state=delivered" in links["delivered"]
    assert "/console/dead-letters" in links["dead"]
    assert not links["refused"], "no page lists refusals one by one"


def test_the_workers_show_their_last_heartbeat_and_whether_they_are_stale(gw):
    _text, doc = _page(gw, "vera", "en")
    states = {tr.get("data-worker"): tr.xpath(".//span[@data-state]")[0].get("data-state") for tr in
              doc.xpath("//table[@id='workers']/tbody/tr")}  # fmt: skip
    assert states == {"w-running": "running", "w-stale": "stale", "w-stopped": "stopped"}


def test_the_dashboard_speaks_english_and_vietnamese(gw):
    english = text_of(_page(gw, "vera", "en")[0])
    for words in ("Dashboard", "Late receipt", "Not taken", "Queue by channel", "Delivery workers", "Open now"):
        assert words in english, words
    vietnamese = text_of(_page(gw, "vera", "vi")[0])
    for words in ("Tổng quan", "Chậm báo đã nhận", "Chưa nhận về", "Hàng đợi theo kênh", "Đang tồn đọng"):
        assert words in vietnamese, words


def test_render_time_is_printed(gw, capsys):
    """Pages reuse one scope's judged figures for a minute; the cold figure is the service's own pass."""
    c = gw.client("oscar")
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        assert c.get("/console/").status_code == 200
        timings.append(time.perf_counter() - started)
    store = gw.store()
    try:
        service = ConsoleDashboard(store, Tracking(store, rules_from(gw.settings)), gw.settings, ttl=0)
        started = time.perf_counter()
        service.overview()
        cold = time.perf_counter() - started
    finally:
        store.engine.dispose()
    deliveries = sum(len(d.deliveries) for d in gw.plan.documents)
    with capsys.disabled():
        pages = ", ".join(f"{t * 1000:.0f} ms" for t in timings)
        size = f"{len(gw.plan.documents)} documents, {deliveries} deliveries"
        print(f"\ndashboard ({size}): pages {pages}; figures computed cold {cold * 1000:.0f} ms")
