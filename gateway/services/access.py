"""Who may act for whom: the one access rule every use case applies (gateway.md "Security").

A system acts for the agencies it is registered for and for their level-2/3/4 units (:meth:`OrganId.is_within`);
identifiers outside the QCVN grammar match exactly. Mailbox reads, fetches, acknowledgements, history views and
intake all ask :func:`acts_for`, so the rule cannot drift between them.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from gateway.db import Store
from gateway.edxml.organ import OrganId
from gateway.errors import AuthError


def _organ(value: str) -> OrganId | None:
    """``value`` as an OrganId, None if it is not one.

    The grammar check (length first: constant time on an 8 MB string) comes before the cache, so the cache only
    ever holds valid identifiers of at most 35 characters. Keyed on the raw caller-supplied value, it kept 4,096
    of them alive whatever their size (issue 10: worker RSS 189 → 723 MB after 8 requests with 8 MB organIds).
    """
    return _valid_organ(value) if OrganId.is_valid(value) else None


@lru_cache(maxsize=4096)
def _valid_organ(value: str) -> OrganId:
    # Only called with OrganId.is_valid(value): ≤ 35 characters, so the cache is at most a few hundred KB.
    return OrganId(value)


def acts_for(acting: Sequence[str], organ_id: str) -> bool:
    """True if a system acting for ``acting`` may act for ``organ_id`` (itself or a level-2/3/4 descendant)."""
    if organ_id in acting:
        return True
    organ = _organ(organ_id)
    if organ is None or not organ.is_qcvn:
        return False
    for a in acting:
        ancestor = _organ(a)
        if ancestor is not None and organ.is_within(ancestor):
            return True
    return False


def acting_for(store: Store, system_id: str) -> tuple[str, ...]:
    """The agencies an active system is registered for; ``AuthError`` for an unknown or disabled system."""
    acting = store.registry.active_system_agencies(system_id)
    if acting is None:
        raise AuthError("system unknown or not active", system_id=system_id)
    return acting


__all__ = ["acting_for", "acts_for"]
