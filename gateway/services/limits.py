"""Rate limits and throttling (issue 10 "Hostile clients"): requests per address and per system, failed logins.

Measured before this module: an HTTP Basic refusal cost a scrypt (≈30× a digest refusal), unthrottled, and each
refusal wrote an audit row — a loop of bad logins burned a CPU per worker and grew ``audit_log`` without bound.

Where the state lives, and why (a hybrid):

* **request rates** — token buckets in the process (:class:`TokenBuckets`): checked on every request, so they
  must cost no I/O. Per source address (:meth:`RateLimiter.admit_address`, called by the web front before an
  edge reads the body) and per authenticated system (:meth:`RateLimiter.admit_system`, called on every successful
  authentication). The price: with N gunicorn workers a client gets up to N× the configured rate (documented with
  the settings). The tables are bounded (``rate_table_size``, least recently seen evicted): an attacker cycling
  addresses only resets buckets, never grows memory;
* **authentication failures** — counted in the database (``refusal_counts``, :class:`AuthThrottle`): a failure
  is rare for honest clients and already cost a write (its audit row), and the count must be the same in every
  worker and every gateway on the database, or an attacker would get K tries per worker. After
  ``auth_failures_per_address`` failures from an address, or ``auth_failures_per_user`` for one claimed system id,
  in the last one to two windows, attempts are refused with ``RATE.LIMITED`` *before* any expensive check. A block,
  once seen, is remembered in the process until it ends (no database read per refused attempt);
* **refusals are aggregated** (:class:`RefusalLog`): one ``refusal_counts`` row per (window, address, claimed
  system, code) with a count and the first/last time, and ONE ``audit_log`` row — the first — per such key.
  ``RATE.LIMITED`` refusals are coalesced in the process and written at most every few seconds per key; their key
  names the claimed system only when the block is the system's (an attacker cycling names from a blocked address
  adds nothing).

The source address of the current request is a context variable set by the web front (:func:`source_scope`): it is
a property of the request, like the log context, and every edge's authentication call sees it without each edge
having to pass it along. Outside a request (the CLI, tests) it is empty and the per-address limits do not apply.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from typing import Final

from gateway.config import Settings
from gateway.db import AuditEntry, Store
from gateway.errors import AuthError, RateLimitedError, ReplayError, UnavailableError

#: The codes that count as failed authentications.
FAILURE_CODES: Final = frozenset({AuthError.code, ReplayError.code})
#: A coalesced RATE.LIMITED counter is written at most this often per key and process.
FLUSH_SECONDS: Final = 5.0
_MAX_FIELD = 64

_source: ContextVar[str] = ContextVar("edoc_gateway_source", default="")
_retry_after: ContextVar[int | None] = ContextVar("edoc_gateway_retry_after", default=None)


@contextmanager
def source_scope(address: str) -> Iterator[None]:
    """The client address of the request being handled (the web front wraps each request in this)."""
    token = _source.set((address or "")[:_MAX_FIELD])
    retry = _retry_after.set(None)
    try:
        yield
    finally:
        _retry_after.reset(retry)
        _source.reset(token)


def refused_retry_after() -> int | None:
    """The ``retry_after`` of a RATE.LIMITED refusal raised during the current request, if any: the web front
    adds it as ``Retry-After`` whatever edge turned the refusal into an answer (a SOAP Fault, a VDXP answer)."""
    return _retry_after.get()


def _rate_limited(message: str, retry_after: int) -> RateLimitedError:
    exc = RateLimitedError(message, retry_after=retry_after)
    _retry_after.set(exc.retry_after)
    return exc


def current_source() -> str:
    """The current request's client address, '' outside a request."""
    return _source.get()


class TokenBuckets:
    """Token buckets per key, in the process: ``rate`` tokens per second up to ``burst``; thread-safe.

    Bounded: beyond ``max_keys`` the least recently used key is forgotten (it comes back with a full bucket — the
    eviction can only be more permissive, never refuse an honest client).
    """

    def __init__(self, rate: float, burst: int, max_keys: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = max(1, burst)
        self._max = max(1, max_keys)
        self._clock = clock
        self._buckets: OrderedDict[Hashable, tuple[float, float]] = OrderedDict()  # key -> (tokens, at)
        self._lock = threading.Lock()

    def take(self, key: Hashable) -> float:
        """Take one token: 0.0 when granted, else the seconds until one is available."""
        now = self._clock()
        with self._lock:
            tokens, at = self._buckets.pop(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - at) * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                wait = 0.0
            else:
                self._buckets[key] = (tokens, now)
                wait = (1.0 - tokens) / self.rate
            while len(self._buckets) > self._max:
                self._buckets.popitem(last=False)
            return wait

    def __len__(self) -> int:
        return len(self._buckets)


class _Expiring:
    """key → monotonic deadline, bounded like :class:`TokenBuckets` (least recently touched evicted)."""

    def __init__(self, max_keys: int, clock: Callable[[], float]) -> None:
        self._max = max(1, max_keys)
        self._clock = clock
        self._until: OrderedDict[Hashable, float] = OrderedDict()
        self._lock = threading.Lock()

    def remaining(self, key: Hashable) -> float:
        now = self._clock()
        with self._lock:
            until = self._until.get(key)
            if until is None:
                return 0.0
            if until <= now:
                del self._until[key]
                return 0.0
            self._until.move_to_end(key)
            return until - now

    def set(self, key: Hashable, seconds: float) -> None:
        with self._lock:
            self._until.pop(key, None)
            self._until[key] = self._clock() + seconds
            while len(self._until) > self._max:
                self._until.popitem(last=False)


class RefusalLog:
    """Aggregated refusals (module docstring): the first of each key audited, the rest counted."""

    def __init__(self, store: Store, settings: Settings, clock: Callable[[], datetime]) -> None:
        self._store = store
        self._window = max(1, settings.auth_failure_window_seconds)
        self._clock = clock
        self._max = max(1, settings.rate_table_size)
        self._pending: OrderedDict[tuple[datetime, str, str, str], tuple[int, float]] = OrderedDict()
        self._lock = threading.Lock()

    def window_start(self, at: datetime) -> datetime:
        """The start of the fixed window ``at`` falls in (epoch-aligned, UTC)."""
        epoch = int(at.timestamp())
        return datetime.fromtimestamp(epoch - epoch % self._window, UTC)

    @property
    def window(self) -> timedelta:
        return timedelta(seconds=self._window)

    def record(self, source: str, principal: str, code: str, audit: AuditEntry) -> None:
        """One refusal, written now (the authentication failures: the shared counters must see each one)."""
        at = audit.at
        self._store.refusals.record(self.window_start(at), source, principal, code, at, audit=audit)

    def record_coalesced(self, source: str, principal: str, code: str, audit: AuditEntry) -> None:
        """One refusal, counted in the process and written at most every :data:`FLUSH_SECONDS` per key."""
        key = (self.window_start(audit.at), source[:_MAX_FIELD], principal[:_MAX_FIELD], code)
        tick = time.monotonic()
        flush: list[tuple[tuple[datetime, str, str, str], int]] = []
        with self._lock:
            count, last = self._pending.pop(key, (0, -math.inf))
            count += 1
            if tick - last >= FLUSH_SECONDS:
                flush.append((key, count))
                self._pending[key] = (0, tick)
            else:
                self._pending[key] = (count, last)
            while len(self._pending) > self._max:
                old, (left, _) = self._pending.popitem(last=False)
                if left:
                    flush.append((old, left))
        for flushed, n in flush:
            # Only this refusal's own key may carry its audit row (written if the key is new in the database).
            self._store.refusals.record(*flushed, audit.at, count=n, audit=audit if flushed == key else None)


class RateLimiter:
    """Request rates per source address and per system (in the process; module docstring)."""

    def __init__(self, settings: Settings, refusals: RefusalLog, clock: Callable[[], datetime]) -> None:
        size = settings.rate_table_size
        self._address = (
            TokenBuckets(settings.rate_per_address, settings.rate_burst_per_address, size)
            if settings.rate_per_address > 0
            else None
        )
        self._system = (
            TokenBuckets(settings.rate_per_system, settings.rate_burst_per_system, size)
            if settings.rate_per_system > 0
            else None
        )
        self._refusals = refusals
        self._clock = clock

    def admit_address(self, source: str) -> None:
        """One request from ``source``; RateLimitedError beyond ``rate_per_address``."""
        if self._address is None or not source:
            return
        wait = self._address.take(source)
        if wait:
            self._refuse(source, "", "requests from this address", wait, "address")

    def admit_system(self, system_id: str) -> None:
        """One authenticated request of ``system_id``; RateLimitedError beyond ``rate_per_system``."""
        if self._system is None:
            return
        wait = self._system.take(system_id)
        if wait:
            self._refuse(current_source(), system_id, f"requests of system {system_id}", wait, "system")

    def _refuse(self, source: str, principal: str, what: str, wait: float, scope: str) -> None:
        retry_after = max(1, math.ceil(wait))
        audit = AuditEntry(
            at=self._clock(),
            action="rate.limited",
            outcome=RateLimitedError.code,
            system_id=principal[:_MAX_FIELD] or None,
            detail={"source": source, "scope": scope},
        )
        with suppress(UnavailableError):  # the refusal itself is what the caller must see
            self._refusals.record_coalesced(source, principal, RateLimitedError.code, audit)
        raise _rate_limited(f"too many {what}; retry after {retry_after} s", retry_after)


class AuthThrottle:
    """Failed authentications per address and per claimed system (shared, in the database; module docstring)."""

    def __init__(self, store: Store, settings: Settings, refusals: RefusalLog, clock: Callable[[], datetime]) -> None:
        self._store = store
        self._per_address = settings.auth_failures_per_address
        self._per_user = settings.auth_failures_per_user
        self._refusals = refusals
        self._clock = clock
        self._blocked = _Expiring(settings.rate_table_size, time.monotonic)

    def blocked(self, principal: str) -> tuple[int, str] | None:
        """``(retry_after, scope)`` when the current address or ``principal`` is blocked, else None."""
        source = current_source()
        checks = []
        if self._per_address > 0 and source:
            checks.append(("address", source, self._per_address))
        if self._per_user > 0 and principal:
            checks.append(("user", principal[:_MAX_FIELD], self._per_user))
        for scope, key, _limit in checks:
            left = self._blocked.remaining((scope, key))
            if left:
                return max(1, math.ceil(left)), scope
        now = self._clock()
        current = self._refusals.window_start(now)
        window = self._refusals.window
        for scope, key, limit in checks:
            by = {"source": key} if scope == "address" else {"principal": key}
            total = self._store.refusals.total(current - window, FAILURE_CODES, **by)
            if total < limit:
                continue
            # Blocked until the windows holding `limit` failures have passed: the current one alone, or with the
            # previous one.
            alone = self._store.refusals.total(current, FAILURE_CODES, **by)
            ends = current + (2 * window if alone >= limit else window)
            seconds = max(1.0, (ends - now).total_seconds())
            self._blocked.set((scope, key), seconds)
            return math.ceil(seconds), scope
        return None

    def failed(self, principal: str, method: str, code: str, why: str) -> None:
        """Count one failed authentication (its audit row is written if it is the first of its key)."""
        source = current_source()
        audit = _auth_audit(self._clock(), principal, method, code, why, source)
        with _unavailable_ignored():
            self._refusals.record(source, principal[:_MAX_FIELD], code, audit)

    def refuse(self, principal: str, method: str, retry_after: int, scope: str) -> RateLimitedError:
        """The RATE.LIMITED refusal of an attempt from a blocked address or for a blocked system (coalesced)."""
        source = current_source()
        audit = _auth_audit(self._clock(), principal, method, RateLimitedError.code, f"{scope} blocked", source)
        with _unavailable_ignored():
            self._refusals.record_coalesced(
                source, principal[:_MAX_FIELD] if scope == "user" else "", RateLimitedError.code, audit
            )
        return _rate_limited(
            f"too many failed authentications from this {'address' if scope == 'address' else 'system id'}; "
            f"retry after {retry_after} s",
            retry_after,
        )


def _auth_audit(at: datetime, principal: str, method: str, code: str, why: str, source: str) -> AuditEntry:
    return AuditEntry(
        at=at,
        action="auth.denied",
        outcome=code,
        detail={"username": principal[:_MAX_FIELD], "method": method, "why": why, "source": source or None},
    )


def _unavailable_ignored() -> suppress:
    """A database outage while counting a refusal: the refusal still reaches the caller."""
    return suppress(UnavailableError)


__all__ = [
    "FAILURE_CODES",
    "AuthThrottle",
    "RateLimiter",
    "RefusalLog",
    "TokenBuckets",
    "current_source",
    "refused_retry_after",
    "source_scope",
]
