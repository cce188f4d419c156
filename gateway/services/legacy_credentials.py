"""Legacy credentials (issue 13 item 2): how a system logs in through the e-doc.vn SOAP profile, and whom it may
then send as.

A legacy credential is a SYSTEM (``systems``), not a second credential store: its login name is the OrganId it
authenticates as (``legacy_organ_id``) and its legacy ``Token`` is its secret — encrypted at rest, hashed for
HTTP Basic, shown once, rotatable, disabled and enabled like every other system's (:mod:`gateway.services.auth`).

**Token shape** (legacy-edoc-vn.md §3). The Bkav axis's tokens are Base64 of an HMAC-SHA1, 28 characters ending
in ``=``; legacy systems keep them in fields sized for that. Ours are Base64 of 20 random bytes — the same shape,
160 bits from :mod:`secrets` instead of an HMAC keyed by a UUID. An operator moving an organisation from an
existing axis may keep its token (the legacy system's configuration then does not change): any 16–200 visible
ASCII characters, since the token travels in XML text and in configuration files.

**Whom it may send as** (§3 "Not enforced", §16 "bind the authenticated OrganId to From/OrganId … behind a
per-sender policy switch"): the switch is per SYSTEM, ``legacy_scope``, because the thing that differs is the
legacy system — one sends only for its own office, another (a provincial platform) for the units it hosts:

* ``strict`` (the default): only its own OrganId. The axis never checked, so this is where a forged
  ``From/OrganId`` stops; least privilege until the operator says otherwise.
* ``subtree``: its agencies and their registered level-2/3/4 units — the rule every other system follows
  (:func:`gateway.services.access.acts_for`), for legacy systems that act for children.
* ``explicit``: exactly its agencies (``system_agencies``), no units below them: a platform hosting a few
  named agencies, not the whole subtree.

The legacy OrganId is always one of the system's agencies (its mailbox is read as that OrganId), so
``strict`` ⊆ ``explicit`` ⊆ ``subtree``. The switch governs SENDING, and intake applies it whatever edge the
package came through (:mod:`gateway.services.intake`, stage 3): the token is also the system's HTTP Basic and
WS-Security secret, so a check at the legacy edge alone could be walked around through ``/soap`` or ``/api``.
:meth:`LegacyAccess.authorise` is the same rule asked early, so that the legacy edge can answer the axis's own
``Permission`` report before parsing the package. Reading (GetPendingDocumentIds, GetDocument) is the legacy
edge's to keep to the authenticated OrganId's own mailbox, as on the axis.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from enum import StrEnum

from gateway.db import Store
from gateway.edxml.organ import OrganId
from gateway.errors import AccessError, RequestError
from gateway.services.access import acts_for

#: Random bytes of a generated token: Base64 of 20 bytes is 28 characters ending in one ``=`` (§3).
TOKEN_BYTES = 20
#: Bounds of an operator-given legacy token (the axis's own are 28; the lower bound is that of any secret).
MIN_TOKEN_LENGTH, MAX_TOKEN_LENGTH = 16, 200


class LegacyScope(StrEnum):
    """Whom a legacy system may send as (module docstring)."""

    STRICT = "strict"
    SUBTREE = "subtree"
    EXPLICIT = "explicit"


def legacy_scope(value: str) -> LegacyScope:
    """``value`` as a scope; RequestError naming the valid ones otherwise."""
    try:
        return LegacyScope(value)
    except ValueError:
        raise RequestError(
            f"{value!r} is not a legacy scope ({', '.join(s.value for s in LegacyScope)})", legacy_scope=value
        ) from None


def generate_legacy_token() -> str:
    """A new legacy token: Base64 of 20 random bytes — 28 characters ending in ``=``, the axis's shape."""
    return base64.b64encode(secrets.token_bytes(TOKEN_BYTES)).decode("ascii")


def given_legacy_token(token: str) -> str:
    """An operator-given token (kept from an existing axis), checked — never echoed in the refusal."""
    visible = all("!" <= c <= "~" for c in token)
    if not visible or not MIN_TOKEN_LENGTH <= len(token) <= MAX_TOKEN_LENGTH:
        raise RequestError(
            f"a legacy token must be {MIN_TOKEN_LENGTH}–{MAX_TOKEN_LENGTH} visible ASCII characters, without "
            "spaces or line breaks"
        )
    return token


def legacy_login(organ_id: str) -> str:
    """A legacy login name: an agency identifier (the OrganId it authenticates as)."""
    if not OrganId.is_valid(organ_id):
        raise RequestError(f"{organ_id!r} is not an OrganId (the legacy login name)", organ_id=organ_id)
    return organ_id


def legacy_acts_for(scope: str, own: str, agencies: Sequence[str], organ_id: str) -> bool:
    """True if a legacy system logged in as ``own`` and registered for ``agencies`` may send as ``organ_id``."""
    match legacy_scope(scope):
        case LegacyScope.STRICT:
            return organ_id == own
        case LegacyScope.EXPLICIT:
            return organ_id == own or organ_id in agencies
        case LegacyScope.SUBTREE:
            return organ_id == own or acts_for(agencies, organ_id)


class LegacyAccess:
    """``authorise``: may this legacy system send as that OrganId (read from the database on every call)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def authorise(self, system_id: str, organ_id: str) -> None:
        """Nothing when the legacy system ``system_id`` may send as ``organ_id`` (``From/OrganId`` of
        SendDocument or UpdateTraces); ``AccessError`` (ACCESS.DENIED) otherwise, naming the switch to change.

        The sender must also be a registered, active agency (intake checks that again: one rule, two callers).
        """
        system = self._store.registry.system(system_id)
        if system is None or not system.active or system.legacy_organ_id is None or system.legacy_scope is None:
            raise AccessError(f"system {system_id} is not an active legacy system", system_id=system_id)
        agency = self._store.registry.agencies([organ_id]).get(organ_id) if OrganId.is_valid(organ_id) else None
        if agency is None or not agency.active:
            raise AccessError(f"the sending agency {organ_id} is not registered or not active", organ_id=organ_id)
        own, scope = system.legacy_organ_id, system.legacy_scope
        if legacy_acts_for(scope, own, system.agencies, organ_id):
            return
        hint = {
            LegacyScope.STRICT: "it sends only as its own OrganId",
            LegacyScope.EXPLICIT: "it sends only as its own agencies",
        }.get(LegacyScope(scope), "the agency is outside the units of its agencies")
        if scope != LegacyScope.SUBTREE:
            hint += f" (edoc-gateway systems update {system_id} --legacy-scope subtree adds their units)"
        raise AccessError(
            f"legacy system {system_id} (OrganId {own}, scope {scope}) may not send as {organ_id}: {hint}",
            system_id=system_id,
            organ_id=organ_id,
            legacy_scope=scope,
        )


__all__ = [
    "LegacyAccess",
    "LegacyScope",
    "generate_legacy_token",
    "given_legacy_token",
    "legacy_acts_for",
    "legacy_login",
    "legacy_scope",
]
