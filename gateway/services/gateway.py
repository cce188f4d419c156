"""The facade the edges and the worker hold: :class:`GatewayService` implements
:class:`gateway.services.api.GatewayApi` by handing each call to the use case that owns it.

* authentication — :mod:`gateway.services.auth`, and the VDXP replay protection per system —
  :mod:`gateway.services.vdxp_guard`;
* intake — :mod:`gateway.services.intake` (its stages; routing in :mod:`gateway.services.routing`, the status relay
  in :mod:`gateway.services.status_relay`, the signature policy in :mod:`gateway.services.signature_policy`);
* mailboxes — :mod:`gateway.services.mailbox`;
* document history and sent lists — :mod:`gateway.services.history`;
* the registry — :mod:`gateway.services.registry`.

It is also the composition root of the service: :meth:`GatewayService.from_settings` loads the gateway key, the
trust store and the database engine once per process.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path

from gateway.config import Settings
from gateway.db import Engine, Store, create_engine, head_revision
from gateway.services.api import AgencyInfo
from gateway.services.auth import Authenticator
from gateway.services.history import DocumentHistory
from gateway.services.intake import Intake
from gateway.services.legacy import LegacyExchange
from gateway.services.legacy_credentials import LegacyAccess
from gateway.services.mailbox import Mailbox
from gateway.services.receipt import receipt_chain_problem
from gateway.services.registry import Registry
from gateway.services.values import agency_info
from gateway.services.vdxp_guard import VdxpGuard
from gateway.xmlcheck.signing import SigningKey
from gateway.xmlcheck.trust import TrustStore

log = logging.getLogger(__name__)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class GatewayService:
    """The one implementation of :class:`gateway.services.api.GatewayApi` (thread-safe; one per process)."""

    def __init__(
        self,
        engine: Engine,
        signing_key: SigningKey,
        trust: TrustStore,
        settings: Settings,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.settings = settings
        # Big packages read back (GetEdoc) spool where the web front spools big request bodies.
        self.store = Store(engine, spool_dir=Path(settings.data_dir) / "spool")
        #: The credentials intake uses (loaded once): the receipt key and the trust store of package signatures.
        self.signing_key = signing_key
        self.trust = trust
        clock = clock or _utcnow
        upstream = settings.extra.get("vdxp")
        self.auth = Authenticator(self.store, settings, clock)
        self.vdxp_guard = VdxpGuard(self.store, settings, clock)
        self.registry = Registry(self.store, settings, clock=clock)
        self.intake = Intake(
            self.store,
            signing_key,
            trust,
            settings,
            clock,
            upstream_configured=isinstance(upstream, Mapping) and bool(upstream.get("endpoint")),
        )
        self.mailbox = Mailbox(self.store, clock)
        self.history = DocumentHistory(self.store)
        # The contract, call by call, handed to the use case that owns it (signatures and documentation: api.py).
        self.authenticate_basic = self.auth.basic
        self.authenticate_digest = self.auth.digest
        self.authenticate_hmac = self.auth.hmac_request
        self.authenticate_legacy = self.auth.legacy
        self.authorise_legacy = LegacyAccess(self.store).authorise
        self.admit_vdxp = self.vdxp_guard.admit
        self.system_secret = self.auth.secret_for
        self.admit_address = self.auth.admit_address
        self.submit = self.intake.submit
        self.ingest_upstream = self.intake.ingest_upstream
        self.pending = self.mailbox.pending
        self.pending_for_system = self.mailbox.pending_for_system
        self.delivery_state = self.mailbox.delivery_state
        self.fetch = self.mailbox.fetch
        self.fetch_payload = self.mailbox.fetch_payload
        self.acknowledge = self.mailbox.acknowledge
        self.document_view = self.history.document_view
        self.sent_list = self.history.sent_list
        self.legacy = legacy = LegacyExchange(self.store, self.mailbox, self.intake.submit)
        self.legacy_submit = legacy.legacy_submit
        self.legacy_pending = legacy.legacy_pending
        self.legacy_fetch = legacy.legacy_fetch
        self.legacy_confirm = legacy.legacy_confirm
        self.legacy_traces = legacy.legacy_traces
        self.legacy_organizations = legacy.legacy_organizations

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Callable[[], datetime] | None = None) -> GatewayService:
        """Load the gateway key, the trust store and the engine ONCE (composition root of the service).

        The gateway certificate file carries its chain after the certificate (SigningKey.from_files): the
        receipts' KeyInfo; a chain that does not reach a root is logged as a warning (receipt_chain_problem).
        """
        settings.require_service()
        assert settings.gateway_key is not None and settings.gateway_cert is not None
        assert settings.trust_store is not None
        key = SigningKey.from_files(settings.gateway_key, settings.gateway_cert)
        trust = TrustStore.from_files(settings.trust_store, settings.crl_files)
        problem = receipt_chain_problem(key, trust)
        if problem:
            log.warning("gateway_cert %s: %s", settings.gateway_cert, problem)
        engine = create_engine(settings)
        service = cls(engine, key, trust, settings, clock=clock)
        weakref.finalize(service, engine.dispose)  # no connection left open if close() is forgotten
        return service

    def close(self) -> None:
        """Release the connection pool (tests, orderly shutdown)."""
        self.store.engine.dispose()

    def __enter__(self) -> GatewayService:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def readiness(self) -> dict[str, bool]:
        """For ``/readyz``: the database answers and its schema is the one this code expects."""
        database = self.store.ping()
        return {"database": database, "schema": database and self.store.schema_revision() == head_revision()}

    def agencies(self, parent: str | None = None) -> list[AgencyInfo]:
        """The registry as systems see it (no channel settings, no certificates)."""
        return [agency_info(a) for a in self.registry.list_agencies(parent)]


__all__ = ["GatewayService"]
