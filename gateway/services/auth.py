"""Authentication of API client systems: secrets at rest, WS-Security UsernameToken digest, HTTP Basic, the
VDXP XroadVnpt HMAC (:meth:`Authenticator.hmac_request`) and the e-doc.vn OrganId + Token
(:meth:`Authenticator.legacy`).

Why each secret is stored TWICE (gateway.md "Systems … secret (stored hashed)"):

* WS-Security ``PasswordDigest`` = Base64(SHA-1(nonce + created + secret)) — the verifier must compute it,
  so it needs the secret itself; a one-way hash cannot serve (nor for the VDXP HMAC-SHA256 keyed by the
  secret, edxml.md §11.2). The secret is therefore kept ENCRYPTED at rest with AES-256-GCM under a key derived
  (HKDF-SHA256) from ``Settings.secret_key``, with the system id as associated data (a ciphertext copied onto
  another system's row does not decrypt). A stolen database without the configuration does not reveal secrets.
* HTTP Basic sends the secret itself; checking it against a slow one-way hash (scrypt, n=2^14, r=8, p=1)
  means Basic never needs the decryption key. Because scrypt costs ~50 ms, a successful check is remembered
  in memory for a few minutes, keyed by an HMAC of the password under a per-process random key and by the
  stored hash (so a rotated secret misses the cache at once).

Failures say the same thing whatever went wrong (unknown system, inactive, wrong secret): no user
enumeration. Replays: ``Created`` must be within ``Settings.wss_window_seconds`` of now in both directions,
and a nonce is accepted once per system; nonces live in the database (``wss_nonces``), shared by every
gunicorn worker, and are pruned after twice the window (a token is only acceptable while its Created is
inside the window, so an older nonce can never be replayed successfully anyway).

Throttling and the aggregated audit of failures (issue 10): :class:`Authenticator` and :mod:`gateway.services.limits`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import NoReturn, TypeVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from gateway.config import Settings
from gateway.db import Store
from gateway.edxml.organ import MAX_LENGTH as _MAX_ORGAN
from gateway.errors import AuthError, ConfigError, ReplayError
from gateway.services.limits import AuthThrottle, RateLimiter, RefusalLog

_HKDF_INFO = b"edoc-gateway system secrets v1"
_BOX_VERSION = b"\x01"
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1
_DENIED = "authentication failed"
#: WS-Security nonces are 16 bytes in practice; anything much larger is refused before touching the database.
_MAX_NONCE_BYTES = 64
_BASIC_CACHE_SECONDS = 300.0
_BASIC_CACHE_SIZE = 4096
_PRUNE_EVERY_SECONDS = 60.0

T = TypeVar("T")


def generate_secret() -> str:
    """A new system secret: 256 random bits, URL-safe (shown once by ``systems add``)."""
    return secrets.token_urlsafe(32)


class SecretBox:
    """AES-256-GCM encryption of system secrets under a key derived from ``Settings.secret_key``."""

    def __init__(self, secret_key: str) -> None:
        if not secret_key or len(secret_key) < 16:
            raise ConfigError("secret_key (at least 16 characters) is required to store system secrets")
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(secret_key.encode())
        self._aead = AESGCM(key)

    def seal(self, system_id: str, secret: str) -> bytes:
        nonce = os.urandom(12)
        return _BOX_VERSION + nonce + self._aead.encrypt(nonce, secret.encode(), system_id.encode())

    def open(self, system_id: str, blob: bytes) -> str:
        """The plain secret; ConfigError when it does not decrypt (``secret_key`` changed or row tampered)."""
        if blob[:1] != _BOX_VERSION or len(blob) < 1 + 12 + 16:
            raise ConfigError(f"the stored secret of system {system_id!r} is not in a known format")
        try:
            return self._aead.decrypt(blob[1:13], blob[13:], system_id.encode()).decode()
        except InvalidTag:
            raise ConfigError(
                f"the stored secret of system {system_id!r} does not decrypt: was secret_key changed?"
            ) from None


def hash_secret(secret: str) -> str:
    """``scrypt$n$r$p$salt$hash`` (base64) — the verification hash used for HTTP Basic."""
    salt = os.urandom(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32)
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_secret_hash(secret: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            secret.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected)
        )
    except (ValueError, binascii.Error):
        return False
    return hmac.compare_digest(actual, expected)


def password_digest(nonce: bytes, created: str, secret: str) -> str:
    """WS-Security UsernameToken Profile 1.1 §3.1: Base64(SHA-1(nonce + created + password))."""
    return base64.b64encode(hashlib.sha1(nonce + created.encode() + secret.encode()).digest()).decode()  # noqa: S324


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class Authenticator:
    """Checks credentials against the ``systems`` table; one per process (it holds the Basic cache).

    Throttled (issue 10, :mod:`gateway.services.limits`): every failure is counted per source address and per
    claimed system id; once either is blocked, an attempt that would need scrypt (a Basic password not in the
    cache) or fails a cheap check is refused with ``RATE.LIMITED`` without running it, while valid credentials
    that are checked cheaply (a cached Basic password, a digest, an HMAC) still pass — a blocked address may be
    a proxy or a NAT shared with honest systems. Every success takes a token of the system's request rate.
    """

    def __init__(
        self,
        store: Store,
        settings: Settings,
        clock: Callable[[], datetime],
        *,
        throttle: AuthThrottle | None = None,
        rates: RateLimiter | None = None,
    ) -> None:
        self._store = store
        self._window = timedelta(seconds=settings.wss_window_seconds)
        self._box = SecretBox(settings.secret_key) if settings.secret_key else None
        self._clock = clock
        refusals = RefusalLog(store, settings, clock)
        self._throttle = throttle or AuthThrottle(store, settings, refusals, clock)
        self._rates = rates or RateLimiter(settings, refusals, clock)
        self._cache_key = os.urandom(32)
        self._cache: dict[tuple[str, str, bytes], float] = {}
        self._lock = threading.Lock()
        self._last_prune = 0.0

    # ------------------------------------------------------------------------------------- HTTP Basic

    def basic(self, username: str, password: str) -> str:
        system = self._store.registry.system(username) if username else None
        token = None
        if system is not None and system.active:
            token = (system.id, system.secret_hash, hmac.digest(self._cache_key, password.encode(), "sha256"))
            now = time.monotonic()
            with self._lock:
                expires = self._cache.get(token)
                if expires is not None and expires >= now:
                    # Sliding: a system that keeps working keeps its entry (a rotated secret changes the key).
                    self._cache[token] = now + _BASIC_CACHE_SECONDS
                    hit = True
                else:
                    hit = False
            if hit:
                self._rates.admit_system(system.id)
                return system.id
        # Everything below may cost a scrypt: refused up front while the address or the name is blocked.
        self._refuse_if_blocked(username, "basic")
        if system is None or token is None:
            self._deny(username, "basic", checked=True)
        if not verify_secret_hash(password, system.secret_hash):
            self._deny(username, "basic", checked=True)
        with self._lock:
            if len(self._cache) >= _BASIC_CACHE_SIZE:
                self._cache.clear()
            self._cache[token] = time.monotonic() + _BASIC_CACHE_SECONDS
        self._rates.admit_system(system.id)
        return system.id

    # ------------------------------------------------------------------------------------- WS-Security

    def digest(self, username: str, digest_b64: str, nonce_b64: str, created: str) -> str:
        now = self._clock()
        try:
            nonce = base64.b64decode(nonce_b64, validate=True)
        except (binascii.Error, ValueError):
            self._deny(username, "digest", "malformed nonce")
        if not nonce or len(nonce) > _MAX_NONCE_BYTES:
            self._deny(username, "digest", "malformed nonce")
        when = _parse_created(created)
        if when is None:
            self._deny(username, "digest", "Created is not an ISO-8601 UTC time")
        if abs(now - when) > self._window:
            self._fail(
                username,
                "digest",
                ReplayError(
                    "the UsernameToken Created time is outside the replay window",
                    window_seconds=int(self._window.total_seconds()),
                ),
                "Created outside the replay window",
            )
        system = self._store.registry.system(username) if username else None
        if system is None or not system.active or self._box is None:
            self._deny(username, "digest")
        expected = password_digest(nonce, created, self._box.open(system.id, system.secret_enc))
        if not hmac.compare_digest(expected.encode(), digest_b64.strip().encode()):
            self._deny(username, "digest")
        if not self._store.nonces.remember_nonce(system.id, _b64(nonce), now):
            self._fail(
                username, "digest", ReplayError("the UsernameToken nonce was already used"), "nonce already used"
            )
        self._maybe_prune(now)
        self._rates.admit_system(system.id)
        return system.id

    # ------------------------------------------------------------------------------------- e-doc.vn OrganId + Token

    def legacy(self, organ_id: str, token: str) -> str:
        """The system whose legacy login is ``organ_id`` and whose secret is ``token`` (legacy-edoc-vn.md §3).

        Both are trimmed first (§16: the axis compared untrimmed text, so a line break a client put inside
        ``<Token>`` failed for no reason) and the token is compared in constant time with the decrypted secret.
        An unknown OrganId, a disabled system and a wrong token are the same AUTH.DENIED, counted by the
        throttle under the claimed OrganId (method ``legacy``); the token itself is never logged or audited.
        """
        organ, given = organ_id.strip(), token.strip()
        # Longer than any OrganId: unknown without a query (an 8 MB <OrganId> does not reach the database).
        system = self._store.registry.system_by_legacy_organ(organ) if 0 < len(organ) <= _MAX_ORGAN else None
        if system is None or not system.active or self._box is None:
            self._deny(organ, "legacy", "unknown or inactive legacy OrganId")
        expected = self._box.open(system.id, system.secret_enc)
        if not hmac.compare_digest(expected.encode(), given.encode()):
            self._deny(organ, "legacy")
        self._rates.admit_system(system.id)
        return system.id

    # ------------------------------------------------------------------------------------- HMAC (VDXP)

    def secret_for(self, system_id: str) -> str:
        """The decrypted secret of an ACTIVE system: the HMAC key of the VDXP XroadVnpt scheme (edxml.md §11.2).

        A shared-key HMAC needs the secret itself, like WS-Security PasswordDigest, hence the encrypted copy.
        Unknown, inactive, or no ``secret_key`` configured → AuthError with the one generic message. Not audited
        here: :meth:`hmac_request` audits the authentication attempt this is part of.
        """
        system = self._store.registry.system(system_id) if system_id else None
        if system is None or not system.active or self._box is None:
            raise AuthError(_DENIED)
        return self._box.open(system.id, system.secret_enc)

    def hmac_request(self, system_id: str, verify: Callable[[str], T], method: str = "vdxp-hmac") -> T:
        """Authenticate a request signed with the system's secret: ``verify(secret)`` checks the signature.

        The secret goes to ``verify`` only. Every failure is counted and audited (``auth.denied``, aggregated)
        with its real reason; an unknown system and a wrong signature look the same to the caller
        ("authentication failed"), other refusals (a parameter sent unsigned, a header that differs from its
        signed value) keep their message: they are only reachable with a valid signature or reveal nothing about
        the system. From a blocked address (or for a blocked id) a failure answers ``RATE.LIMITED`` instead.
        """
        try:
            secret = self.secret_for(system_id)
        except AuthError:
            self._deny(system_id, method, "unknown or inactive system")
        try:
            verified = verify(secret)
        except AuthError as exc:
            self._fail(system_id, method, exc, str(exc.detail.get("reason") or exc.message)[:200])
        self._rates.admit_system(system_id)
        return verified

    # ------------------------------------------------------------------------------------- rates

    def admit_address(self, source: str) -> None:
        """One request from ``source`` (the web front, before the body is read): RATE.LIMITED beyond the rate."""
        self._rates.admit_address(source)

    def _maybe_prune(self, now: datetime) -> None:
        tick = time.monotonic()
        if tick - self._last_prune < _PRUNE_EVERY_SECONDS:
            return
        self._last_prune = tick
        self._store.nonces.prune_nonces(now - 2 * self._window)

    def _refuse_if_blocked(self, username: str, method: str) -> None:
        blocked = self._throttle.blocked(username)
        if blocked is not None:
            raise self._throttle.refuse(username, method, *blocked)

    def _deny(self, username: str, method: str, why: str = "bad credentials", *, checked: bool = False) -> NoReturn:
        self._fail(username, method, AuthError(_DENIED), why, checked=checked)

    def _fail(self, username: str, method: str, exc: AuthError, why: str, *, checked: bool = False) -> NoReturn:
        """Refuse with ``exc`` (counted), or with RATE.LIMITED when blocked (``checked``: already looked)."""
        if not checked:
            self._refuse_if_blocked(username, method)
        self._throttle.failed(username, method, exc.code, why)
        raise exc


def _parse_created(text: str) -> datetime | None:
    """``Created`` as ISO-8601 with an explicit UTC offset (``Z`` or ``+00:00`` …); naive times are refused."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if value.tzinfo is None:
        return None
    return value.astimezone(UTC)
