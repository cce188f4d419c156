"""Import a VDXP axis's agency list (``getAgenciesList``) into the registry (gateway.md Registry: "sync from VDXP").

Rules, and why:

* an agency the registry does not know is created with channel ``vdxp``: it is reachable through the axis, so
  documents to it are forwarded there;
* an agency the registry knows with channel ``vdxp`` gets the axis's name and parent (the axis is its
  authority); its other settings (signature policy, bound certificates, active flag) stay as the operator set
  them;
* an agency the registry knows with any other channel (``mailbox``, ``soap``, ``rest``) is LOCAL — hosted by
  this gateway — and is never touched: the axis's list must not be able to re-route or rename our own agencies;
* a code that is not an agency identifier is skipped and reported, not fatal: a national list of ~111 000
  entries should not be refused for one bad row (``Registry.import_records`` alone is all-or-nothing);
* ``pid`` refers to another item's ``id`` (numbers at the national axis, OrganIds at another edoc-gateway): the
  parent is the code of that item when it is in the list; otherwise the registry derives it from the OrganId;
* agencies that disappeared from the axis are not deactivated (a partial answer must not switch agencies off).

The registry is taken as a small interface (:class:`AgencyRegistry`, met by
:class:`gateway.services.registry.Registry`), so the adapter does not depend on the service layer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from adapters.vdxp.client import VdxpClient
from gateway.edxml.organ import OrganId
from gateway.protocols.vdxp import AgencyItem

CHANNEL = "vdxp"
_MAX_NAME = 500


class _Agency(Protocol):
    organ_id: str
    channel: str


class AgencyRegistry(Protocol):
    """What :func:`sync_agencies` needs of the registry."""

    def list_agencies(self) -> Sequence[_Agency]: ...

    def import_records(self, rows: Sequence[Mapping[str, Any]]) -> Any: ...


@dataclass(frozen=True)
class SyncReport:
    created: int
    updated: int
    #: Known agencies on another channel: hosted here, left alone.
    kept_local: int
    #: Codes that are not agency identifiers, or repeated in the list.
    skipped: tuple[str, ...]


def sync_agencies(client: VdxpClient, registry: AgencyRegistry) -> SyncReport:
    """Upsert the axis's agencies into ``registry`` (one transaction); local agencies are never overwritten."""
    return import_agencies(client.agencies(), registry)


def import_agencies(items: Sequence[AgencyItem], registry: AgencyRegistry) -> SyncReport:
    """The pure part of :func:`sync_agencies`, for a list already fetched."""
    existing = {a.organ_id: a.channel for a in registry.list_agencies()}
    code_of = {item.id: item.code.strip() for item in items if item.id}
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    skipped: list[str] = []
    kept_local = 0
    for item in items:
        code = item.code.strip()
        if not OrganId.is_valid(code) or code in seen:
            skipped.append(code[:40])
            continue
        seen.add(code)
        channel = existing.get(code)
        if channel is not None and channel != CHANNEL:
            kept_local += 1
            continue
        row: dict[str, Any] = {"organ_id": code, "name": (item.name.strip() or code)[:_MAX_NAME]}
        parent = code_of.get(item.pid, "")
        if parent and parent != code and OrganId.is_valid(parent):
            row["parent"] = parent
        if channel is None:
            row["channel"] = CHANNEL
        rows.append(row)
    report = registry.import_records(rows) if rows else None
    return SyncReport(
        created=getattr(report, "created", 0),
        updated=getattr(report, "updated", 0),
        kept_local=kept_local,
        skipped=tuple(skipped),
    )


__all__ = ["AgencyRegistry", "SyncReport", "import_agencies", "sync_agencies"]
