"""Documents (``documents``): stored packages, their bytes, the idempotency key, and the one write of intake.

The bytes are inline in ``documents.raw`` up to 1 MiB and rows of ``document_chunks`` above, written and read only
through :mod:`gateway.db.chunks` (issue 14): :meth:`DocumentRepository.payload` reads a big one spooled, never whole.

:func:`write_document` is THE intake transaction's body (gateway.md Intake 7): the document with its raw bytes,
one delivery per recipient (an outbox row for push channels), the status-history row of a status package, the
signer certificate of a valid signature (:func:`gateway.db.certificates.record_signer`) and the audit entry. It
runs inside a caller's transaction — :meth:`DocumentRepository.insert_document` for intake, and
:meth:`gateway.db.deliveries.DeliveryRepository.acknowledge` for the 01 the gateway emits on acknowledgement.
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Collection, Iterable, Mapping
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, bindparam, case, insert, select
from sqlalchemy.exc import IntegrityError

from gateway.db import tables as t
from gateway.db.audit import insert_audit
from gateway.db.certificates import SignerMemo, record_signer
from gateway.db.chunks import raw_columns, stored_bytes, stored_payload, write_pieces
from gateway.db.connections import Connections, Repository
from gateway.db.records import DocumentRecord, IntakeLookup, NewDocument, from_row, to_values
from gateway.db.registry import acting_with_login, agencies_by_id
from gateway.db.statuses import insert_status
from gateway.payload import Payload

#: Every column but the bytes: what a DocumentRecord is read from (joined reads reuse it).
DOC_COLUMNS = [c for c in t.documents.c if c.name not in ("raw", "raw_chunks")]
#: What :mod:`gateway.db.chunks` needs to read a document's bytes, whatever their form.
RAW_COLUMNS = (t.documents.c.doc_id, t.documents.c.raw, t.documents.c.raw_chunks)
_DOC_SELECT = select(*DOC_COLUMNS)
# Hot-path statements are built once, with bound parameters, so SQLAlchemy compiles each only once.
_Q_BY_IDEM = _DOC_SELECT.where(t.documents.c.idem_key == bindparam("idem_key"))
_INSERT_DOCUMENT = insert(t.documents)
#: The edocs stored under one DocumentId, the sender's own first (at most 4: one per BussinessDocType, the UNIQUE
#: idempotency key), so that the limit never hides the one holding the key; the others are what the document-id
#: policy needs (who else used the DocumentId).
_Q_SAME_DOCUMENT = (
    _DOC_SELECT.where(t.documents.c.document_id == bindparam("document_id"), t.documents.c.kind == "edoc")
    .order_by(
        case((t.documents.c.sender == bindparam("sender"), 0), else_=1),
        t.documents.c.received_at.desc(),
        t.documents.c.doc_id,
    )
    .limit(50)
)


class IdempotencyConflict(Exception):
    """The idempotency key is taken (by an earlier or a concurrent submission): ``winner`` holds it."""

    def __init__(self, winner: DocumentRecord) -> None:
        super().__init__(winner.idem_key)
        self.winner = winner


class DocumentRepository(Repository):
    """``store.documents``. Big packages are read back spooled to files in ``spool_dir`` (None: the system's
    temporary directory)."""

    def __init__(self, db: Connections, spool_dir: str | os.PathLike[str] | None = None) -> None:
        super().__init__(db)
        self._spool_dir = spool_dir
        #: Signer rows this store's intakes recorded (:class:`~gateway.db.certificates.SignerMemo`).
        self._signers = SignerMemo()

    def intake_lookup(
        self,
        system_id: str,
        organ_ids: Iterable[str],
        idem_key: str,
        *,
        same_document: tuple[str, str] | None = None,
    ) -> IntakeLookup:
        """Everything intake reads before deciding, in ONE connection checkout (the hot path): the system's
        agencies, the agencies the package names and, for ``same_document=(sender, DocumentId)`` of an edoc, the
        edocs stored under that DocumentId — what the document-id policy reads, and, since an edoc's idempotency
        key is made of its sender, DocumentId and type, also the answer to "is this key taken?" (``existing``)
        without a statement of its own. Without ``same_document`` the key is not read (``key_read`` False): the
        UNIQUE constraint answers it at insert (:class:`IdempotencyConflict`)."""
        ids = sorted(set(organ_ids))
        docs: tuple[DocumentRecord, ...] | None = None
        with self._db.read() as conn:
            system = acting_with_login(conn, system_id)
            agencies = agencies_by_id(conn, ids) if ids else {}
            if same_document is not None:
                sender, document_id = same_document
                params = {"sender": sender, "document_id": document_id}
                docs = tuple(from_row(DocumentRecord, r) for r in conn.execute(_Q_SAME_DOCUMENT, params).mappings())
        system_acting, legacy = system if system is not None else (None, None)
        existing = next((d for d in docs or () if d.idem_key == idem_key), None)
        return IntakeLookup(
            acting=system_acting,
            agencies=agencies,
            existing=existing,
            legacy=legacy,
            key_read=docs is not None,
            same_document_id=docs,
        )

    def document_by_idem_key(self, idem_key: str) -> DocumentRecord | None:
        """The document stored under an idempotency key (gateway.md Intake 6)."""
        with self._db.read() as conn:
            return _document(conn.execute(_Q_BY_IDEM, {"idem_key": idem_key}).mappings().first())

    def document(self, doc_id: str) -> DocumentRecord | None:
        """A stored document without its bytes."""
        with self._db.read() as conn:
            return _document(conn.execute(_DOC_SELECT.where(t.documents.c.doc_id == doc_id)).mappings().first())

    def raw(self, doc_id: str) -> bytes | None:
        """The package bytes of a document, exactly as received (whole: :meth:`payload` for big ones)."""
        with self._db.read() as conn:
            row = conn.execute(select(*RAW_COLUMNS).where(t.documents.c.doc_id == doc_id)).first()
            return stored_bytes(conn, *row) if row is not None else None

    def payload(self, doc_id: str) -> Payload | None:
        """The package bytes of a document as a :class:`Payload` (a big one spooled, never held whole)."""
        with self._db.read() as conn:
            row = conn.execute(select(*RAW_COLUMNS).where(t.documents.c.doc_id == doc_id)).first()
            return stored_payload(conn, *row, self._spool_dir) if row is not None else None

    def raw_many(self, doc_ids: Collection[str]) -> dict[str, bytes]:
        """The package bytes of several documents in one query (the delivery worker starting a group of sends)."""
        with self._db.read() as conn:
            return raw_of(conn, doc_ids)

    def edocs_with_recipients(
        self, document_id: str, sender: str | None = None, *, limit: int = 20
    ) -> list[tuple[DocumentRecord, tuple[str, ...]]]:
        """Edocs with this business DocumentId (and sender), newest first, each with its recipients — in one
        statement (the ``limit`` newest documents, joined with their deliveries)."""
        d = t.documents
        chosen = select(d.c.doc_id).where(d.c.document_id == document_id, d.c.kind == "edoc")
        if sender is not None:
            chosen = chosen.where(d.c.sender == sender)
        chosen = chosen.order_by(d.c.received_at.desc(), d.c.doc_id).limit(limit)
        query = (
            select(*DOC_COLUMNS, t.deliveries.c.recipient.label("_recipient"))
            .select_from(d.outerjoin(t.deliveries, t.deliveries.c.doc_id == d.c.doc_id))
            .where(d.c.doc_id.in_(chosen.scalar_subquery()))
            .order_by(d.c.received_at.desc(), d.c.doc_id)
        )
        docs: dict[str, DocumentRecord] = {}
        recipients: dict[str, list[str]] = {}
        with self._db.read() as conn:
            for row in conn.execute(query).mappings():
                doc_id = row["doc_id"]
                if doc_id not in docs:
                    docs[doc_id], recipients[doc_id] = from_row(DocumentRecord, row), []
                if row["_recipient"] is not None:
                    recipients[doc_id].append(row["_recipient"])
        return [(doc, tuple(sorted(recipients[doc_id]))) for doc_id, doc in docs.items()]

    def insert_document(self, new: NewDocument) -> dict[str, str]:
        """Store a package with its deliveries, outbox rows, status history row and audit entry, atomically.

        Returns ``{recipient: delivery_id}``. Raises :class:`IdempotencyConflict` when the idempotency key is
        already taken, carrying the document that holds it (read once, only then: intake inserts first when it
        has not read the key, and answers the winner's receipt as a duplicate). The signer certificate's
        statement is left out while this store's :class:`~gateway.db.certificates.SignerMemo` says it would
        change nothing; what it answered is remembered only once the transaction committed.
        """
        signer = new.signer
        try:
            with self._db.write() as conn:
                written = write_document(conn, new, signers=self._signers)
        except IntegrityError as exc:
            winner = self.document_by_idem_key(new.document.idem_key)
            if winner is not None:
                raise IdempotencyConflict(winner) from exc
            raise
        if signer is not None and written.signer_seen is not None:
            self._signers.remember(signer, written.signer_seen)
        return written.ids


class Written(NamedTuple):
    """What :func:`write_document` wrote: the delivery ids by recipient, and the signer row's ``last_seen_at``
    as its statement answered it (None when it did not run or could not tell)."""

    ids: dict[str, str]
    signer_seen: datetime | None


def write_document(conn: Connection, new: NewDocument, *, signers: SignerMemo | None = None) -> Written:
    """The rows of ``new`` inside the caller's transaction. The signer certificate's statement runs unless
    ``signers`` knows it would change nothing (:class:`~gateway.db.certificates.SignerMemo`)."""
    doc = new.document
    raw = raw_columns(new.raw)  # the bytes themselves only when inline (≤ 1 MiB): gateway.db.chunks
    conn.execute(_INSERT_DOCUMENT, {**to_values(doc), "meta": dict(doc.meta), **raw})
    if raw["raw_chunks"]:
        write_pieces(conn, doc.doc_id, new.raw, raw["raw_chunks"])
    ids: dict[str, str] = {}
    if new.recipients:
        rows: dict[str, Any] = {}  # bound parameters of the prebuilt statements: <column>_<row>
        push: dict[str, Any] = {}
        pushed = 0
        for i, (recipient, channel) in enumerate(new.recipients):
            delivery_id = uuid.uuid4().hex
            ids[recipient] = delivery_id
            rows.update(
                {
                    f"delivery_id_{i}": delivery_id,
                    f"doc_id_{i}": doc.doc_id,
                    f"recipient_{i}": recipient,
                    f"created_at_{i}": doc.received_at,
                    f"channel_{i}": channel,
                }
            )
            if channel != t.MAILBOX:
                push.update(
                    {
                        f"delivery_id_{pushed}": delivery_id,
                        f"created_at_{pushed}": doc.received_at,
                        f"next_attempt_at_{pushed}": doc.received_at,
                    }
                )
                pushed += 1
        # One statement per table on both dialects: a multi-row VALUES, not an executemany (which psycopg 3 runs
        # as one statement per row, pipelined). Rows ≤ max_recipients (1,000 × 5 parameters, within both limits).
        conn.execute(_insert_deliveries(len(new.recipients)), rows)
        if pushed:
            conn.execute(_insert_outbox(pushed), push)
    if new.status is not None:
        insert_status(conn, new.status)
    seen = None
    if new.signer is not None and (signers is None or not signers.fresh(new.signer)):
        seen = record_signer(conn, new.signer)
    insert_audit(conn, new.audit)
    return Written(ids, seen)


@functools.lru_cache(maxsize=32)
def _insert_deliveries(n: int) -> Any:
    """``INSERT INTO deliveries … VALUES (…)[, (…) …]`` for ``n`` rows, bound parameters ``<column>_<row>``, built
    once per row count. One row (the usual intake) is a plain VALUES, which SQLAlchemy compiles once and then
    finds in its cache; several rows are a multi-row VALUES, which SQLAlchemy 2 never caches ("no key": compiled
    per call, ≈ 70 µs) — still one statement on both dialects."""
    names = ("delivery_id", "doc_id", "recipient", "created_at", "channel")
    rows = [{name: bindparam(f"{name}_{i}", type_=t.deliveries.c[name].type) for name in names} for i in range(n)]
    rows = [{**row, "state": "queued"} for row in rows]
    return insert(t.deliveries).values(rows[0] if n == 1 else rows)


@functools.lru_cache(maxsize=32)
def _insert_outbox(n: int) -> Any:
    """The outbox rows of the push deliveries, as :func:`_insert_deliveries`."""
    names = ("delivery_id", "created_at", "next_attempt_at")
    rows = [{name: bindparam(f"{name}_{i}", type_=t.outbox.c[name].type) for name in names} for i in range(n)]
    return insert(t.outbox).values(rows[0] if n == 1 else rows)


def raw_of(conn: Connection, doc_ids: Collection[str]) -> dict[str, bytes]:
    """The bytes of several documents, by id, in the caller's transaction (one query, plus one per piece of a
    chunked one)."""
    if not doc_ids:
        return {}
    rows = conn.execute(select(*RAW_COLUMNS).where(t.documents.c.doc_id.in_(sorted(set(doc_ids))))).all()
    return {row.doc_id: stored_bytes(conn, *row) for row in rows}


def inline_raw_of(conn: Connection, doc_ids: Collection[str]) -> tuple[dict[str, bytes], frozenset[str]]:
    """The bytes of those of several documents stored inline, by id, and the ids of those stored in pieces — in
    one query, reading no piece: the delivery worker starting a group of sends takes the small packages with its
    turn, and reads each big one when its send starts, spooled (:func:`gateway.db.chunks.stored_payload`), so a
    group of 16 claimed 20 MB packages is never 320 MB in memory at once (issue 14)."""
    if not doc_ids:
        return {}, frozenset()
    rows = conn.execute(select(*RAW_COLUMNS).where(t.documents.c.doc_id.in_(sorted(set(doc_ids))))).all()
    inline = {row.doc_id: bytes(row.raw or b"") for row in rows if not row.raw_chunks}
    return inline, frozenset(row.doc_id for row in rows if row.raw_chunks)


def _document(row: Mapping[str, Any] | None) -> DocumentRecord | None:
    return from_row(DocumentRecord, row) if row is not None else None


__all__ = [
    "DOC_COLUMNS",
    "RAW_COLUMNS",
    "DocumentRepository",
    "IdempotencyConflict",
    "Written",
    "inline_raw_of",
    "raw_of",
    "write_document",
]
