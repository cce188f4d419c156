"""Counts for the scrape-time gauges of ``/metrics`` (:mod:`gateway.services.gauges`): the delivery queue by
state and age, dead letters, and the push outbox.

Computed from the database at each scrape rather than kept as in-process gauges, because only the database
knows the truth across gunicorn workers, delivery workers and restarts. Each is one statement over an index, so
a scrape every 15 s costs little even with a large backlog:

* waiting deliveries: ``deliveries (state, created_at)`` — a range over the two waiting states, one row per state,
  the age buckets as conditional sums (no GROUP BY over a computed bucket: PostgreSQL would see the bucket's bound
  parameters in SELECT and GROUP BY as different expressions);
* dead letters: the same index, one state;
* the outbox: ``outbox (next_attempt_at)`` — due rows and the earliest due time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, case, func, literal, or_, select

from gateway.db import tables as t
from gateway.db.connections import Repository

_d, _o = t.deliveries, t.outbox


@dataclass(frozen=True)
class WaitingCounts:
    """Deliveries of one state: how many were created at or after each cutoff (same order as asked), and all."""

    state: str
    since: tuple[int, ...]
    total: int


@dataclass(frozen=True)
class OutboxDue:
    """Push deliveries due now and not leased by a worker, and the earliest due time among them."""

    count: int
    oldest: datetime | None


class GaugeRepository(Repository):
    """``store.gauges``."""

    def waiting(self, states: Sequence[str], cutoffs: Sequence[datetime]) -> list[WaitingCounts]:
        """Per state in ``states``: the deliveries created at or after each of ``cutoffs``, and their total."""
        sums = [func.sum(case((_d.c.created_at >= literal(c, _d.c.created_at.type), 1), else_=0)) for c in cutoffs]
        query = select(_d.c.state, func.count(), *sums).where(_d.c.state.in_(list(states))).group_by(_d.c.state)
        with self._db.read() as conn:
            rows = conn.execute(query).all()
        found = {row[0]: WaitingCounts(row[0], tuple(int(n or 0) for n in row[2:]), int(row[1])) for row in rows}
        return [found.get(s, WaitingCounts(s, (0,) * len(cutoffs), 0)) for s in states]

    def count_in_state(self, state: str) -> int:
        with self._db.read() as conn:
            return conn.execute(select(func.count()).select_from(_d).where(_d.c.state == state)).scalar_one()

    def outbox_due(self, now: datetime) -> OutboxDue:
        """Rows whose attempt is due and that no live lease holds (what a worker would claim now)."""
        query = select(func.count(), func.min(_o.c.next_attempt_at)).where(
            and_(_o.c.next_attempt_at <= now, or_(_o.c.lease_until.is_(None), _o.c.lease_until < now))
        )
        with self._db.read() as conn:
            count, oldest = conn.execute(query).one()
        return OutboxDue(int(count), oldest)

    def failing_peers(self) -> dict[str, int]:
        """Peers whose circuit is not closed, per state (``open``, ``probing``; :mod:`gateway.db.circuits`)."""
        c = t.peer_circuits
        query = select(c.c.state, func.count()).where(c.c.state != "closed").group_by(c.c.state)
        with self._db.read() as conn:
            return {state: int(n) for state, n in conn.execute(query).all()}


__all__ = ["GaugeRepository", "OutboxDue", "WaitingCounts"]
