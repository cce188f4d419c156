"""Delivery use cases (gateway.md "Delivery", issue 4): push due deliveries through the peer adapters, retry with
backoff, dead-letter, and let operators see and re-drive what failed.

How a push delivery moves:

* intake writes it QUEUED with an outbox row due at once (``store.documents.insert_document``, one transaction);
* a worker leases a batch of due rows (``store.outbox.claim_deliveries``: ``FOR UPDATE SKIP LOCKED`` on PostgreSQL,
  an IMMEDIATE transaction on SQLite), calls the recipient's adapter, and records the attempt together with its
  consequence in ONE transaction (``store.outbox.finish_attempt``):

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
:mod:`gateway.services.delivery_admin` (list, show, re-drive: never by SQL, gateway.md).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Final

from gateway import logs, metrics
from gateway.config import Settings
from gateway.db import AttemptRecord, AuditEntry, ClaimedDelivery, Store
from gateway.edxml.codes import PackageKind
from gateway.errors import UnavailableError
from gateway.ports import (
    DeliveryError,
    DeliveryResult,
    DeliveryTimeout,
    DeliveryUnreachable,
    OutgoingPackage,
    Peer,
    PeerAdapter,
)

log = logging.getLogger(__name__)

#: Error code recorded when an adapter raised something other than a DeliveryError (a defect: logged, retried).
INTERNAL_ERROR: Final = "DELIVERY.INTERNAL"
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
        claims = self.store.outbox.claim_deliveries(
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
                result.released = self.store.outbox.release_claims(self.worker_id, rest)
                break
            now = self._clock()
            if lease_until - now < self._call:
                # Renew before the call so that no other worker can take a delivery while we are sending it.
                lease_until = now + self._lease
                rest = [c.delivery_id for c in claims[index:] if c.delivery_id in held]
                held = self.store.outbox.renew_claims(self.worker_id, rest, lease_until)
            if claim.delivery_id not in held:
                result.lost += 1
                continue
            if claim.recipient in peer_down:
                if self.store.outbox.postpone(self.worker_id, claim.delivery_id, peer_down[claim.recipient]):
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
        """One attempt: call the adapter, decide, record (the caller holds the lease). Every line logged meanwhile
        names the delivery, the document and the channel (:func:`gateway.logs.scope`)."""
        with logs.scope(
            operation="deliver",
            delivery_id=claim.delivery_id,
            doc_id=claim.doc_id,
            document_id=claim.document_id,
            recipient=claim.recipient,
            channel=claim.channel,
        ):
            return self._attempt(claim)

    def _attempt(self, claim: ClaimedDelivery) -> Decision:
        started = self._clock()
        t0 = time.monotonic()
        attempt = claim.attempts + 1
        try:
            result, error, error_code = self._send(claim, attempt), None, None
        except DeliveryError as exc:
            result, error, error_code = None, exc, exc.code
        except UnavailableError:
            raise  # our database, not the peer: the worker loop backs off; the lease brings the delivery back
        except Exception as exc:
            # A defect in an adapter must not stop deliveries to every other peer: log it, retry this one.
            log.exception("adapter %s raised unexpectedly for delivery %s", claim.channel, claim.delivery_id)
            result, error_code = None, INTERNAL_ERROR
            error = DeliveryError(f"internal error in the {claim.channel} adapter ({type(exc).__name__})")
        duration_ms = int((time.monotonic() - t0) * 1000)
        ended = self._clock()
        record = AttemptRecord(
            delivery_id=claim.delivery_id,
            attempt=attempt,
            started_at=started,
            duration_ms=duration_ms,
            outcome="delivered",
            worker_id=self.worker_id,
        )
        if error is None:
            assert result is not None
            decision = Decision("delivered")
            record = replace(record, peer_answer=result.peer_answer, peer_reference=result.peer_reference)
        else:
            decision, record = self._failed(claim, record, error, error_code, ended)
        self._record(record, _dead_letter(claim, record, error, ended) if decision.outcome == "dead" else None)
        self._log(claim, record)
        return decision

    def _send(self, claim: ClaimedDelivery, attempt: int) -> DeliveryResult:
        """The adapter call itself: the stored bytes, exactly as received, to the recipient's peer."""
        data = self.store.documents.raw(claim.doc_id)
        if data is None:  # pragma: no cover - documents are never deleted
            raise DeliveryError(f"document {claim.doc_id} has no stored package", retryable=False)
        peer = Peer(
            organ_id=claim.recipient,
            channel=claim.channel,
            endpoint=claim.endpoint,
            credentials=self._credentials(claim.recipient, claim.channel),
        )
        package = OutgoingPackage(
            delivery_id=claim.delivery_id,
            doc_id=claim.doc_id,
            kind=PackageKind(claim.kind),
            sender=claim.sender,
            recipient=claim.recipient,
            document_id=claim.document_id,
            data=bytes(data),
            attempt=attempt,
        )
        return self.adapters[claim.channel].deliver(peer, package)

    def _failed(
        self,
        claim: ClaimedDelivery,
        record: AttemptRecord,
        error: DeliveryError,
        error_code: str | None,
        ended: datetime,
    ) -> tuple[Decision, AttemptRecord]:
        """Retry with backoff while the error is retryable and the budget lasts; dead otherwise."""
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
        failed = replace(
            record,
            outcome=decision.outcome,
            error_code=error_code,
            error_message=error.message,
            peer_answer=error.peer_answer,
            next_attempt_at=next_at,
        )
        return decision, failed

    def _record(self, record: AttemptRecord, audit: AuditEntry | None) -> None:
        """Commit the attempt; a short database outage is waited out (the peer's answer is worth keeping)."""
        for wait in (0.5, 1.0, 2.0, 4.0):
            try:
                self.store.outbox.finish_attempt(record, audit=audit)
                return
            except UnavailableError as exc:
                log.warning("could not record attempt of delivery %s (%s); retrying", record.delivery_id, exc)
                time.sleep(wait)
        # Still down: give up on this record. The lease expires and the delivery is sent again (same delivery_id).
        self.store.outbox.finish_attempt(record, audit=audit)

    def _log(self, claim: ClaimedDelivery, record: AttemptRecord) -> None:
        """The attempt's log line and its count in ``edoc_delivery_attempts_total`` (:mod:`gateway.metrics`)."""
        metrics.count_attempt(
            channel=claim.channel, outcome=record.outcome, code=record.error_code, seconds=record.duration_ms / 1000
        )
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


def _dead_letter(
    claim: ClaimedDelivery, record: AttemptRecord, error: DeliveryError | None, at: datetime
) -> AuditEntry:
    """The audit row of a delivery that has just become a dead letter."""
    return AuditEntry(
        at=at,
        action="delivery.dead",
        outcome=record.error_code or "DELIVERY.FAILED",
        doc_id=claim.doc_id,
        organ_id=claim.recipient,
        detail={
            "delivery_id": claim.delivery_id,
            "attempts": record.attempt,
            "retryable": bool(error is not None and error.retryable),
        },
    )


__all__ = [
    "HEARTBEAT_RETENTION",
    "INTERNAL_ERROR",
    "BatchResult",
    "Decision",
    "Deliverer",
    "RetryPolicy",
]
