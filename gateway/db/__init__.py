"""The database package: the only importer of SQLAlchemy (STYLE.md "SQLAlchemy only in the database package").

* :mod:`gateway.db.tables` — the schema (SQLAlchemy Core), documented table by table;
* :mod:`gateway.db.engine` — :func:`create_engine` from :class:`~gateway.config.Settings` (SQLite WAL by
  default, PostgreSQL through psycopg 3);
* :mod:`gateway.db.store` — :class:`Store`, the repository the services use;
* :mod:`gateway.db.migrations` — alembic revisions and :func:`upgrade` (``edoc-gateway db upgrade``).
"""

from sqlalchemy import Engine

from gateway.db.engine import create_engine
from gateway.db.migrations import current_revision, head_revision, upgrade
from gateway.db.store import (
    AckResult,
    AgencyRecord,
    AttemptRecord,
    AuditEntry,
    ClaimedDelivery,
    DeliveryOverview,
    DeliveryRecord,
    DocumentRecord,
    IdempotencyConflict,
    IntakeLookup,
    NewDocument,
    PendingRecord,
    StatusRecord,
    Store,
    SystemRecord,
    WorkerHeartbeat,
)

__all__ = [
    "AckResult",
    "AgencyRecord",
    "AttemptRecord",
    "AuditEntry",
    "ClaimedDelivery",
    "DeliveryOverview",
    "DeliveryRecord",
    "DocumentRecord",
    "Engine",
    "IdempotencyConflict",
    "IntakeLookup",
    "NewDocument",
    "PendingRecord",
    "StatusRecord",
    "Store",
    "SystemRecord",
    "WorkerHeartbeat",
    "create_engine",
    "current_revision",
    "head_revision",
    "upgrade",
]
