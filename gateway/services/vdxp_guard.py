"""Replay protection of the ``/vdxp`` edge, per system (issue 10 finding 7).

The XroadVnpt HMAC (edxml.md §11.2) proves who signed a request, not when: a signed request captured once
stayed valid forever (one signed in 2016 listed a mailbox). A time window alone would break the stock VNPT SDK,
which signs ONE timestamp when its client object is created and re-sends it for the life of the process
(edxml.md §11.4; a byte-identical poll every minute is normal for it). So each system chooses, in the registry
(``systems add|update --vdxp-replay``), the protection its client survives:

``strict`` (the default, and what our own client :mod:`adapters.vdxp` satisfies: a fresh timestamp per call)
    the signed timestamp is within ``Settings.vdxp_window_seconds`` of now, either way (``AUTH.STALE``), and a
    signature is accepted once (``AUTH.REPLAY``): the verified HMAC — which covers the timestamp and every
    signed entry — is recorded in ``vdxp_signatures`` until its timestamp leaves the window, so every worker
    and process on the database sees it (the insert's primary key decides, atomically, on SQLite and
    PostgreSQL alike). Recorded only after the whole request authenticated (``hash-file`` included), so nothing
    unauthenticated can fill the cache; purged once a minute per process.
``legacy-sdk`` (systems running the stock SDK)
    the timestamp is not checked; instead the system must be BOUND to something a captured request cannot carry
    elsewhere: source networks (``vdxp_allow_from``) and/or a TLS client certificate (``vdxp_client_certs``).
    The registry refuses this mode without one (:func:`check_binding`); a row that has it anyway (edited by hand)
    is treated as ``strict`` — never as unprotected.

Source bindings apply in both modes: an allow-list refuses any other address, a certificate binding any
request without that certificate (``ACCESS.SOURCE``). Where the request came from is the edge's finding
(:class:`ClientOrigin`), built only from the socket and from headers of a trusted proxy — never from what the
client says about itself.

Every refusal raises an :class:`~gateway.errors.AuthError` subclass inside the HMAC authentication
(:meth:`gateway.services.auth.Authenticator.hmac_request`), which audits it (``auth.denied`` with the code)
with every other authentication failure; the operation never runs, so nothing is stored.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from gateway.config import Settings
from gateway.db import Store
from gateway.errors import AuthError, ReplayError, RequestError, SourceError
from gateway.protocols import vdxp
from gateway.services.api import ClientOrigin
from gateway.services.registry_rows import parse_fingerprint

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Most networks and certificates one system may be bound to (an allow-list is a handful of CIDRs).
MAX_BINDINGS: Final = 64
_PRUNE_EVERY_SECONDS: Final = 60.0


class ReplayMode(StrEnum):
    """``systems.vdxp_replay`` (:data:`gateway.db.tables.VDXP_REPLAY_MODES`)."""

    STRICT = "strict"
    LEGACY_SDK = "legacy-sdk"


# ================================================================================================ settings


def parse_allow_from(values: Iterable[str]) -> tuple[str, ...]:
    """Normalised, de-duplicated CIDRs (a bare address is its /32 or /128); RequestError listing every bad one.

    Host bits are refused rather than masked (``10.0.0.7/24`` is a typo for one of two things), and so is a
    network that contains every address (``0.0.0.0/0``, ``::/0``): an allow-list that allows all binds nothing.
    """
    out: list[str] = []
    bad: list[str] = []
    for raw in values:
        text = raw.strip()
        try:
            network = ipaddress.ip_network(text, strict=True)
        except ValueError:
            bad.append(f"{text!r} (not an address or a network in CIDR form)")
            continue
        if network.prefixlen == 0:
            bad.append(f"{text!r} (allows every address)")
            continue
        out.append(str(network))
    if bad:
        raise RequestError(f"--allow-from: {', '.join(bad)}", invalid=bad)
    unique = tuple(dict.fromkeys(out))
    if len(unique) > MAX_BINDINGS:
        raise RequestError(f"--allow-from: at most {MAX_BINDINGS} networks")
    return unique


def parse_client_certs(values: Iterable[str]) -> tuple[str, ...]:
    """SHA-256 fingerprints (hex, ``:`` allowed, any case) → lowercase hex, de-duplicated; RequestError if bad."""
    given = [v.strip() for v in values]
    parsed = [parse_fingerprint(v) for v in given]
    bad = [v for v, p in zip(given, parsed, strict=True) if p is None]
    if bad:
        raise RequestError(f"--client-cert: not SHA-256 fingerprints: {', '.join(bad)}", invalid=bad)
    unique = tuple(dict.fromkeys(p for p in parsed if p))
    if len(unique) > MAX_BINDINGS:
        raise RequestError(f"--client-cert: at most {MAX_BINDINGS} certificates")
    return unique


def replay_mode(value: str) -> ReplayMode:
    try:
        return ReplayMode(value)
    except ValueError:
        raise RequestError(
            f"--vdxp-replay must be one of {', '.join(m.value for m in ReplayMode)}, not {value!r}"
        ) from None


def check_binding(mode: ReplayMode, allow_from: Sequence[str], client_certs: Sequence[str]) -> None:
    """``legacy-sdk`` needs a source binding: without one a captured request would be valid forever, anywhere."""
    if mode is ReplayMode.LEGACY_SDK and not allow_from and not client_certs:
        raise RequestError(
            "legacy-sdk mode accepts the stock SDK's fixed timestamp, so it needs a binding a captured request "
            "cannot carry elsewhere: give --allow-from CIDR (the system's addresses) and/or --client-cert "
            "SHA256 (its TLS client certificate)"
        )


# ================================================================================================ the check


class VdxpGuard:
    """The per-system check of a VDXP request whose HMAC has verified; one per process (thread-safe)."""

    def __init__(self, store: Store, settings: Settings, clock: Callable[[], datetime]) -> None:
        self._store = store
        self._window = timedelta(seconds=settings.vdxp_window_seconds)
        self._clock = clock
        self._lock = threading.Lock()
        self._last_prune = 0.0

    def admit(self, request: vdxp.VerifiedRequest, origin: ClientOrigin) -> None:
        """Refuse ``request`` unless its system's binding and replay mode accept it (raises AuthError kinds).

        Order: the binding (address, then certificate: the same in every mode), then, for strict systems, the
        window before the cache — a stale request is refused without a write.
        """
        binding = self._store.registry.vdxp_binding(request.system_id)
        if binding is None:
            raise AuthError("authentication failed")  # deactivated between the HMAC check and now
        mode_value, allow_from, client_certs = binding
        if allow_from and not _address_allowed(origin.address, allow_from):
            raise SourceError(
                f"requests of system {request.system_id} are accepted only from its allowed networks, not from "
                f"{origin.address or 'an unknown address'}",
                address=origin.address,
            )
        if client_certs and origin.cert_fingerprint not in client_certs:
            presented = "another certificate" if origin.cert_fingerprint else "no verified certificate"
            raise SourceError(
                f"system {request.system_id} is bound to a TLS client certificate; the request came with {presented}",
                reason="client-certificate",
            )
        legacy = mode_value == ReplayMode.LEGACY_SDK and bool(allow_from or client_certs)
        if legacy:
            return
        now = self._clock()
        vdxp.check_fresh(request.timestamp, self._window, now)
        assert request.timestamp is not None  # check_fresh refuses a missing one
        if not self._store.nonces.remember_signature(
            request.system_id, request.signature, request.timestamp + self._window
        ):
            raise ReplayError(
                "this signed request was already accepted once: sign every request anew (a fresh timestamp)",
                reason="replayed-signature",
            )
        self._maybe_prune(now)

    def _maybe_prune(self, now: datetime) -> None:
        tick = time.monotonic()
        with self._lock:
            if tick - self._last_prune < _PRUNE_EVERY_SECONDS:
                return
            self._last_prune = tick
        self._store.nonces.prune_signatures(now)


def _address_allowed(address: str | None, allow_from: Sequence[str]) -> bool:
    """Whether ``address`` lies in one of the (stored, normalised) networks; an unknown address never does."""
    ip = parse_address(address)
    if ip is None:
        return False
    for text in allow_from:
        try:
            if ip in ipaddress.ip_network(text, strict=False):
                return True
        except (ValueError, TypeError):
            continue  # a hand-edited row: that entry allows nothing
    return False


def parse_address(address: str | None) -> IpAddress | None:
    """An address as text → its value; an IPv4-mapped IPv6 address (``::ffff:192.0.2.7``) as the IPv4 one."""
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


__all__ = [
    "MAX_BINDINGS",
    "ClientOrigin",
    "ReplayMode",
    "VdxpGuard",
    "check_binding",
    "parse_address",
    "parse_allow_from",
    "parse_client_certs",
    "replay_mode",
]
