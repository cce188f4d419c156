"""The e-doc.vn profile's numeric axis document ids (``legacy_ids``, issue 13) and the two mailbox reads only the
legacy edge needs: a recipient's delivery of a document, and the statuses delivered to a recipient since a time
(GetTraces' replay mode, legacy-edoc-vn.md §6.8).

A number is allocated the first time a legacy client needs one for a document — SendDocument's answer, a
GetPendingDocumentIds listing — with ``INSERT … ON CONFLICT (doc_id) DO NOTHING`` and a read back in the same
transaction: two web workers listing the same mailbox at once may both try, the UNIQUE ``doc_id`` lets one row in,
and both read that row (PostgreSQL's ON CONFLICT waits for the other transaction; SQLite writes one at a time).
A lost race only skips a number (the sequence moved on): numbers are unique and increasing, not dense.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select

from gateway.db import tables as t
from gateway.db.certificates import insert_ignoring_duplicates
from gateway.db.chunks import stored_bytes
from gateway.db.connections import Repository
from gateway.db.documents import RAW_COLUMNS

_l, _d, _doc, _h = t.legacy_ids, t.deliveries, t.documents, t.status_history


@dataclass(frozen=True)
class DeliveredStatus:
    """A status package delivered to a recipient (any transport state), with what GetTraces orders it by."""

    delivery_id: str
    doc_id: str
    raw: bytes
    timestamp: datetime | None
    received_at: datetime


class LegacyIdRepository(Repository):
    """``store.legacy``."""

    def numbers_for(self, doc_ids: Collection[str]) -> dict[str, int]:
        """The axis number of each document, allocating the missing ones (module docstring: race-safe)."""
        wanted = sorted(set(doc_ids))
        if not wanted:
            return {}
        with self._db.read() as conn:
            found = _numbers(conn, wanted)
        missing = [d for d in wanted if d not in found]
        if missing:
            with self._db.write() as conn:
                conn.execute(insert_ignoring_duplicates(conn, _l, ["doc_id"]), [{"doc_id": d} for d in missing])
                found.update(_numbers(conn, missing))
        return found

    def doc_for(self, number: int) -> str | None:
        """The document a number was allocated for (None: never allocated)."""
        with self._db.read() as conn:
            return conn.execute(select(_l.c.doc_id).where(_l.c.id == number)).scalar()

    def delivery_of(self, doc_id: str, recipient: str) -> str | None:
        """The delivery of ``doc_id`` to ``recipient`` (one at most: UNIQUE (doc_id, recipient))."""
        with self._db.read() as conn:
            return conn.execute(
                select(_d.c.delivery_id).where(_d.c.doc_id == doc_id, _d.c.recipient == recipient)
            ).scalar()

    def statuses_delivered(self, recipient: str, since: datetime, limit: int) -> list[DeliveredStatus]:
        """Status packages delivered to ``recipient`` whose own Timestamp (naive Vietnam time, as the history
        keeps it) is at or after ``since``, acknowledged or not; newest Timestamp first, at most ``limit``."""
        query = (
            select(_d.c.delivery_id, *RAW_COLUMNS, _h.c.timestamp, _doc.c.received_at)
            .select_from(_d.join(_doc, _doc.c.doc_id == _d.c.doc_id).join(_h, _h.c.status_doc_id == _doc.c.doc_id))
            .where(_d.c.recipient == recipient, _doc.c.kind == "status", _h.c.timestamp >= since)
            .order_by(_h.c.timestamp.desc(), _doc.c.received_at.desc(), _d.c.delivery_id)
            .limit(limit)
        )
        with self._db.read() as conn:
            return [
                DeliveredStatus(r.delivery_id, r.doc_id, stored_bytes(conn, *r[1:4]), r.timestamp, r.received_at)
                for r in conn.execute(query).all()
            ]


def _numbers(conn: Connection, doc_ids: list[str]) -> dict[str, int]:
    rows = conn.execute(select(_l.c.doc_id, _l.c.id).where(_l.c.doc_id.in_(doc_ids)))
    return {doc_id: int(number) for doc_id, number in rows}


__all__ = ["DeliveredStatus", "LegacyIdRepository"]
