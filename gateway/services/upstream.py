"""Polling another axis: the upstream VDXP axis (gateway.md "Delivery": ``vdxp`` — the national axis above a
provincial one) or a legacy e-doc.vn axis (``edocvn``, issue 13 — a provincial axis our agencies share with
legacy systems).

A provincial gateway pushes what its agencies send to an axis with that channel's adapter, but the axis does not
push back: what it holds for our agencies (documents, statuses about documents we sent) waits there, as for any of
its clients (edxml.md §11.3 "Receive"; legacy-edoc-vn.md §6.4–§6.8). :class:`UpstreamPoller` fetches it in the
worker, one round at a time, through the channel's :class:`~gateway.ports.PollingAdapter` (VDXP named below; the
legacy axis: GetPendingDocumentIds + GetDocument, GetTraces, and ConfirmReceived as the acknowledgement):

1. for each kind, edocs FIRST (so that a status or a recall polled in the same round finds its document):
   ``getReceivedEdocList`` + ``getEdoc`` per item (:meth:`gateway.ports.PollingAdapter.poll`);
2. each package goes through OUR intake (:meth:`GatewayService.ingest_upstream`) — parse, XSD, signature policy,
   idempotency, routing to the local agency's channel — exactly as if a local system had sent it;
3. the axis is told what became of it (``updateStatus``, :meth:`~gateway.ports.PollingAdapter.acknowledge`; the
   legacy profile has no refusal call: a refused document stays pending there, see :mod:`adapters.edocvn`):

   - stored, or already stored (a duplicate receipt: a repeated poll, another worker polling too, an ack lost on
     the way) → ``done``: the item leaves our mailbox there;
   - refused for good by intake (schema, signature, unknown document, not for an agency we host …) → ``fail``
     with ``"<code>: <message>"``: the axis shows the sender that it did not arrive, and why;
   - refused for a reason that may pass (our database is down: ``retryable``), or an unexpected defect →
     nothing: the item stays listed and the next round takes it again. A database outage ends the round.

Nothing is acknowledged before our transaction committed, so a crash anywhere re-polls the item, and intake's
idempotency turns the second ingest into a duplicate: every package the axis holds for us is stored exactly once.
A transport failure towards the axis ends that kind's poll with a warning; the next round tries again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from gateway import logs
from gateway.edxml.codes import PackageKind
from gateway.errors import GatewayError, UnavailableError
from gateway.ports import DeliveryError, IncomingPackage, PollingAdapter
from gateway.services.api import Receipt

log = logging.getLogger(__name__)

#: ``ingest(package bytes, upstream item id, recipient the upstream holds it for)`` → our receipt.
Ingest = Callable[[bytes, str, str | None], Receipt]
#: Longest reason sent back with ``updateStatus fail``.
_MAX_REASON = 500


@dataclass
class PollResult:
    """What one polling round did (added to the worker's totals)."""

    #: Packages fetched from the upstream.
    polled: int = 0
    #: Stored as new documents here.
    ingested: int = 0
    #: Already stored (answered with the original receipt) and acknowledged again.
    duplicates: int = 0
    #: Refused for good by intake and acknowledged ``fail``.
    refused: int = 0
    #: Left at the upstream for the next round (a retryable refusal, a defect, a failed acknowledgement).
    deferred: int = 0
    #: Listing or fetching failed (the upstream is down or answered nonsense).
    errors: int = 0


class UpstreamPoller:
    """One polling round over both kinds; thread-compatible (one per worker)."""

    def __init__(self, adapter: PollingAdapter, ingest: Ingest, *, limit: int = 100, name: str = "upstream") -> None:
        self._adapter = adapter
        self._ingest = ingest
        self._limit = max(1, limit)
        #: The axis in log lines (its channel).
        self.name = name

    def poll_once(self, stop: threading.Event | None = None) -> PollResult:
        """Fetch, ingest and acknowledge up to ``limit`` items of each kind; never raises for the upstream's or
        our database's trouble (logged; the next round tries again)."""
        result = PollResult()
        for kind in (PackageKind.EDOC, PackageKind.STATUS):
            if stop is not None and stop.is_set():
                break
            try:
                for incoming in self._adapter.poll(kind, self._limit):
                    result.polled += 1
                    # One log scope per item: the ids intake binds do not leak into the next item's lines.
                    with logs.scope(
                        edge="upstream", operation="upstream.ingest", channel=self.name,
                        peer_reference=incoming.peer_reference,
                    ):  # fmt: skip
                        self._one(incoming, result)
                    if stop is not None and stop.is_set():
                        break
            except DeliveryError as exc:
                result.errors += 1
                log.warning("%s poll (%s) failed, next round tries again: %s %s", self.name, kind.value, exc.code, exc)
            except UnavailableError as exc:
                result.deferred += 1
                log.warning("database unavailable while ingesting from %s (%s); round ended", self.name, exc)
                break
            except GatewayError as exc:  # e.g. ConfigError: polling configured without credentials
                result.errors += 1
                log.error("%s poll (%s) impossible: %s %s", self.name, kind.value, exc.code, exc)
                break
        return result

    def _one(self, incoming: IncomingPackage, result: PollResult) -> None:
        ref = incoming.peer_reference
        try:
            receipt = self._ingest(incoming.data, ref, incoming.recipient)
        except UnavailableError:
            raise  # our database: end the round, the item stays at the upstream
        except GatewayError as exc:
            if exc.retryable:
                result.deferred += 1
                log.warning("%s item %s not taken in yet (%s), left for the next round", self.name, ref, exc.code)
                return
            result.refused += 1
            log.warning("%s item %s refused by intake: %s %s", self.name, ref, exc.code, exc.message)
            self._ack(ref, False, f"{exc.code}: {exc.message}"[:_MAX_REASON], result)
            return
        except Exception:
            # A defect of ours, not the package's fault: do not tell the upstream it failed; retried next round.
            result.deferred += 1
            log.exception("ingesting %s item %s failed unexpectedly; left for the next round", self.name, ref)
            return
        if receipt.duplicate:
            result.duplicates += 1
        else:
            result.ingested += 1
        log.info(
            "%s item %s taken in as %s %s (%s)",
            self.name,
            ref,
            receipt.kind.value,
            receipt.doc_id,
            "duplicate" if receipt.duplicate else "new",
        )
        self._ack(ref, True, None, result)

    def _ack(self, ref: str, ok: bool, reason: str | None, result: PollResult) -> None:
        try:
            self._adapter.acknowledge(ref, ok, reason)
        except GatewayError as exc:
            # Stored here but still listed there: the next round ingests it as a duplicate and acknowledges again.
            result.deferred += 1
            log.warning("acknowledging %s item %s failed (%s); the next round retries", self.name, ref, exc.code)


__all__ = ["Ingest", "PollResult", "UpstreamPoller"]
