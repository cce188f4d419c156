"""What the operator console (:mod:`gateway.web.console`) is built on: the same use cases as the admin API, plus
operator accounts and the registry's administration, composed once per process over one store (issue 12).

No second query path: every figure and list the console shows comes from the services the admin API and the CLI
call (:class:`~gateway.services.admin.AdminServices`, :class:`~gateway.services.registry.Registry`), with the
operator's role and scope as the caller — the console only lays them out.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.config import Settings
from gateway.db import Store
from gateway.services.admin import AdminServices
from gateway.services.certwatch import CertWatch
from gateway.services.console_agencies import ConsoleAgencies
from gateway.services.console_dashboard import ConsoleDashboard
from gateway.services.console_documents import ConsoleDocuments
from gateway.services.console_peers import PeerCircuits
from gateway.services.console_systems import ScopedSystems
from gateway.services.operators import Operators
from gateway.services.registry import Registry
from gateway.services.tracking import Tracking
from gateway.tracking.settings import rules_from


@dataclass(frozen=True)
class ConsoleServices:
    """Everything the console's pages call."""

    operators: Operators
    admin: AdminServices
    registry: Registry
    dashboard: ConsoleDashboard
    #: The agency pages: the registry tree with its figures, and the scoped add/edit (issue 12, "Agencies").
    agencies: ConsoleAgencies
    #: Raw packages, signer certificates and CSV exports of the Documents pages (through the admin's Timelines).
    documents: ConsoleDocuments
    #: The registry's systems limited to an operator's scope (pages_systems).
    systems: ScopedSystems
    #: Peers whose circuit is open (pages_deliveries; unscoped operators only).
    circuits: PeerCircuits

    @classmethod
    def over(cls, store: Store, settings: Settings, admin: AdminServices | None = None) -> ConsoleServices:
        admin = admin or AdminServices.over(store, settings)
        registry = Registry(store, settings)
        return cls(
            operators=Operators(store, settings),
            admin=admin,
            registry=registry,
            dashboard=ConsoleDashboard(store, Tracking(store, rules_from(settings)), settings),
            agencies=ConsoleAgencies(store, registry, admin.tracking, CertWatch.from_settings(store, settings)),
            documents=ConsoleDocuments.over(store, settings, admin.documents),
            systems=ScopedSystems(registry, admin.tracking.visible),
            circuits=PeerCircuits(store),
        )


__all__ = ["ConsoleServices"]
