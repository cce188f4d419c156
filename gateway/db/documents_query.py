"""Document lists and stories for tracking (``store.document_queries``): the SQL half of
:class:`gateway.services.timeline.Timelines`.

A list is read newest first by keyset — ``(received_at, doc_id)`` descending, the next page strictly after the last
key seen — so paging is stable under concurrent intake (a new document lands before page one, never inside a page
being read) and costs an index range scan (``documents.received_at``), however deep the page. What SQL cannot
decide exactly stays with the service: timing-rule flags (they need :func:`gateway.tracking.facts.assess_delivery`)
and case-folding of non-ASCII text (SQLite's ``lower()`` and PostgreSQL's under the C locale fold ASCII only), so
:attr:`DocumentFilter.ascii_text` is applied here only when it is exact.

A story reads what the tracking aggregate (:mod:`gateway.db.tracking`) folds away: every push attempt, every fetch
and acknowledgement the audit log recorded, and the documents linked to this one.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, exists, func, or_, select

from gateway.db import tables as t
from gateway.db.connections import Repository
from gateway.db.documents import DOC_COLUMNS
from gateway.db.paging import SortKey, beyond, count
from gateway.db.records import AttemptRecord, AuditEntry, DocumentRecord, from_row

_d, _doc, _a = t.deliveries, t.documents, t.audit_log
#: Audit actions that belong on a delivery's timeline (intake is the document row itself).
STORY_ACTIONS = ("delivery.fetch", "delivery.ack", "delivery.dead", "delivery.redrive")
#: The list's order, newest first (gateway.db.paging: the keyset predicate every list shares).
_NEWEST = (
    SortKey(_doc.c.received_at, "received_at", descending=True),
    SortKey(_doc.c.doc_id, "doc_id", descending=True),
)
#: Status documents linked to one edoc that a story lists (each is also a status event on its recipient).
_MAX_RELATED = 200


@dataclass(frozen=True)
class DocumentFilter:
    """The SQL-decidable filters of a document list; ``visible`` is the caller's scope (None: everything)."""

    since: datetime | None = None
    until: datetime | None = None
    sender: str | None = None
    recipient: str | None = None
    kind: str | None = None
    state: str | None = None
    #: A lowercase ASCII needle (exact in SQL); other needles are the service's to apply.
    ascii_text: str | None = None
    visible: frozenset[str] | None = None


class DocumentQueryRepository(Repository):
    """``store.document_queries``."""

    def page(self, f: DocumentFilter, *, after: tuple[datetime, str] | None, limit: int) -> list[DocumentRecord]:
        """Up to ``limit`` documents matching ``f``, newest first, strictly after the key ``after``."""
        query = select(*DOC_COLUMNS).where(*_conditions(f))
        if after is not None:
            query = query.where(beyond(_NEWEST, after))
        query = query.order_by(_doc.c.received_at.desc(), _doc.c.doc_id.desc()).limit(limit)
        with self._db.read() as conn:
            return [from_row(DocumentRecord, r) for r in conn.execute(query).mappings()]

    def count(self, f: DocumentFilter) -> int:
        """How many documents match ``f`` (the ``total`` of a list whose every filter SQL decides)."""
        with self._db.read() as conn:
            return count(conn, select(_doc.c.doc_id).where(*_conditions(f)))

    def recipients_of(self, doc_ids: Collection[str]) -> dict[str, list[tuple[str, str]]]:
        """``doc_id → [(recipient, delivery state)]`` for the documents of a page."""
        if not doc_ids:
            return {}
        query = (
            select(_d.c.doc_id, _d.c.recipient, _d.c.state)
            .where(_d.c.doc_id.in_(sorted(doc_ids)))
            .order_by(_d.c.doc_id, _d.c.recipient)
        )
        found: dict[str, list[tuple[str, str]]] = {}
        with self._db.read() as conn:
            for doc_id, recipient, state in conn.execute(query):
                found.setdefault(doc_id, []).append((recipient, state))
        return found

    def attempts_of(self, delivery_ids: Collection[str]) -> dict[str, list[AttemptRecord]]:
        """Every push attempt of the deliveries, oldest first, by delivery."""
        if not delivery_ids:
            return {}
        at = t.delivery_attempts
        query = select(at).where(at.c.delivery_id.in_(sorted(delivery_ids))).order_by(at.c.delivery_id, at.c.attempt)
        found: dict[str, list[AttemptRecord]] = {}
        with self._db.read() as conn:
            for row in conn.execute(query).mappings():
                found.setdefault(row["delivery_id"], []).append(from_row(AttemptRecord, row))
        return found

    def audit_of(self, doc_id: str) -> list[AuditEntry]:
        """The audit rows of a document's deliveries (fetches, acknowledgements, dead letters, re-drives)."""
        query = select(_a).where(_a.c.doc_id == doc_id, _a.c.action.in_(STORY_ACTIONS)).order_by(_a.c.at, _a.c.id)
        with self._db.read() as conn:
            return [from_row(AuditEntry, r) for r in conn.execute(query).mappings()]

    def related_of(self, doc: DocumentRecord) -> list[DocumentRecord]:
        """The original ``doc`` concerns (update/revoke/replace), and the documents that concern ``doc``:
        its updates, revocations, replacements and the status packages about it, oldest first."""
        link = _doc.c.related_doc_id == doc.doc_id
        if doc.related_doc_id is not None:
            link = or_(link, _doc.c.doc_id == doc.related_doc_id)
        query = select(*DOC_COLUMNS).where(link).order_by(_doc.c.received_at, _doc.c.doc_id).limit(_MAX_RELATED)
        with self._db.read() as conn:
            return [from_row(DocumentRecord, r) for r in conn.execute(query).mappings()]


def _conditions(f: DocumentFilter) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if f.since is not None:
        where.append(_doc.c.received_at >= f.since)
    if f.until is not None:
        where.append(_doc.c.received_at < f.until)
    if f.sender is not None:
        where.append(_doc.c.sender == f.sender)
    if f.kind is not None:
        where.append(_doc.c.kind == f.kind)
    if f.recipient is not None:
        where.append(_has_delivery(_d.c.recipient == f.recipient))
    if f.state is not None:
        state = _d.c.state == f.state
        if f.visible is not None:
            state = state & _d.c.recipient.in_(sorted(f.visible))
        where.append(_has_delivery(state))
    if f.ascii_text:
        pattern = "%" + _escape_like(f.ascii_text) + "%"
        where.append(
            or_(
                func.lower(_doc.c.code).like(pattern, escape="\\"),
                func.lower(_doc.c.subject).like(pattern, escape="\\"),
            )
        )
    if f.visible is not None:
        members = sorted(f.visible)
        where.append(or_(_doc.c.sender.in_(members), _has_delivery(_d.c.recipient.in_(members))))
    return where


def _has_delivery(condition: ColumnElement[bool]) -> ColumnElement[bool]:
    query: Select[Any] = select(_d.c.delivery_id).where(_d.c.doc_id == _doc.c.doc_id, condition)
    return exists(query)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


__all__ = ["STORY_ACTIONS", "DocumentFilter", "DocumentQueryRepository"]
