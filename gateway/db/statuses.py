"""Status history (``status_history``): every business status (01–16) reported for a (document, recipient) pair.

Rows are written with the status document that carries them (:func:`insert_status`, inside
:func:`gateway.db.documents.insert_document`'s transaction) and never updated: the history is kept as it arrived,
out-of-order rows flagged, not reordered (gateway.md "Status relay").
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import Connection, case, func, insert, select

from gateway.db import tables as t
from gateway.db.connections import Repository
from gateway.db.records import StatusRecord, from_row, to_values

_INSERT_STATUS = insert(t.status_history)


class StatusRepository(Repository):
    """``store.statuses``."""

    def status_codes(self, doc_id: str, recipient: str) -> list[str]:
        """Codes already recorded for (document, recipient), in arrival order (for the out-of-order flag)."""
        h = t.status_history
        with self._db.read() as conn:
            return list(
                conn.scalars(
                    select(h.c.status_code).where(h.c.doc_id == doc_id, h.c.recipient == recipient).order_by(h.c.id)
                )
            )

    def count_since(self, doc_id: str, recipient: str, since: datetime | None = None) -> int:
        """Statuses recorded for (document, recipient), received at or after ``since`` (all when None): the
        intake quota of issue 10 (``LIMIT.STATUSES``), read through the (doc_id, recipient) index."""
        h = t.status_history
        query = select(func.count()).select_from(h).where(h.c.doc_id == doc_id, h.c.recipient == recipient)
        if since is not None:
            query = query.where(h.c.received_at >= since)
        with self._db.read() as conn:
            return int(conn.execute(query).scalar_one())

    def pair_summary(self, doc_id: str, recipient: str, since: datetime) -> dict[str, tuple[int, int]]:
        """Per status code already recorded for (document, recipient): how many in all, and how many received at
        or after ``since`` — in ONE statement, what a status intake reads (the quota of issue 10 and the
        out-of-order flag), through the (doc_id, recipient) index."""
        h = t.status_history
        recent = func.sum(case((h.c.received_at >= since, 1), else_=0))
        query = (
            select(h.c.status_code, func.count(), recent)
            .where(h.c.doc_id == doc_id, h.c.recipient == recipient)
            .group_by(h.c.status_code)
        )
        with self._db.read() as conn:
            return {code: (int(total), int(today or 0)) for code, total, today in conn.execute(query)}

    def history(self, doc_id: str) -> list[StatusRecord]:
        """Every status recorded about a document, in arrival order."""
        h = t.status_history
        with self._db.read() as conn:
            rows = conn.execute(select(h).where(h.c.doc_id == doc_id).order_by(h.c.id)).mappings()
            return [from_row(StatusRecord, r) for r in rows]


def insert_status(conn: Connection, status: StatusRecord) -> None:
    """The history row of ``status``, inside the caller's transaction."""
    conn.execute(_INSERT_STATUS, to_values(status))


def has_reported(conn: Connection, doc_id: str, recipient: str, reporter: str) -> bool:
    """Whether ``reporter`` has reported any status for (document, recipient) yet."""
    h = t.status_history
    query = select(h.c.id).where(h.c.doc_id == doc_id, h.c.recipient == recipient, h.c.reporter == reporter)
    return conn.execute(query).first() is not None


def latest_codes(conn: Connection, doc_ids: Collection[str]) -> dict[tuple[str, str], str]:
    """The last status code received per (document, recipient) of ``doc_ids``."""
    if not doc_ids:
        return {}
    h = t.status_history
    latest: dict[tuple[str, str], str] = {}
    history = conn.execute(
        select(h.c.doc_id, h.c.recipient, h.c.status_code)
        .where(h.c.doc_id.in_(sorted(doc_ids)))
        .order_by(h.c.received_at, h.c.id)
    )
    for doc_id, recipient, code in history:
        latest[(doc_id, recipient)] = code  # the last one received wins
    return latest


__all__ = ["StatusRepository", "has_reported", "insert_status", "latest_codes"]
