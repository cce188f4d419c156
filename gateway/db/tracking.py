"""Tracking reads (``store.tracking``): the facts :mod:`gateway.tracking.facts` judges, streamed for a period.

One query shape serves the report, document lists, alerts and gauges: deliveries of edocs joined with their
document and with one aggregate row of their status history — the first time of 01, 02, 03 and 06, and the set
of codes as a bitmask (``SUM(DISTINCT bit)`` is a bitwise OR on SQLite and PostgreSQL alike). The aggregate is
restricted to the deliveries asked for, so a single agency's report reads only its own history.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, func, literal, select, true, tuple_

from gateway.db import tables as t
from gateway.db.connections import Repository
from gateway.tracking.facts import DeliveryFacts, DocumentFacts

_d, _doc, _h, _a = t.deliveries, t.documents, t.status_history, t.audit_log
#: Status codes as bits; the order is irrelevant, only the mapping must be one-to-one.
CODE_BITS: Mapping[str, int] = {c: 1 << i for i, c in enumerate(("01", "02", "03", "04", "05", "06", "13", "15", "16"))}
_STREAM = 5000
#: For this transaction only (PostgreSQL ``SET LOCAL``): memory one report query may sort and hash in, and "every
#: row will be read" — a server-side cursor is otherwise planned for its first 10 % (cursor_tuple_fraction),
#: which picks a slower plan for a report that reads them all.
_REPORT_SETTINGS = ("SET LOCAL work_mem = '64MB'", "SET LOCAL cursor_tuple_fraction = 1.0")
_DOC_COLUMNS = (
    _doc.c.doc_id,
    _doc.c.sender,
    _doc.c.document_id,
    _doc.c.received_at,
    _doc.c.signature_state,
    _doc.c.priority,
    _doc.c.promulgation_date,
    _doc.c.due_date,
    _doc.c.code,
    _doc.c.subject,
    _doc.c.submitted_by,
)


class TrackingRepository(Repository):
    """``store.tracking``."""

    def documents(
        self, since: datetime, until: datetime, *, senders: Collection[str] | None = None
    ) -> Iterator[DocumentFacts]:
        """Edocs taken in during [since, until), optionally only those of ``senders``."""
        query = select(*_DOC_COLUMNS).where(*_period(since, until)).order_by(_doc.c.received_at, _doc.c.doc_id)
        if senders is not None:
            query = query.where(_doc.c.sender.in_(sorted(senders)))
        with self._db.stream() as conn:
            for row in conn.execution_options(yield_per=_STREAM).execute(query).mappings():
                yield DocumentFacts(**row)

    def deliveries(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        recipients: Collection[str] | None = None,
        doc_ids: Collection[str] | None = None,
        waiting_only: bool = False,
    ) -> Iterator[DeliveryFacts]:
        """Deliveries of edocs taken in during [since, until) (or of ``doc_ids``), with their status aggregate.

        ``waiting_only`` keeps the ones some rule may still be open for (not dead, and not yet 06 — alerts and
        gauges read only those, not the whole history).
        """
        where: list[ColumnElement[bool]] = [_doc.c.kind == "edoc"]
        if since is not None and until is not None:
            # A delivery is created in its document's intake transaction, with the same time: bounding both lets
            # a scoped report use (recipient, created_at) instead of reading the subtree's whole history.
            where += [*_period(since, until), _d.c.created_at >= since, _d.c.created_at < until]
        if recipients is not None:
            where.append(_d.c.recipient.in_(sorted(recipients)))
        if doc_ids is not None:
            where.append(_d.c.doc_id.in_(sorted(doc_ids)))
        if waiting_only:
            where.append(_d.c.state != "dead")
        postgresql = self._db.engine.dialect.name == "postgresql"
        query = _facts_query(where, postgresql=postgresql)
        document: DocumentFacts | None = None
        with self._db.stream() as conn:
            if postgresql:
                for setting in _REPORT_SETTINGS:
                    conn.exec_driver_sql(setting)
            for row in conn.execution_options(yield_per=_STREAM).execute(query).mappings():
                if document is None or document.doc_id != row["doc_id"]:  # rows come grouped by document
                    document = DocumentFacts(**{c.name: row[c.name] for c in _DOC_COLUMNS})
                facts = _delivery(row, document)
                if not (waiting_only and "06" in facts.codes):
                    yield facts

    def refusals(
        self, since: datetime, until: datetime, *, organ_ids: Collection[str] | None = None
    ) -> list[tuple[str | None, str | None, str, int]]:
        """Refused intakes in [since, until): (claimed sending agency, system, error code, count)."""
        query = (
            select(_a.c.organ_id, _a.c.system_id, _a.c.outcome, func.count())
            .where(_a.c.action == "intake.refused", _a.c.at >= since, _a.c.at < until)
            .group_by(_a.c.organ_id, _a.c.system_id, _a.c.outcome)
            .order_by(_a.c.organ_id, _a.c.system_id, _a.c.outcome)
        )
        if organ_ids is not None:
            query = query.where(_a.c.organ_id.in_(sorted(organ_ids)))
        with self._db.read() as conn:
            return [(o, s, c, n) for o, s, c, n in conn.execute(query)]


def _period(since: datetime, until: datetime) -> list[ColumnElement[bool]]:
    return [_doc.c.kind == "edoc", _doc.c.received_at >= since, _doc.c.received_at < until]


def _facts_query(where: list[ColumnElement[bool]], *, postgresql: bool) -> Select[Any]:
    """Deliveries joined with their document and one aggregate row of their status history.

    PostgreSQL aggregates each delivery's history in a LATERAL subquery through the (doc_id, recipient) index,
    with ``bit_or`` (no per-group sort, as ``SUM(DISTINCT)`` needs): a single agency's report reads only its own
    rows, and a national year avoids hashing and sorting the whole history. SQLite has no LATERAL: it groups the
    history of the (document, recipient) pairs asked for, once.
    """
    bit = case(*((_h.c.status_code == code, literal(b)) for code, b in CODE_BITS.items()), else_=literal(0))
    own = case((_h.c.emitted_by_gateway.is_(False), bit), else_=literal(0))
    aggregates = [
        *(
            func.min(case((_h.c.status_code == code, _h.c.received_at)), type_=t.UTCDateTime()).label(f"first_{code}")
            for code in ("01", "02", "03", "06")
        ),
        (func.bit_or(bit) if postgresql else func.sum(bit.distinct())).label("code_bits"),
        (func.bit_or(own) if postgresql else func.sum(own.distinct())).label("own_bits"),
    ]
    if postgresql:
        history = (
            select(*aggregates).where(_h.c.doc_id == _d.c.doc_id, _h.c.recipient == _d.c.recipient).lateral("history")
        )
        joined = _d.join(_doc, _doc.c.doc_id == _d.c.doc_id).outerjoin(history, true())
    else:
        pairs = select(_d.c.doc_id, _d.c.recipient).join(_doc, _doc.c.doc_id == _d.c.doc_id).where(*where)
        history = (
            select(_h.c.doc_id, _h.c.recipient, *aggregates)
            .where(tuple_(_h.c.doc_id, _h.c.recipient).in_(pairs))
            .group_by(_h.c.doc_id, _h.c.recipient)
            .subquery("history")
        )
        on = and_(history.c.doc_id == _d.c.doc_id, history.c.recipient == _d.c.recipient)
        joined = _d.join(_doc, _doc.c.doc_id == _d.c.doc_id).outerjoin(history, on)
    return (
        select(
            _d.c.delivery_id,
            _d.c.recipient,
            _d.c.state,
            _d.c.created_at,
            _d.c.channel,
            _d.c.fetched_at,
            _d.c.acknowledged_at,
            *_DOC_COLUMNS,
            *(history.c[f"first_{code}"] for code in ("01", "02", "03", "06")),
            history.c.code_bits,
            history.c.own_bits,
        )
        .select_from(joined)
        .where(*where)
        .order_by(_doc.c.received_at, _d.c.doc_id, _d.c.recipient)
    )


#: Every code set a bitmask can stand for (2^9), made once: rows share them instead of building one each.
_CODE_SETS = tuple(frozenset(c for c, b in CODE_BITS.items() if bits & b) for bits in range(1 << len(CODE_BITS)))


def _codes(bits: int | None) -> frozenset[str]:
    return _CODE_SETS[int(bits or 0)]


def _delivery(row: Mapping[str, Any], document: DocumentFacts) -> DeliveryFacts:
    return DeliveryFacts(
        delivery_id=row["delivery_id"],
        document=document,
        recipient=row["recipient"],
        state=row["state"],
        created_at=row["created_at"],
        channel=row["channel"],
        fetched_at=row["fetched_at"],
        acknowledged_at=row["acknowledged_at"],
        first_01=row["first_01"],
        first_02=row["first_02"],
        first_03=row["first_03"],
        first_06=row["first_06"],
        reported=_codes(row["own_bits"]),
        codes=_codes(row["code_bits"]),
    )


__all__ = ["CODE_BITS", "TrackingRepository"]
