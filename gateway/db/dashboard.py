"""Counts for the operator console's dashboard (``store.dashboard``; issue 12 item 1) that no other repository
answers in one statement: the delivery queue per channel, and refused intakes per day.

Both are one statement over an index, whatever the number of days or channels:

* the queue: ``deliveries (state, created_at)`` (or ``(recipient, state, created_at)`` for a scoped operator),
  grouped by channel and state — the same states ``/metrics`` counts (:mod:`gateway.db.gauges`), split by channel;
* refusals: ``audit_log (at)`` over the whole period, one conditional sum per day (bounds computed by the caller
  in Vietnam time, so no database needs to know the time zone, and SQLite and PostgreSQL give the same days).
  The rows and the claimed agency are those :meth:`gateway.db.tracking.TrackingRepository.refusals` reads for the
  report, so a day's count equals that day's report total.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, case, func, literal, select

from gateway.db import tables as t
from gateway.db.connections import Repository

_d, _a = t.deliveries, t.audit_log


@dataclass(frozen=True)
class ChannelQueue:
    """Deliveries of one channel in one state: how many, and the creation time of the oldest."""

    channel: str | None
    state: str
    count: int
    oldest: datetime | None


class DashboardRepository(Repository):
    """``store.dashboard``."""

    def queue(self, states: Sequence[str], *, recipients: Collection[str] | None = None) -> list[ChannelQueue]:
        """Deliveries in ``states`` (to ``recipients`` only, when given) per (channel, state), in that order."""
        query = (
            select(_d.c.channel, _d.c.state, func.count(), func.min(_d.c.created_at))
            .where(_d.c.state.in_(list(states)))
            .group_by(_d.c.channel, _d.c.state)
        )
        if recipients is not None:
            query = query.where(_d.c.recipient.in_(sorted(recipients)))
        with self._db.read() as conn:
            rows = conn.execute(query).all()
        found = [ChannelQueue(channel, state, int(n), oldest) for channel, state, n, oldest in rows]
        return sorted(found, key=lambda q: (q.channel or "", list(states).index(q.state)))

    def refusals_by_day(self, bounds: Sequence[datetime], *, organ_ids: Collection[str] | None = None) -> list[int]:
        """Refused intakes in each [bounds[i], bounds[i+1]) (claimed sending agency in ``organ_ids``, if given)."""
        if len(bounds) < 2:
            return []
        at = _a.c.at
        sums = [
            func.sum(case((and_(at >= literal(lo, at.type), at < literal(hi, at.type)), 1), else_=0))
            for lo, hi in itertools.pairwise(bounds)
        ]
        query = select(*sums).where(_a.c.action == "intake.refused", at >= bounds[0], at < bounds[-1])
        if organ_ids is not None:
            query = query.where(_a.c.organ_id.in_(sorted(organ_ids)))
        with self._db.read() as conn:
            row = conn.execute(query).one()
        return [int(n or 0) for n in row]


__all__ = ["ChannelQueue", "DashboardRepository"]
