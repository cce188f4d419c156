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
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, delete, func, insert, select, update
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
                push.append({"delivery_id": delivery_id, "created_at": doc.received_at})
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


def _status(row: Mapping[str, Any]) -> StatusRecord:
    return StatusRecord(**{name: row[name] for name in _STATUS_FIELDS})


def _status_values(rec: StatusRecord) -> dict[str, Any]:
    return {name: getattr(rec, name) for name in _STATUS_FIELDS}


__all__ = [
    "AckResult",
    "AgencyRecord",
    "AuditEntry",
    "DeliveryRecord",
    "DocumentRecord",
    "IdempotencyConflict",
    "IntakeLookup",
    "NewDocument",
    "PendingRecord",
    "StatusRecord",
    "Store",
    "SystemRecord",
]
