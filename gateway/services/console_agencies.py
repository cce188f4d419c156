"""The console's agency pages (issue 12 item 1, "Agencies"): the registry as a tree with what an operator checks
per agency, and the add/edit form's use cases with the caller's scope.

Nothing here defines a figure: sent/received/late/not-taken/signed shares are the rows of
:meth:`gateway.services.admin.AdminTracking.agencies` (the admin API's ``GET /agencies``, itself the Decision-28
report's rows), certificate states come from :class:`~gateway.services.certwatch.CertWatch`, systems from the
registry, last activity from ``store.agency_activity``. Adding and editing go through
:meth:`gateway.services.registry.Registry.save_agency`, the import's own validation; this module only adds the
scope rules of a scoped administrator (module :func:`scope_problems`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from gateway.db import AgencyRecord, Store
from gateway.db.tables import CHANNELS, SIGNATURE_POLICIES
from gateway.edxml.organ import OrganId
from gateway.errors import NotFoundError
from gateway.services.admin import AdminTracking
from gateway.services.certwatch import CertStatus, CertWatch
from gateway.services.registry import Registry, RegistryImportError
from gateway.services.registry_systems import SystemInfo


@dataclass(frozen=True)
class CertExpiry:
    """An agency's current signer certificates (those not renewed) summed up: the nearest expiry among them."""

    not_after: datetime | None
    days_left: int | None
    #: ``good``, ``expiring`` (within the alert window), ``expired`` or ``revoked`` (by a current CRL).
    state: str
    subject: str | None
    certificates: int


@dataclass
class AgencyNode:
    """One agency of the tree, with its figures (a row of ``AdminTracking.agencies``; None: no row) and units."""

    record: AgencyRecord
    figures: dict[str, Any] | None
    systems: list[SystemInfo]
    last_activity: tuple[datetime, str] | None
    cert: CertExpiry | None
    depth: int = 0
    children: list[AgencyNode] = field(default_factory=list)


@dataclass(frozen=True)
class AgencyTreeView:
    """The tree for [since, until) as the caller may see it (its scope is the root)."""

    since: datetime
    until: datetime
    as_of: datetime
    roots: list[AgencyNode]
    nodes: dict[str, AgencyNode]
    expiry_days: int


class ConsoleAgencies:
    """The agency pages' reads and writes over the services the admin API and the CLI use."""

    def __init__(self, store: Store, registry: Registry, tracking: AdminTracking, certs: CertWatch) -> None:
        self._store = store
        self._registry = registry
        self._tracking = tracking
        self._certs = certs

    def visible(self, organ_id: str, scope: str | None) -> AgencyRecord:
        """The agency, if registered and inside ``scope``: NOT_FOUND otherwise — a URL guessed outside the scope
        gets the same answer as an unknown OrganId, so the page does not tell which agencies exist elsewhere."""
        allowed = self._tracking.visible(scope)
        if allowed is not None and organ_id not in allowed:
            raise NotFoundError(f"agency {organ_id} is not registered", organ_id=organ_id)
        return self._registry.agency(organ_id)

    def tree(self, since: datetime, until: datetime, *, scope: str | None, root: str | None = None) -> AgencyTreeView:
        """The caller's part of the registry (``root``'s subtree, when given: it must be visible) as a tree."""
        if root is not None:
            self.visible(root, scope)
        table = self._tracking.agencies(since, until, scope=root or scope)
        figures = {row["organ_id"]: row for row in table.agencies}
        allowed = self._tracking.visible(root or scope)
        records = [a for a in self._registry.list_agencies() if allowed is None or a.organ_id in allowed]
        ids = [a.organ_id for a in records]
        acting: dict[str, list[SystemInfo]] = {}
        for system in self._registry.list_systems():
            for organ in system.agencies:
                acting.setdefault(organ, []).append(system)
        activity = self._store.agency_activity.last_activity(ids if allowed is not None else None)
        certs = self.cert_expiry(set(ids), table.as_of)
        nodes = {a.organ_id: self._node(a, figures, acting, activity, certs) for a in records}
        roots = []
        for a in records:  # by OrganId: children come out in identifier order
            parent = nodes.get(a.parent) if a.parent is not None and a.parent != a.organ_id else None
            (parent.children if parent is not None else roots).append(nodes[a.organ_id])
        _set_depths(roots, 0)
        return AgencyTreeView(table.since, table.until, table.as_of, roots, nodes, self._certs.expiry_days)

    @staticmethod
    def _node(
        a: AgencyRecord,
        figures: dict[str, dict[str, Any]],
        acting: dict[str, list[SystemInfo]],
        activity: dict[str, tuple[datetime, str]],
        certs: dict[str, CertExpiry],
    ) -> AgencyNode:
        organ = a.organ_id
        return AgencyNode(a, figures.get(organ), acting.get(organ, []), activity.get(organ), certs.get(organ))

    def choices(self, scope: str | None) -> list[AgencyRecord]:
        """The agencies a form may name as a parent: the caller's part of the registry, by OrganId."""
        allowed = self._tracking.visible(scope)
        return [a for a in self._registry.list_agencies() if allowed is None or a.organ_id in allowed]

    def certificates(self, organ_id: str, as_of: datetime | None = None) -> list[CertStatus]:
        """The signer certificates recorded for one agency, latest expiry first (the caller checked the scope)."""
        return [s for s in self._certs.certificates(as_of=as_of) if s.cert.organ_id == organ_id]

    def cert_expiry(self, organ_ids: set[str], as_of: datetime) -> dict[str, CertExpiry]:
        """Per agency, the nearest expiry among its certificates not renewed (module :class:`CertExpiry`)."""
        current: dict[str, list[CertStatus]] = {}
        for s in self._certs.certificates(as_of=as_of):
            if s.cert.organ_id in organ_ids and not s.renewed:
                current.setdefault(s.cert.organ_id, []).append(s)
        out = {}
        for organ, found in current.items():
            nearest = min(found, key=lambda s: s.cert.not_after or datetime.max.replace(tzinfo=UTC))
            left = nearest.days_left
            alive = nearest.cert.not_after is None or nearest.cert.not_after > as_of
            if any(s.revocation == "revoked" for s in found) and alive:
                state = "revoked"
            elif not alive:
                state = "expired"
            elif left is not None and left < self._certs.expiry_days:
                state = "expiring"
            else:
                state = "good"
            out[organ] = CertExpiry(nearest.cert.not_after, left, state, nearest.cert.subject, len(found))
        return out

    # ------------------------------------------------------------------------------------------ writes

    def add(self, row: Mapping[str, Any], *, scope: str | None) -> AgencyRecord:
        """A new agency from the add form; REGISTRY.INVALID with every problem when it is refused."""
        row = dict(row)
        problems = self.scope_problems(row, scope, before=None)
        if problems:
            raise RegistryImportError("; ".join(p["message"] for p in problems), problems=problems)
        saved, _before = self._registry.save_agency(row, new=True)
        return saved

    def edit(self, organ_id: str, row: Mapping[str, Any], *, scope: str | None) -> tuple[AgencyRecord, AgencyRecord]:
        """Change an agency from the edit form: (after, before); NOT_FOUND outside the scope."""
        before = self.visible(organ_id, scope)
        row = {**row, "organ_id": organ_id}
        problems = self.scope_problems(row, scope, before=before)
        if problems:
            raise RegistryImportError("; ".join(p["message"] for p in problems), problems=problems)
        after, _ = self._registry.save_agency(row, new=False)
        return after, before

    def scope_problems(
        self, row: dict[str, Any], scope: str | None, *, before: AgencyRecord | None
    ) -> list[dict[str, Any]]:
        """Why a scoped administrator may not save ``row`` (it is then also given its effective parent).

        A scoped administrator works only inside its subtree: a new agency goes under one of its units (the
        parent given, or the one its OrganId names); an edit keeps an agency under one of them — and the scope's
        own root keeps its parent, which is outside the scope by definition (moving it would move the scope).
        A parent outside the scope is refused with the same words whether it exists or not.
        """
        if scope is None:
            return []
        allowed = self._tracking.visible(scope) or set()
        given = str(row.get("parent") or "").strip()
        if before is not None and before.organ_id == scope:
            if given and given != before.parent:
                return [_problem("parent", f"{scope} is the root of your scope: its parent cannot change here")]
            return []
        parent = given or (before.parent if before is not None else _derived_parent(str(row.get("organ_id") or "")))
        if parent is None or parent not in allowed:
            where = f"parent {parent}" if parent else "an agency without a parent"
            return [_problem("parent", f"{where} is outside your scope ({scope}): add and move units only under it")]
        row["parent"] = parent
        return []


def _derived_parent(organ: str) -> str | None:
    if not OrganId.is_valid(organ):
        return None
    derived = OrganId(organ).parent
    return str(derived) if derived is not None else None


def _problem(field_name: str, message: str) -> dict[str, Any]:
    return {"row": 1, "field": field_name, "message": message}


def _set_depths(nodes: list[AgencyNode], depth: int) -> None:
    for node in nodes:
        node.depth = depth
        _set_depths(node.children, depth + 1)


__all__ = ["CHANNELS", "SIGNATURE_POLICIES", "AgencyNode", "AgencyTreeView", "CertExpiry", "ConsoleAgencies"]
