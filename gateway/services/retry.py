"""What one push attempt leads to (gateway.md "Delivery", issues 4 and 11): the retry schedule, the unknown-outcome
path for slow peers, and what the attempt says about its peer's health — pure decisions, no I/O.

* the adapter returned → ``delivered``;
* a retryable :class:`~gateway.ports.DeliveryError` (or an unexpected exception, a defect: logged, retried) →
  ``retry`` after an exponential backoff with full jitter (:class:`RetryPolicy`) until the budget is spent →
  ``dead``; a non-retryable one (the peer refused the package for good) → ``dead`` at once;
* a read timeout (``DeliveryTimeout.sent``) is an *unknown* outcome, not a failure: the peer may have stored the
  package and merely answered late (issue 11: 25 of 27 "dead" letters were stored at the receiver). The same
  message id goes again with a doubled read timeout (up to ``max_read_timeout``), including one last
  confirmation attempt at the longest timeout when the budget runs out; a dead letter then says that its outcome
  is unknown rather than failed.

The error taxonomy is the adapters' (:mod:`gateway.ports`): timeouts, no connection, protocol and peer errors count
against the peer's circuit breaker; a refusal is an answer (the peer is up); our own configuration or an internal
error says nothing about the peer.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Final

from gateway.config import Settings
from gateway.db import AttemptRecord, AuditEntry, ClaimedDelivery, FinishedAttempt
from gateway.ports import (
    DeliveryError,
    DeliveryPeerError,
    DeliveryProtocolError,
    DeliveryRefused,
    DeliveryResult,
    DeliveryTimeout,
    DeliveryUnreachable,
)

#: Error code recorded when an adapter raised something other than a DeliveryError (a defect: logged, retried).
INTERNAL_ERROR: Final = "DELIVERY.INTERNAL"
#: Failures that say the peer itself is failing (they open its circuit).
PEER_FAILURES: Final = (DeliveryTimeout, DeliveryUnreachable, DeliveryPeerError, DeliveryProtocolError)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, inside a finite budget (gateway.md "Delivery").

    Attempt ``n`` of a budget failed → wait ``uniform(0, min(max_seconds, base_seconds × 2^(n-1)))`` ("full
    jitter": many deliveries to a peer that comes back do not return in lockstep). No attempt is scheduled past
    the end of the budget: the last one happens at the deadline, and a failure then dead-letters — except an
    unknown outcome, which gets one confirmation attempt at ``max_read_timeout`` first (module docstring).
    """

    base_seconds: float = 30.0
    max_seconds: float = 3600.0
    limit_seconds: float = 72 * 3600.0
    #: The adapters' read timeout, and the longest one an unknown outcome escalates to.
    read_timeout: float = 60.0
    max_read_timeout: float = 300.0

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(
            settings.retry_base_seconds,
            settings.retry_max_seconds,
            settings.retry_limit_seconds,
            settings.adapter_read_timeout,
            max(settings.adapter_max_read_timeout, settings.adapter_read_timeout),
        )

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

    def longer_read_timeout(self, used: float | None) -> float:
        """The read timeout after an unknown outcome at ``used`` (None: the adapters' default): doubled, capped."""
        return min(self.max_read_timeout, 2 * (used or self.read_timeout))


@dataclass(frozen=True)
class Sent:
    """What one adapter call came back with (from a sending thread), before any decision."""

    claim: ClaimedDelivery
    #: The attempt's row (its intent) and number.
    attempt_id: int | None
    attempt: int
    started_at: datetime
    duration_ms: int
    result: DeliveryResult | None
    error: DeliveryError | None
    error_code: str | None

    @property
    def unknown(self) -> bool:
        """The request may have reached the peer but no answer came back (module docstring)."""
        return isinstance(self.error, DeliveryTimeout) and self.error.sent


def judge(sent: Sent, policy: RetryPolicy, rng: random.Random, now: datetime, worker_id: str) -> FinishedAttempt:
    """The attempt record and consequence of one call (module docstring)."""
    claim = sent.claim
    record = AttemptRecord(
        delivery_id=claim.delivery_id,
        attempt=sent.attempt,
        started_at=sent.started_at,
        duration_ms=sent.duration_ms,
        outcome="delivered",
        worker_id=worker_id,
        id=sent.attempt_id,
    )
    error = sent.error
    if error is None:
        assert sent.result is not None
        record = replace(record, peer_answer=sent.result.peer_answer, peer_reference=sent.result.peer_reference)
        return FinishedAttempt(record, fence=claim.fence, peer=claim.peer, peer_failed=False)
    read_timeout: float | None = None
    next_at = (
        policy.next_attempt_at(claim.budget_attempts + 1, claim.budget_since, now, rng) if error.retryable else None
    )
    message = error.message
    if sent.unknown:
        read_timeout = policy.longer_read_timeout(claim.read_timeout)
        if next_at is None and (claim.read_timeout or policy.read_timeout) < policy.max_read_timeout:
            # The budget is spent, but the peer may hold the package: one confirmation attempt at the longest wait.
            read_timeout = policy.max_read_timeout
            next_at = now + timedelta(seconds=policy.base_seconds)
        message = f"outcome unknown (the peer may have stored it; the same message id goes again): {message}"
    outcome = "retry" if next_at is not None else "dead"
    record = replace(
        record,
        outcome=outcome,
        error_code=sent.error_code,
        error_message=message,
        peer_answer=error.peer_answer,
        next_attempt_at=next_at,
    )
    audit = _dead_letter(claim, record, error, sent.unknown, now) if outcome == "dead" else None
    peer_failed: bool | None = True if isinstance(error, PEER_FAILURES) else None
    if isinstance(error, DeliveryRefused):
        peer_failed = False
    return FinishedAttempt(
        record, fence=claim.fence, peer=claim.peer, peer_failed=peer_failed, read_timeout=read_timeout, audit=audit
    )


def _dead_letter(
    claim: ClaimedDelivery, record: AttemptRecord, error: DeliveryError, unknown: bool, at: datetime
) -> AuditEntry:
    """The audit row of a delivery that has just become a dead letter."""
    return AuditEntry(
        at=at,
        action="delivery.dead",
        outcome=record.error_code or INTERNAL_ERROR,
        doc_id=claim.doc_id,
        organ_id=claim.recipient,
        detail={
            "delivery_id": claim.delivery_id,
            "attempts": record.attempt,
            "retryable": error.retryable,
            "outcome_unknown": unknown,
        },
    )


__all__ = ["INTERNAL_ERROR", "PEER_FAILURES", "RetryPolicy", "Sent", "judge"]
