"""Mailboxes (gateway.md "Delivery", channel ``mailbox``): what waits for an agency, fetching it byte-exact, and
acknowledging it.

A system sees the mailbox of an agency it acts for (:func:`gateway.services.access.acts_for`). A delivery id that
does not exist and a delivery id of an agency the system does not act for get the same ``NOT_FOUND`` (no
existence oracle). A VDXP client authenticates as a system, not as an agency, so :meth:`Mailbox.pending_for_system`
covers every agency the system acts for at once, under the same rule.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Final

from gateway import logs
from gateway.db import AuditEntry, DocumentRecord, Store
from gateway.edxml import PackageKind
from gateway.errors import AccessError, NotFoundError, RequestError
from gateway.payload import Payload
from gateway.services.access import acting_for, acts_for
from gateway.services.api import AckOutcome, DeliveryState, PendingItem
from gateway.services.status_relay import arrived_for
from gateway.services.values import pending_item

#: Most items one mailbox listing answers.
MAX_PENDING: Final = 1000
_MAX_REASON = 2000


class Mailbox:
    """The mailbox use cases of :class:`gateway.services.api.GatewayApi` (thread-safe)."""

    def __init__(self, store: Store, clock: Callable[[], datetime]) -> None:
        self.store = store
        self._clock = clock

    def pending(self, system_id: str, organ_id: str, kind: PackageKind, limit: int = 100) -> list[PendingItem]:
        acting = acting_for(self.store, system_id)
        if not acts_for(acting, organ_id):
            raise AccessError(f"system {system_id} may not read the mailbox of {organ_id}", organ_id=organ_id)
        rows = self.store.deliveries.pending(organ_id, PackageKind(kind).value, max(1, min(limit, MAX_PENDING)))
        return [pending_item(r) for r in rows]

    def pending_for_system(
        self,
        system_id: str,
        kind: PackageKind,
        limit: int = 100,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[PendingItem]:
        """Every mailbox of the system at once: a VDXP client authenticates as a system, not as an agency."""
        acting = acting_for(self.store, system_id)
        rows = self.store.deliveries.pending_in_scope(
            acting, PackageKind(kind).value, limit=max(1, min(limit, MAX_PENDING)), since=since, until=until
        )
        # The SQL scope may over-match (prefix match on identifiers): every row is checked against the system again.
        return [pending_item(r) for r in rows if acts_for(acting, r.recipient)]

    def delivery_state(self, system_id: str, delivery_id: str) -> DeliveryState:
        delivery, _doc = self._own_delivery(system_id, delivery_id)
        return DeliveryState(delivery.state)

    def fetch(self, system_id: str, delivery_id: str) -> bytes:
        with self.fetch_payload(system_id, delivery_id) as payload:
            return payload.read()

    def fetch_payload(self, system_id: str, delivery_id: str) -> Payload:
        delivery, _doc = self._own_delivery(system_id, delivery_id)
        now = self._clock()
        audit = AuditEntry(
            at=now,
            action="delivery.fetch",
            system_id=system_id,
            doc_id=delivery.doc_id,
            organ_id=delivery.recipient,
            detail={"delivery_id": delivery_id},
        )
        payload = self.store.deliveries.fetch(delivery_id, now, audit)
        if payload is None:  # pragma: no cover - deliveries are never deleted
            raise NotFoundError("no such delivery", delivery_id=delivery_id)
        return payload

    def acknowledge(self, system_id: str, delivery_id: str, outcome: AckOutcome, reason: str | None = None) -> None:
        """done → delivered, fail → failed; with the receiver's "emit 01 on acknowledge", the gateway's 01 is
        stored in the same transaction (:func:`gateway.services.status_relay.arrived_for`)."""
        delivery, doc = self._own_delivery(system_id, delivery_id)
        outcome = AckOutcome(outcome)
        now = self._clock()
        state = DeliveryState.DELIVERED if outcome is AckOutcome.DONE else DeliveryState.FAILED
        emit = None
        if outcome is AckOutcome.DONE and doc.kind == PackageKind.EDOC.value:
            parties = self.store.registry.agencies([delivery.recipient, doc.sender])
            receiver = parties.get(delivery.recipient)
            if receiver is not None and receiver.emit_arrived_on_ack:
                emit = arrived_for(doc, receiver, parties.get(doc.sender), delivery_id, now)
        result = self.store.deliveries.acknowledge(
            delivery_id,
            state=state.value,
            outcome=outcome.value,
            reason=reason[:_MAX_REASON] if reason else None,
            at=now,
            audit=AuditEntry(
                at=now,
                action="delivery.ack",
                outcome="ok",
                system_id=system_id,
                doc_id=delivery.doc_id,
                organ_id=delivery.recipient,
                detail={"delivery_id": delivery_id, "outcome": outcome.value},
            ),
            emit=emit,
        )
        if not result.changed and result.state != state.value:
            raise RequestError(
                f"delivery {delivery_id} is already {result.state}; it cannot become {state.value}",
                delivery_id=delivery_id,
                state=result.state,
            )

    def _own_delivery(self, system_id: str, delivery_id: str) -> tuple[Any, DocumentRecord]:
        acting = acting_for(self.store, system_id)
        found = self.store.deliveries.delivery(delivery_id) if delivery_id else None
        if found is None or not acts_for(acting, found[0].recipient):
            raise NotFoundError("no such delivery in the mailboxes of this system", delivery_id=delivery_id)
        logs.bind(delivery_id=delivery_id, doc_id=found[1].doc_id, document_id=found[1].document_id)
        return found


__all__ = ["MAX_PENDING", "Mailbox"]
