"""The registry's systems as the operator console shows and changes them (issue 12 item 1, "Systems"): the
:class:`~gateway.services.registry.Registry`'s own use cases (``systems add|list|rotate-secret|disable``), limited
to an operator's scope.

A system acts for agencies, and whoever holds its secret may send and fetch for all of them, so a system belongs
to a scope only when EVERY agency it acts for lies in that scope's registry subtree. A scoped operator sees and
manages exactly those systems; one that also acts for another subtree is the business of an operator whose scope
covers both (or an unscoped one), and is NOT_FOUND for the others — like a delivery outside the scope, so nobody
learns which systems exist by guessing ids. A scoped admin may create a system only for agencies of its subtree;
an agency outside it reads "not registered or outside your scope", the same words as an unknown one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from gateway.errors import NotFoundError, RequestError
from gateway.services.paging import Page, PageRequest
from gateway.services.registry import Registry
from gateway.services.registry_systems import SystemInfo

#: The scope → visible OrganIds function of the tracking service (None: everything).
Visible = Callable[[str | None], set[str] | None]


@dataclass(frozen=True)
class ScopedSystems:
    """:class:`Registry`'s system use cases with a caller's ``scope`` (None: the whole registry)."""

    registry: Registry
    visible: Visible

    def page(self, page: PageRequest, *, scope: str | None) -> Page[SystemInfo]:
        """One page of the systems in ``scope``, by id, with the count of all of them.

        Unscoped: the registry's own keyset page. Scoped: the systems of the subtree, paged by offset — a scope
        holds few systems (one per agency software at most), and filtering a keyset page after the fact would
        break both the count and the page size.
        """
        visible = self.visible(scope)
        if visible is None:
            return self.registry.systems_page(page)
        mine = [s for s in self.registry.list_systems() if _inside(s, visible)]
        chunk = mine[page.offset : page.offset + page.limit]
        return Page(items=tuple(chunk), total=len(mine), next_cursor=None)

    def system(self, system_id: str, *, scope: str | None) -> SystemInfo:
        """One system; NOT_FOUND when unknown or outside ``scope`` (the same answer)."""
        try:
            found = self.registry.system_info(system_id)
        except NotFoundError:
            raise NotFoundError(f"system {system_id} does not exist", system_id=system_id) from None
        visible = self.visible(scope)
        if visible is not None and not _inside(found, visible):
            raise NotFoundError(f"system {system_id} does not exist", system_id=system_id)
        return found

    def add(self, system_id: str, agencies: Iterable[str], *, name: str | None, scope: str | None) -> str:
        """Register a system for ``agencies`` (all within ``scope``); returns its secret, to be shown ONCE."""
        organs = list(dict.fromkeys(agencies))
        visible = self.visible(scope)
        outside = sorted(o for o in organs if visible is not None and o not in visible)
        if outside:
            raise RequestError(f"agencies not registered or outside your scope: {', '.join(outside)}", agencies=outside)
        return self.registry.add_system(system_id, organs, name=name or None)

    def rotate_secret(self, system_id: str, *, scope: str | None) -> str:
        """A new random secret (the old one stops working at once); returns it, to be shown ONCE."""
        self.system(system_id, scope=scope)
        return self.registry.rotate_secret(system_id)

    def set_active(self, system_id: str, active: bool, *, scope: str | None) -> SystemInfo:
        """Enable or disable a system (a disabled one is refused at authentication, its secret kept)."""
        self.system(system_id, scope=scope)
        self.registry.set_system_active(system_id, active)
        return self.registry.system_info(system_id)


def _inside(system: SystemInfo, visible: set[str]) -> bool:
    return bool(system.agencies) and all(a in visible for a in system.agencies)


__all__ = ["ScopedSystems"]
