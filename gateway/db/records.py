"""The values the repositories take and return (frozen dataclasses), and the one row↔record mapping.

A record's fields are named after the columns it is stored in or read from, so one set of functions maps every
record: :func:`from_row` (a result row → a record), :func:`to_values` (a record → the values of an INSERT) and
:func:`columns_for` (the columns a joined SELECT reads a record from). The few columns that need more than a copy
(bytes that come back as ``memoryview``, JSON that must be a plain ``dict``, text bounded before storing) are
passed explicitly by the repository that owns them.

Nothing here runs a query (``columns_for`` only builds expressions): the services import these values, through
:mod:`gateway.db`, without knowing SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, fields
from datetime import date, datetime, timedelta
from functools import cache
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Table

from gateway.payload import Payload

R = TypeVar("R")


@cache
def field_names(cls: type) -> tuple[str, ...]:
    """The field names of a record class, computed once per class (the mapping runs on the hot path)."""
    return tuple(f.name for f in fields(cls))


def from_row(cls: type[R], row: Mapping[str, Any], **given: Any) -> R:
    """A ``cls`` record from a result row: each field read from the column of its name, except those ``given``."""
    if not given:
        return cls(**{name: row[name] for name in field_names(cls)})
    return cls(**{name: row[name] for name in field_names(cls) if name not in given}, **given)


def to_values(record: Any, *, skip: Collection[str] = ()) -> dict[str, Any]:
    """A record's fields as column values (the inverse of :func:`from_row`), without the fields in ``skip``."""
    return {name: getattr(record, name) for name in field_names(type(record)) if name not in skip}


def columns_for(
    cls: type, *tables: Table, skip: Collection[str] = (), **named: ColumnElement[Any]
) -> list[ColumnElement[Any]]:
    """What to SELECT for a ``cls`` record from a join of ``tables``: each field's column of the same name in the
    first of ``tables`` that has one, or the expression ``named`` for it (labelled with the field name); fields in
    ``skip`` are the caller's to fill. A field found nowhere is a programming error (KeyError)."""
    columns: list[ColumnElement[Any]] = []
    for name in field_names(cls):
        if name in skip:
            continue
        if name in named:
            columns.append(named[name].label(name))
            continue
        table = next((table for table in tables if name in table.c), None)
        if table is None:
            raise KeyError(f"{cls.__name__}.{name}: no such column in {[table.name for table in tables]}")
        columns.append(table.c[name])
    return columns


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
    #: Where alert digests about deliveries to this agency go (comma-separated addresses).
    contact_email: str | None = None
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
    #: VDXP replay protection (issue 10 finding 7; gateway.services.vdxp_guard): ``strict`` | ``legacy-sdk``.
    vdxp_replay: str = "strict"
    #: Networks (normalised CIDRs) its VDXP requests may come from; empty = anywhere.
    vdxp_allow_from: tuple[str, ...] = ()
    #: SHA-256 (lowercase hex) of the TLS client certificates bound to it; empty = no certificate binding.
    vdxp_client_certs: tuple[str, ...] = ()
    #: The legacy login name (e-doc.vn ``OrganId``, issue 13); None for a system that is not a legacy one.
    legacy_organ_id: str | None = None
    #: Whom a legacy system may send as (gateway.services.legacy_credentials.LegacyScope); None with no login name.
    legacy_scope: str | None = None


@dataclass(frozen=True)
class DocumentRecord:
    """A stored package without its bytes (``store.documents.raw`` reads those)."""

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
    #: Tracking facts of an edoc (OtherInfo/Priority, PromulgationDate, DueDate); None for a status.
    priority: int | None = None
    promulgation_date: date | None = None
    due_date: date | None = None


@dataclass(frozen=True)
class DeliveryRecord:
    """One row of ``deliveries``: a document on its way to one recipient."""

    delivery_id: str
    doc_id: str
    recipient: str
    state: str
    created_at: datetime
    fetched_at: datetime | None = None
    acknowledged_at: datetime | None = None
    ack_outcome: str | None = None
    ack_reason: str | None = None
    #: ``mailbox`` or the push channel the recipient was reached by (None for rows older than migration 0003).
    channel: str | None = None


@dataclass(frozen=True)
class DeliveryHead:
    """What every joined view of a delivery starts with: the delivery, its document, who sends it to whom."""

    delivery_id: str
    doc_id: str
    kind: str
    sender: str
    recipient: str
    document_id: str


@dataclass(frozen=True)
class PendingRecord(DeliveryHead):
    """A waiting (queued or fetched) delivery joined with what a mailbox listing shows of its document."""

    received_at: datetime
    size: int
    state: str
    fetched_at: datetime | None


@dataclass(frozen=True)
class SentRecord(DeliveryHead):
    """One (document, recipient) pair of a sent document: the sender's view of where its document is."""

    subject: str | None
    code: str | None
    received_at: datetime
    state: str
    fetched_at: datetime | None
    acknowledged_at: datetime | None
    ack_reason: str | None
    #: The latest business status the recipient reported for an edoc (None for status documents or none yet).
    status_code: str | None


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
class SignerCertificate:
    """A certificate that signed a valid package of ``organ_id`` (the sending agency)."""

    organ_id: str
    #: SHA-256 of the DER, lowercase hex (the same value as ``documents.signer_fingerprint``).
    fingerprint: str
    subject: str | None
    issuer: str | None
    #: Serial number, lowercase hex.
    serial: str | None
    not_before: datetime | None
    not_after: datetime | None
    first_seen_at: datetime
    last_seen_at: datetime
    der: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True)
class NewDocument:
    """Everything ``store.documents.insert_document`` writes in one transaction."""

    document: DocumentRecord
    #: The package bytes exactly as received (a big one spooled: :mod:`gateway.payload`).
    raw: bytes | Payload = field(repr=False)
    #: (recipient OrganId, channel) — push channels (anything but ``mailbox``) also get an outbox row.
    recipients: tuple[tuple[str, str], ...]
    audit: AuditEntry
    status: StatusRecord | None = None
    #: The signer certificate of a VALID signature, recorded for the certificate watch (issue 9).
    signer: SignerCertificate | None = None


@dataclass(frozen=True)
class AckResult:
    """What ``store.deliveries.acknowledge`` did: ``changed`` False means the delivery was already in ``state``."""

    changed: bool
    state: str
    emitted_doc_id: str | None = None


@dataclass(frozen=True)
class IntakeLookup:
    """What ``store.documents.intake_lookup`` read: ``acting`` is None for an unknown or inactive system."""

    acting: tuple[str, ...] | None
    agencies: dict[str, AgencyRecord]
    #: The document holding the idempotency key; only meaningful when ``key_read``.
    existing: DocumentRecord | None
    #: ``(legacy OrganId, legacy scope)`` of a legacy system (issue 13): its scope governs whom it sends as.
    legacy: tuple[str, str] | None = None
    #: The key was answered by the lookup (an edoc's DocumentId rows); otherwise the UNIQUE constraint answers it.
    key_read: bool = False
    #: The edocs stored under the package's DocumentId (the sender's own first), when read: the document-id policy.
    same_document_id: tuple[DocumentRecord, ...] | None = None


@dataclass(frozen=True)
class ClaimedDelivery(DeliveryHead):
    """A push delivery a worker holds a lease on, with what its adapter needs (the bytes: ``store.documents.raw``)."""

    channel: str
    endpoint: str | None
    #: Attempts made so far, over every retry budget (the next one is ``attempts + 1``).
    attempts: int
    #: Attempts in the current budget (the backoff exponent) and when that budget started.
    budget_attempts: int
    budget_since: datetime
    lease_until: datetime
    #: The fencing token of this claim: what the worker decides applies only while it is still the current one.
    fence: int = 0
    #: The read timeout of this attempt when longer than the adapter's (after an unknown outcome); None: default.
    read_timeout: float | None = None
    #: The peer (``channel endpoint``) whose circuit breaker and concurrency bound this delivery counts against.
    peer: str = ""


@dataclass(frozen=True)
class AttemptRecord:
    """One push attempt (``delivery_attempts``); ``outcome`` is ``delivered``, ``retry`` or ``dead`` once it is
    finished, ``sending`` while the call is out, ``unknown`` when its worker vanished before recording the answer."""

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
    #: The row's id (set once the attempt is in the log: its intent was written before the call).
    id: int | None = None

    @property
    def finished_at(self) -> datetime:
        return self.started_at + timedelta(milliseconds=self.duration_ms)


@dataclass(frozen=True)
class DeliveryOverview(DeliveryHead):
    """A delivery as operators see it: its document, state, attempts, and (while queued for push) its schedule."""

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
class AdminTokenRecord:
    """One admin API token (``admin_tokens``): its hash only, never the token itself."""

    name: str
    token_hash: str
    role: str
    scope: str | None
    created_at: datetime
    revoked_at: datetime | None = None


@dataclass(frozen=True)
class WorkerHeartbeat:
    """One delivery worker process, as last seen."""

    worker_id: str
    host: str
    pid: int
    started_at: datetime
    seen_at: datetime
    stopped_at: datetime | None = None


__all__ = [
    "AckResult",
    "AdminTokenRecord",
    "AgencyRecord",
    "AttemptRecord",
    "AuditEntry",
    "ClaimedDelivery",
    "DeliveryHead",
    "DeliveryOverview",
    "DeliveryRecord",
    "DocumentRecord",
    "IntakeLookup",
    "NewDocument",
    "PendingRecord",
    "SentRecord",
    "StatusRecord",
    "SystemRecord",
    "WorkerHeartbeat",
    "columns_for",
    "field_names",
    "from_row",
    "to_values",
]
