"""Alerts (``alerts``): the de-duplication record of the alert rounds, and the lease that keeps rounds single.

One row per (rule, subject, state): ``UNIQUE(rule, subject_key, state_key)`` turns "raise" into an
``INSERT … ON CONFLICT DO NOTHING``, so a condition that persists is raised once, and two rounds racing to raise
the same alert store it once. ``notified_at`` is set when every channel took the alert; ``resolved_at`` when the
condition cleared.

The same table holds the round lease (:meth:`AlertRepository.acquire_round`): one reserved row
(:data:`LEASE_RULE`), taken by a conditional UPDATE, so that among any number of workers and ``alerts run``
processes on one database at most one round runs at a time (no migration needed for a lock table). Every read of
alerts leaves that row out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select, update

from gateway.db import tables as t
from gateway.db.certificates import insert_ignoring_duplicates
from gateway.db.connections import Repository
from gateway.db.paging import RowPage, SortKey, keyset_page
from gateway.db.records import from_row, to_values

_a = t.alerts
#: The reserved row of the round lease (never an alert: every query leaves it out).
LEASE_RULE, _LEASE_SUBJECT, _LEASE_STATE = "_round_lease", "alerts", "lease"
_NOT_LEASE = _a.c.rule != LEASE_RULE
#: Newest first; the id (an integer key) breaks ties.
_NEWEST = (SortKey(_a.c.raised_at, "raised_at", descending=True), SortKey(_a.c.id, "id", descending=True))


@dataclass(frozen=True)
class NewAlert:
    """An alert to raise (if no alert of the same rule, subject and state exists)."""

    rule: str
    subject_key: str
    state_key: str
    raised_at: datetime
    organ_id: str | None = None
    doc_id: str | None = None
    delivery_id: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.rule, self.subject_key, self.state_key)


@dataclass(frozen=True)
class AlertRecord:
    id: int
    rule: str
    subject_key: str
    state_key: str
    organ_id: str | None
    doc_id: str | None
    delivery_id: str | None
    raised_at: datetime
    notified_at: datetime | None
    resolved_at: datetime | None
    detail: Mapping[str, Any] | None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.rule, self.subject_key, self.state_key)


class AlertRepository(Repository):
    """``store.alerts``."""

    def raise_alerts(self, alerts: Iterable[NewAlert]) -> int:
        """Insert the alerts not raised before (one transaction); returns how many were new.

        An alert of the same key that was resolved earlier is re-opened, not raised again: its notification
        already went out once for this state.
        """
        new = 0
        with self._db.write() as conn:
            for alert in alerts:
                values = {**to_values(alert), "detail": dict(alert.detail)}
                statement = insert_ignoring_duplicates(conn, _a, ["rule", "subject_key", "state_key"])
                # preserve_rowcount: without it SQLAlchemy 2.1 answers -1 for an INSERT on PostgreSQL (psycopg),
                # and every repeat would count as new (tests/test_alert_repository.py)
                inserted = conn.execute(statement.values(**values), execution_options={"preserve_rowcount": True})
                if inserted.rowcount > 0:
                    new += 1
                    continue
                conn.execute(update(_a).where(_key(alert.key), _a.c.resolved_at.is_not(None)).values(resolved_at=None))
        return new

    def open_alerts(self) -> list[AlertRecord]:
        """Alerts whose condition has not cleared, oldest first."""
        query = select(_a).where(_NOT_LEASE, _a.c.resolved_at.is_(None)).order_by(_a.c.raised_at, _a.c.id)
        with self._db.read() as conn:
            return [_alert(r) for r in conn.execute(query).mappings()]

    def recent(self, since: datetime, *, limit: int = 1000) -> list[AlertRecord]:
        """Alerts raised since ``since`` or still open, newest first (``alerts list``)."""
        query = (
            select(_a)
            .where(_NOT_LEASE, or_(_a.c.raised_at >= since, _a.c.resolved_at.is_(None)))
            .order_by(_a.c.raised_at.desc(), _a.c.id.desc())
            .limit(limit)
        )
        with self._db.read() as conn:
            return [_alert(r) for r in conn.execute(query).mappings()]

    def recent_page(
        self, since: datetime, *, after: Sequence[Any] | None, offset: int, limit: int
    ) -> RowPage[AlertRecord]:
        """One page of :meth:`recent` (newest first, by :func:`gateway.db.paging.keyset_page`) with the count of
        all (``alerts list``: it stopped at 1000 without saying so)."""
        query = select(_a).where(_NOT_LEASE, or_(_a.c.raised_at >= since, _a.c.resolved_at.is_(None)))
        with self._db.read() as conn:
            found = keyset_page(conn, query, _NEWEST, after=after, offset=offset, limit=limit)
        return found.converted(_alert)

    def resolve(self, ids: Iterable[int], at: datetime) -> int:
        return self._set(ids, resolved_at=at)

    def mark_notified(self, ids: Iterable[int], at: datetime) -> int:
        return self._set(ids, notified_at=at)

    def _set(self, ids: Iterable[int], **values: datetime) -> int:
        chosen = sorted(set(ids))
        if not chosen:
            return 0
        with self._db.write() as conn:
            return conn.execute(update(_a).where(_a.c.id.in_(chosen), _NOT_LEASE).values(**values)).rowcount

    # ------------------------------------------------------------------------------------ the round lease

    def acquire_round(self, holder: str, now: datetime, stale: timedelta) -> bool:
        """Take the round lease if it is free, or held for longer than ``stale`` (its holder died mid-round).

        The conditional UPDATE is the mutex: on PostgreSQL a concurrent taker waits for the row lock, then
        re-checks the condition against the winner's row and updates nothing; SQLite serialises writers.
        """
        lease = {"rule": LEASE_RULE, "subject_key": _LEASE_SUBJECT, "state_key": _LEASE_STATE}
        with self._db.write() as conn:
            free = {**lease, "raised_at": now - stale, "resolved_at": now, "notified_at": now, "detail": {}}
            conn.execute(insert_ignoring_duplicates(conn, _a, list(lease)).values(**free))
            taken = conn.execute(
                update(_a)
                .where(
                    _key((LEASE_RULE, _LEASE_SUBJECT, _LEASE_STATE)),
                    or_(_a.c.resolved_at.is_not(None), _a.c.raised_at < now - stale),
                )
                .values(raised_at=now, resolved_at=None, detail={"holder": holder[:200]})
            )
        return taken.rowcount == 1

    def release_round(self, taken_at: datetime, now: datetime) -> None:
        """Free the lease taken at ``taken_at`` (a lease taken over by someone else since is left alone)."""
        with self._db.write() as conn:
            conn.execute(
                update(_a)
                .where(_key((LEASE_RULE, _LEASE_SUBJECT, _LEASE_STATE)), _a.c.raised_at == taken_at)
                .values(resolved_at=now)
            )


def _key(key: tuple[str, str, str]) -> ColumnElement[bool]:
    rule, subject, state = key
    return and_(_a.c.rule == rule, _a.c.subject_key == subject, _a.c.state_key == state)


def _alert(row: Mapping[str, Any]) -> AlertRecord:
    return from_row(AlertRecord, row)


__all__ = ["LEASE_RULE", "AlertRecord", "AlertRepository", "NewAlert"]
