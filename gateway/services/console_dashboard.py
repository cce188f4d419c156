"""The operator console's dashboard (issue 12 item 1): today and the last 30 days of an operator's scope, the
delivery queue per channel and the delivery workers' heartbeats.

No figure is defined here. Per day, every document and delivery is judged by
:func:`gateway.tracking.facts.assess_document` / :func:`assess_delivery` exactly as the Decision-28 report
(:meth:`gateway.services.tracking.Tracking.report`) judges them, from the same store streams, attributed as the
report attributes them: a document to its sender, a delivery to its recipient, a refusal to the agency the refused
package claimed. A day's figures therefore equal the report of that day at the same ``as_of``
(``tests/test_console_dashboard.py`` checks it), while the 30 days cost ONE pass over their rows — not thirty
reports. "Open now" is :meth:`Tracking.open_judgements` itself; dead letters and waiting deliveries are the queue's
current state, as ``/metrics`` counts them (:mod:`gateway.services.gauges`), split per channel; a worker is stale
when its heartbeat is older than ``worker_stale_seconds``, as readiness judges it
(:func:`gateway.services.delivery_admin.readiness`).

Days are Vietnam calendar days (:func:`gateway.tracking.calendar.local_date`), by the document's intake time.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Final

from gateway.config import Settings
from gateway.db import ChannelQueue, Store
from gateway.services.delivery_admin import readiness
from gateway.services.gauges import WAITING
from gateway.services.tracking import Tracking
from gateway.tracking.calendar import local_date, local_start
from gateway.tracking.facts import MAILBOX, DeliveryFacts, assess_delivery, assess_document
from gateway.tracking.rules import Rule

DAYS: Final = 30
#: How long one scope's judged figures are reused (seconds).
TTL_SECONDS: Final = 60.0
#: The judged rules a delivery can breach (Rule order), then late sending (a document's).
DELIVERY_RULES: Final = tuple(r.value for r in Rule if r is not Rule.LATE_SENDING)
#: Every per-day figure, in the order the page shows them.
FIGURES: Final = (
    "received",  # documents taken in, from senders in scope (the report's "sent")
    "deliveries",  # their deliveries to recipients in scope (the report's "received")
    "delivered",
    "waiting",  # queued or fetched, not yet taken
    "failed",  # the recipient's system acknowledged "fail"
    "dead",  # dead letters
    "refused",  # intakes refused (audit), by claimed sender
    Rule.LATE_SENDING.value,
    *DELIVERY_RULES,
)
#: Delivery state → the per-day figure it counts in.
_OUTCOME: Final = {
    "queued": "waiting",
    "fetched": "waiting",
    "delivered": "delivered",
    "failed": "failed",
    "dead": "dead",
}
#: Queue states shown per channel: waiting in a mailbox / for the worker, and dead letters awaiting a re-drive.
QUEUE_STATES: Final = (*WAITING, "dead")


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class DayFigures:
    """One Vietnam day's figures (every name of :data:`FIGURES`, zeros included)."""

    day: date
    counts: dict[str, int]

    def __getitem__(self, name: str) -> int:
        return self.counts[name]


@dataclass(frozen=True)
class ChannelDepth:
    """One channel's queue now: deliveries per state of :data:`QUEUE_STATES`, and the oldest waiting one."""

    channel: str
    counts: dict[str, int]
    oldest_waiting: datetime | None

    @property
    def waiting(self) -> int:
        return sum(self.counts[s] for s in WAITING)


@dataclass(frozen=True)
class WorkerState:
    """A delivery worker as its heartbeat shows it: ``running``, ``stale`` (no beat for too long) or ``stopped``."""

    worker_id: str
    host: str
    pid: int
    started_at: datetime
    seen_at: datetime
    stopped_at: datetime | None
    state: str


@dataclass(frozen=True)
class Dashboard:
    as_of: datetime
    scope: str | None
    days: list[DayFigures]
    open_now: dict[str, int]
    queue: list[ChannelDepth]
    workers: list[WorkerState]
    #: False when push deliveries are expected and no worker's heartbeat is fresh (``/readyz``'s verdict).
    worker_ready: bool
    totals: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        totals = Counter[str]()
        for d in self.days:
            totals.update(d.counts)
        object.__setattr__(self, "totals", {name: totals.get(name, 0) for name in FIGURES})

    @property
    def today(self) -> DayFigures:
        return self.days[-1]

    @property
    def first_day(self) -> date:
        return self.days[0].day


def _may_be_open(facts: DeliveryFacts) -> bool:
    """What :meth:`Tracking.open_judgements` reads (``deliveries(waiting_only=True)``): not dead, no 06 yet."""
    return facts.state != "dead" and "06" not in facts.codes


@dataclass(frozen=True)
class Judged:
    """The judged part of a dashboard: per-day figures and the rules open now, as of one instant."""

    as_of: datetime
    days: list[DayFigures]
    open_now: dict[str, int]


class ConsoleDashboard:
    """Builds :class:`Dashboard` for an operator's scope.

    The judged figures cost one pass over the period's deliveries (about a second per 15 000 deliveries on
    SQLite, the same as the 30-day report), so they are kept per scope for ``ttl`` seconds (60 by default, as
    ``/metrics`` keeps the open counts: :class:`gateway.services.gauges.TrackingGauges`); the page shows their
    time. The queue and the workers are two indexed reads, fresh on every page.
    """

    def __init__(
        self,
        store: Store,
        tracking: Tracking,
        settings: Settings,
        *,
        ttl: float = TTL_SECONDS,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._store = store
        self._tracking = tracking
        self._settings = settings
        self._ttl = timedelta(seconds=ttl)
        self._clock = clock
        self._cache: dict[tuple[str | None, int], Judged] = {}
        self._lock = threading.Lock()

    def overview(self, *, scope: str | None = None, days: int = DAYS) -> Dashboard:
        """The last ``days`` Vietnam days up to today (included) for ``scope``; the judged figures as of at most
        ``ttl`` seconds ago (shown on the page), the queue and the workers as of now."""
        visible = self._tracking.visible(scope)
        now = self._clock()
        key = (scope, days)
        with self._lock:
            cached = self._cache.get(key)
            if cached is None or now - cached.as_of >= self._ttl or now < cached.as_of:
                cached = self._cache[key] = self.judged(visible, days=days, as_of=now)
        return Dashboard(
            as_of=cached.as_of,
            scope=scope,
            days=cached.days,
            open_now=cached.open_now,
            queue=self._queue(visible),
            workers=self._workers(now),
            worker_ready=readiness(self._store, self._settings, now=now)["worker"],
        )

    def judged(self, visible: set[str] | None, *, days: int, as_of: datetime) -> Judged:
        """The per-day figures of the ``days`` Vietnam days up to ``as_of``'s (to the second: the page shows it,
        and the same ``as_of`` gives the same figures), in ONE pass over their documents and deliveries."""
        as_of = as_of.astimezone(UTC).replace(microsecond=0)
        first = local_date(as_of) - timedelta(days=days - 1)
        dates = [first + timedelta(days=i) for i in range(days)]
        bounds = [local_start(d) for d in dates] + [local_start(dates[-1] + timedelta(days=1))]
        since, until = bounds[0], bounds[-1]
        rules = self._tracking.rules
        counts: dict[date, Counter[str]] = {d: Counter() for d in dates}
        for doc in self._store.tracking.documents(since, until, senders=visible):
            day = counts[local_date(doc.received_at)]
            day["received"] += 1
            sending = assess_document(doc, rules)
            if sending is not None and sending.breached:
                day[Rule.LATE_SENDING.value] += 1
        open_now = Counter[str]()
        for facts in self._store.tracking.deliveries(since, until, recipients=visible):
            day = counts[local_date(facts.document.received_at)]
            day["deliveries"] += 1
            day[_OUTCOME.get(facts.state, "waiting")] += 1
            waiting = _may_be_open(facts)
            for rule, judgement in assess_delivery(facts, rules, as_of).judgements.items():
                if judgement.breached:
                    day[rule.value] += 1
                if judgement.open and waiting:
                    open_now[rule.value] += 1
        for d, n in zip(dates, self._store.dashboard.refusals_by_day(bounds, organ_ids=visible), strict=True):
            counts[d]["refused"] = n
        return Judged(
            as_of=as_of,
            days=[DayFigures(d, {name: counts[d].get(name, 0) for name in FIGURES}) for d in dates],
            open_now={rule: open_now.get(rule, 0) for rule in DELIVERY_RULES},
        )

    def _queue(self, visible: set[str] | None) -> list[ChannelDepth]:
        rows: dict[str, list[ChannelQueue]] = {}
        for q in self._store.dashboard.queue(QUEUE_STATES, recipients=visible):
            rows.setdefault(q.channel or MAILBOX, []).append(q)
        out = []
        for channel in sorted(rows, key=lambda c: (c != MAILBOX, c)):
            found = rows[channel]
            per_state = Counter[str]()
            for q in found:
                per_state[q.state] += q.count
            oldest = [q.oldest for q in found if q.state in WAITING and q.oldest is not None]
            out.append(ChannelDepth(channel, {s: per_state.get(s, 0) for s in QUEUE_STATES}, min(oldest, default=None)))
        return out

    def _workers(self, now: datetime) -> list[WorkerState]:
        stale = timedelta(seconds=self._settings.worker_stale_seconds)
        out = []
        for h in self._store.workers.worker_heartbeats():
            state = "stopped" if h.stopped_at is not None else "stale" if now - h.seen_at > stale else "running"
            out.append(WorkerState(h.worker_id, h.host, h.pid, h.started_at, h.seen_at, h.stopped_at, state))
        return out


__all__ = [
    "DAYS",
    "DELIVERY_RULES",
    "FIGURES",
    "QUEUE_STATES",
    "TTL_SECONDS",
    "ChannelDepth",
    "ConsoleDashboard",
    "Dashboard",
    "DayFigures",
    "Judged",
    "WorkerState",
]
