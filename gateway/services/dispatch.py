"""The loop of one run of the delivery engine (:class:`gateway.services.delivery.Deliverer`): claim → queue per
peer → intents → sends → judged outcomes → batch records, turning until its mode says stop.

Modes: ``once`` (one claim, everything in it sent and recorded: ``Deliverer.run_batch``), ``idle`` (claim until
nothing is due: ``edoc-gateway worker --once``) and ``forever`` (the worker). A database outage never loses an
outcome: judged outcomes wait in memory and are committed when it is back, claims back off (at most
:data:`MAX_DB_BACKOFF`), and a one-shot run gives up after :data:`ONE_SHOT_DB_FAILURES` failures in a row.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final, Protocol, TypeVar

from gateway import logs, metrics
from gateway.db import CircuitPolicy, ClaimedDelivery, ClaimRequest, FinishedAttempt, FinishSummary, Store, TurnResult
from gateway.errors import UnavailableError
from gateway.services.retry import RetryPolicy, Sent, judge

log = logging.getLogger("gateway.services.delivery")
T = TypeVar("T")

#: Claims a worker holds per peer, in rounds of ``delivery_peer_concurrency`` (one in flight, the rest waiting).
PEER_HELD: Final = 4
#: After a send comes back, how long to wait for others before the turn that records them (one commit for several).
COALESCE_SECONDS: Final = 0.002
#: Longest wait between attempts to reach a database that is down (the drain after recovery starts within it).
MAX_DB_BACKOFF: Final = 5.0
#: In a one-shot run (``run_batch``, ``until_idle``), give up after this many consecutive database failures.
ONE_SHOT_DB_FAILURES: Final = 4


class Engine(Protocol):
    """What a run needs of its engine (:class:`gateway.services.delivery.Deliverer`)."""

    store: Store
    worker_id: str
    policy: RetryPolicy
    circuits: CircuitPolicy
    threads: int
    per_peer: int
    lease: timedelta
    clock: Callable[[], datetime]
    rng: random.Random
    last_turn: float

    @property
    def channels(self) -> frozenset[str]: ...

    def submit(
        self, done: queue.SimpleQueue[Sent], claim: ClaimedDelivery, attempt_id: int, data: bytes | None
    ) -> None: ...


@dataclass
class BatchResult:
    """What a run of the engine did."""

    claimed: int = 0
    delivered: int = 0
    retried: int = 0
    dead: int = 0
    #: Given back unattempted (graceful stop, a peer's circuit opening, a peer's queue full).
    released: int = 0
    #: Attempts whose outcome is unknown (read timeout: the peer may have the package).
    unknown: int = 0
    #: Claims found taken over by another worker before their send (ours had run out).
    lost: int = 0
    #: Peers whose circuit this run opened.
    opened: int = 0


@dataclass
class _PeerQueue:
    """One peer's claims waiting for a sending slot, and its sends in flight."""

    waiting: deque[ClaimedDelivery] = field(default_factory=deque)
    active: int = 0


class Run:
    """One run of the engine's loop: claim → queue per peer → intents → sends → judged outcomes → batch records."""

    def __init__(
        self,
        engine: Engine,
        stop: threading.Event,
        due_before: datetime | None,
        batch: int,
        *,
        mode: str,
        poll_seconds: float = 1.0,
    ) -> None:
        self.e, self.stop, self.due_before, self.batch, self.mode = engine, stop, due_before, max(1, batch), mode
        self.poll = poll_seconds
        self.result = BatchResult()
        self.peers: dict[str, _PeerQueue] = {}
        self.in_flight = 0
        #: Deliveries being sent now (a second send of one of them must never start, whatever the database says).
        self.flying: set[str] = set()
        self.unrecorded: list[FinishedAttempt] = []
        self.sent: list[Sent] = []
        self.next_claim = 0.0  # time.monotonic() before which no claim is made (nothing was due)
        self.db_retry_at = 0.0  # time.monotonic() before which the database is left alone (it was down)
        #: Peers left out of the last (empty) claim for being full: claim again as soon as one drains.
        self.full_peers: set[str] = set()
        self.claims_done = False
        self.db_failures = 0
        #: This run's finished sends (a run's own queue: a send outliving an aborted run never reaches another).
        self.done: queue.SimpleQueue[Sent] = queue.SimpleQueue()

    def go(self) -> BatchResult:
        try:
            while True:
                self.e.last_turn = time.monotonic()
                self._collect(block=False)
                if self.stop.is_set():
                    self._release_waiting()
                self._turn()
                if self._finished():
                    return self.result
                self._wait()
        finally:
            if self.in_flight or self.unrecorded or self._waiting():  # an exception: give back what we hold
                with contextlib.suppress(UnavailableError):
                    self.e.store.outbox.release_claims(self.e.worker_id)

    def _finished(self) -> bool:
        busy = self.in_flight or self.unrecorded or self._waiting()
        if busy:
            return False
        return self.stop.is_set() or self.claims_done

    def _waiting(self) -> int:
        return sum(len(p.waiting) for p in self.peers.values())

    # -------------------------------------------------------------------------------------------- turns

    def _turn(self) -> None:
        """Record what came back, claim more, start what the bounds allow — one transaction (:func:`claims.turn`)."""
        if self.db_failures and time.monotonic() < self.db_retry_at:
            return
        request = self._claim_request()
        if not self.unrecorded and request is None and not self._startable():
            return
        items, sent = self.unrecorded, self.sent
        planned: list[ClaimedDelivery] = []

        def plan(claims: list[ClaimedDelivery], summary: FinishSummary) -> list[ClaimedDelivery]:
            planned[:] = self._plan(claims, summary.failing)
            return planned

        now = self.e.clock()
        done = self._db(
            lambda: self.e.store.outbox.turn(
                self.e.worker_id,
                now=now,
                lease_until=now + self.e.lease,
                finished=items,
                request=request,
                plan=plan,
                circuits=self.e.circuits,
            )
        )
        if done is None:
            return
        self.unrecorded, self.sent = [], []
        self._recorded(items, sent, done.summary)
        if request is not None:
            self._claimed(request, done.claims)
        self._start(planned, done)

    def _claim_request(self) -> ClaimRequest | None:
        """What to claim now, if anything: room left under twice the pool, at most ``batch``, per-peer bounded.

        A peer with a full round still waiting (``per_peer`` claims) is left out, and topped up to
        :data:`PEER_HELD` rounds once it drains below that: claims come in batches rather than one per send.
        """
        if self.stop.is_set() or self.claims_done:
            return None
        if time.monotonic() < self.next_claim and not self._drained():
            return None
        room = self.e.threads * 2 - self.in_flight - self._waiting()
        if room <= 0:
            return None
        cap = None if self.mode == "once" else PEER_HELD * self.e.per_peer  # a run_batch takes its whole claim
        held = {key: len(p.waiting) + p.active for key, p in self.peers.items()}
        full = [key for key, p in self.peers.items() if len(p.waiting) >= self.e.per_peer]
        return ClaimRequest(
            limit=min(room, self.batch),
            channels=self.e.channels,
            due_before=self.due_before,
            exclude_peers=[] if cap is None else full,
            per_peer=cap,
            held=held,
            holding=[c.delivery_id for p in self.peers.values() for c in p.waiting] + sorted(self.flying),
        )

    def _drained(self) -> bool:
        """A peer left out of the last claim for being full has drained below a round."""
        return any(len(self.peers[key].waiting) < self.e.per_peer for key in self.full_peers)

    def _claimed(self, request: ClaimRequest, claims: list[ClaimedDelivery]) -> None:
        self.result.claimed += len(claims)
        for claim in claims:  # never one the run holds: the request names them (ClaimRequest.holding)
            self.peers.setdefault(claim.peer, _PeerQueue()).waiting.append(claim)
        if self.mode == "once":
            self.claims_done = True
        elif not claims:
            # Nothing more is due now, or only for peers that are full: look again later, or as soon as one drains.
            self.next_claim = time.monotonic() + self.poll
            self.full_peers = set(request.exclude_peers)
            self.claims_done = self.mode == "idle" and not self.in_flight and not self._waiting()
        else:
            self.next_claim, self.full_peers = 0.0, set()

    def _startable(self) -> bool:
        free = self.e.threads - self.in_flight
        return free > 0 and any(p.waiting and p.active < self.e.per_peer for p in self.peers.values())

    def _plan(self, claims: list[ClaimedDelivery], failing: set[str]) -> list[ClaimedDelivery]:
        """The sends to start: per peer the first of its waiting claims (then the new ones), within the peer's
        and the pool's bounds. Pure: the run's state changes only once the transaction has committed."""
        if self.stop.is_set():
            return []
        queues = {key: list(p.waiting) for key, p in self.peers.items()}
        for claim in claims:
            queues.setdefault(claim.peer, []).append(claim)
        free = self.e.threads - self.in_flight
        group: list[ClaimedDelivery] = []
        for key, waiting in queues.items():
            if key in failing:
                continue  # its circuit is open (by us or another worker): its claims go back (_recorded)
            active = self.peers[key].active if key in self.peers else 0
            take = min(len(waiting), self.e.per_peer - active, free - len(group))
            group.extend(waiting[: max(0, take)])
        return group

    def _release_waiting(self) -> None:
        ids = [c.delivery_id for p in self.peers.values() for c in p.waiting]
        if not ids:
            return
        released = self._db(lambda: self.e.store.outbox.release_claims(self.e.worker_id, ids))
        if released is not None:
            self.result.released += released
        for p in self.peers.values():
            p.waiting.clear()  # if the database is down, the leases expire instead

    # -------------------------------------------------------------------------------------------- sends

    def _start(self, planned: list[ClaimedDelivery], done: TurnResult) -> None:
        """Send what was planned and begun; a planned claim without an intent was taken over (our lease ran out).

        The intents are keyed by delivery, so a delivery planned twice (or already in flight) is sent once at most:
        a second send under the same intent would be a POST the attempt log does not show."""
        for claim in planned:
            peer = self.peers[claim.peer]
            taken = peer.waiting.popleft()  # planned claims are the first of their peer's queue
            assert taken is claim
            data = done.data.get(claim.doc_id)  # None for a package stored in pieces: read when its send starts
            attempt_id = done.started.get(claim.delivery_id)
            stored = data is not None or claim.doc_id in done.chunked
            if attempt_id is None or not stored or claim.delivery_id in self.flying:
                self.result.lost += 1
                continue
            peer.active += 1
            self.in_flight += 1
            self.flying.add(claim.delivery_id)
            self.e.submit(self.done, claim, attempt_id, data)

    # -------------------------------------------------------------------------------------------- outcomes

    def _wait(self) -> None:
        if self.in_flight:
            self._collect(block=True)
        elif not self.stop.is_set():
            self.stop.wait(self._idle_for())

    def _idle_for(self) -> float:
        """Seconds until the next thing to do without a send coming back: a claim, or another try of the database."""
        wake = max(self.next_claim, self.db_retry_at if self.db_failures else 0.0)
        return max(0.0, min(self.poll, wake - time.monotonic()))

    def _collect(self, *, block: bool) -> None:
        """Take finished sends off the queue (when ``block``: waiting up to a poll interval for the first, then
        :data:`COALESCE_SECONDS` for each next one)."""
        timeout: float | None = max(0.01, self._idle_for()) if block else None
        while self.in_flight:
            try:
                sent = self.done.get_nowait() if timeout is None else self.done.get(timeout=timeout)
            except queue.Empty:
                return
            if timeout is not None:
                timeout = COALESCE_SECONDS  # the first came back: a moment for others, to record them together
            self.in_flight -= 1
            self.flying.discard(sent.claim.delivery_id)
            self.peers[sent.claim.peer].active -= 1
            self.sent.append(sent)
            self.unrecorded.append(judge(sent, self.e.policy, self.e.rng, self.e.clock(), self.e.worker_id))

    def _recorded(self, items: list[FinishedAttempt], sent: list[Sent], summary: FinishSummary) -> None:
        """Log and count what a turn recorded; give back the waiting claims of peers whose circuit opened."""
        for item, one in zip(items, sent, strict=True):
            _log(one, item)
            outcome = item.record.outcome
            self.result.delivered += outcome == "delivered"
            self.result.retried += outcome == "retry"
            self.result.dead += outcome == "dead"
            self.result.unknown += one.unknown
        for peer in summary.opened:
            self.result.opened += 1
            log.warning("peer %s failing: circuit open, its deliveries wait for a probe", peer)
        for peer in summary.failing:
            self._drop_queue(peer)
        for peer in summary.closed:
            log.info("peer %s answers again: circuit closed", peer)

    def _drop_queue(self, peer: str) -> None:
        """A peer whose circuit just opened: give its waiting claims back (the claim query skips it until its
        probe), instead of hammering it."""
        waiting = self.peers.get(peer)
        if waiting is None or not waiting.waiting:
            return
        ids = [c.delivery_id for c in waiting.waiting]
        waiting.waiting.clear()
        self.result.released += self._db(lambda: self.e.store.outbox.release_claims(self.e.worker_id, ids)) or 0

    def _db(self, call: Callable[[], T]) -> T | None:
        """Run a database call; an outage returns None and backs the claims off (exponentially, capped)."""
        try:
            value = call()
        except UnavailableError as exc:
            self.db_failures += 1
            wait = min(MAX_DB_BACKOFF, 0.25 * 2**self.db_failures)
            self.db_retry_at = time.monotonic() + wait
            log.warning(
                "database unavailable (%s); holding %d outcomes, next try in %.1f s", exc, len(self.unrecorded), wait
            )
            one_shot = self.mode != "forever" or self.stop.is_set()
            if one_shot and self.db_failures >= ONE_SHOT_DB_FAILURES and not self.in_flight:
                raise  # the leases expire; unrecorded intents become ``unknown`` at the next claim
            return None
        self.db_failures = 0
        return value


def delivery_scope(claim: ClaimedDelivery) -> contextlib.AbstractContextManager[None]:
    """Every line logged about one delivery names it, its document and its channel (:func:`gateway.logs.scope`)."""
    return logs.scope(
        operation="deliver",
        delivery_id=claim.delivery_id,
        doc_id=claim.doc_id,
        document_id=claim.document_id,
        recipient=claim.recipient,
        channel=claim.channel,
    )


def _log(sent: Sent, item: FinishedAttempt) -> None:
    """The attempt's log line and its count in ``edoc_delivery_attempts_total`` (:mod:`gateway.metrics`)."""
    claim, record = sent.claim, item.record
    metrics.count_attempt(
        channel=claim.channel, outcome=record.outcome, code=record.error_code, seconds=record.duration_ms / 1000
    )
    level = logging.INFO if record.outcome == "delivered" else logging.WARNING
    tail = ""
    if record.outcome != "delivered":
        tail = f" {record.error_code}: {record.error_message}"
        if record.next_attempt_at is not None:
            tail += f"; next attempt at {record.next_attempt_at.isoformat(timespec='seconds')}"
    with delivery_scope(claim):
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


__all__ = ["MAX_DB_BACKOFF", "ONE_SHOT_DB_FAILURES", "BatchResult", "Run", "delivery_scope"]
