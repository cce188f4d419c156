"""What happens to each delivery of a planned history: transport (taken on time, late, never; dead letters) and the
status events the receiving unit reports (its feedback profile), with the slips the report must catch.

Shares of the slips are rough orders of magnitude of what operators see (a few % never taken, ~10 % late
acknowledgements, ~12 % registered late or never, some overdue); they are not calibrated statistics.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta

from gateway.demo.history_model import HistorySpec, PlannedAgency, PlannedDelivery, PlannedStatus
from gateway.tracking.calendar import WorkingCalendar, local, local_at, local_date, local_start

MAILBOX = "mailbox"
#: Feedback profiles: the codes a unit reports itself (it may still skip some on a given document).
PROFILES: dict[str, tuple[str, ...]] = {
    "full": ("01", "03", "04", "05", "06"),
    "partial": ("01", "03", "04", "06"),
    "few": ("01", "03"),
    "ack-only": ("01",),
    "none": (),
}
#: Units of other axes answer like a partial one.
_EXTERNAL_PROFILE = "partial"


def _minutes(rng: random.Random, low: float, high: float) -> timedelta:
    return timedelta(seconds=rng.uniform(low * 60, high * 60))


def plan_deliveries(
    rng: random.Random,
    spec: HistorySpec,
    calendar: WorkingCalendar,
    agencies: Mapping[str, PlannedAgency],
    recipients: Sequence[str],
    received_at: datetime,
    due: date | None,
) -> tuple[PlannedDelivery, ...]:
    out = []
    for recipient in recipients:
        unit = agencies.get(recipient)
        channel = unit.channel if unit is not None else "vdxp"
        delivery_id = uuid.UUID(int=rng.getrandbits(128), version=4).hex
        intent: set[str] = set()
        if channel == MAILBOX:
            state, fetched, acked = _mailbox(rng, received_at, intent)
        else:
            state, fetched, acked = _push(rng, received_at, intent)
        statuses: list[PlannedStatus] = []
        if state == "fetched" and fetched is not None:
            if "01" in _codes(unit) and rng.random() < 0.5:  # read it, said so, never acknowledged the transport
                statuses.append(PlannedStatus("01", fetched + _minutes(rng, 1, 40)))
        elif state == "delivered" and acked is not None:
            available = received_at if channel == MAILBOX else acked
            statuses = _statuses(rng, calendar, unit, channel, acked, due, intent, available, spec.progress_updates)
        planned = PlannedDelivery(
            delivery_id, recipient, channel, state, received_at, fetched, acked, tuple(statuses), frozenset(intent)
        )
        out.append(_cut(planned, spec.looked_at))
    return tuple(out)


def _codes(unit: PlannedAgency | None) -> tuple[str, ...]:
    return PROFILES[unit.profile if unit is not None else _EXTERNAL_PROFILE]


def _mailbox(rng: random.Random, created: datetime, intent: set[str]) -> tuple[str, datetime | None, datetime | None]:
    """(state, fetched_at, acknowledged_at): ≈ 4 % never fetched, 3 % fetched never acknowledged, 10 % late."""
    r = rng.random()
    if r < 0.04:
        intent.add("never_taken")
        return "queued", None, None
    if r < 0.07:
        intent.add("never_taken")
        return "fetched", created + _minutes(rng, 2, 180), None
    if r < 0.09:  # right at the 30-minute line, either side: where an off-by-one would show
        acked = created + timedelta(minutes=30, seconds=rng.uniform(-5, 5))
    elif r < 0.17:
        intent.add("late_ack")
        acked = created + _minutes(rng, 31, 3 * 24 * 60)
    else:
        acked = created + _minutes(rng, 1, 28)
    fetched = max(created, acked - timedelta(seconds=rng.uniform(1, 90)))
    return ("failed" if rng.random() < 0.02 else "delivered"), fetched, acked


def _push(rng: random.Random, created: datetime, intent: set[str]) -> tuple[str, datetime | None, datetime | None]:
    """A pushed delivery: ≈ 5 % dead letters, 8 % accepted after retries (late), the rest within two minutes."""
    r = rng.random()
    if r < 0.05:
        intent.add("dead")  # the retry budget (72 h by default) ran out; the gateway records when
        return "dead", None, created + timedelta(hours=72, seconds=rng.uniform(0, 3600))
    if r < 0.13:
        intent.add("late_ack")
        return "delivered", None, created + _minutes(rng, 31, 8 * 60)
    return "delivered", None, created + timedelta(seconds=rng.uniform(1, 120))


def _statuses(
    rng: random.Random,
    calendar: WorkingCalendar,
    unit: PlannedAgency | None,
    channel: str,
    taken: datetime,
    due: date | None,
    intent: set[str],
    available: datetime,
    progress_updates: int,
) -> list[PlannedStatus]:
    codes = _codes(unit)
    events: list[PlannedStatus] = []
    if unit is not None and unit.emits_01_on_ack and channel == MAILBOX:
        events.append(PlannedStatus("01", taken, by_gateway=True))
        intent.add("gateway_01")
    if "01" in codes and (unit is None or not unit.emits_01_on_ack or rng.random() < 0.3):
        r = rng.random()
        late = r < 0.1
        t01 = taken + (_minutes(rng, 61, 2 * 24 * 60) if late else _minutes(rng, 0.3, 45))
        if late:
            intent.add("late_01")
        elif r < 0.13 and channel == MAILBOX:  # right at the hour after it became available, either side
            t01 = max(taken, available + timedelta(minutes=60, seconds=rng.uniform(-5, 5)))
        events.append(PlannedStatus("01", t01))
        if rng.random() < 0.03:  # sent again later: only the first counts
            events.append(PlannedStatus("01", t01 + _minutes(rng, 60, 5 * 24 * 60)))
    if rng.random() < 0.02:
        intent.add("refused")
        return [*events, PlannedStatus("02", taken + _minutes(rng, 10, 2 * 24 * 60))]
    t03 = _registered(rng, calendar, codes, taken, intent)
    if t03 is None:
        return events
    events.append(PlannedStatus("03", t03))
    events += _processing(rng, codes, t03, due, intent, progress_updates)
    return events


def _registered(
    rng: random.Random, calendar: WorkingCalendar, codes: tuple[str, ...], taken: datetime, intent: set[str]
) -> datetime | None:
    """Registered (03) within office hours of the day it came or the next working day; ≈ 12 % late or never."""
    if "03" not in codes or (len(codes) == 2 and rng.random() < 0.3):
        return None
    day = local_date(taken)
    if rng.random() < 0.12:
        intent.add("not_registered")
        if rng.random() < 0.5:
            return None
        for _ in range(rng.randint(2, 4)):
            day = calendar.next_working_day(day)
        return local_at(day, rng.randint(8, 15)) + _minutes(rng, 0, 59)
    candidate = taken + _minutes(rng, 10, 180)
    if local_date(candidate) != day or not calendar.is_working_day(day) or local(candidate).hour >= 17:
        candidate = local_at(calendar.next_working_day(day), rng.randint(7, 10)) + _minutes(rng, 30, 59)
    return candidate


def _processing(
    rng: random.Random, codes: tuple[str, ...], t03: datetime, due: date | None, intent: set[str], progress_updates: int
) -> list[PlannedStatus]:
    """04 assigned, 05 in progress (once or a few times), 06 done (before the due date, after it, or never);
    rarely a recall (15)."""
    events = []
    at = t03
    if "04" in codes and rng.random() < 0.9:
        at += _minutes(rng, 30, 2 * 24 * 60)
        events.append(PlannedStatus("04", at))
    if "05" in codes and rng.random() < 0.9:
        for _ in range(rng.randint(1, progress_updates)):  # "in progress" is often reported more than once
            at += _minutes(rng, 30, 2 * 24 * 60)
            events.append(PlannedStatus("05", at))
    if rng.random() < 0.005:
        intent.add("recalled")
        return [*events, PlannedStatus("15", at + _minutes(rng, 60, 24 * 60))]
    if "06" not in codes or rng.random() < 0.1:
        if due is not None:
            intent.add("overdue")
        return events
    if due is None:
        events.append(PlannedStatus("06", at + _minutes(rng, 24 * 60, 15 * 24 * 60)))
        return events
    end = local_start(due + timedelta(days=1))
    if rng.random() < 0.78 and end > at:
        events.append(PlannedStatus("06", at + (end - at) * rng.uniform(0.1, 0.99)))
    else:
        intent.add("overdue")
        events.append(PlannedStatus("06", max(at, end) + _minutes(rng, 60, 10 * 24 * 60)))
    return events


def _cut(d: PlannedDelivery, now: datetime) -> PlannedDelivery:
    """What is recorded by ``now``: later events have not happened yet."""
    statuses = tuple(sorted((s for s in d.statuses if s.at <= now), key=lambda s: (s.at, s.code)))
    fetched, acked, state = d.fetched_at, d.acknowledged_at, d.state
    if acked is not None and acked > now:  # not acknowledged, accepted or dead-lettered yet
        acked = None
        state = "queued" if d.channel != MAILBOX else "fetched"
    if fetched is not None and fetched > now:
        fetched = None
        state = "queued"
    return PlannedDelivery(
        d.delivery_id, d.recipient, d.channel, state, d.created_at, fetched, acked, statuses, d.intent
    )


__all__ = ["MAILBOX", "PROFILES", "plan_deliveries"]
