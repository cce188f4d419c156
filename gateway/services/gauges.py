"""The delivery queue as scrape-time gauges (a :data:`gateway.metrics.GaugeSource`; gateway.md "Delivery").

What an operator alerts on: deliveries waiting in mailboxes that nobody fetches (``queued``) or acknowledges
(``fetched``), and for how long — ``edoc_deliveries{state,age}`` with the age since intake in buckets
``lt_5m``, ``lt_1h``, ``lt_1d``, ``ge_1d`` (every combination is reported, zeros included, so a series never
vanishes); dead letters waiting for a re-drive (``edoc_dead_letters``); push deliveries due now that no worker
holds (``edoc_outbox_due``) and how late the oldest of them is (``edoc_outbox_due_oldest_seconds``: a growing
value with a non-zero count means no delivery worker is draining the outbox — or, with ``edoc_peers_failing``
non-zero, that a peer's circuit breaker holds its deliveries back: ``edoc-gateway deliveries peers`` says which).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Final

from gateway.db import Store
from gateway.metrics import ScrapeGauge
from gateway.services.tracking import Tracking

#: Mailbox states a delivery waits in (at-least-once: FETCHED stays until acknowledged).
WAITING: Final = ("queued", "fetched")
#: Age buckets, by upper bound; the last bucket is everything older.
AGE_BUCKETS: Final = (("lt_5m", timedelta(minutes=5)), ("lt_1h", timedelta(hours=1)), ("lt_1d", timedelta(days=1)))
OLDEST_BUCKET: Final = "ge_1d"


def _utcnow() -> datetime:
    return datetime.now(UTC)


class QueueGauges:
    """``edoc_deliveries``, ``edoc_dead_letters``, ``edoc_outbox_due*`` from three indexed queries per scrape."""

    def __init__(self, store: Store, clock: Callable[[], datetime] | None = None) -> None:
        self._store = store
        self._clock = clock or _utcnow

    def __call__(self) -> list[ScrapeGauge]:
        now = self._clock()
        due = self._store.gauges.outbox_due(now)
        failing = self._store.gauges.failing_peers()
        return [
            self._waiting(now),
            ScrapeGauge(
                "edoc_dead_letters",
                "Deliveries dead-lettered and not re-driven.",
                values={(): float(self._store.gauges.count_in_state("dead"))},
            ),
            ScrapeGauge(
                "edoc_outbox_due",
                "Push deliveries due now that no worker holds.",
                values={(): float(due.count)},
            ),
            ScrapeGauge(
                "edoc_peers_failing",
                "Peers whose circuit breaker is open (deliveries wait) or probing (one delivery is out), by state.",
                ("state",),
                {(state,): float(failing.get(state, 0)) for state in ("open", "probing")},
            ),
            ScrapeGauge(
                "edoc_outbox_due_oldest_seconds",
                "How long the earliest due push delivery has been due (0 when none is).",
                values={(): max(0.0, (now - due.oldest).total_seconds()) if due.oldest else 0.0},
            ),
        ]

    def _waiting(self, now: datetime) -> ScrapeGauge:
        cutoffs = [now - bound for _name, bound in AGE_BUCKETS]
        values: dict[tuple[str, ...], float] = {}
        for counts in self._store.gauges.waiting(WAITING, cutoffs):
            # ``since`` is cumulative (created at or after each cutoff): a bucket is the difference to the one before.
            younger = 0
            for (name, _bound), since in zip(AGE_BUCKETS, counts.since, strict=True):
                values[(counts.state, name)] = float(since - younger)
                younger = since
            values[(counts.state, OLDEST_BUCKET)] = float(counts.total - younger)
        return ScrapeGauge(
            "edoc_deliveries",
            "Deliveries waiting in mailboxes, by state (queued, fetched) and age since intake.",
            ("state", "age"),
            values,
        )


class TrackingGauges:
    """``edoc_tracking_open{rule}``: deliveries whose rule deadline has passed with the event still missing.

    The same judgement as alerts and the report (:meth:`gateway.services.tracking.Tracking.open_counts`). It reads
    every delivery of the last 90 days that may still be open, so it is computed at most once per ``ttl`` seconds
    per process and served from memory in between: Prometheus scrapes every 15–60 s, and a minute-old count of
    late deliveries is as actionable as a fresh one.
    """

    def __init__(self, tracking: Tracking, ttl: float = 60.0, clock: Callable[[], datetime] | None = None) -> None:
        self._tracking = tracking
        self._ttl = timedelta(seconds=ttl)
        self._clock = clock or _utcnow
        self._cached: tuple[datetime, dict[str, int]] | None = None
        self._lock = threading.Lock()

    def __call__(self) -> list[ScrapeGauge]:
        now = self._clock()
        with self._lock:
            if self._cached is None or now - self._cached[0] >= self._ttl:
                self._cached = (now, self._tracking.open_counts(as_of=now))
            counts = self._cached[1]
        return [
            ScrapeGauge(
                "edoc_tracking_open",
                "Deliveries a tracking rule is open for: deadline passed, event still missing (docs/tracking.md).",
                ("rule",),
                {(rule,): float(n) for rule, n in counts.items()},
            )
        ]


__all__ = ["AGE_BUCKETS", "OLDEST_BUCKET", "WAITING", "QueueGauges", "TrackingGauges"]
