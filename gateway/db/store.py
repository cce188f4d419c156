"""The :class:`Store`: the one object the services hold for the database — the engine, one repository per
aggregate, and the whole-database operations (schema, readiness).

Plain values in, frozen dataclasses out (:mod:`gateway.db.records`), one transaction per method. The services never
import SQLAlchemy; everything they need from the database is a repository method:

* ``store.documents`` (:mod:`gateway.db.documents`) — stored packages, their bytes (inline up to 1 MiB, in
  pieces above: :mod:`gateway.db.chunks`), the idempotency key, intake's one transaction;
* ``store.deliveries`` (:mod:`gateway.db.deliveries`) — mailboxes (one agency's or a system's scope), fetch,
  acknowledgement, the sender's view, the operators' overview;
* ``store.outbox`` (:mod:`gateway.db.outbox`) — the push queue: leases, attempts, re-drive;
* ``store.statuses`` (:mod:`gateway.db.statuses`) — status history;
* ``store.registry`` (:mod:`gateway.db.registry`) — agencies, their certificates, systems;
* ``store.tracking`` (:mod:`gateway.db.tracking`) — the facts tracking judges, streamed per period;
* ``store.alerts`` (:mod:`gateway.db.alerts`) — raised alerts and the alert round lease;
* ``store.certificates`` (:mod:`gateway.db.certificates`) — signer certificates seen at intake;
* ``store.admin_tokens`` (:mod:`gateway.db.admin_tokens`) — the admin API's role-scoped tokens (hashes only);
* ``store.operators`` (:mod:`gateway.db.operators`) — console accounts and their sessions (hashes only);
* ``store.document_queries`` (:mod:`gateway.db.documents_query`) — tracking's document lists (keyset pages) and
  the rest of a document's story (attempts, audited fetches and acknowledgements, linked documents);
* ``store.audit`` (:mod:`gateway.db.audit`), ``store.nonces`` (:mod:`gateway.db.nonces`), ``store.workers``
  (:mod:`gateway.db.workers`);
* ``store.gauges`` (:mod:`gateway.db.gauges`) — the counts ``/metrics`` computes at scrape time;
* ``store.dashboard`` (:mod:`gateway.db.dashboard`) — the console dashboard's queue per channel and refusals per day;
* ``store.refusals`` (:mod:`gateway.db.refusals`) — floods of refusals aggregated per window (issue 10);
* ``store.agency_activity`` (:mod:`gateway.db.agency_activity`) — when each agency last sent or collected (issue 12).

Writes that change several aggregates stay ONE transaction inside the repository that owns the use (gateway.md
Intake 7: document, deliveries, outbox, status history and audit entry commit together or not at all); the
repositories share the row-writing functions for that (``write_document``, ``insert_audit``, ``insert_status``).
Database outages become :class:`~gateway.errors.UnavailableError` in one place (:mod:`gateway.db.connections`).
"""

from __future__ import annotations

import os

from sqlalchemy import Engine, func, select

from gateway.db import tables as t
from gateway.db.admin_tokens import AdminTokenRepository
from gateway.db.agency_activity import AgencyActivityRepository
from gateway.db.alerts import AlertRepository
from gateway.db.audit import AuditRepository
from gateway.db.certificates import SignerCertificateRepository
from gateway.db.connections import Connections
from gateway.db.dashboard import DashboardRepository
from gateway.db.deliveries import DeliveryRepository
from gateway.db.documents import DocumentRepository
from gateway.db.documents_query import DocumentQueryRepository
from gateway.db.gauges import GaugeRepository
from gateway.db.legacy import LegacyIdRepository
from gateway.db.nonces import NonceRepository
from gateway.db.operators import OperatorRepository
from gateway.db.outbox import OutboxRepository
from gateway.db.refusals import RefusalRepository
from gateway.db.registry import RegistryRepository
from gateway.db.statuses import StatusRepository
from gateway.db.tracking import TrackingRepository
from gateway.db.workers import WorkerRepository
from gateway.errors import UnavailableError


class Store:
    """All database access of the gateway, by aggregate. Thread-safe (one pooled connection per call).

    ``spool_dir`` is where big packages read back as :class:`~gateway.payload.Payload` are spooled
    (``data_dir/spool`` in the services, like the web front's request bodies; None: the system's temporary
    directory)."""

    def __init__(self, engine: Engine, *, spool_dir: str | os.PathLike[str] | None = None) -> None:
        self.engine = engine
        self._db = db = Connections(engine)
        self.documents = DocumentRepository(db, spool_dir)
        self.deliveries = DeliveryRepository(db, spool_dir)
        self.outbox = OutboxRepository(db)
        self.statuses = StatusRepository(db)
        self.registry = RegistryRepository(db)
        self.audit = AuditRepository(db)
        self.nonces = NonceRepository(db)
        self.workers = WorkerRepository(db)
        self.tracking = TrackingRepository(db)
        self.gauges = GaugeRepository(db)
        self.dashboard = DashboardRepository(db)
        self.alerts = AlertRepository(db)
        self.certificates = SignerCertificateRepository(db)
        self.admin_tokens = AdminTokenRepository(db)
        self.document_queries = DocumentQueryRepository(db)
        self.refusals = RefusalRepository(db)
        self.operators = OperatorRepository(db)
        self.agency_activity = AgencyActivityRepository(db)
        self.legacy = LegacyIdRepository(db)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def create_schema(self) -> None:
        """``CREATE TABLE`` for every table (tests and throwaway demos; production uses migrations)."""
        with self._db.write() as conn:
            t.metadata.create_all(conn)

    def ping(self) -> bool:
        """True when the database answers (``/readyz``)."""
        try:
            with self._db.read(quiet=True) as conn:  # /readyz reports it (gateway.web.health)
                conn.execute(select(1)).scalar()
        except UnavailableError:
            return False
        return True

    def schema_revision(self) -> str | None:
        """The alembic revision the database is at (None: empty, or unreachable)."""
        from alembic.runtime.migration import MigrationContext

        try:
            with self._db.read(quiet=True) as conn:  # /readyz asks; it reports its own failures
                return MigrationContext.configure(conn).get_current_revision()
        except UnavailableError:
            return None

    def counts(self) -> dict[str, int]:
        """Row count per table — for tests that prove a refusal stored nothing, and for ``/readyz``."""
        with self._db.read() as conn:
            return {
                name: conn.execute(select(func.count()).select_from(table)).scalar_one()
                for name, table in t.metadata.tables.items()
            }


__all__ = ["Store"]
