"""Aggregated refusals (``refusal_counts``): floods counted, not logged row by row (issue 10).

A refusal is recorded under its key — (window start, source address, claimed system, code) — as a counter with the
first and last time. The first refusal of a key also writes its ``audit_log`` row, in the same transaction, so the
audit trail never loses the first one and grows by at most one row per key and window, however many follow. The
same counters are the authentication throttle's shared state (:meth:`RefusalRepository.total`): every gunicorn
worker, and every gateway on the same database, sees the failures the others counted.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from gateway.db import tables as t
from gateway.db.audit import insert_audit
from gateway.db.connections import Repository
from gateway.db.records import AuditEntry


class RefusalRepository(Repository):
    """``store.refusals``."""

    def record(
        self,
        window_start: datetime,
        source: str,
        principal: str,
        code: str,
        at: datetime,
        *,
        count: int = 1,
        audit: AuditEntry | None = None,
    ) -> bool:
        """Add ``count`` refusals to the key's counter; True when this created it (and wrote ``audit``)."""
        key = {"window_start": window_start, "source": source[:64], "principal": principal[:64], "code": code[:40]}
        with self._db.write() as conn:
            if _bump(conn, key, count, at):
                return False
        try:
            with self._db.write() as conn:
                conn.execute(insert(t.refusal_counts).values(**key, count=count, first_at=at, last_at=at))
                if audit is not None:
                    insert_audit(conn, audit)
        except IntegrityError:
            # Another worker created the key between our UPDATE and INSERT: add to its row.
            with self._db.write() as conn:
                _bump(conn, key, count, at)
            return False
        return True

    def total(
        self, since: datetime, codes: Collection[str], *, source: str | None = None, principal: str | None = None
    ) -> int:
        """Refusals with one of ``codes`` in windows starting at or after ``since``, for a source or a principal."""
        r = t.refusal_counts
        query = select(func.coalesce(func.sum(r.c.count), 0)).where(
            r.c.window_start >= since, r.c.code.in_(sorted(codes))
        )
        if source is not None:
            query = query.where(r.c.source == source[:64])
        if principal is not None:
            query = query.where(r.c.principal == principal[:64])
        with self._db.read() as conn:
            return int(conn.execute(query).scalar_one())

    def rows(self, *, limit: int = 100) -> list[dict[str, object]]:
        """The newest counters (operators, tests)."""
        r = t.refusal_counts
        with self._db.read() as conn:
            query = select(r).order_by(r.c.last_at.desc(), r.c.id.desc()).limit(limit)
            return [dict(row) for row in conn.execute(query).mappings()]

    def prune(self, before: datetime) -> int:
        """Forget counters of windows that started before ``before``."""
        with self._db.write() as conn:
            return conn.execute(delete(t.refusal_counts).where(t.refusal_counts.c.window_start < before)).rowcount


def _bump(conn: Connection, key: dict[str, object], count: int, at: datetime) -> bool:
    r = t.refusal_counts
    matches = [r.c[name] == value for name, value in key.items()]
    statement = update(r).where(*matches).values(count=r.c.count + count, last_at=at)
    return conn.execute(statement).rowcount > 0


__all__ = ["RefusalRepository"]
