"""The database package: the only importer of SQLAlchemy (STYLE.md "SQLAlchemy only in the database package").

* :mod:`gateway.db.tables` — the schema (SQLAlchemy Core), documented table by table;
* :mod:`gateway.db.engine` — :func:`create_engine` from :class:`~gateway.config.Settings` (SQLite WAL by
  default, PostgreSQL through psycopg 3);
* :mod:`gateway.db.store` — :class:`Store`, what the services hold: the engine and one repository per aggregate
  (``store.documents``, ``.deliveries``, ``.outbox``, ``.statuses``, ``.registry``, ``.audit``, ``.nonces``,
  ``.workers``, ``.tracking``, ``.gauges``, ``.alerts``, ``.certificates``, ``.admin_tokens``), each in its own
  module;
* :mod:`gateway.db.records` — the values those repositories take and return, and the one row↔record mapping;
* :mod:`gateway.db.connections` — the reader/writer connections and the one translation of database outages;
* :mod:`gateway.db.migrations` — alembic revisions and :func:`upgrade` (``edoc-gateway db upgrade``).
"""

from sqlalchemy import Engine

from gateway.db.alerts import AlertRecord, NewAlert
from gateway.db.attempts import AttemptStart, FinishedAttempt, FinishSummary
from gateway.db.chunks import MissingChunk
from gateway.db.circuits import CircuitPolicy, CircuitRecord, peer_key
from gateway.db.claims import ClaimRequest, TurnResult
from gateway.db.dashboard import ChannelQueue
from gateway.db.documents import IdempotencyConflict
from gateway.db.engine import create_engine
from gateway.db.gauges import OutboxDue, WaitingCounts
from gateway.db.migrations import current_revision, head_revision, upgrade
from gateway.db.records import (
    AckResult,
    AdminTokenRecord,
    AgencyRecord,
    AttemptRecord,
    AuditEntry,
    ClaimedDelivery,
    DeliveryHead,
    DeliveryOverview,
    DeliveryRecord,
    DocumentRecord,
    IntakeLookup,
    NewDocument,
    PendingRecord,
    SentRecord,
    SignerCertificate,
    StatusRecord,
    SystemRecord,
    WorkerHeartbeat,
)
from gateway.db.store import Store

__all__ = [
    "AckResult",
    "AdminTokenRecord",
    "AgencyRecord",
    "AlertRecord",
    "AttemptRecord",
    "AttemptStart",
    "AuditEntry",
    "ChannelQueue",
    "CircuitPolicy",
    "CircuitRecord",
    "ClaimRequest",
    "ClaimedDelivery",
    "DeliveryHead",
    "DeliveryOverview",
    "DeliveryRecord",
    "DocumentRecord",
    "Engine",
    "FinishSummary",
    "FinishedAttempt",
    "IdempotencyConflict",
    "IntakeLookup",
    "MissingChunk",
    "NewAlert",
    "NewDocument",
    "OutboxDue",
    "PendingRecord",
    "SentRecord",
    "SignerCertificate",
    "StatusRecord",
    "Store",
    "SystemRecord",
    "TurnResult",
    "WaitingCounts",
    "WorkerHeartbeat",
    "create_engine",
    "current_revision",
    "head_revision",
    "peer_key",
    "upgrade",
]
