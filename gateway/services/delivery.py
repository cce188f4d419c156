"""Delivery use cases (gateway.md "Delivery", issue 4): push due deliveries through the peer adapters, retry with
backoff, dead-letter, and let operators see and re-drive what failed.

How a push delivery moves:

* intake writes it QUEUED with an outbox row due at once (:meth:`Store.insert_document`, one transaction);
* a worker leases a batch of due rows (:meth:`Store.claim_deliveries`: ``FOR UPDATE SKIP LOCKED`` on PostgreSQL,
  an IMMEDIATE transaction on SQLite), calls the recipient's adapter, and records the attempt together with its
  consequence in ONE transaction (:meth:`Store.finish_attempt`):

  - the adapter returned → DELIVERED (only then: a crash between the peer's acceptance and our commit sends the
    package again, under the same ``delivery_id``, which receivers de-duplicate on — "delivered exactly once to an
    idempotent receiver");
  - a retryable :class:`~gateway.ports.DeliveryError` (or any unexpected exception, which is logged) → due again
    after an exponential backoff with full jitter (:class:`RetryPolicy`), until the retry budget
    (``retry_limit_seconds``, default 72 h, counted from intake or from the last re-drive) is spent → DEAD;
  - a non-retryable one (the peer refused the package for good) → DEAD at once;

* a worker that dies leaves leases that expire (``worker_lease_seconds``), and another worker takes the delivery
  over: nothing is lost. Leases are renewed before each call, so a live worker never loses a delivery it is about
  to send.

DEAD shows in the sender's status view (the ``state`` of the delivery, with the last error as its reason) and in
:func:`list_deliveries` / :func:`show_delivery`; :func:`redrive` puts it back (never by SQL: gateway.md).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Final

from gateway.config import Settings
from gateway.db import AttemptRecord, AuditEntry, ClaimedDelivery, DeliveryOverview, Store, create_engine
from gateway.edxml.codes import PackageKind
from gateway.errors import NotFoundError, RequestError, UnavailableError
from gateway.ports import (
    DeliveryError,
    DeliveryResult,
    DeliveryTimeout,
    DeliveryUnreachable,
    OutgoingPackage,
    Peer,
    PeerAdapter,
)
from gateway.services.api import DeliveryState

log = logging.getLogger(__name__)

#: Channels a worker pushes to; ``mailbox`` recipients fetch their deliveries themselves.
PUSH_CHANNELS: Final = frozenset({"soap", "rest", "vdxp"})
#: Error code recorded when an adapter raised something other than a DeliveryError (a defect: logged, retried).
INTERNAL_ERROR: Final = "DELIVERY.INTERNAL"
#: Most rows one listing returns.
MAX_LIST: Final = 1000
#: Seconds added to one adapter call's timeouts when deciding whether a lease must be renewed before the call.
LEASE_MARGIN_SECONDS: Final = 5.0
#: A worker not seen for this long is forgotten (its heartbeat row is deleted at the next worker start).
HEARTBEAT_RETENTION: Final = timedelta(days=7)


def _utcnow() -> datetime:
    return datetime.now(UTC)


# ================================================================================================ retries


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, inside a finite budget (gateway.md "Delivery").

    Attempt ``n`` of a budget failed → wait ``uniform(0, min(max_seconds, base_seconds × 2^(n-1)))`` ("full
    jitter": many deliveries to a peer that comes back do not return in lockstep). No attempt is scheduled past
    the end of the budget: the last one happens at the deadline, and a failure then dead-letters.
    """

    base_seconds: float = 30.0
    max_seconds: float = 3600.0
    limit_seconds: float = 72 * 3600.0

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(settings.retry_base_seconds, settings.retry_max_seconds, settings.retry_limit_seconds)

    def ceiling(self, attempt: int) -> float:
        """The largest delay after the ``attempt``-th failure of a budget (1-based)."""
        exponent = min(max(attempt, 1) - 1, 62)  # 2^62 × base is past any cap; no float overflow
        return min(self.max_seconds, self.base_seconds * float(2**exponent))

    def delay(self, attempt: int, rng: random.Random) -> float:
        return rng.uniform(0.0, self.ceiling(attempt))

    def next_attempt_at(
        self, attempt: int, budget_since: datetime, now: datetime, rng: random.Random
    ) -> datetime | None:
        """When to try again after the ``attempt``-th failure of the budget started at ``budget_since``; None:
        the budget is spent (dead-letter)."""
        deadline = budget_since + timedelta(seconds=self.limit_seconds)
        if now >= deadline:
            return None
        return min(now + timedelta(seconds=self.delay(attempt, rng)), deadline)


# ================================================================================================ worker core


@dataclass
class BatchResult:
    """What one claim-and-deliver round did."""

    claimed: int = 0
    delivered: int = 0
    retried: int = 0
    dead: int = 0
    #: Given back unattempted (graceful stop).
    released: int = 0
    #: Not attempted because an earlier delivery to the same recipient just timed out / could not connect.
    postponed: int = 0
    #: Leases found taken over by another worker (ours had run out).
    lost: int = 0


@dataclass(frozen=True)
class Decision:
    """What one attempt led to."""

    outcome: str  # delivered | retry | dead
    next_attempt_at: datetime | None = None
    #: The peer as a whole is failing (timeout, no connection): skip its other deliveries in this batch.
    peer_down: bool = False


class Deliverer:
    """Claims, delivers and records — the delivery use case of one worker process (thread-confined).

    ``adapters`` maps a channel to its adapter; only deliveries to recipients on those channels are claimed, so a
    worker without (say) the VDXP adapter leaves VDXP deliveries to the workers that have it.
    """

    def __init__(
        self,
        store: Store,
        adapters: Mapping[str, PeerAdapter],
        policy: RetryPolicy,
        *,
        worker_id: str,
        lease_seconds: float,
        call_seconds: float,
        clock: Callable[[], datetime] | None = None,
        rng: random.Random | None = None,
        credentials: Callable[[str, str], dict[str, str]] | None = None,
    ) -> None:
        if lease_seconds <= call_seconds:
            raise ValueError("the lease must be longer than one adapter call")
        self.store = store
        self.adapters = dict(adapters)
        self.policy = policy
        self.worker_id = worker_id
        self._lease = timedelta(seconds=lease_seconds)
        self._call = timedelta(seconds=call_seconds + LEASE_MARGIN_SECONDS)
        self._clock = clock or _utcnow
        self._rng = rng or random.SystemRandom()
        #: (OrganId, channel) → the channel credentials of that agency (``Peer.credentials``).
        self._credentials = credentials or (lambda _organ, _channel: {})

    @property
    def channels(self) -> frozenset[str]:
        return frozenset(self.adapters)

    def run_batch(
        self, limit: int, *, stop: threading.Event | None = None, due_before: datetime | None = None
    ) -> BatchResult:
        """Claim up to ``limit`` due deliveries and deliver them one by one.

        ``stop`` is checked before each delivery: once set, the claims not yet started are released (due again at
        once, for any worker) and the batch ends — the delivery in hand is always finished and recorded first.
        ``due_before`` limits the claim to deliveries due by then (``run_worker(once=True)``: one pass).
        """
        result = BatchResult()
        now = self._clock()
        claims = self.store.claim_deliveries(
            self.worker_id,
            now=now,
            lease_until=now + self._lease,
            limit=limit,
            channels=self.channels,
            due_before=due_before,
        )
        result.claimed = len(claims)
        if not claims:
            return result
        held = {c.delivery_id for c in claims}
        lease_until = claims[0].lease_until
        peer_down: dict[str, datetime] = {}
        for index, claim in enumerate(claims):
            if stop is not None and stop.is_set():
                rest = [c.delivery_id for c in claims[index:] if c.delivery_id in held]
                result.released = self.store.release_claims(self.worker_id, rest)
                break
            now = self._clock()
            if lease_until - now < self._call:
                # Renew before the call so that no other worker can take a delivery while we are sending it.
                lease_until = now + self._lease
                rest = [c.delivery_id for c in claims[index:] if c.delivery_id in held]
                held = self.store.renew_claims(self.worker_id, rest, lease_until)
            if claim.delivery_id not in held:
                result.lost += 1
                continue
            if claim.recipient in peer_down:
                if self.store.postpone(self.worker_id, claim.delivery_id, peer_down[claim.recipient]):
                    result.postponed += 1
                continue
            outcome = self.deliver(claim)
            if outcome.outcome == "delivered":
                result.delivered += 1
            elif outcome.outcome == "retry":
                result.retried += 1
                if outcome.peer_down and outcome.next_attempt_at is not None:
                    peer_down[claim.recipient] = outcome.next_attempt_at
            else:
                result.dead += 1
        return result

    def deliver(self, claim: ClaimedDelivery) -> Decision:
        """One attempt: call the adapter, decide, record (the caller holds the lease)."""
        started = self._clock()
        t0 = time.monotonic()
        attempt = claim.attempts + 1
        result: DeliveryResult | None = None
        error: DeliveryError | None = None
        error_code: str | None = None
        try:
            data = self.store.raw(claim.doc_id)
            if data is None:  # pragma: no cover - documents are never deleted
                raise DeliveryError(f"document {claim.doc_id} has no stored package", retryable=False)
            adapter = self.adapters[claim.channel]
            result = adapter.deliver(
                Peer(
                    organ_id=claim.recipient,
                    channel=claim.channel,
                    endpoint=claim.endpoint,
                    credentials=self._credentials(claim.recipient, claim.channel),
                ),
                OutgoingPackage(
                    delivery_id=claim.delivery_id,
                    doc_id=claim.doc_id,
                    kind=PackageKind(claim.kind),
                    sender=claim.sender,
                    recipient=claim.recipient,
                    document_id=claim.document_id,
                    data=bytes(data),
                    attempt=attempt,
                ),
            )
        except DeliveryError as exc:
            error, error_code = exc, exc.code
        except UnavailableError:
            raise  # our database, not the peer: the worker loop backs off; the lease brings the delivery back
        except Exception as exc:
            # A defect in an adapter must not stop deliveries to every other peer: log it, retry this one.
            log.exception("adapter %s raised unexpectedly for delivery %s", claim.channel, claim.delivery_id)
            error = DeliveryError(f"internal error in the {claim.channel} adapter ({type(exc).__name__})")
            error_code = INTERNAL_ERROR
        duration_ms = int((time.monotonic() - t0) * 1000)
        ended = self._clock()

        if error is None:
            assert result is not None
            decision = Decision("delivered")
            record = AttemptRecord(
                delivery_id=claim.delivery_id,
                attempt=attempt,
                started_at=started,
                duration_ms=duration_ms,
                outcome="delivered",
                worker_id=self.worker_id,
                peer_answer=result.peer_answer,
                peer_reference=result.peer_reference,
            )
        else:
            next_at = (
                self.policy.next_attempt_at(claim.budget_attempts + 1, claim.budget_since, ended, self._rng)
                if error.retryable
                else None
            )
            decision = Decision(
                "retry" if next_at is not None else "dead",
                next_at,
                peer_down=isinstance(error, DeliveryTimeout | DeliveryUnreachable),
            )
            record = AttemptRecord(
                delivery_id=claim.delivery_id,
                attempt=attempt,
                started_at=started,
                duration_ms=duration_ms,
                outcome=decision.outcome,
                worker_id=self.worker_id,
                error_code=error_code,
                error_message=error.message,
                peer_answer=error.peer_answer,
                next_attempt_at=next_at,
            )
        audit = None
        if decision.outcome == "dead":
            audit = AuditEntry(
                at=ended,
                action="delivery.dead",
                outcome=error_code or "DELIVERY.FAILED",
                doc_id=claim.doc_id,
                organ_id=claim.recipient,
                detail={
                    "delivery_id": claim.delivery_id,
                    "attempts": attempt,
                    "retryable": bool(error is not None and error.retryable),
                },
            )
        self._record(record, audit)
        self._log(claim, record)
        return decision

    def _record(self, record: AttemptRecord, audit: AuditEntry | None) -> None:
        """Commit the attempt; a short database outage is waited out (the peer's answer is worth keeping)."""
        for wait in (0.5, 1.0, 2.0, 4.0):
            try:
                self.store.finish_attempt(record, audit=audit)
                return
            except UnavailableError as exc:
                log.warning("could not record attempt of delivery %s (%s); retrying", record.delivery_id, exc)
                time.sleep(wait)
        # Still down: give up on this record. The lease expires and the delivery is sent again (same delivery_id).
        self.store.finish_attempt(record, audit=audit)

    def _log(self, claim: ClaimedDelivery, record: AttemptRecord) -> None:
        level = logging.INFO if record.outcome == "delivered" else logging.WARNING
        tail = ""
        if record.outcome != "delivered":
            tail = f" {record.error_code}: {record.error_message}"
            if record.next_attempt_at is not None:
                tail += f"; next attempt at {record.next_attempt_at.isoformat(timespec='seconds')}"
        log.log(
            level,
            "delivery %s doc_id=%s to %s via %s attempt %d: %s in %d ms%s",
            claim.delivery_id,
            claim.doc_id,
            claim.recipient,
            claim.channel,
            record.attempt,
            record.outcome,
            record.duration_ms,
            tail,
        )


# ================================================================================================ operators


def _jsonable(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, StrEnum):
        return value.value
    return value


@dataclass(frozen=True)
class AttemptInfo:
    """One recorded attempt."""

    attempt: int
    started_at: datetime
    duration_ms: int
    outcome: str  # delivered | retry | dead
    worker_id: str | None
    error_code: str | None
    error_message: str | None
    peer_answer: str | None
    peer_reference: str | None
    next_attempt_at: datetime | None

    def to_dict(self) -> dict[str, object]:
        """JSON-ready (ISO 8601 times) — for ``--json`` and the admin API."""
        return {f.name: _jsonable(getattr(self, f.name)) for f in fields(self)}


@dataclass(frozen=True)
class DeliveryInfo:
    """A delivery as operators (CLI, admin API, web UI) see it."""

    delivery_id: str
    doc_id: str
    kind: PackageKind
    sender: str
    recipient: str
    document_id: str
    state: DeliveryState
    #: The recipient's channel now (None: the agency is no longer registered).
    channel: str | None
    created_at: datetime
    attempts: int
    last_attempt_at: datetime | None
    #: ``CODE: message (peer: answer)`` of the last failed attempt; None after success.
    last_error: str | None
    peer_reference: str | None
    #: When it became delivered / dead (or was acknowledged through the mailbox), and why it is dead or failed.
    settled_at: datetime | None
    reason: str | None
    #: While waiting to be pushed: when the next attempt is due, and which worker holds it (if any).
    next_attempt_at: datetime | None
    retry_budget_since: datetime | None
    claimed_by: str | None
    lease_until: datetime | None

    def to_dict(self) -> dict[str, object]:
        """JSON-ready (ISO 8601 times, enum values) — for ``--json`` and the admin API."""
        return {f.name: _jsonable(getattr(self, f.name)) for f in fields(self)}


@dataclass(frozen=True)
class DeliveryDetail:
    """A delivery with every attempt, oldest first."""

    delivery: DeliveryInfo
    attempts: tuple[AttemptInfo, ...] = field(default_factory=tuple)

    @property
    def last_error(self) -> str | None:
        """The error of the most recent failed attempt (None if the last attempt succeeded or none was made)."""
        return self.delivery.last_error

    def to_dict(self) -> dict[str, object]:
        return {**self.delivery.to_dict(), "attempt_log": [a.to_dict() for a in self.attempts]}


@contextmanager
def open_store(settings: Settings) -> Iterator[Store]:
    """A :class:`Store` on the configured database for one command (``edoc-gateway deliveries …``); the
    connection pool is released on exit."""
    engine = create_engine(settings)
    try:
        yield Store(engine)
    finally:
        engine.dispose()


def list_deliveries(
    store: Store, *, state: DeliveryState | str | None = None, recipient: str | None = None, limit: int = 100
) -> list[DeliveryInfo]:
    """Deliveries newest first — ``state="dead"`` lists the dead letters (``edoc-gateway deliveries list``)."""
    wanted = DeliveryState(state).value if state is not None else None
    rows = store.list_deliveries(state=wanted, recipient=recipient, limit=max(1, min(limit, MAX_LIST)))
    return [_info(r) for r in rows]


def show_delivery(store: Store, delivery_id: str) -> DeliveryDetail:
    """One delivery with its attempts (``edoc-gateway deliveries show``); NOT_FOUND if there is none."""
    row = store.delivery_overview(delivery_id)
    if row is None:
        raise NotFoundError(f"no delivery {delivery_id}", delivery_id=delivery_id)
    attempts = tuple(
        AttemptInfo(
            attempt=a.attempt,
            started_at=a.started_at,
            duration_ms=a.duration_ms,
            outcome=a.outcome,
            worker_id=a.worker_id,
            error_code=a.error_code,
            error_message=a.error_message,
            peer_answer=a.peer_answer,
            peer_reference=a.peer_reference,
            next_attempt_at=a.next_attempt_at,
        )
        for a in store.delivery_attempts(delivery_id)
    )
    return DeliveryDetail(delivery=_info(row), attempts=attempts)


def redrive(
    store: Store,
    *,
    delivery_id: str | None = None,
    recipient: str | None = None,
    actor: str | None = None,
    system_id: str | None = None,
    clock: Callable[[], datetime] | None = None,
) -> list[str]:
    """Re-drive one delivery, or every DEAD delivery of one recipient; returns the re-driven delivery ids.

    A re-driven delivery is QUEUED, due at once, with a fresh retry budget; each gets a ``delivery.redrive`` audit
    row naming ``actor`` (e.g. ``cli:<unix user>``) and ``system_id`` (an admin API caller). One delivery may be
    DEAD, FAILED (its system acknowledged "fail": it goes back to the mailbox, or to the worker for a push
    channel) or still retrying (it is tried at once). A delivered one, or one simply waiting in a mailbox, is
    refused with REQUEST.INVALID.
    """
    if (delivery_id is None) == (recipient is None):
        raise RequestError("give exactly one of delivery_id and recipient")
    now = (clock or _utcnow)()
    if delivery_id is not None:
        row = store.delivery_overview(delivery_id)
        if row is None:
            raise NotFoundError(f"no delivery {delivery_id}", delivery_id=delivery_id)
        waiting = row.state in ("queued", "fetched") and row.next_attempt_at is None
        if row.state == "delivered" or waiting:
            raise RequestError(
                f"delivery {delivery_id} is {row.state}"
                + (" in the recipient's mailbox" if waiting else "")
                + "; there is nothing to re-drive",
                delivery_id=delivery_id,
                state=row.state,
            )
        return store.redrive([delivery_id], now=now, push_channels=PUSH_CHANNELS, system_id=system_id, actor=actor)
    assert recipient is not None
    done: list[str] = []
    while True:  # page by page: each page leaves the DEAD state, so the next query returns the next page
        page = [r.delivery_id for r in store.list_deliveries(state="dead", recipient=recipient, limit=MAX_LIST)]
        if not page:
            return done
        moved = store.redrive(page, now=now, push_channels=PUSH_CHANNELS, system_id=system_id, actor=actor)
        done.extend(moved)
        if not moved:  # pragma: no cover - only if every row changed concurrently
            return done


def readiness(store: Store, settings: Settings, *, now: datetime | None = None) -> dict[str, bool]:
    """For ``/readyz``: ``{"worker": bool}`` — a worker's heartbeat is fresher than ``worker_stale_seconds``.

    Only meaningful when something may need pushing: with no active push agency and an empty outbox the check
    passes without a worker (a mailbox-only installation runs none).
    """
    now = now or _utcnow()
    stale = timedelta(seconds=settings.worker_stale_seconds)
    try:
        if any(h.stopped_at is None and now - h.seen_at <= stale for h in store.worker_heartbeats()):
            return {"worker": True}
        return {"worker": not store.push_expected(PUSH_CHANNELS)}
    except UnavailableError:
        return {"worker": False}


def _info(r: DeliveryOverview) -> DeliveryInfo:
    return DeliveryInfo(
        delivery_id=r.delivery_id,
        doc_id=r.doc_id,
        kind=PackageKind(r.kind),
        sender=r.sender,
        recipient=r.recipient,
        document_id=r.document_id,
        state=DeliveryState(r.state),
        channel=r.channel,
        created_at=r.created_at,
        attempts=r.attempts,
        last_attempt_at=r.last_attempt_at,
        last_error=r.last_error,
        peer_reference=r.peer_reference,
        settled_at=r.acknowledged_at,
        reason=r.ack_reason,
        next_attempt_at=r.next_attempt_at,
        retry_budget_since=r.budget_since,
        claimed_by=r.claimed_by,
        lease_until=r.lease_until,
    )


__all__ = [
    "INTERNAL_ERROR",
    "PUSH_CHANNELS",
    "AttemptInfo",
    "BatchResult",
    "Decision",
    "Deliverer",
    "DeliveryDetail",
    "DeliveryInfo",
    "RetryPolicy",
    "list_deliveries",
    "open_store",
    "readiness",
    "redrive",
    "show_delivery",
]


class DeliveryAdmin:
    """The operators' delivery use cases over one store, as an object: what the admin edge is handed.

    The edge (:mod:`gateway.web.admin`) must not hold a :class:`Store` — edges talk to services only — so the
    entry point (:mod:`gateway.web.wsgi`) builds this over the service's store and passes it in. The methods are
    :func:`list_deliveries`, :func:`show_delivery` and :func:`redrive` with the store bound.
    """

    def __init__(self, store: Store) -> None:
        self._store = store

    def list_deliveries(
        self, *, state: DeliveryState | None = None, recipient: str | None = None, limit: int = 100
    ) -> list[DeliveryInfo]:
        return list_deliveries(self._store, state=state, recipient=recipient, limit=limit)

    def show_delivery(self, delivery_id: str) -> DeliveryDetail:
        return show_delivery(self._store, delivery_id)

    def redrive(
        self, *, delivery_id: str | None = None, recipient: str | None = None, actor: str | None = None
    ) -> list[str]:
        return redrive(self._store, delivery_id=delivery_id, recipient=recipient, actor=actor)
