"""The one definition of tracking judgements (gateway.tracking.facts), on hand-made facts: what is available,
taken, registered, and how a rule is breached or open at a moment — including a back-dated moment."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from gateway.tracking.calendar import WorkingCalendar
from gateway.tracking.facts import DeliveryFacts, DocumentFacts, assess_delivery, feedback_bucket, percentile
from gateway.tracking.rules import Rule, TimingRules

RULES = TimingRules(calendar=WorkingCalendar())
#: Tuesday 2026-03-03 09:00 in Vietnam.
T0 = datetime(2026, 3, 3, 2, 0, tzinfo=UTC)


def facts(**kw) -> DeliveryFacts:
    doc = DocumentFacts(
        "d1", "000.00.00.G22", "G22,2026/03/03,1/VP", T0, "valid", priority=0, due_date=kw.pop("due", None)
    )
    values = {"state": "queued", "channel": "mailbox", **kw}
    return DeliveryFacts(delivery_id="x1", document=doc, recipient="000.00.00.H53", created_at=T0, **values)


def test_an_event_recorded_after_as_of_was_not_known_then():
    f = facts(state="delivered", acknowledged_at=T0 + timedelta(minutes=5), first_01=T0 + timedelta(hours=2))
    before = assess_delivery(f, RULES, T0 + timedelta(minutes=90)).judgements[Rule.LATE_RECEIPT]
    after = assess_delivery(f, RULES, T0 + timedelta(hours=3)).judgements[Rule.LATE_RECEIPT]
    assert (before.breached, before.open, before.done_at) == (True, True, None)
    assert (after.breached, after.open, after.done_at) == (True, False, T0 + timedelta(hours=2))
    on_time = assess_delivery(f, RULES, T0 + timedelta(minutes=30)).judgements[Rule.LATE_RECEIPT]
    assert (on_time.breached, on_time.open) == (False, False)


def test_fetching_is_not_taking_and_push_is_available_only_once_accepted():
    fetched = assess_delivery(
        facts(state="fetched", fetched_at=T0 + timedelta(minutes=1)), RULES, T0 + timedelta(hours=1)
    )
    assert fetched.taken_at is None and fetched.open(Rule.NOT_TAKEN) and fetched.available_at == T0
    pushed = assess_delivery(facts(channel="soap"), RULES, T0 + timedelta(hours=1))
    assert pushed.available_at is None and set(pushed.judgements) == {Rule.NOT_TAKEN}


def test_registration_counts_a_refusal_and_overdue_ends_with_a_refusal():
    f = facts(
        state="delivered",
        acknowledged_at=T0,
        first_02=T0 + timedelta(hours=1),
        codes=frozenset({"02"}),
        due=date(2026, 3, 4),
    )
    a = assess_delivery(f, RULES, T0 + timedelta(days=10))
    assert a.registered_at == T0 + timedelta(hours=1) and not a.breached(Rule.NOT_REGISTERED)
    assert Rule.OVERDUE not in a.judgements
    late = assess_delivery(facts(due=date(2026, 3, 4)), RULES, T0 + timedelta(days=10))
    assert late.open(Rule.OVERDUE) and late.judgements[Rule.OVERDUE].deadline == datetime(2026, 3, 4, 17, 0, tzinfo=UTC)


def test_buckets_and_nearest_rank_percentiles():
    assert [feedback_bucket(n) for n in (0, 1, 2, 3, 4, 5, 9)] == ["0", "1-2", "1-2", "3-4", "3-4", "5+", "5+"]
    values = [10.0, 1.0, 7.0, 3.0, 5.0]
    assert (percentile(values, 0.5), percentile(values, 0.9), percentile([], 0.5)) == (5.0, 10.0, None)
    assert percentile([4.0, 1.0], 0.5) == 1.0  # nearest rank: a real value, never an interpolation
