"""Deliveries (``deliveries``): a document on its way to one recipient — mailbox listings, fetch, acknowledgement,
the sender's view of where its documents are, and the operators' overview. The push side (outbox leases and
attempts) is :mod:`gateway.db.outbox`.

Mailboxes are listed for one recipient (:meth:`DeliveryRepository.pending`, the SOAP edge reads one agency's
mailbox) or for an agency SCOPE at once (:meth:`~DeliveryRepository.pending_in_scope`,
:meth:`~DeliveryRepository.sent_in_scope`): a VDXP client authenticates as a SYSTEM, not as an agency, and lists
every mailbox the system may read and every document its agencies sent (edxml.md §11.1). A scope is the agencies
the system acts for and their level-2/3/4 descendants (``OrganId.is_within``, edxml.md §6.1), expressed in SQL as
``IN (acting)`` plus one ``LIKE`` per four-group OrganId (``000.00.00.H41`` → ``___.__.__.H41``;
``000.00.05.H41`` → ``___.__.05.H41``). ``LIKE`` can only over-match (``_`` is any character, the grammar wants
digits): callers filter the rows again with the exact rule (``gateway.services.access.acts_for``), so a rare
over-match costs a row of the limit, never an access.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, delete, or_, select, update

from gateway.db import tables as t
from gateway.db.audit import insert_audit
from gateway.db.chunks import stored_payload
from gateway.db.connections import Connections, Repository
from gateway.db.documents import DOC_COLUMNS, RAW_COLUMNS, write_document
from gateway.db.paging import RowPage, SortKey, keyset_page
from gateway.db.records import (
    AckResult,
    AuditEntry,
    DeliveryOverview,
    DeliveryRecord,
    DocumentRecord,
    NewDocument,
    PendingRecord,
    SentRecord,
    columns_for,
    from_row,
)
from gateway.db.statuses import has_reported, latest_codes
from gateway.edxml.organ import OrganId
from gateway.payload import Payload

_d, _doc, _o = t.deliveries, t.documents, t.outbox
#: States a mailbox lists (at-least-once: FETCHED stays until acknowledged).
_WAITING = ("queued", "fetched")
_Q_PENDING = (
    select(*columns_for(PendingRecord, _d, _doc))
    .select_from(_d.join(_doc, _doc.c.doc_id == _d.c.doc_id))
    .where(_d.c.state.in_(_WAITING))
    .order_by(_d.c.created_at, _d.c.delivery_id)
)
_Q_SENT = (
    select(*columns_for(SentRecord, _doc, _d, skip=("status_code",)))
    .select_from(_doc.join(_d, _d.c.doc_id == _doc.c.doc_id))
    .order_by(_doc.c.received_at.desc(), _doc.c.doc_id, _d.c.recipient)
)
_Q_OVERVIEW = select(
    *columns_for(
        DeliveryOverview,
        _d,
        _doc,
        t.agencies,
        _o,
        channel=t.agencies.c.channel,  # the recipient's channel now, as the overview documents
        budget_attempts=_o.c.attempts,
        budget_since=_o.c.created_at,
    )
).select_from(
    _d.join(_doc, _doc.c.doc_id == _d.c.doc_id)
    .outerjoin(t.agencies, t.agencies.c.organ_id == _d.c.recipient)
    .outerjoin(_o, _o.c.delivery_id == _d.c.delivery_id)
)


class DeliveryRepository(Repository):
    """``store.deliveries``. A big package fetched comes back spooled to ``spool_dir`` (None: the system's
    temporary directory)."""

    def __init__(self, db: Connections, spool_dir: str | os.PathLike[str] | None = None) -> None:
        super().__init__(db)
        self._spool_dir = spool_dir

    # ---------------------------------------------------------------------------------- mailbox

    def pending(self, recipient: str, kind: str, limit: int) -> list[PendingRecord]:
        """QUEUED and FETCHED deliveries of one recipient, oldest first (at-least-once: FETCHED stays)."""
        return self._pending(_d.c.recipient == recipient, kind, limit=limit)

    def pending_in_scope(
        self,
        acting: Sequence[str],
        kind: str,
        *,
        limit: int,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[PendingRecord]:
        """Like :meth:`pending`, for every recipient in the scope of ``acting`` (module docstring), optionally of
        documents received in [since, until]."""
        return self._pending(_in_scope(_d.c.recipient, acting), kind, limit=limit, since=since, until=until)

    def _pending(
        self,
        recipients: ColumnElement[bool],
        kind: str,
        *,
        limit: int,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[PendingRecord]:
        """The one mailbox query, for the recipients ``recipients`` selects."""
        query = _received_between(_Q_PENDING.where(recipients, _doc.c.kind == kind).limit(limit), since, until)
        with self._db.read() as conn:
            return [from_row(PendingRecord, r) for r in conn.execute(query).mappings()]

    def sent_in_scope(
        self,
        acting: Sequence[str],
        kind: str,
        *,
        limit: int,
        doc_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[SentRecord]:
        """Documents of ``kind`` whose sender is in the scope of ``acting``, newest first, one row per recipient,
        each with the latest business status its recipient reported (edocs only)."""
        query = _Q_SENT.where(_in_scope(_doc.c.sender, acting), _doc.c.kind == kind).limit(limit)
        if doc_id is not None:
            query = query.where(_doc.c.doc_id == doc_id)
        query = _received_between(query, since, until)
        with self._db.read() as conn:
            rows = list(conn.execute(query).mappings())
            latest = latest_codes(conn, {r["doc_id"] for r in rows if r["kind"] == "edoc"})
        return [from_row(SentRecord, r, status_code=latest.get((r["doc_id"], r["recipient"]))) for r in rows]

    # ---------------------------------------------------------------------------------- one delivery

    def delivery(self, delivery_id: str) -> tuple[DeliveryRecord, DocumentRecord] | None:
        """A delivery with its document (no bytes)."""
        query = (
            select(*_d.c, *[c for c in DOC_COLUMNS if c.name != "doc_id"])
            .select_from(_d.join(_doc, _doc.c.doc_id == _d.c.doc_id))
            .where(_d.c.delivery_id == delivery_id)
        )
        with self._db.read() as conn:
            row = conn.execute(query).mappings().first()
        if row is None:
            return None
        return from_row(DeliveryRecord, row), from_row(DocumentRecord, row)

    def for_document(self, doc_id: str) -> list[DeliveryRecord]:
        """Every delivery of a document, by recipient."""
        with self._db.read() as conn:
            rows = conn.execute(select(_d).where(_d.c.doc_id == doc_id).order_by(_d.c.recipient)).mappings()
            return [from_row(DeliveryRecord, r) for r in rows]

    def fetch(self, delivery_id: str, at: datetime, audit: AuditEntry) -> Payload | None:
        """The package bytes of a delivery; QUEUED becomes FETCHED (first fetch time kept). Audited.

        A big package comes back spooled to a file in the store's spool directory, read piece by piece inside the
        transaction (:mod:`gateway.db.chunks`): the caller closes the payload."""
        this = _d.c.delivery_id == delivery_id
        payload: Payload | None = None
        try:
            with self._db.write() as conn:
                row = conn.execute(
                    select(*RAW_COLUMNS).select_from(_d.join(_doc, _doc.c.doc_id == _d.c.doc_id)).where(this)
                ).first()
                if row is None:
                    return None
                payload = stored_payload(conn, *row, self._spool_dir)
                conn.execute(update(_d).where(this, _d.c.state == "queued").values(state="fetched"))
                conn.execute(update(_d).where(this, _d.c.fetched_at.is_(None)).values(fetched_at=at))
                insert_audit(conn, audit)
        except BaseException:
            if payload is not None:  # the fetch did not happen (COMMIT included): give the spool file back
                payload.close()
            raise
        return payload

    def acknowledge(
        self,
        delivery_id: str,
        *,
        state: str,
        outcome: str,
        reason: str | None,
        at: datetime,
        audit: AuditEntry,
        emit: NewDocument | None = None,
    ) -> AckResult:
        """Move a QUEUED/FETCHED delivery to ``state``; otherwise report its current state unchanged.

        The conditional UPDATE makes concurrent acknowledgements safe: exactly one of them changes the row,
        and only that one emits the gateway's 01 (``emit``) — and only if the receiver has reported no status
        of its own for the document yet (the option is for receivers that send none).
        """
        with self._db.write() as conn:
            result = conn.execute(
                update(_d)
                .where(_d.c.delivery_id == delivery_id, _d.c.state.in_(_WAITING))
                .values(state=state, acknowledged_at=at, ack_outcome=outcome, ack_reason=reason)
            )
            if result.rowcount == 0:
                current = conn.execute(select(_d.c.state).where(_d.c.delivery_id == delivery_id)).scalar()
                return AckResult(changed=False, state=current or "")
            # Settled through the mailbox: the worker must not push it any more (issue 4).
            conn.execute(delete(_o).where(_o.c.delivery_id == delivery_id))
            insert_audit(conn, audit)
            emitted = None
            if emit is not None and emit.status is not None:
                status = emit.status
                if not has_reported(conn, status.doc_id, status.recipient, status.reporter):
                    write_document(conn, emit)
                    emitted = emit.document.doc_id
        return AckResult(changed=True, state=state, emitted_doc_id=emitted)

    # ---------------------------------------------------------------------------------- operators

    def delivery_overview(self, delivery_id: str) -> DeliveryOverview | None:
        """A delivery as operators see it (``edoc-gateway deliveries show``)."""
        with self._db.read() as conn:
            row = conn.execute(_Q_OVERVIEW.where(_d.c.delivery_id == delivery_id)).mappings().first()
        return from_row(DeliveryOverview, row) if row is not None else None

    def list_deliveries(
        self,
        *,
        state: str | None = None,
        recipient: str | None = None,
        limit: int = 100,
        recipients: Collection[str] | None = None,
    ) -> list[DeliveryOverview]:
        """Deliveries, newest first, optionally of one state and/or one recipient, and only to ``recipients``
        (an admin token's scope: the OrganIds of its registry subtree; None = everyone)."""
        query = _overview_where(_Q_OVERVIEW, state, recipient, recipients).order_by(*_LIST_ORDER).limit(limit)
        with self._db.read() as conn:
            return [from_row(DeliveryOverview, r) for r in conn.execute(query).mappings()]

    def deliveries_page(
        self,
        *,
        state: str | None = None,
        recipient: str | None = None,
        recipients: Collection[str] | None = None,
        after: Sequence[Any] | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> RowPage[DeliveryOverview]:
        """One page of :meth:`list_deliveries`' rows (``DeliveryOverview``), by :func:`gateway.db.paging.keyset_page`
        on ``(created_at DESC, delivery_id)``, with the count of every matching delivery."""
        query = _overview_where(_Q_OVERVIEW, state, recipient, recipients)
        # The filters are on deliveries alone, and each delivery has exactly one document: count that table.
        counted = _overview_where(select(_d.c.delivery_id), state, recipient, recipients)
        with self._db.read() as conn:
            found = keyset_page(conn, query, _LIST_KEYS, after=after, offset=offset, limit=limit, counted=counted)
        return found.converted(lambda r: from_row(DeliveryOverview, r))


#: The operators' order of deliveries: newest first, the id breaking ties (a total order, for keyset paging).
_LIST_KEYS = (
    SortKey(_d.c.created_at, "created_at", descending=True),
    SortKey(_d.c.delivery_id, "delivery_id"),
)
_LIST_ORDER = (_d.c.created_at.desc(), _d.c.delivery_id)


def _overview_where(
    query: Select[Any], state: str | None, recipient: str | None, recipients: Collection[str] | None
) -> Select[Any]:
    """``query`` (the overview, or a count of deliveries) narrowed by the operators' filters."""
    if state is not None:
        query = query.where(_d.c.state == state)
    if recipient is not None:
        query = query.where(_d.c.recipient == recipient)
    if recipients is not None:
        query = query.where(_d.c.recipient.in_(sorted(recipients)))
    return query


def _in_scope(column: ColumnElement[str], acting: Sequence[str]) -> ColumnElement[bool]:
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


def _received_between(query: Select[Any], since: datetime | None, until: datetime | None) -> Select[Any]:
    """``query`` narrowed to documents received in [since, until] (either end open when None)."""
    if since is not None:
        query = query.where(_doc.c.received_at >= since)
    if until is not None:
        query = query.where(_doc.c.received_at <= until)
    return query


__all__ = ["DeliveryRepository"]
