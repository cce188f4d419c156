"""The Decision-28 report against figures worked out independently, on SQLite and PostgreSQL.

A seeded history (:mod:`gateway.demo.history`: a province's registry at levels 1–4, a few hundred documents over
Tết 2026) is written into a migrated database; the expected report is computed here from the generator's plan —
the rules written again, straightforwardly, from their definitions (gateway.tracking.rules/facts/report
docstrings), with a hard-coded 2026 holiday list — and compared with ``Tracking.report`` figure by figure. Nothing
of gateway.tracking.facts/report/calendar is used by the expectation.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gateway.db import Store, create_engine, upgrade
from gateway.demo.history_model import HistoryPlan, HistorySpec, PlannedDelivery, PlannedDocument
from gateway.demo.history_store import generate_history
from gateway.services.tracking import Tracking
from gateway.tracking.calendar import WorkingCalendar
from gateway.tracking.rules import TimingRules

VN = ZoneInfo("Asia/Ho_Chi_Minh")
# Vietnam's 2026 days off (Labour Code art. 112 + the Government's 2026 decisions): Tết Mon 16 – Fri 20 Feb (the
# weekends around it are off anyway), Hùng Kings observed Mon 27 Apr, 30 Apr, 1 May, National Day 31 Aug – 2 Sep
# with Saturday 22 Aug worked instead of Monday 31 Aug, and Vietnam Culture Day 24 Nov.
DAYS_OFF_2026 = {
    date(2026, 1, 1),
    *(date(2026, 2, d) for d in range(16, 21)),
    date(2026, 4, 27),
    date(2026, 4, 30),
    date(2026, 5, 1),
    date(2026, 8, 31),
    date(2026, 9, 1),
    date(2026, 9, 2),
    date(2026, 11, 24),
}
WORKED_SATURDAYS_2026 = {date(2026, 8, 22)}
SINCE = datetime(2026, 2, 1, tzinfo=VN).astimezone(UTC)  # Sunday 1 Feb 00:00 local
UNTIL = datetime(2026, 3, 7, tzinfo=VN).astimezone(UTC)  # to Friday 6 Mar inclusive: Tết in the middle
SPEC = HistorySpec(seed=2026, since=SINCE, until=UNTIL, documents=360, departments=5, districts=2, communes=2)
SEND_NOON, URGENT_HOURS, RECEIPT_MIN, TAKEN_MIN = 12, 24, 60, 30
SIGNATURE_GROUPS = ("valid", "legacy-placeholder", "unsigned")


# ------------------------------------------------------------------------------------------- the rules, again


def working(day: date) -> bool:
    assert day.year == 2026, f"the test's calendar knows 2026 only, asked about {day}"
    if day in WORKED_SATURDAYS_2026:
        return True
    return day.weekday() < 5 and day not in DAYS_OFF_2026


def next_working(day: date) -> date:
    day += timedelta(days=1)
    while not working(day):
        day += timedelta(days=1)
    return day


def midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=VN)


def local_day(at: datetime) -> date:
    return at.astimezone(VN).date()


def send_deadline(doc: PlannedDocument) -> datetime:
    assert doc.promulgation_date is not None
    if doc.priority in (1, 2, 3, 4):
        return midnight(doc.promulgation_date) + timedelta(hours=URGENT_HOURS)
    return midnight(next_working(doc.promulgation_date)) + timedelta(hours=SEND_NOON)


def register_deadline(available: datetime, priority: int | None) -> datetime:
    day = local_day(available)
    if priority in (1, 2, 3, 4):
        while not working(day):
            day += timedelta(days=1)
    else:
        day = next_working(day)
    return midnight(day + timedelta(days=1))


def nearest_rank(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def bucket(n: int) -> str:
    return "5+" if n >= 5 else "3-4" if n >= 3 else "1-2" if n >= 1 else "0"


class Tally:
    """The figures of one agency (or subtree), kept as plain counts."""

    def __init__(self) -> None:
        self.n: Counter[str] = Counter()
        self.lat: dict[str, list[float]] = {"t01": [], "t03": [], "t06": []}
        self.feedback: dict[str, set[str]] = {}
        self.active: dict[str, int | None] = {}
        self.refusals: Counter[str] = Counter()

    def add(self, other: Tally) -> None:
        self.n.update(other.n)
        for k, v in other.lat.items():
            self.lat[k] += v
        for unit, codes in other.feedback.items():
            self.feedback.setdefault(unit, set()).update(codes)
        self.active.update(other.active)
        self.refusals.update(other.refusals)

    def expected(self) -> dict[str, Any]:
        n = self.n

        def share(count: int, of: int) -> dict[str, Any]:
            return {"count": count, "of": of, "percent": round(100.0 * count / of, 2) if of else None}

        rules = {"late_sending": share(n["late_sending"], n["send_judged"])}
        for rule in ("late_receipt", "not_taken", "not_registered", "overdue"):
            rules[rule] = share(n[f"{rule}.breached"], n[f"{rule}.judged"])
        feedback = Counter(bucket(len(codes)) for codes in self.feedback.values())
        levels = Counter(self.active.values())
        return {
            "sent": n["sent"],
            "received": n["received"],
            "signatures": {s: share(n[f"sig.{s}"], n["sent"]) for s in (*SIGNATURE_GROUPS, "other")},
            "rules": rules,
            "dead_letters": n["dead"],
            "latency_seconds": {
                k: {"count": len(v), "median": nearest_rank(v, 0.5), "p90": nearest_rank(v, 0.9)}
                for k, v in self.lat.items()
            },
            "feedback_units": {b: feedback.get(b, 0) for b in ("5+", "3-4", "1-2", "0")},
            "active_units_by_level": {str(level): levels.get(level, 0) for level in (2, 3, 4)},
            "refusals": dict(sorted(self.refusals.items())),
        }


def judge(t: Tally, rule: str, deadline: datetime, done: datetime | None, as_of: datetime) -> None:
    t.n[f"{rule}.judged"] += 1
    t.n[f"{rule}.breached"] += (done > deadline) if done is not None else (as_of > deadline)


def tally_document(t: Tally, doc: PlannedDocument, level: int | None) -> None:
    t.n["sent"] += 1
    t.n[f"sig.{doc.signature_state if doc.signature_state in SIGNATURE_GROUPS else 'other'}"] += 1
    if doc.promulgation_date is not None:
        t.n["send_judged"] += 1
        t.n["late_sending"] += doc.received_at > send_deadline(doc)
    t.active[doc.sender] = level


def tally_delivery(t: Tally, doc: PlannedDocument, d: PlannedDelivery, level: int | None, as_of: datetime) -> None:
    t.n["received"] += 1
    first = {}
    for s in sorted(d.statuses, key=lambda s: s.at):
        first.setdefault(s.code, s.at)
    available = d.created_at if d.channel == "mailbox" else (d.acknowledged_at if d.state == "delivered" else None)
    taken = d.acknowledged_at if d.state in ("delivered", "failed") else None
    judge(t, "not_taken", d.created_at + timedelta(minutes=TAKEN_MIN), taken, as_of)
    if available is not None:
        judge(t, "late_receipt", available + timedelta(minutes=RECEIPT_MIN), first.get("01"), as_of)
        registered = min((first[c] for c in ("02", "03") if c in first), default=None)
        judge(t, "not_registered", register_deadline(available, doc.priority), registered, as_of)
        for code, name in (("01", "t01"), ("03", "t03"), ("06", "t06")):
            if code in first:
                t.lat[name].append(max(0.0, (first[code] - available).total_seconds()))
    if doc.due_date is not None and not ({"02", "15"} & set(first)):
        judge(t, "overdue", midnight(doc.due_date + timedelta(days=1)), first.get("06"), as_of)
    t.n["dead"] += d.state == "dead"
    t.feedback.setdefault(d.recipient, set()).update(s.code for s in d.statuses if not s.by_gateway)
    t.active[d.recipient] = level


def expected_report(plan: HistoryPlan, since: datetime, until: datetime, as_of: datetime) -> dict[str, Any]:
    """{organ_id: {"own", "total"}} for every registered agency, plus "(external)" and "(total)"."""
    levels = {a.organ_id: a.level for a in plan.agencies}
    own: dict[str, Tally] = defaultdict(Tally)
    external = "(external)"
    for doc in plan.documents:
        if not since <= doc.received_at < until:
            continue
        tally_document(own[doc.sender if doc.sender in levels else external], doc, levels.get(doc.sender))
        for d in doc.deliveries:
            key = d.recipient if d.recipient in levels else external
            tally_delivery(own[key], doc, d, levels.get(d.recipient), as_of)
    for r in plan.refusals:
        if since <= r.at < until:
            own[r.organ_id if r.organ_id in levels else external].refusals[r.code] += 1
    children: dict[str | None, list[str]] = defaultdict(list)
    for a in plan.agencies:
        children[a.parent].append(a.organ_id)

    def total(organ_id: str) -> Tally:
        t = Tally()
        t.add(own[organ_id])
        for child in children[organ_id]:
            t.add(total(child))
        return t

    out = {
        a.organ_id: {"own": own[a.organ_id].expected(), "total": total(a.organ_id).expected()} for a in plan.agencies
    }
    grand = Tally()
    for top in children[None]:
        grand.add(total(top))
    grand.add(own[external])
    out[external] = own[external].expected()
    out["(total)"] = grand.expected()
    return out


# -------------------------------------------------------------------------------------------------- fixtures


@pytest.fixture
def history(database_url: str) -> Iterator[tuple[Store, HistoryPlan]]:
    upgrade(database_url)
    store = Store(create_engine(database_url))
    plan = generate_history(store, SPEC)
    yield store, plan
    store.engine.dispose()


def tracking(store: Store) -> Tracking:
    return Tracking(store, TimingRules(calendar=WorkingCalendar()), clock=lambda: SPEC.looked_at)


def assert_matches(report: dict[str, Any], expected: dict[str, Any], plan: HistoryPlan) -> None:
    rows = {row["organ_id"]: row for row in report["agencies"]}
    assert set(rows) == {a.organ_id for a in plan.agencies}
    for a in plan.agencies:
        row = rows[a.organ_id]
        assert (row["parent"], row["level"], row["depth"]) == (a.parent, a.level, a.level - 1)
        assert row["own"] == expected[a.organ_id]["own"], f"{a.organ_id} own"
        assert row["total"] == expected[a.organ_id]["total"], f"{a.organ_id} total"
    assert report["external"] == expected["(external)"]
    assert report["total"] == expected["(total)"]


# --------------------------------------------------------------------------------------------------- tests


def test_the_report_matches_figures_worked_out_from_the_plan(history: tuple[Store, HistoryPlan]) -> None:
    store, plan = history
    as_of = SPEC.looked_at
    report = tracking(store).report(SINCE, UNTIL, as_of=as_of).to_dict()
    expected = expected_report(plan, SINCE, UNTIL, as_of)
    assert_matches(report, expected, plan)

    # The history exercises every figure: a test that compares zeros with zeros proves nothing.
    total = report["total"]
    assert total["sent"] == len(plan.documents) and total["received"] > 2.5 * total["sent"]
    assert all(total["rules"][rule]["count"] > 0 for rule in total["rules"]), total["rules"]
    assert total["dead_letters"] > 0 and all(v > 0 for v in total["feedback_units"].values())
    assert all(total["signatures"][s]["count"] > 0 for s in SIGNATURE_GROUPS)
    assert report["external"]["sent"] > 0 and report["external"]["received"] > 0 and report["external"]["refusals"]
    assert {d.priority for d in plan.documents} >= {None, 0, 1, 2, 3, 4}
    assert any(local_day(d.received_at) in DAYS_OFF_2026 for d in plan.documents), "nothing taken in during Tết"
    assert sum(1 for r in plan.refusals if not SINCE <= r.at < UNTIL) > 0, "no refusal outside the period"


def test_a_shorter_period_and_an_earlier_look_count_only_what_they_cover(history: tuple[Store, HistoryPlan]) -> None:
    store, plan = history
    since = datetime(2026, 2, 12, tzinfo=VN).astimezone(UTC)
    until = datetime(2026, 2, 26, tzinfo=VN).astimezone(UTC)
    report = tracking(store).report(since, until).to_dict()
    assert report["as_of"] == SPEC.looked_at.isoformat()
    expected = expected_report(plan, since, until, SPEC.looked_at)
    assert_matches(report, expected, plan)
    assert 0 < report["total"]["sent"] < len(plan.documents)


def test_the_report_is_the_same_every_time_and_per_agency_equals_its_subtree(
    history: tuple[Store, HistoryPlan],
) -> None:
    store, plan = history
    service = tracking(store)
    first = service.report(SINCE, UNTIL).to_dict()
    assert service.report(SINCE, UNTIL).to_dict() == first
    full = {row["organ_id"]: row for row in first["agencies"]}
    department = next(a for a in plan.agencies if a.level == 2 and full[a.organ_id]["total"]["received"])
    for depth in (None, 1):
        single = service.report(SINCE, UNTIL, agency=department.organ_id, depth=depth).to_dict()
        rows = single["agencies"]
        assert rows[0]["organ_id"] == department.organ_id and rows[0]["depth"] == 0
        assert {r["depth"] for r in rows} == ({0, 1} if depth == 1 else {0, 1, 2})
        for row in rows:
            whole = full[row["organ_id"]]
            assert row["depth"] == whole["depth"] - 1
            assert (row["own"], row["total"]) == (whole["own"], whole["total"]), row["organ_id"]
        assert single["total"] == full[department.organ_id]["total"]
        assert single["external"]["sent"] == single["external"]["received"] == 0
