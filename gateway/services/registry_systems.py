"""The systems half of the registry's use cases (``edoc-gateway systems …``), mixed into
:class:`gateway.services.registry.Registry`, which owns the store, the settings and the clock.

A legacy system (issue 13: the e-doc.vn SOAP profile, :mod:`gateway.services.legacy_credentials`) is one added
with a legacy login name (``legacy_organ``): its secret is then its legacy ``Token``, generated — and rotated — in
the axis's shape (28 Base64 characters ending in ``=``), and its ``legacy_scope`` says whom it may send as.

A system's VDXP replay protection (issue 10 finding 7, :mod:`gateway.services.vdxp_guard`) is set when it is
added and changed with ``systems update``: ``strict`` by default; ``legacy-sdk`` (the stock VNPT SDK) only with a
source binding — allowed networks and/or a TLS client certificate — which both modes also enforce when given.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from gateway.config import Settings
from gateway.db import Store, SystemRecord
from gateway.errors import NotFoundError, RequestError
from gateway.services.auth import SecretBox, generate_secret, hash_secret
from gateway.services.legacy_credentials import (
    LegacyScope,
    generate_legacy_token,
    given_legacy_token,
    legacy_login,
    legacy_scope,
)
from gateway.services.paging import Page, PageRequest, page_of
from gateway.services.registry_rows import SYSTEM_ID
from gateway.services.vdxp_guard import ReplayMode, check_binding, parse_allow_from, parse_client_certs, replay_mode

#: Bounds of an operator-given system secret (VDXP secrets seen in the wild are 24–44 base64 characters).
MIN_SECRET_LENGTH, MAX_SECRET_LENGTH = 16, 200


#: The name the cursors of the system list carry (gateway.services.paging).
SYSTEM_LISTING = "systems"


@dataclass(frozen=True)
class SystemInfo:
    """A system as ``systems list`` shows it: never its secret."""

    id: str
    name: str
    active: bool
    created_at: datetime
    agencies: tuple[str, ...]
    vdxp_replay: str = "strict"
    vdxp_allow_from: tuple[str, ...] = ()
    vdxp_client_certs: tuple[str, ...] = ()
    #: The legacy login name (OrganId) and scope; None for a system that is not a legacy one.
    legacy_organ_id: str | None = None
    legacy_scope: str | None = None


class SystemsAdmin:
    """``systems add|update|list|rotate-secret|disable``."""

    _store: Store
    _settings: Settings
    _clock: Callable[[], datetime]

    def add_system(
        self,
        system_id: str,
        agencies: Iterable[str],
        *,
        name: str | None = None,
        secret: str | None = None,
        vdxp_replay: str = ReplayMode.STRICT,
        allow_from: Iterable[str] = (),
        client_certs: Iterable[str] = (),
        legacy_organ: str | None = None,
        legacy_scope: str | None = None,
    ) -> str:
        """Register a system acting for ``agencies`` (and their children); returns the secret — shown ONCE.

        With ``legacy_organ`` it is a legacy system logging in as that OrganId (which it then also acts for,
        first among its agencies), its secret a legacy token (given in ``secret`` when kept from an existing
        axis), and ``legacy_scope`` (default ``strict``) says whom it may send as.

        ``secret`` keeps a secret the system already has instead of generating one: operators migrating from
        VDXP keep their systemId + secret (edxml.md §6.2), because the VNPT SDK clients of their agencies are
        configured with that pair and should connect by changing only the endpoint URL (gateway.md) — with
        ``vdxp_replay="legacy-sdk"`` and the networks they call from (``allow_from``) or their TLS client
        certificates (``client_certs``), since the SDK signs a fixed timestamp.
        """
        login = legacy_login(legacy_organ) if legacy_organ is not None else None
        scope = _scope_for(login, legacy_scope)
        organs = list(dict.fromkeys([*([login] if login else []), *agencies]))
        if not SYSTEM_ID.match(system_id):
            raise RequestError(f"{system_id!r} is not a valid system id (letters, digits, . _ : -; ≤ 64)")
        if not organs:
            raise RequestError("a system must act for at least one agency (--agency)")
        mode, networks, certs = replay_mode(vdxp_replay), parse_allow_from(allow_from), parse_client_certs(client_certs)
        check_binding(mode, networks, certs)
        secret = _new_secret(secret, legacy=login is not None)
        box = SecretBox(self._settings.secret_key)
        self._store.registry.add_system(
            SystemRecord(
                id=system_id,
                name=name or system_id,
                secret_enc=box.seal(system_id, secret),
                secret_hash=hash_secret(secret),
                active=True,
                created_at=self._clock(),
                agencies=tuple(organs),
                vdxp_replay=mode.value,
                vdxp_allow_from=networks,
                vdxp_client_certs=certs,
                legacy_organ_id=login,
                legacy_scope=scope,
            )
        )
        return secret

    def set_system_legacy_scope(self, system_id: str, scope: str) -> SystemInfo:
        """``systems update --legacy-scope``: whom a legacy system may send as, applied from its next request."""
        checked = legacy_scope(scope)
        if not self._store.registry.set_system_legacy_scope(system_id, checked.value):
            if self._store.registry.system(system_id) is None:
                raise NotFoundError(f"system {system_id} does not exist", system_id=system_id)
            raise RequestError(f"system {system_id} is not a legacy system (it has no legacy OrganId)")
        return self.system_info(system_id)

    def set_system_vdxp(
        self,
        system_id: str,
        *,
        vdxp_replay: str | None = None,
        allow_from: Iterable[str] | None = None,
        client_certs: Iterable[str] | None = None,
    ) -> SystemInfo:
        """``systems update``: change a system's VDXP replay protection; what is not given is kept, a given list
        REPLACES the stored one (an empty list clears it). The result must still bind a ``legacy-sdk`` system
        (:func:`~gateway.services.vdxp_guard.check_binding`): clearing the last binding of one is refused."""
        current = self._store.registry.system(system_id)
        if current is None:
            raise NotFoundError(f"system {system_id} does not exist", system_id=system_id)
        mode = replay_mode(vdxp_replay if vdxp_replay is not None else current.vdxp_replay)
        networks = parse_allow_from(allow_from) if allow_from is not None else current.vdxp_allow_from
        certs = parse_client_certs(client_certs) if client_certs is not None else current.vdxp_client_certs
        check_binding(mode, networks, certs)
        if not self._store.registry.set_system_vdxp(
            system_id, replay=mode.value, allow_from=networks, client_certs=certs
        ):
            raise NotFoundError(f"system {system_id} does not exist", system_id=system_id)
        return self.system_info(system_id)

    def system_info(self, system_id: str) -> SystemInfo:
        found = self._store.registry.system(system_id)
        if found is None:
            raise NotFoundError(f"system {system_id} does not exist", system_id=system_id)
        return _info(found)

    def rotate_secret(self, system_id: str, *, secret: str | None = None) -> str:
        """A new secret for an existing system (the old one stops working at once); shown once.

        ``secret`` sets a given secret (e.g. the system's VDXP secret when it migrates) instead of a random one.
        A legacy system gets (or must be given) a token in the legacy shape.
        """
        current = self._store.registry.system(system_id)
        if current is None:
            raise NotFoundError(f"system {system_id} does not exist", system_id=system_id)
        secret = _new_secret(secret, legacy=current.legacy_organ_id is not None)
        box = SecretBox(self._settings.secret_key)
        if not self._store.registry.set_system_secret(system_id, box.seal(system_id, secret), hash_secret(secret)):
            raise NotFoundError(f"system {system_id} does not exist", system_id=system_id)
        return secret

    def set_system_active(self, system_id: str, active: bool) -> None:
        if not self._store.registry.set_system_active(system_id, active):
            raise NotFoundError(f"system {system_id} does not exist", system_id=system_id)

    def list_systems(self) -> list[SystemInfo]:
        return [_info(s) for s in self._store.registry.list_systems()]

    def systems_page(self, page: PageRequest | None = None) -> Page[SystemInfo]:
        """One page of the systems, by id (``systems list``; never secrets)."""
        page = page or PageRequest()
        found = self._store.registry.systems_page(
            after=page.after(SYSTEM_LISTING, 1), offset=page.offset, limit=page.limit
        )
        return page_of(SYSTEM_LISTING, found, _info)


def _info(s: SystemRecord) -> SystemInfo:
    return SystemInfo(
        id=s.id,
        name=s.name,
        active=s.active,
        created_at=s.created_at,
        agencies=s.agencies,
        vdxp_replay=s.vdxp_replay,
        vdxp_allow_from=s.vdxp_allow_from,
        vdxp_client_certs=s.vdxp_client_certs,
        legacy_organ_id=s.legacy_organ_id,
        legacy_scope=s.legacy_scope,
    )


def _scope_for(login: str | None, scope: str | None) -> str | None:
    """The scope stored with a legacy login (``strict`` unless given); a scope without a login is refused."""
    if login is None:
        if scope is not None:
            raise RequestError("a legacy scope needs a legacy OrganId (--legacy-organ)")
        return None
    return legacy_scope(scope or LegacyScope.STRICT).value


def _new_secret(given: str | None, *, legacy: bool) -> str:
    """A generated secret (a token in the legacy shape for a legacy system), or the checked ``given`` one."""
    if given is None:
        return generate_legacy_token() if legacy else generate_secret()
    return given_legacy_token(given) if legacy else _given_secret(given)


def _given_secret(secret: str) -> str:
    """An operator-given secret: long enough to be a key, printable (it travels in configuration files)."""
    bounded = MIN_SECRET_LENGTH <= len(secret) <= MAX_SECRET_LENGTH
    if not bounded or not secret.isprintable() or secret != secret.strip():
        raise RequestError(
            f"a given secret must be {MIN_SECRET_LENGTH}–{MAX_SECRET_LENGTH} printable characters without "
            "surrounding spaces"
        )
    return secret
