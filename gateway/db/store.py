"""Repository over the gateway tables: plain values in, frozen dataclasses out, one transaction per method.

The services (``gateway.services``) never import SQLAlchemy; everything they need from the database is a
method here. Methods that change several tables do it in ONE transaction (gateway.md Intake 7: document,
deliveries, outbox, status history and audit entry commit together or not at all).

Database failures are translated once, here: a lost connection, a locked SQLite file past its busy timeout,
a PostgreSQL restart → :class:`~gateway.errors.UnavailableError` (retryable). A collision on the idempotency
key is :class:`IdempotencyConflict`, which the intake service turns into the duplicate answer.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, delete, exists, func, insert, or_, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from gateway.db import tables as t
from gateway.db.engine import writer
from gateway.errors import RequestError, UnavailableError

# ================================================================================================ values


@dataclass(frozen=True)
class AgencyRecord:
    """One registered agency (gateway.md "Registry")."""

    organ_id: str
    name: str
    parent: str | None = None
    level: int | None = None
    system_id: str | None = None
    channel: str = "mailbox"
    endpoint: str | None = None
    signature_policy: str = "verify-if-present"
    allow_sha1: bool = False
    emit_arrived_on_ack: bool = False
    active: bool = True
    #: SHA-256 fingerprints (lowercase hex) of signer certificates bound to the agency.
    cert_fingerprints: tuple[str, ...] = ()


@dataclass(frozen=True)
class SystemRecord:
    """One API client; ``secret_enc``/``secret_hash`` are opaque here (gateway.services.auth owns them)."""

    id: str
    name: str
    secret_enc: bytes = field(repr=False)
    secret_hash: str = field(repr=False)
    active: bool
    created_at: datetime
    agencies: tuple[str, ...] = ()


@dataclass(frozen=True)
class DocumentRecord:
    """A stored package without its bytes (:meth:`Store.raw` reads those)."""

    doc_id: str
    kind: str
    sender: str
    document_id: str
    sha256: str
    size: int
    received_at: datetime
    signature_state: str
    idem_key: str = ""
    bussiness_doc_type: int | None = None
    status_code: str | None = None
    related_doc_id: str | None = None
    submitted_by: str | None = None
    emitted_by_gateway: bool = False
    signer_subject: str | None = None
    signer_fingerprint: str | None = None
    subject: str | None = None
    code: str | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DeliveryRecord:
    delivery_id: str
    doc_id: str
    recipient: str
    state: str
    created_at: datetime
    fetched_at: datetime | None = None
    acknowledged_at: datetime | None = None
    ack_outcome: str | None = None
    ack_reason: str | None = None


@dataclass(frozen=True)
class PendingRecord:
    """A waiting delivery joined with what the mailbox listing shows of its document."""

    delivery_id: str
    doc_id: str
    kind: str
    sender: str
    recipient: str
    document_id: str
    received_at: datetime
    size: int
    state: str


@dataclass(frozen=True)
class StatusRecord:
    """One row of ``status_history``."""

    doc_id: str
    recipient: str
    reporter: str
    status_code: str
    received_at: datetime
    description: str | None = None
    timestamp: datetime | None = None
    status_doc_id: str | None = None
    out_of_order: bool = False
    emitted_by_gateway: bool = False


@dataclass(frozen=True)
class AuditEntry:
    """An audit row; ``detail`` must never carry a package body (gateway.md "Security")."""

    at: datetime
    action: str
    outcome: str = "ok"
    system_id: str | None = None
    doc_id: str | None = None
    organ_id: str | None = None
    detail: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class NewDocument:
    """Everything :meth:`Store.insert_document` writes in one transaction."""

    document: DocumentRecord
    raw: bytes = field(repr=False)
    #: (recipient OrganId, push channel?) — push channels also get an outbox row for the worker.
    recipients: tuple[tuple[str, bool], ...]
    audit: AuditEntry
    status: StatusRecord | None = None


@dataclass(frozen=True)
class AckResult:
    """What :meth:`Store.acknowledge` did: ``changed`` False means the delivery was already in ``state``."""

    changed: bool
    state: str
    emitted_doc_id: str | None = None


@dataclass(frozen=True)
class IntakeLookup:
    """What :meth:`Store.intake_lookup` read: ``acting`` is None for an unknown or inactive system."""

    acting: tuple[str, ...] | None
    agencies: dict[str, AgencyRecord]
    existing: DocumentRecord | None


class IdempotencyConflict(Exception):
    """The idempotency key is taken (a concurrent identical submission won the race)."""


@dataclass(frozen=True)
class ClaimedDelivery:
    """A push delivery a worker holds a lease on, with what its adapter needs (the bytes: :meth:`Store.raw`)."""

    delivery_id: str
    doc_id: str
    kind: str
    sender: str
    recipient: str
    document_id: str
    channel: str
    endpoint: str | None
    #: Attempts made so far, over every retry budget (the next one is ``attempts + 1``).
    attempts: int
    #: Attempts in the current budget (the backoff exponent) and when that budget started.
    budget_attempts: int
    budget_since: datetime
    lease_until: datetime


@dataclass(frozen=True)
class AttemptRecord:
    """One push attempt (``delivery_attempts``); ``outcome`` is ``delivered``, ``retry`` or ``dead``."""

    delivery_id: str
    attempt: int
    started_at: datetime
    duration_ms: int
    outcome: str
    worker_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    peer_answer: str | None = None
    peer_reference: str | None = None
    next_attempt_at: datetime | None = None

    @property
    def finished_at(self) -> datetime:
        return self.started_at + timedelta(milliseconds=self.duration_ms)


@dataclass(frozen=True)
class DeliveryOverview:
    """A delivery as operators see it: its document, state, attempts, and (while queued for push) its schedule."""

    delivery_id: str
    doc_id: str
    kind: str
    sender: str
    recipient: str
    document_id: str
    state: str
    created_at: datetime
    #: The recipient's channel now (None if the agency was removed from the registry).
    channel: str | None
    attempts: int
    last_attempt_at: datetime | None
    last_error: str | None
    peer_reference: str | None
    acknowledged_at: datetime | None
    ack_reason: str | None
    #: From the outbox row; None when nothing is to be pushed (mailbox channel, delivered, dead).
    next_attempt_at: datetime | None
    budget_attempts: int | None
    budget_since: datetime | None
    claimed_by: str | None
    lease_until: datetime | None


@dataclass(frozen=True)
class WorkerHeartbeat:
    """One delivery worker process, as last seen."""

    worker_id: str
    host: str
    pid: int
    started_at: datetime
    seen_at: datetime
    stopped_at: datetime | None = None


# ================================================================================================ store


class Store:
    """All database access of the gateway. Thread-safe (one pooled connection per call)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._writer = writer(engine)
        # Reads need no transaction: every write commits a consistent unit (a document WITH its deliveries),
        # and races are settled by constraints. On PostgreSQL autocommit reads save the BEGIN/ROLLBACK round
        # trips (measured: ~0.3 ms each on loopback). SQLite reads are cheap either way.
        self._reader = (
            engine.execution_options(isolation_level="AUTOCOMMIT") if self.dialect == "postgresql" else engine
        )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    # ---------------------------------------------------------------------------------- plumbing

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with _translated(), self._reader.connect() as conn:
            yield conn

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with _translated(), self._writer.begin() as conn:
            yield conn

    def create_schema(self) -> None:
        """``CREATE TABLE`` for every table (tests and throwaway demos; production uses migrations)."""
        with self._write() as conn:
            t.metadata.create_all(conn)

    def ping(self) -> bool:
        """True when the database answers (``/readyz``)."""
        try:
            with self._read() as conn:
                conn.execute(select(1)).scalar()
        except UnavailableError:
            return False
        return True

    def schema_revision(self) -> str | None:
        """The alembic revision the database is at (None: empty, or unreachable)."""
        from alembic.runtime.migration import MigrationContext

        try:
            with self._read() as conn:
                return MigrationContext.configure(conn).get_current_revision()
        except UnavailableError:
            return None

    def counts(self) -> dict[str, int]:
        """Row count per table — for tests that prove a refusal stored nothing, and for ``/readyz``."""
        with self._read() as conn:
            return {
                name: conn.execute(select(func.count()).select_from(table)).scalar_one()
                for name, table in t.metadata.tables.items()
            }

    # ---------------------------------------------------------------------------------- agencies

    def upsert_agencies(
        self, records: Sequence[AgencyRecord], *, now: datetime, certs_for: Iterable[str] = ()
    ) -> tuple[int, int]:
        """Insert or update agencies in one transaction; returns (created, updated).

        Bound certificate fingerprints are replaced for the OrganIds in ``certs_for`` only (an import file
        without a ``cert_fingerprints`` column must not erase bindings).
        """
        replace_certs = set(certs_for)
        created = updated = 0
        with self._write() as conn:
            ids = [r.organ_id for r in records]
            existing = set(conn.scalars(select(t.agencies.c.organ_id).where(t.agencies.c.organ_id.in_(ids))))
            for rec in records:
                values = _agency_values(rec)
                if rec.organ_id in existing:
                    conn.execute(
                        update(t.agencies).where(t.agencies.c.organ_id == rec.organ_id).values(**values, updated_at=now)
                    )
                    updated += 1
                else:
                    conn.execute(
                        insert(t.agencies).values(organ_id=rec.organ_id, **values, created_at=now, updated_at=now)
                    )
                    existing.add(rec.organ_id)
                    created += 1
                if rec.organ_id in replace_certs:
                    _replace_certificates(conn, rec.organ_id, rec.cert_fingerprints, now)
        return created, updated

    def update_agency(
        self, organ_id: str, *, now: datetime, cert_fingerprints: Sequence[str] | None = None, **changes: Any
    ) -> bool:
        """Change some columns of one agency (and optionally its bound fingerprints); False if unknown."""
        allowed = {f.name for f in fields(AgencyRecord)} - {"organ_id", "cert_fingerprints"}
        unknown = set(changes) - allowed
        if unknown:
            raise ValueError(f"unknown agency fields: {sorted(unknown)}")
        with self._write() as conn:
            result = conn.execute(
                update(t.agencies).where(t.agencies.c.organ_id == organ_id).values(**changes, updated_at=now)
            )
            if result.rowcount == 0:
                return False
            if cert_fingerprints is not None:
                _replace_certificates(conn, organ_id, cert_fingerprints, now)
        return True

    def agencies(self, organ_ids: Iterable[str]) -> dict[str, AgencyRecord]:
        """The registered agencies among ``organ_ids`` (with their bound fingerprints)."""
        ids = sorted(set(organ_ids))
        if not ids:
            return {}
        with self._read() as conn:
            return _agencies(conn, ids)

    def list_agencies(self, parent: str | None = None) -> list[AgencyRecord]:
        """Every agency (or the direct children of ``parent``), ordered by OrganId."""
        query = select(t.agencies).order_by(t.agencies.c.organ_id)
        if parent is not None:
            query = query.where(t.agencies.c.parent == parent)
        with self._read() as conn:
            rows = conn.execute(query).mappings().all()
            certs = _certificates(conn, None)
        return [_agency(r, certs.get(r["organ_id"], ())) for r in rows]

    # ---------------------------------------------------------------------------------- systems

    def add_system(self, record: SystemRecord) -> None:
        """Register a system with the agencies it acts for; RequestError if the id or an agency is wrong."""
        try:
            with self._write() as conn:
                if conn.execute(select(t.systems.c.id).where(t.systems.c.id == record.id)).first() is not None:
                    raise RequestError(f"system {record.id!r} already exists", system_id=record.id)
                known = set(
                    conn.scalars(select(t.agencies.c.organ_id).where(t.agencies.c.organ_id.in_(record.agencies)))
                )
                missing = sorted(set(record.agencies) - known)
                if missing:
                    raise RequestError(f"unknown agencies: {', '.join(missing)}", agencies=missing)
                conn.execute(
                    insert(t.systems).values(
                        id=record.id,
                        name=record.name,
                        secret_enc=record.secret_enc,
                        secret_hash=record.secret_hash,
                        active=record.active,
                        created_at=record.created_at,
                    )
                )
                if record.agencies:
                    conn.execute(
                        insert(t.system_agencies),
                        [{"system_id": record.id, "organ_id": o} for o in dict.fromkeys(record.agencies)],
                    )
        except IntegrityError:  # a concurrent add of the same id
            raise RequestError(f"system {record.id!r} already exists", system_id=record.id) from None

    def set_system_secret(self, system_id: str, secret_enc: bytes, secret_hash: str) -> bool:
        with self._write() as conn:
            result = conn.execute(
                update(t.systems)
                .where(t.systems.c.id == system_id)
                .values(secret_enc=secret_enc, secret_hash=secret_hash)
            )
        return result.rowcount == 1

    def set_system_active(self, system_id: str, active: bool) -> bool:
        with self._write() as conn:
            result = conn.execute(update(t.systems).where(t.systems.c.id == system_id).values(active=active))
        return result.rowcount == 1

    def system(self, system_id: str) -> SystemRecord | None:
        with self._read() as conn:
            row = conn.execute(select(t.systems).where(t.systems.c.id == system_id)).mappings().first()
            if row is None:
                return None
            agencies = tuple(
                conn.scalars(
                    select(t.system_agencies.c.organ_id)
                    .where(t.system_agencies.c.system_id == system_id)
                    .order_by(t.system_agencies.c.organ_id)
                )
            )
        return _system(row, agencies)

    def list_systems(self) -> list[SystemRecord]:
        with self._read() as conn:
            rows = conn.execute(select(t.systems).order_by(t.systems.c.id)).mappings().all()
            links: dict[str, list[str]] = {}
            for sid, organ in conn.execute(
                select(t.system_agencies.c.system_id, t.system_agencies.c.organ_id).order_by(
                    t.system_agencies.c.organ_id
                )
            ):
                links.setdefault(sid, []).append(organ)
        return [_system(r, tuple(links.get(r["id"], ()))) for r in rows]

    def active_system_agencies(self, system_id: str) -> tuple[str, ...] | None:
        """The agencies an ACTIVE system acts for (directly), or None for an unknown/inactive system."""
        with self._read() as conn:
            return _acting(conn, system_id)

    def intake_lookup(self, system_id: str, organ_ids: Iterable[str], idem_key: str) -> IntakeLookup:
        """Everything intake reads before deciding, in ONE connection checkout (the hot path):
        the system's agencies, the agencies the package names, and a document already under the key."""
        ids = sorted(set(organ_ids))
        with self._read() as conn:
            acting = _acting(conn, system_id)
            agencies = _agencies(conn, ids) if ids else {}
            row = conn.execute(_Q_BY_IDEM, {"idem_key": idem_key}).mappings().first()
        return IntakeLookup(acting=acting, agencies=agencies, existing=_document(row) if row is not None else None)

    # ---------------------------------------------------------------------------------- WS-Security nonces

    def remember_nonce(self, system_id: str, nonce: str, at: datetime) -> bool:
        """Record a nonce; False if it was already recorded for this system (a replay)."""
        try:
            with self._write() as conn:
                conn.execute(insert(t.wss_nonces).values(system_id=system_id, nonce=nonce, created_at=at))
        except IntegrityError:
            return False
        return True

    def prune_nonces(self, before: datetime) -> int:
        with self._write() as conn:
            return conn.execute(delete(t.wss_nonces).where(t.wss_nonces.c.created_at < before)).rowcount

    # ---------------------------------------------------------------------------------- documents

    def document_by_idem_key(self, idem_key: str) -> DocumentRecord | None:
        with self._read() as conn:
            row = conn.execute(_Q_BY_IDEM, {"idem_key": idem_key}).mappings().first()
        return _document(row) if row is not None else None

    def document(self, doc_id: str) -> DocumentRecord | None:
        with self._read() as conn:
            row = conn.execute(_DOC_SELECT.where(t.documents.c.doc_id == doc_id)).mappings().first()
        return _document(row) if row is not None else None

    def raw(self, doc_id: str) -> bytes | None:
        with self._read() as conn:
            return conn.execute(select(t.documents.c.raw).where(t.documents.c.doc_id == doc_id)).scalar()

    def edocs_with_recipients(
        self, document_id: str, sender: str | None = None, *, limit: int = 20
    ) -> list[tuple[DocumentRecord, tuple[str, ...]]]:
        """Edocs with this business DocumentId (and sender), newest first, each with its recipients."""
        query = _DOC_SELECT.where(t.documents.c.document_id == document_id, t.documents.c.kind == "edoc")
        if sender is not None:
            query = query.where(t.documents.c.sender == sender)
        query = query.order_by(t.documents.c.received_at.desc(), t.documents.c.doc_id).limit(limit)
        with self._read() as conn:
            docs = [_document(r) for r in conn.execute(query).mappings()]
            recipients: dict[str, list[str]] = {}
            if docs:
                for doc_id, recipient in conn.execute(
                    select(t.deliveries.c.doc_id, t.deliveries.c.recipient).where(
                        t.deliveries.c.doc_id.in_([d.doc_id for d in docs])
                    )
                ):
                    recipients.setdefault(doc_id, []).append(recipient)
        return [(d, tuple(sorted(recipients.get(d.doc_id, ())))) for d in docs]

    def insert_document(self, new: NewDocument) -> dict[str, str]:
        """Store a package with its deliveries, outbox rows, status history row and audit entry, atomically.

        Returns ``{recipient: delivery_id}``. Raises :class:`IdempotencyConflict` when the idempotency key is
        already taken (the caller re-reads and answers as a duplicate).
        """
        try:
            with self._write() as conn:
                return _insert_document(conn, new)
        except IntegrityError as exc:
            if self.document_by_idem_key(new.document.idem_key) is not None:
                raise IdempotencyConflict(new.document.idem_key) from exc
            raise

    # ---------------------------------------------------------------------------------- mailbox

    def pending(self, recipient: str, kind: str, limit: int) -> list[PendingRecord]:
        """QUEUED and FETCHED deliveries of one recipient, oldest first (at-least-once: FETCHED stays)."""
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
            )
            .select_from(d.join(doc, doc.c.doc_id == d.c.doc_id))
            .where(d.c.recipient == recipient, d.c.state.in_(("queued", "fetched")), doc.c.kind == kind)
            .order_by(d.c.created_at, d.c.delivery_id)
            .limit(limit)
        )
        with self._read() as conn:
            return [PendingRecord(**r) for r in conn.execute(query).mappings()]

    def delivery(self, delivery_id: str) -> tuple[DeliveryRecord, DocumentRecord] | None:
        """A delivery with its document (no bytes)."""
        d = t.deliveries
        query = (
            select(*d.c, *[c for c in _DOC_COLUMNS if c.name != "doc_id"])
            .select_from(d.join(t.documents, t.documents.c.doc_id == d.c.doc_id))
            .where(d.c.delivery_id == delivery_id)
        )
        with self._read() as conn:
            row = conn.execute(query).mappings().first()
        if row is None:
            return None
        return _delivery(row), _document(row)

    def deliveries(self, doc_id: str) -> list[DeliveryRecord]:
        with self._read() as conn:
            rows = conn.execute(
                select(t.deliveries).where(t.deliveries.c.doc_id == doc_id).order_by(t.deliveries.c.recipient)
            ).mappings()
            return [_delivery(r) for r in rows]

    def fetch(self, delivery_id: str, at: datetime, audit: AuditEntry) -> bytes | None:
        """The package bytes of a delivery; QUEUED becomes FETCHED (first fetch time kept). Audited."""
        d = t.deliveries
        with self._write() as conn:
            raw = conn.execute(
                select(t.documents.c.raw)
                .select_from(d.join(t.documents, t.documents.c.doc_id == d.c.doc_id))
                .where(d.c.delivery_id == delivery_id)
            ).scalar()
            if raw is None:
                return None
            conn.execute(update(d).where(d.c.delivery_id == delivery_id, d.c.state == "queued").values(state="fetched"))
            conn.execute(
                update(d).where(d.c.delivery_id == delivery_id, d.c.fetched_at.is_(None)).values(fetched_at=at)
            )
            _insert_audit(conn, audit)
        return bytes(raw)

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
        d = t.deliveries
        with self._write() as conn:
            result = conn.execute(
                update(d)
                .where(d.c.delivery_id == delivery_id, d.c.state.in_(("queued", "fetched")))
                .values(state=state, acknowledged_at=at, ack_outcome=outcome, ack_reason=reason)
            )
            if result.rowcount == 0:
                current = conn.execute(select(d.c.state).where(d.c.delivery_id == delivery_id)).scalar()
                return AckResult(changed=False, state=current or "")
            # Settled through the mailbox: the worker must not push it any more (issue 4).
            conn.execute(delete(t.outbox).where(t.outbox.c.delivery_id == delivery_id))
            _insert_audit(conn, audit)
            emitted = None
            if emit is not None and emit.status is not None:
                h = t.status_history
                seen = conn.execute(
                    select(h.c.id).where(
                        h.c.doc_id == emit.status.doc_id,
                        h.c.recipient == emit.status.recipient,
                        h.c.reporter == emit.status.reporter,
                    )
                ).first()
                if seen is None:
                    _insert_document(conn, emit)
                    emitted = emit.document.doc_id
        return AckResult(changed=True, state=state, emitted_doc_id=emitted)

    # ---------------------------------------------------------------------------------- status history

    def status_codes(self, doc_id: str, recipient: str) -> list[str]:
        """Codes already recorded for (document, recipient), in arrival order (for the out-of-order flag)."""
        h = t.status_history
        with self._read() as conn:
            return list(
                conn.scalars(
                    select(h.c.status_code).where(h.c.doc_id == doc_id, h.c.recipient == recipient).order_by(h.c.id)
                )
            )

    def history(self, doc_id: str) -> list[StatusRecord]:
        h = t.status_history
        with self._read() as conn:
            rows = conn.execute(select(h).where(h.c.doc_id == doc_id).order_by(h.c.id)).mappings()
            return [_status(r) for r in rows]

    # ---------------------------------------------------------------------------------- push delivery (issue 4)

    def claim_deliveries(
        self,
        worker_id: str,
        *,
        now: datetime,
        lease_until: datetime,
        limit: int,
        channels: Collection[str],
        due_before: datetime | None = None,
    ) -> list[ClaimedDelivery]:
        """Lease up to ``limit`` due outbox rows of recipients on ``channels`` to ``worker_id``, earliest first.

        Due: ``next_attempt_at <= due_before`` (default ``now``) and no live lease. PostgreSQL locks the chosen rows
        ``FOR UPDATE OF outbox SKIP LOCKED``, so concurrent workers pick disjoint rows without waiting for each
        other. SQLAlchemy drops that clause on SQLite, where the same statements are correct for a different
        reason: the transaction begins IMMEDIATE (:func:`gateway.db.engine.writer`), so claims are serialized
        by the database lock and a second claimer sees the first one's leases.
        """
        if limit < 1 or not channels:
            return []
        o, d, a, doc = t.outbox, t.deliveries, t.agencies, t.documents
        due = now if due_before is None else min(due_before, now)
        pick = (
            select(o.c.id)
            .select_from(o.join(d, d.c.delivery_id == o.c.delivery_id).join(a, a.c.organ_id == d.c.recipient))
            .where(
                o.c.next_attempt_at <= due,
                or_(o.c.lease_until.is_(None), o.c.lease_until < now),
                a.c.channel.in_(sorted(channels)),
            )
            .order_by(o.c.next_attempt_at, o.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True, of=o)
        )
        with self._write() as conn:
            ids = list(conn.scalars(pick))
            if not ids:
                return []
            conn.execute(update(o).where(o.c.id.in_(ids)).values(claimed_by=worker_id, lease_until=lease_until))
            rows = conn.execute(
                select(
                    d.c.delivery_id,
                    d.c.doc_id,
                    doc.c.kind,
                    doc.c.sender,
                    d.c.recipient,
                    doc.c.document_id,
                    a.c.channel,
                    a.c.endpoint,
                    d.c.attempts,
                    o.c.attempts.label("budget_attempts"),
                    o.c.created_at.label("budget_since"),
                    o.c.lease_until,
                )
                .select_from(
                    o.join(d, d.c.delivery_id == o.c.delivery_id)
                    .join(doc, doc.c.doc_id == d.c.doc_id)
                    .join(a, a.c.organ_id == d.c.recipient)
                )
                .where(o.c.id.in_(ids))
                .order_by(o.c.next_attempt_at, o.c.id)
            ).mappings()
            return [ClaimedDelivery(**r) for r in rows]

    def renew_claims(self, worker_id: str, delivery_ids: Collection[str], lease_until: datetime) -> set[str]:
        """Extend this worker's leases; returns the deliveries it still holds (another worker may have taken one
        whose lease had run out)."""
        if not delivery_ids:
            return set()
        o = t.outbox
        mine = (o.c.delivery_id.in_(list(delivery_ids)), o.c.claimed_by == worker_id)
        with self._write() as conn:
            conn.execute(update(o).where(*mine).values(lease_until=lease_until))
            return set(conn.scalars(select(o.c.delivery_id).where(*mine)))

    def release_claims(self, worker_id: str, delivery_ids: Collection[str] | None = None) -> int:
        """Give back this worker's leases (all, or those of ``delivery_ids``) unattempted: due again at once."""
        o = t.outbox
        query = update(o).where(o.c.claimed_by == worker_id)
        if delivery_ids is not None:
            if not delivery_ids:
                return 0
            query = query.where(o.c.delivery_id.in_(list(delivery_ids)))
        with self._write() as conn:
            return conn.execute(query.values(claimed_by=None, lease_until=None)).rowcount

    def postpone(self, worker_id: str, delivery_id: str, until: datetime) -> bool:
        """Release a claim unattempted and make the delivery due at ``until`` (its peer is known to be failing)."""
        o = t.outbox
        with self._write() as conn:
            result = conn.execute(
                update(o)
                .where(o.c.delivery_id == delivery_id, o.c.claimed_by == worker_id)
                .values(next_attempt_at=until, claimed_by=None, lease_until=None)
            )
        return result.rowcount == 1

    def finish_attempt(self, record: AttemptRecord, *, audit: AuditEntry | None = None) -> bool:
        """Record an attempt and its consequence in ONE transaction; True if the delivery changed as decided.

        * ``delivered``: the peer took the package — the delivery becomes DELIVERED (also from DEAD: a late
          success is a fact) and leaves the outbox, whoever holds the lease;
        * ``retry``: the outbox row is due again at ``record.next_attempt_at`` and released;
        * ``dead``: the delivery becomes DEAD and leaves the outbox.

        ``retry`` and ``dead`` apply only while ``record.worker_id`` still holds the lease: a worker whose lease
        ran out (and was taken over) records its attempt but decides nothing. ``audit`` is written only when the
        delivery changed.
        """
        d, o = t.deliveries, t.outbox
        finished = record.finished_at
        with self._write() as conn:
            conn.execute(_INSERT_ATTEMPT, _attempt_values(record))
            counted = {"attempts": d.c.attempts + 1, "last_attempt_at": record.started_at}
            this = d.c.delivery_id == record.delivery_id
            if record.outcome == "delivered":
                changed = (
                    conn.execute(
                        update(d)
                        .where(this, d.c.state.in_(("queued", "fetched", "dead")))
                        .values(
                            state="delivered",
                            acknowledged_at=finished,
                            ack_outcome="done",
                            ack_reason=None,
                            last_error=None,
                            peer_reference=record.peer_reference,
                            **counted,
                        )
                    ).rowcount
                    == 1
                )
                if not changed:  # settled meanwhile (through the mailbox): count the attempt only
                    conn.execute(update(d).where(this).values(**counted))
                conn.execute(delete(o).where(o.c.delivery_id == record.delivery_id))
            else:
                error = _error_text(record)
                held = o.c.delivery_id == record.delivery_id, o.c.claimed_by == record.worker_id
                if record.outcome == "dead":
                    changed = conn.execute(delete(o).where(*held)).rowcount == 1
                    if changed:
                        conn.execute(
                            update(d)
                            .where(this, d.c.state.in_(("queued", "fetched")))
                            .values(state="dead", acknowledged_at=finished, ack_outcome="fail", ack_reason=error)
                        )
                elif record.outcome == "retry":
                    changed = (
                        conn.execute(
                            update(o)
                            .where(*held)
                            .values(
                                attempts=o.c.attempts + 1,
                                next_attempt_at=record.next_attempt_at,
                                claimed_by=None,
                                lease_until=None,
                            )
                        ).rowcount
                        == 1
                    )
                else:
                    raise ValueError(f"unknown attempt outcome {record.outcome!r}")
                conn.execute(update(d).where(this).values(last_error=error, **counted))
            if changed and audit is not None:
                _insert_audit(conn, audit)
        return changed

    def delivery_attempts(self, delivery_id: str) -> list[AttemptRecord]:
        """Every attempt of a delivery, oldest first."""
        a = t.delivery_attempts
        with self._read() as conn:
            rows = conn.execute(select(a).where(a.c.delivery_id == delivery_id).order_by(a.c.id)).mappings()
            return [AttemptRecord(**{name: r[name] for name in _ATTEMPT_FIELDS}) for r in rows]

    def delivery_overview(self, delivery_id: str) -> DeliveryOverview | None:
        with self._read() as conn:
            row = conn.execute(_Q_OVERVIEW.where(t.deliveries.c.delivery_id == delivery_id)).mappings().first()
        return DeliveryOverview(**row) if row is not None else None

    def list_deliveries(
        self, *, state: str | None = None, recipient: str | None = None, limit: int = 100
    ) -> list[DeliveryOverview]:
        """Deliveries, newest first, optionally of one state and/or one recipient."""
        d = t.deliveries
        query = _Q_OVERVIEW.order_by(d.c.created_at.desc(), d.c.delivery_id).limit(limit)
        if state is not None:
            query = query.where(d.c.state == state)
        if recipient is not None:
            query = query.where(d.c.recipient == recipient)
        with self._read() as conn:
            return [DeliveryOverview(**r) for r in conn.execute(query).mappings()]

    def redrive(
        self,
        delivery_ids: Sequence[str],
        *,
        now: datetime,
        push_channels: Collection[str],
        system_id: str | None = None,
        actor: str | None = None,
    ) -> list[str]:
        """Send deliveries again, in one transaction; returns those re-driven (audited one by one).

        DEAD and FAILED deliveries become QUEUED with a new retry budget starting ``now`` (an outbox row due at
        once when the recipient's channel is a push channel now; otherwise they wait in its mailbox). A QUEUED or
        FETCHED delivery still in the outbox (retrying) is made due at once with a new budget. Anything else
        (delivered, or a mailbox delivery that is merely waiting) is left alone.
        """
        d, o, a = t.deliveries, t.outbox, t.agencies
        done: list[str] = []
        with self._write() as conn:
            rows = conn.execute(
                select(d.c.delivery_id, d.c.doc_id, d.c.recipient, d.c.state, a.c.channel, o.c.id.label("outbox_id"))
                .select_from(
                    d.outerjoin(a, a.c.organ_id == d.c.recipient).outerjoin(o, o.c.delivery_id == d.c.delivery_id)
                )
                .where(d.c.delivery_id.in_(list(delivery_ids)))
                .order_by(d.c.created_at, d.c.delivery_id)
            ).mappings()
            fresh = {"created_at": now, "next_attempt_at": now, "attempts": 0}
            for row in list(rows):
                this = d.c.delivery_id == row["delivery_id"]
                if row["state"] in ("dead", "failed"):
                    result = conn.execute(
                        update(d)
                        .where(this, d.c.state == row["state"])
                        .values(state="queued", acknowledged_at=None, ack_outcome=None, ack_reason=None)
                    )
                    if result.rowcount != 1:
                        continue
                    if row["channel"] in push_channels:
                        if row["outbox_id"] is None:
                            conn.execute(_INSERT_OUTBOX, {"delivery_id": row["delivery_id"], **fresh})
                        else:
                            conn.execute(update(o).where(o.c.id == row["outbox_id"]).values(**fresh))
                elif row["state"] in ("queued", "fetched") and row["outbox_id"] is not None:
                    conn.execute(update(o).where(o.c.id == row["outbox_id"]).values(**fresh))
                else:
                    continue
                done.append(row["delivery_id"])
                _insert_audit(
                    conn,
                    AuditEntry(
                        at=now,
                        action="delivery.redrive",
                        system_id=system_id,
                        doc_id=row["doc_id"],
                        organ_id=row["recipient"],
                        detail={"delivery_id": row["delivery_id"], "previous_state": row["state"], "by": actor},
                    ),
                )
        return done

    def beat(self, heartbeat: WorkerHeartbeat) -> None:
        """Insert or refresh a worker's heartbeat row."""
        h = t.worker_heartbeats
        with self._write() as conn:
            result = conn.execute(
                update(h)
                .where(h.c.worker_id == heartbeat.worker_id)
                .values(seen_at=heartbeat.seen_at, stopped_at=heartbeat.stopped_at)
            )
            if result.rowcount == 0:
                conn.execute(insert(h).values(**_heartbeat_values(heartbeat)))

    def worker_heartbeats(self) -> list[WorkerHeartbeat]:
        """Every worker heartbeat, most recently seen first."""
        h = t.worker_heartbeats
        with self._read() as conn:
            rows = conn.execute(select(h).order_by(h.c.seen_at.desc(), h.c.worker_id)).mappings()
            return [WorkerHeartbeat(**r) for r in rows]

    def prune_heartbeats(self, before: datetime) -> int:
        """Forget workers not seen since ``before``."""
        h = t.worker_heartbeats
        with self._write() as conn:
            return conn.execute(delete(h).where(h.c.seen_at < before)).rowcount

    def push_expected(self, push_channels: Collection[str]) -> bool:
        """True when a worker has (or may soon have) work: an active push agency exists, or the outbox is not
        empty."""
        a = t.agencies
        with self._read() as conn:
            return bool(
                conn.execute(
                    select(
                        or_(
                            exists().where(a.c.active.is_(True), a.c.channel.in_(sorted(push_channels))),
                            exists().where(t.outbox.c.id.is_not(None)),
                        )
                    )
                ).scalar()
            )

    # ---------------------------------------------------------------------------------- audit

    def audit(self, entry: AuditEntry) -> None:
        """An audit row in its own transaction (refusals: nothing else is stored)."""
        with self._write() as conn:
            _insert_audit(conn, entry)

    def audit_entries(self, *, action: str | None = None, limit: int = 100) -> list[AuditEntry]:
        """Newest first."""
        a = t.audit_log
        query = select(a).order_by(a.c.id.desc()).limit(limit)
        if action is not None:
            query = query.where(a.c.action == action)
        with self._read() as conn:
            return [
                AuditEntry(
                    at=r["at"],
                    action=r["action"],
                    outcome=r["outcome"],
                    system_id=r["system_id"],
                    doc_id=r["doc_id"],
                    organ_id=r["organ_id"],
                    detail=r["detail"],
                )
                for r in conn.execute(query).mappings()
            ]


# ================================================================================================ helpers

_DOC_COLUMNS = [c for c in t.documents.c if c.name != "raw"]
_DOC_SELECT = select(*_DOC_COLUMNS)
# Hot-path statements are built once, with bound parameters, so SQLAlchemy compiles each only once.
_Q_BY_IDEM = _DOC_SELECT.where(t.documents.c.idem_key == bindparam("idem_key"))
_Q_ACTING = (
    select(t.systems.c.id, t.system_agencies.c.organ_id)
    .select_from(t.systems.outerjoin(t.system_agencies, t.system_agencies.c.system_id == t.systems.c.id))
    .where(t.systems.c.id == bindparam("system_id"), t.systems.c.active.is_(True))
)
_Q_AGENCIES = (
    select(t.agencies, t.agency_certificates.c.fingerprint)
    .select_from(t.agencies.outerjoin(t.agency_certificates))
    .where(t.agencies.c.organ_id.in_(bindparam("ids", expanding=True)))
    .order_by(t.agencies.c.organ_id, t.agency_certificates.c.fingerprint)
)
_INSERT_DOCUMENT = insert(t.documents)
_INSERT_DELIVERY = insert(t.deliveries)
_INSERT_OUTBOX = insert(t.outbox)
_INSERT_STATUS = insert(t.status_history)
_INSERT_AUDIT = insert(t.audit_log)
_INSERT_ATTEMPT = insert(t.delivery_attempts)
_Q_OVERVIEW = select(
    t.deliveries.c.delivery_id,
    t.deliveries.c.doc_id,
    t.documents.c.kind,
    t.documents.c.sender,
    t.deliveries.c.recipient,
    t.documents.c.document_id,
    t.deliveries.c.state,
    t.deliveries.c.created_at,
    t.agencies.c.channel,
    t.deliveries.c.attempts,
    t.deliveries.c.last_attempt_at,
    t.deliveries.c.last_error,
    t.deliveries.c.peer_reference,
    t.deliveries.c.acknowledged_at,
    t.deliveries.c.ack_reason,
    t.outbox.c.next_attempt_at,
    t.outbox.c.attempts.label("budget_attempts"),
    t.outbox.c.created_at.label("budget_since"),
    t.outbox.c.claimed_by,
    t.outbox.c.lease_until,
).select_from(
    t.deliveries.join(t.documents, t.documents.c.doc_id == t.deliveries.c.doc_id)
    .outerjoin(t.agencies, t.agencies.c.organ_id == t.deliveries.c.recipient)
    .outerjoin(t.outbox, t.outbox.c.delivery_id == t.deliveries.c.delivery_id)
)
#: Longest error text kept on a delivery (the attempt row keeps its own, equally bounded, copy).
_MAX_ERROR = 2000


@contextmanager
def _translated() -> Iterator[None]:
    """Database outages → UnavailableError (retryable); everything else propagates unchanged."""
    try:
        yield
    except OperationalError as exc:
        raise UnavailableError(f"database unavailable: {exc.orig.__class__.__name__}") from exc
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise UnavailableError("database connection lost") from exc
        raise


def _insert_document(conn: Connection, new: NewDocument) -> dict[str, str]:
    doc = new.document
    values = {name: getattr(doc, name) for name in _DOC_FIELDS}
    values["meta"] = dict(doc.meta)
    values["raw"] = new.raw
    conn.execute(_INSERT_DOCUMENT, values)
    ids: dict[str, str] = {}
    if new.recipients:
        rows = []
        push = []
        for recipient, is_push in new.recipients:
            delivery_id = uuid.uuid4().hex
            ids[recipient] = delivery_id
            rows.append(
                {
                    "delivery_id": delivery_id,
                    "doc_id": doc.doc_id,
                    "recipient": recipient,
                    "state": "queued",
                    "created_at": doc.received_at,
                }
            )
            if is_push:
                push.append(
                    {"delivery_id": delivery_id, "created_at": doc.received_at, "next_attempt_at": doc.received_at}
                )
        conn.execute(_INSERT_DELIVERY, rows)
        if push:
            conn.execute(_INSERT_OUTBOX, push)
    if new.status is not None:
        conn.execute(_INSERT_STATUS, _status_values(new.status))
    _insert_audit(conn, new.audit)
    return ids


def _insert_audit(conn: Connection, entry: AuditEntry) -> None:
    conn.execute(
        _INSERT_AUDIT,
        {
            "at": entry.at,
            "system_id": entry.system_id,
            "action": entry.action,
            "doc_id": entry.doc_id,
            "organ_id": entry.organ_id,
            "outcome": entry.outcome,
            "detail": dict(entry.detail) if entry.detail is not None else None,
        },
    )


def _acting(conn: Connection, system_id: str) -> tuple[str, ...] | None:
    rows = conn.execute(_Q_ACTING, {"system_id": system_id}).all()
    if not rows:
        return None
    return tuple(organ for _sid, organ in rows if organ is not None)


def _agencies(conn: Connection, ids: Sequence[str]) -> dict[str, AgencyRecord]:
    found: dict[str, Mapping[str, Any]] = {}
    certs: dict[str, list[str]] = {}
    for row in conn.execute(_Q_AGENCIES, {"ids": list(ids)}).mappings():
        found.setdefault(row["organ_id"], row)
        if row["fingerprint"] is not None:
            certs.setdefault(row["organ_id"], []).append(row["fingerprint"])
    return {organ: _agency(row, tuple(certs.get(organ, ()))) for organ, row in found.items()}


def _replace_certificates(conn: Connection, organ_id: str, fingerprints: Iterable[str], now: datetime) -> None:
    c = t.agency_certificates
    conn.execute(delete(c).where(c.c.organ_id == organ_id))
    unique = list(dict.fromkeys(fingerprints))
    if unique:
        conn.execute(insert(c), [{"organ_id": organ_id, "fingerprint": fp, "created_at": now} for fp in unique])


def _certificates(conn: Connection, organ_ids: Sequence[str] | None) -> dict[str, tuple[str, ...]]:
    c = t.agency_certificates
    query = select(c.c.organ_id, c.c.fingerprint).order_by(c.c.organ_id, c.c.fingerprint)
    if organ_ids is not None:
        query = query.where(c.c.organ_id.in_(organ_ids))
    out: dict[str, list[str]] = {}
    for organ, fp in conn.execute(query):
        out.setdefault(organ, []).append(fp)
    return {k: tuple(v) for k, v in out.items()}


def _agency_values(rec: AgencyRecord) -> dict[str, Any]:
    return {
        f.name: getattr(rec, f.name) for f in fields(AgencyRecord) if f.name not in ("organ_id", "cert_fingerprints")
    }


def _agency(row: Mapping[str, Any], certs: tuple[str, ...]) -> AgencyRecord:
    return AgencyRecord(
        **{f.name: row[f.name] for f in fields(AgencyRecord) if f.name != "cert_fingerprints"},
        cert_fingerprints=certs,
    )


def _system(row: Mapping[str, Any], agencies: tuple[str, ...]) -> SystemRecord:
    return SystemRecord(
        id=row["id"],
        name=row["name"],
        secret_enc=bytes(row["secret_enc"]),
        secret_hash=row["secret_hash"],
        active=row["active"],
        created_at=row["created_at"],
        agencies=agencies,
    )


_DOC_FIELDS = [f.name for f in fields(DocumentRecord)]


def _document(row: Mapping[str, Any]) -> DocumentRecord:
    return DocumentRecord(**{name: row[name] for name in _DOC_FIELDS})


_DELIVERY_FIELDS = [f.name for f in fields(DeliveryRecord)]


def _delivery(row: Mapping[str, Any]) -> DeliveryRecord:
    return DeliveryRecord(**{name: row[name] for name in _DELIVERY_FIELDS})


_STATUS_FIELDS = [f.name for f in fields(StatusRecord)]
_ATTEMPT_FIELDS = [f.name for f in fields(AttemptRecord)]


def _attempt_values(rec: AttemptRecord) -> dict[str, Any]:
    values = {name: getattr(rec, name) for name in _ATTEMPT_FIELDS}
    for name in ("error_message", "peer_answer"):
        if values[name] is not None:
            values[name] = values[name][:_MAX_ERROR]
    if values["peer_reference"] is not None:
        values["peer_reference"] = values["peer_reference"][:200]
    return values


def _error_text(rec: AttemptRecord) -> str:
    """``CODE: message`` (and the peer's answer) — what the sender's status view shows for a dead letter."""
    text = f"{rec.error_code or 'DELIVERY.FAILED'}: {rec.error_message or ''}".rstrip()
    if rec.peer_answer:
        text += f" (peer: {rec.peer_answer})"
    return text[:_MAX_ERROR]


def _heartbeat_values(h: WorkerHeartbeat) -> dict[str, Any]:
    return {f.name: getattr(h, f.name) for f in fields(WorkerHeartbeat)}


def _status(row: Mapping[str, Any]) -> StatusRecord:
    return StatusRecord(**{name: row[name] for name in _STATUS_FIELDS})


def _status_values(rec: StatusRecord) -> dict[str, Any]:
    return {name: getattr(rec, name) for name in _STATUS_FIELDS}


__all__ = [
    "AckResult",
    "AgencyRecord",
    "AttemptRecord",
    "AuditEntry",
    "ClaimedDelivery",
    "DeliveryOverview",
    "DeliveryRecord",
    "DocumentRecord",
    "IdempotencyConflict",
    "IntakeLookup",
    "NewDocument",
    "PendingRecord",
    "StatusRecord",
    "Store",
    "SystemRecord",
    "WorkerHeartbeat",
]
