"""The delivery engine of one worker process (gateway.md "Delivery", issues 4 and 11): claim due deliveries, send
them in parallel through the peer adapters without letting one peer delay another, and record every contact.

How a push delivery moves:

* intake writes it QUEUED with an outbox row due at once (``store.documents.insert_document``, one transaction);
* the engine leases a batch of due rows (``store.outbox.claim_deliveries``: ``FOR UPDATE SKIP LOCKED`` on
  PostgreSQL, an IMMEDIATE transaction on SQLite) under a fencing token, skipping peers whose circuit is open
  (:mod:`gateway.db.circuits`) and peers this worker already saturates;
* each claim waits in its peer's queue; at most ``peer_concurrency`` sends per peer are in flight, on a pool of
  ``threads`` — a peer answering in 5 s holds a few threads, never the others' turn;
* before a group of sends, their intents are committed (``sending`` attempt rows, :mod:`gateway.db.attempts`), so
  a worker that dies mid-call leaves a trace that the next claimer turns into ``unknown``; the small packages of
  the group come with that transaction, each big one (above 1 MiB, stored in pieces) is read by its sending thread
  when its send starts, into a spool file (:class:`~gateway.payload.Payload`, 1 MiB in memory at a time), and
  closed when the attempt ends — a group of sixteen 20 MB packages is never 320 MB in memory (issue 14; what each
  adapter then holds is in its module docstring: VDXP streams the body, SOAP/REST/edocvn build it whole);
* outcomes are judged (:mod:`gateway.services.retry`) and committed in batches, with their consequence for the
  delivery and the peer's circuit: DELIVERED only after the adapter returned (a crash between the peer's acceptance
  and our commit sends the package again under the same ``delivery_id``, which receivers de-duplicate on);
* leases are short and renewed by the worker's heartbeat thread while this engine keeps turning (:attr:`last_turn`);
  a database outage is waited out with the outcomes kept in memory, and a worker that loses its lease meanwhile can
  no longer decide anything (fencing) — except DELIVERED, which is a fact.

DEAD shows in the sender's status view and in :mod:`gateway.services.delivery_admin` (list, show, re-drive).
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Final

from gateway.db import CircuitPolicy, ClaimedDelivery, MissingChunk, Store
from gateway.edxml.codes import PackageKind
from gateway.errors import UnavailableError
from gateway.payload import Payload
from gateway.ports import DeliveryError, DeliveryResult, OutgoingPackage, Peer, PeerAdapter
from gateway.services.dispatch import BatchResult, Run, delivery_scope
from gateway.services.retry import INTERNAL_ERROR, RetryPolicy, Sent

log = logging.getLogger(__name__)

#: A worker not seen for this long is forgotten (its heartbeat row is deleted at the next worker start).
HEARTBEAT_RETENTION: Final = timedelta(days=7)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Deliverer:
    """The engine (module docstring); ``adapters`` maps a channel to its adapter; only deliveries to recipients on
    those channels are claimed, so a worker without (say) the VDXP adapter leaves them to workers that have it."""

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
        threads: int = 16,
        peer_concurrency: int = 4,
        circuits: CircuitPolicy | None = None,
    ) -> None:
        self.store = store
        self.adapters = dict(adapters)
        self.policy = policy
        self.worker_id = worker_id
        self.lease = timedelta(seconds=lease_seconds)
        self.clock = clock or _utcnow
        self.rng = rng or random.SystemRandom()
        self._credentials = credentials or (lambda _organ, _channel: {})
        self.threads = max(1, threads)
        self.per_peer = max(1, peer_concurrency)
        self.circuits = circuits or CircuitPolicy(probe_seconds=call_seconds + 5.0)
        self._pool: ThreadPoolExecutor | None = None
        #: time.monotonic() of the engine's last loop turn: the heartbeat renews leases only while it moves.
        self.last_turn = time.monotonic()

    @property
    def channels(self) -> frozenset[str]:
        return frozenset(self.adapters)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    # ---------------------------------------------------------------------------------------------- runs

    def run_batch(
        self, limit: int, *, stop: threading.Event | None = None, due_before: datetime | None = None
    ) -> BatchResult:
        """One claim of up to ``limit`` due deliveries, all sent and recorded before returning.

        ``stop`` set meanwhile: the claims not yet started are released (due again at once, for any worker), the
        sends in flight are finished and recorded. ``due_before`` limits the claim to deliveries due by then.
        A database that stays down raises :class:`~gateway.errors.UnavailableError` (the leases expire).
        """
        return Run(self, stop or threading.Event(), due_before, limit, mode="once").go()

    def run(
        self,
        stop: threading.Event,
        *,
        poll_seconds: float = 1.0,
        due_before: datetime | None = None,
        until_idle: bool = False,
        batch: int = 50,
    ) -> BatchResult:
        """Deliver continuously until ``stop`` is set (or, ``until_idle``, until nothing is due): claims are made
        whenever sending capacity frees up, so a slow peer never holds back the next claim."""
        mode = "idle" if until_idle else "forever"
        return Run(self, stop, due_before, batch, mode=mode, poll_seconds=poll_seconds).go()

    # ---------------------------------------------------------------------------------------------- sending

    def submit(
        self, done: queue.SimpleQueue[Sent], claim: ClaimedDelivery, attempt_id: int, data: bytes | None
    ) -> None:
        """Start one send; ``data`` None: the package is stored in pieces and read by the sending thread."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="edoc-send")
        self._pool.submit(self._send, done, claim, attempt_id, data)

    def _send(self, done: queue.SimpleQueue[Sent], claim: ClaimedDelivery, attempt_id: int, data: bytes | None) -> None:
        """One adapter call, in a sending thread; its outcome goes to the engine's queue whatever happens. The
        package is open for the attempt only: a spooled one's file goes when the adapter returns."""
        started, t0 = self.clock(), time.monotonic()
        result: DeliveryResult | None = None
        error: DeliveryError | None = None
        code: str | None = None
        with delivery_scope(claim):
            try:
                with self._payload(claim, data) as payload:
                    result = self.adapters[claim.channel].deliver(self._peer(claim), self._package(claim, payload))
            except DeliveryError as exc:
                error, code = exc, exc.code
            except Exception as exc:
                # A defect in an adapter must not stop deliveries to every other peer: log it, retry this one.
                log.exception("adapter %s raised unexpectedly for delivery %s", claim.channel, claim.delivery_id)
                error = DeliveryError(f"internal error in the {claim.channel} adapter ({type(exc).__name__})")
                code = INTERNAL_ERROR
        duration = int((time.monotonic() - t0) * 1000)
        done.put(Sent(claim, attempt_id, claim.attempts + 1, started, duration, result, error, code))

    def _peer(self, claim: ClaimedDelivery) -> Peer:
        credentials = self._credentials(claim.recipient, claim.channel)
        return Peer(organ_id=claim.recipient, channel=claim.channel, endpoint=claim.endpoint, credentials=credentials)

    def _payload(self, claim: ClaimedDelivery, data: bytes | None) -> Payload:
        """The package of one send: the bytes that came with the turn, or a big one read from the store now, spooled.

        A package that cannot be read is our side's failure, never the peer's: retried as ``DELIVERY.INTERNAL``
        (its circuit untouched), within the delivery's budget."""
        if data is not None:
            return Payload.of(data)
        try:
            payload = self.store.documents.payload(claim.doc_id)
        except UnavailableError as exc:
            raise DeliveryError(f"the stored package could not be read: {exc.code}") from None
        except OSError as exc:  # the spool directory (full disk, permissions): ours, not the peer's
            log.error("document %s: spooling the stored package failed: %s", claim.doc_id, exc.strerror or exc)
            raise DeliveryError("the stored package could not be spooled for sending") from None
        except MissingChunk:
            log.error("document %s: a stored piece is missing; its delivery cannot be sent", claim.doc_id)
            raise DeliveryError("the stored package is incomplete (a piece is missing)") from None
        if payload is None:
            raise DeliveryError("the stored package is gone")
        return payload

    def _package(self, claim: ClaimedDelivery, payload: Payload) -> OutgoingPackage:
        return OutgoingPackage(
            delivery_id=claim.delivery_id,
            doc_id=claim.doc_id,
            kind=PackageKind(claim.kind),
            sender=claim.sender,
            recipient=claim.recipient,
            document_id=claim.document_id,
            payload=payload,
            attempt=claim.attempts + 1,
            read_timeout=claim.read_timeout,
        )


__all__ = ["HEARTBEAT_RETENTION", "INTERNAL_ERROR", "BatchResult", "Deliverer", "RetryPolicy"]
