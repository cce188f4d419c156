"""The audit log (``audit_log``): who did what to which document, and refusals.

Most audit rows are written inside the transaction of the change they describe (:func:`insert_audit`, called by
the other repositories); :meth:`AuditRepository.add` is for the ones that stand alone — a refusal stores nothing
else, so its audit row is its whole transaction.
"""

from __future__ import annotations

from sqlalchemy import Connection, insert, select

from gateway.db import tables as t
from gateway.db.connections import Repository
from gateway.db.records import AuditEntry, from_row, to_values

_INSERT_AUDIT = insert(t.audit_log)


class AuditRepository(Repository):
    """``store.audit``."""

    def add(self, entry: AuditEntry) -> None:
        """An audit row in its own transaction (refusals: nothing else is stored)."""
        with self._db.write() as conn:
            insert_audit(conn, entry)

    def entries(self, *, action: str | None = None, limit: int = 100) -> list[AuditEntry]:
        """Newest first."""
        a = t.audit_log
        query = select(a).order_by(a.c.id.desc()).limit(limit)
        if action is not None:
            query = query.where(a.c.action == action)
        with self._db.read() as conn:
            return [from_row(AuditEntry, r) for r in conn.execute(query).mappings()]


def insert_audit(conn: Connection, entry: AuditEntry) -> None:
    """The audit row of ``entry``, inside the caller's transaction."""
    detail = dict(entry.detail) if entry.detail is not None else None
    conn.execute(_INSERT_AUDIT, {**to_values(entry), "detail": detail})


__all__ = ["AuditRepository", "insert_audit"]
