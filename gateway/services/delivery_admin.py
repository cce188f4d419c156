"""Deliveries as operators see them (gateway.md "Delivery"): list, show with the attempt log, re-drive dead letters
— for ``edoc-gateway deliveries …`` and the admin API; never by SQL — and the worker-heartbeat readiness check.

The worker side (claim, push, retry, dead-letter) is :mod:`gateway.services.delivery`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Final

from gateway.config import Settings
from gateway.db import CircuitRecord, DeliveryOverview, Store, create_engine
from gateway.edxml.codes import PackageKind
from gateway.errors import AccessError, NotFoundError, RequestError, UnavailableError
from gateway.services.api import DeliveryState
from gateway.services.paging import Page, PageRequest, page_of
from gateway.services.routing import PUSH_CHANNELS
from gateway.services.values import delivery_head

#: Deliveries one re-drive by recipient moves per round (it pages on until none is left).
MAX_LIST: Final = 1000
#: The name the cursors of the delivery list carry (gateway.services.paging).
LISTING: Final = "deliveries"


def _utcnow() -> datetime:
    return datetime.now(UTC)


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
    outcome: str  # delivered | retry | dead; sending while the call is out; unknown when its worker vanished
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
    store: Store,
    *,
    state: DeliveryState | str | None = None,
    recipient: str | None = None,
    page: PageRequest | None = None,
) -> Page[DeliveryInfo]:
    """One page of deliveries, newest first — ``state="dead"`` lists the dead letters (``edoc-gateway deliveries
    list``) — with the count of all that match and the cursor of the next page (issue 11 item 7: no silent cap)."""
    return _page(store, state=state, recipient=recipient, recipients=None, page=page or PageRequest())


def _page(
    store: Store,
    *,
    state: DeliveryState | str | None,
    recipient: str | None,
    recipients: set[str] | None,
    page: PageRequest,
) -> Page[DeliveryInfo]:
    wanted = DeliveryState(state).value if state is not None else None
    found = store.deliveries.deliveries_page(
        state=wanted,
        recipient=recipient,
        recipients=recipients,
        after=page.after(LISTING, 2),
        offset=page.offset,
        limit=page.limit,
    )
    return page_of(LISTING, found, _info)


def show_delivery(store: Store, delivery_id: str) -> DeliveryDetail:
    """One delivery with its attempts (``edoc-gateway deliveries show``); NOT_FOUND if there is none."""
    row = store.deliveries.delivery_overview(delivery_id)
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
        for a in store.outbox.delivery_attempts(delivery_id)
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
        row = store.deliveries.delivery_overview(delivery_id)
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
        return store.outbox.redrive(
            [delivery_id], now=now, push_channels=PUSH_CHANNELS, system_id=system_id, actor=actor
        )
    assert recipient is not None
    done: list[str] = []
    while True:  # page by page: each page leaves the DEAD state, so the next query returns the next page
        page = [
            r.delivery_id for r in store.deliveries.list_deliveries(state="dead", recipient=recipient, limit=MAX_LIST)
        ]
        if not page:
            return done
        moved = store.outbox.redrive(page, now=now, push_channels=PUSH_CHANNELS, system_id=system_id, actor=actor)
        done.extend(moved)
        if not moved:  # pragma: no cover - only if every row changed concurrently
            return done


@dataclass(frozen=True)
class PeerCircuit(CircuitRecord):
    """A peer's circuit breaker as operators see it (``edoc-gateway deliveries peers``), JSON-ready."""

    def to_dict(self) -> dict[str, object]:
        return {k: _jsonable(v) for k, v in asdict(self).items()}


def peer_circuits(store: Store, *, show_all: bool = False) -> list[PeerCircuit]:
    """Peers whose circuit is open or probing (``show_all``: every peer seen since its first failure)."""
    return [PeerCircuit(**asdict(c)) for c in store.outbox.circuits(not_closed_only=not show_all)]


def readiness(store: Store, settings: Settings, *, now: datetime | None = None) -> dict[str, bool]:
    """For ``/readyz``: ``{"worker": bool}`` — a worker's heartbeat is fresher than ``worker_stale_seconds``.

    Only meaningful when something may need pushing: with no active push agency and an empty outbox the check
    passes without a worker (a mailbox-only installation runs none).
    """
    now = now or _utcnow()
    stale = timedelta(seconds=settings.worker_stale_seconds)
    try:
        if any(h.stopped_at is None and now - h.seen_at <= stale for h in store.workers.worker_heartbeats()):
            return {"worker": True}
        return {"worker": not store.outbox.push_expected(PUSH_CHANNELS)}
    except UnavailableError:
        return {"worker": False}


def _info(r: DeliveryOverview) -> DeliveryInfo:
    return DeliveryInfo(
        **delivery_head(r),
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


class DeliveryAdmin:
    """The operators' delivery use cases over one store, as an object: what the admin edge is handed.

    The edge (:mod:`gateway.web.admin`) must not hold a :class:`Store` — edges talk to services only — so the
    entry point (:mod:`gateway.web.wsgi`) builds this over the service's store and passes it in. The methods are
    :func:`list_deliveries`, :func:`show_delivery` and :func:`redrive` with the store bound, limited to a caller's
    ``scope`` (an OrganId: only deliveries TO its registry subtree, ``visible``; None = all). A delivery outside
    the scope is NOT_FOUND, as an unknown one (no probing by id); naming an outside recipient is ACCESS.DENIED.
    """

    def __init__(self, store: Store, visible: Callable[[str | None], set[str] | None] | None = None) -> None:
        self._store = store
        self._visible = visible or (lambda scope: None)

    def _scope(self, scope: str | None, recipient: str | None = None) -> set[str] | None:
        visible = self._visible(scope)
        if visible is not None and recipient is not None and recipient not in visible:
            raise AccessError(f"agency {recipient} is outside the caller's scope ({scope})", recipient=recipient)
        return visible

    def list_deliveries(
        self,
        *,
        state: DeliveryState | None = None,
        recipient: str | None = None,
        page: PageRequest | None = None,
        scope: str | None = None,
    ) -> Page[DeliveryInfo]:
        visible = self._scope(scope, recipient)
        return _page(self._store, state=state, recipient=recipient, recipients=visible, page=page or PageRequest())

    def show_delivery(self, delivery_id: str, *, scope: str | None = None) -> DeliveryDetail:
        detail = show_delivery(self._store, delivery_id)
        self._check_one(detail.delivery, scope)
        return detail

    def redrive(
        self,
        *,
        delivery_id: str | None = None,
        recipient: str | None = None,
        actor: str | None = None,
        system_id: str | None = None,
        scope: str | None = None,
    ) -> list[str]:
        if delivery_id is not None:
            self.show_delivery(delivery_id, scope=scope)  # NOT_FOUND outside the scope, before anything changes
        else:
            self._scope(scope, recipient)
        return redrive(self._store, delivery_id=delivery_id, recipient=recipient, actor=actor, system_id=system_id)

    def _check_one(self, delivery: DeliveryInfo, scope: str | None) -> None:
        visible = self._visible(scope)
        if visible is not None and delivery.recipient not in visible:
            raise NotFoundError(f"no delivery {delivery.delivery_id}", delivery_id=delivery.delivery_id)


__all__ = [
    "MAX_LIST",
    "AttemptInfo",
    "DeliveryAdmin",
    "DeliveryDetail",
    "DeliveryInfo",
    "list_deliveries",
    "open_store",
    "readiness",
    "redrive",
    "show_delivery",
]
