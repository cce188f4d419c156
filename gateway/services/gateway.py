"""The facade the edges and the worker hold: :class:`GatewayService` implements
:class:`gateway.services.api.GatewayApi` by handing each call to the use case that owns it.

* authentication — :mod:`gateway.services.auth`;
* intake — :mod:`gateway.services.intake` (its stages; routing in :mod:`gateway.services.routing`, the status relay
  in :mod:`gateway.services.status_relay`, the signature policy in :mod:`gateway.services.signature_policy`);
* mailboxes — :mod:`gateway.services.mailbox`;
* document history and sent lists — :mod:`gateway.services.history`;
* the registry — :mod:`gateway.services.registry`.

It is also the composition root of the service: :meth:`GatewayService.from_settings` loads the gateway key, the
trust store and the database engine once per process.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TypeVar

from gateway.config import Settings
from gateway.db import Engine, Store, create_engine, head_revision
from gateway.edxml import PackageKind
from gateway.services.api import AckOutcome, AgencyInfo, DeliveryState, DocumentView, PendingItem, Receipt, SentItem
from gateway.services.auth import Authenticator
from gateway.services.history import MAX_SENT, DocumentHistory
from gateway.services.intake import Intake
from gateway.services.mailbox import Mailbox
from gateway.services.registry import Registry
from gateway.services.values import agency_info
from gateway.xmlcheck.signing import SigningKey
from gateway.xmlcheck.trust import TrustStore

T = TypeVar("T")


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
        self.store = Store(engine)
        #: The credentials intake uses (loaded once): the receipt key and the trust store of package signatures.
        self.signing_key = signing_key
        self.trust = trust
        clock = clock or _utcnow
        upstream = settings.extra.get("vdxp")
        self.auth = Authenticator(self.store, settings, clock)
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

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Callable[[], datetime] | None = None) -> GatewayService:
        """Load the gateway key, the trust store and the engine ONCE (composition root of the service).

        The gateway certificate file may carry its chain after the certificate (SigningKey.from_files).
        """
        settings.require_service()
        assert settings.gateway_key is not None and settings.gateway_cert is not None
        assert settings.trust_store is not None
        key = SigningKey.from_files(settings.gateway_key, settings.gateway_cert)
        trust = TrustStore.from_files(settings.trust_store, settings.crl_files)
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

    # ------------------------------------------------------------------------------------------ authentication

    def authenticate_basic(self, username: str, password: str) -> str:
        return self.auth.basic(username, password)

    def authenticate_digest(self, username: str, digest_b64: str, nonce_b64: str, created: str) -> str:
        return self.auth.digest(username, digest_b64, nonce_b64, created)

    def authenticate_hmac(self, system_id: str, verify: Callable[[str], T]) -> T:
        return self.auth.hmac_request(system_id, verify)

    def system_secret(self, system_id: str) -> str:
        return self.auth.secret_for(system_id)

    # ------------------------------------------------------------------------------------------ intake

    def submit(
        self, system_id: str, data: bytes, expected: PackageKind | None = None, *, declared_sender: str | None = None
    ) -> Receipt:
        return self.intake.submit(system_id, data, expected, declared_sender=declared_sender)

    def ingest_upstream(
        self, data: bytes, *, source: str, reference: str | None = None, recipient: str | None = None
    ) -> Receipt:
        """A package polled from the upstream VDXP axis (:meth:`Intake.ingest_upstream`)."""
        return self.intake.ingest_upstream(data, source=source, reference=reference, recipient=recipient)

    # ------------------------------------------------------------------------------------------ mailboxes

    def pending(self, system_id: str, organ_id: str, kind: PackageKind, limit: int = 100) -> list[PendingItem]:
        return self.mailbox.pending(system_id, organ_id, kind, limit)

    def pending_for_system(
        self,
        system_id: str,
        kind: PackageKind,
        limit: int = 100,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[PendingItem]:
        return self.mailbox.pending_for_system(system_id, kind, limit, since=since, until=until)

    def delivery_state(self, system_id: str, delivery_id: str) -> DeliveryState:
        return self.mailbox.delivery_state(system_id, delivery_id)

    def fetch(self, system_id: str, delivery_id: str) -> bytes:
        return self.mailbox.fetch(system_id, delivery_id)

    def acknowledge(self, system_id: str, delivery_id: str, outcome: AckOutcome, reason: str | None = None) -> None:
        self.mailbox.acknowledge(system_id, delivery_id, outcome, reason)

    # ------------------------------------------------------------------------------------------ history

    def document_view(
        self, system_id: str, *, document_id: str | None = None, doc_id: str | None = None
    ) -> DocumentView:
        return self.history.document_view(system_id, document_id=document_id, doc_id=doc_id)

    def sent_list(
        self,
        system_id: str,
        kind: PackageKind,
        *,
        doc_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = MAX_SENT,
    ) -> list[SentItem]:
        return self.history.sent_list(system_id, kind, doc_id=doc_id, since=since, until=until, limit=limit)

    # ------------------------------------------------------------------------------------------ registry

    def agencies(self, parent: str | None = None) -> list[AgencyInfo]:
        return [agency_info(a) for a in self.registry.list_agencies(parent)]


__all__ = ["GatewayService"]
