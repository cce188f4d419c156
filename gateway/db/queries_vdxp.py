"""Read-only queries the VDXP edge needs and :class:`~gateway.db.store.Store` lacks (issue 4, VDXP).

A VDXP client authenticates as a SYSTEM, not as an agency: ``getReceivedEdocList`` lists every mailbox the
system may read and ``getSentEdocList`` every document its agencies sent (edxml.md §11.1). Both select by the
system's agency SCOPE — the agencies it acts for and their level-2/3/4 descendants (``OrganId.is_within``,
edxml.md §6.1) — expressed in SQL as ``IN (acting)`` plus one ``LIKE`` per four-group OrganId
(``000.00.00.H41`` → ``___.__.__.H41``; ``000.00.05.H41`` → ``___.__.05.H41``). ``LIKE`` can only over-match
(``_`` is any character, the grammar wants digits): callers filter the rows again with the exact rule
(``gateway.services.gateway.acts_for``), so a rare over-match costs a row of the limit, never an access.

SQLAlchemy Core selects only; nothing here writes (``Store`` owns every write and its transactions).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Connection, Engine, or_, select
from sqlalchemy.exc import DBAPIError, OperationalError

from gateway.db import tables as t
from gateway.edxml.organ import OrganId
from gateway.errors import UnavailableError


@dataclass(frozen=True)
class MailboxRow:
    """One waiting (queued or fetched) delivery in any mailbox of a scope."""

    delivery_id: str
    doc_id: str
    kind: str
    sender: str
    recipient: str
    document_id: str
    received_at: datetime
    size: int
    state: str
    fetched_at: datetime | None


@dataclass(frozen=True)
class SentRow:
    """One (document, recipient) pair of a document sent by an agency of a scope."""

    doc_id: str
    kind: str
    sender: str
    document_id: str
    subject: str | None
    code: str | None
    received_at: datetime
    delivery_id: str
    recipient: str
    state: str
    fetched_at: datetime | None
    acknowledged_at: datetime | None
    ack_reason: str | None
    #: The latest business status the recipient reported for an edoc (None for status documents or none yet).
    status_code: str | None


def scope_clause(column: ColumnElement[str], acting: Sequence[str]) -> ColumnElement[bool]:
    """``column`` is one of ``acting`` or (by pattern, see the module docstring) a descendant of one."""
    conditions: list[ColumnElement[bool]] = [column.in_(sorted(set(acting)))]
    for organ in acting:
        if not OrganId.is_valid(organ):
            continue
        oid = OrganId(organ)
        if not oid.is_qcvn or oid.level == 4:
            continue
        _l4, l3, l2, l1 = organ.split(".")
        pattern = {1: f"___.__.__.{l1}", 2: f"___.__.{l2}.{l1}", 3: f"___.{l3}.{l2}.{l1}"}[oid.level or 1]
        conditions.append(column.like(pattern))
    return or_(*conditions)


class VdxpQueries:
    """The queries, over the same engine as the Store (one pool per process)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # As in Store: reads need no transaction (every write commits a consistent unit); autocommit on PostgreSQL.
        self._reader = (
            engine.execution_options(isolation_level="AUTOCOMMIT") if engine.dialect.name == "postgresql" else engine
        )

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        """A connection; database outages become UnavailableError (retryable), as Store translates them."""
        try:
            with self._reader.connect() as conn:
                yield conn
        except OperationalError as exc:
            raise UnavailableError(f"database unavailable: {exc.orig.__class__.__name__}") from exc
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise UnavailableError("database connection lost") from exc
            raise

    def mailbox(
        self,
        acting: Sequence[str],
        kind: str,
        *,
        limit: int,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[MailboxRow]:
        """QUEUED and FETCHED deliveries of every recipient in scope, oldest first (like ``Store.pending``)."""
        d, doc = t.deliveries, t.documents
        query = (
            select(
                d.c.delivery_id,
                d.c.doc_id,
                doc.c.kind,
                doc.c.sender,
                d.c.recipient,
                doc.c.document_id,
                doc.c.received_at,
                doc.c.size,
                d.c.state,
                d.c.fetched_at,
            )
            .select_from(d.join(doc, doc.c.doc_id == d.c.doc_id))
            .where(scope_clause(d.c.recipient, acting), d.c.state.in_(("queued", "fetched")), doc.c.kind == kind)
            .order_by(d.c.created_at, d.c.delivery_id)
            .limit(limit)
        )
        if since is not None:
            query = query.where(doc.c.received_at >= since)
        if until is not None:
            query = query.where(doc.c.received_at <= until)
        with self._read() as conn:
            return [MailboxRow(**r) for r in conn.execute(query).mappings()]

    def sent(
        self,
        acting: Sequence[str],
        kind: str,
        *,
        limit: int,
        doc_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[SentRow]:
        """Documents of ``kind`` whose sender is in scope, newest first, one row per recipient."""
        d, doc = t.deliveries, t.documents
        query = (
            select(
                doc.c.doc_id,
                doc.c.kind,
                doc.c.sender,
                doc.c.document_id,
                doc.c.subject,
                doc.c.code,
                doc.c.received_at,
                d.c.delivery_id,
                d.c.recipient,
                d.c.state,
                d.c.fetched_at,
                d.c.acknowledged_at,
                d.c.ack_reason,
            )
            .select_from(doc.join(d, d.c.doc_id == doc.c.doc_id))
            .where(scope_clause(doc.c.sender, acting), doc.c.kind == kind)
            .order_by(doc.c.received_at.desc(), doc.c.doc_id, d.c.recipient)
            .limit(limit)
        )
        if doc_id is not None:
            query = query.where(doc.c.doc_id == doc_id)
        if since is not None:
            query = query.where(doc.c.received_at >= since)
        if until is not None:
            query = query.where(doc.c.received_at <= until)
        with self._read() as conn:
            rows = list(conn.execute(query).mappings())
            latest: dict[tuple[str, str], str] = {}
            edocs = sorted({r["doc_id"] for r in rows if r["kind"] == "edoc"})
            if edocs:
                h = t.status_history
                history = conn.execute(
                    select(h.c.doc_id, h.c.recipient, h.c.status_code)
                    .where(h.c.doc_id.in_(edocs))
                    .order_by(h.c.received_at, h.c.id)
                )
                for hist_doc, recipient, code in history:
                    latest[(hist_doc, recipient)] = code  # the last one received wins
        return [SentRow(**r, status_code=latest.get((r["doc_id"], r["recipient"]))) for r in rows]


__all__ = ["MailboxRow", "SentRow", "VdxpQueries", "scope_clause"]
