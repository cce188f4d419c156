"""Store records → the contract's values (:mod:`gateway.services.api`), each mapping written once.

The mailbox, the document history and the VDXP-facing lists all show the same rows; they map them here so a
field added to a value is filled everywhere or nowhere.
"""

from __future__ import annotations

from typing import Any

from gateway.db import AgencyRecord, DeliveryHead, PendingRecord, SentRecord, StatusRecord
from gateway.edxml import PackageKind, StatusCode
from gateway.services.api import AgencyInfo, DeliveryState, PendingItem, SentItem, StatusEntry


def status_code(value: str | None) -> StatusCode | None:
    """A stored status code as the enum; None for an empty or unknown value (rows written by older versions)."""
    if not value:
        return None
    try:
        return StatusCode(value)
    except ValueError:
        return None


def delivery_head(r: DeliveryHead) -> dict[str, Any]:
    """The fields every delivery value starts with (delivery, document, from, to), typed."""
    return {
        "delivery_id": r.delivery_id,
        "doc_id": r.doc_id,
        "kind": PackageKind(r.kind),
        "sender": r.sender,
        "recipient": r.recipient,
        "document_id": r.document_id,
    }


def pending_item(r: PendingRecord) -> PendingItem:
    """A mailbox row (one recipient's delivery joined with its document) as the contract's value."""
    return PendingItem(
        **delivery_head(r),
        received_at=r.received_at,
        size=r.size,
        state=DeliveryState(r.state),
        fetched_at=r.fetched_at,
    )


def sent_item(r: SentRecord) -> SentItem:
    """A sent-list row (a document and one of its recipients) as the contract's value."""
    return SentItem(
        **delivery_head(r),
        subject=r.subject,
        code=r.code,
        received_at=r.received_at,
        state=DeliveryState(r.state),
        fetched_at=r.fetched_at,
        acknowledged_at=r.acknowledged_at,
        ack_reason=r.ack_reason,
        status_code=status_code(r.status_code),
    )


def status_entry(h: StatusRecord) -> StatusEntry:
    """One status-history row as the contract's value."""
    return StatusEntry(
        document_doc_id=h.doc_id,
        recipient=h.recipient,
        reporter=h.reporter,
        status_code=StatusCode(h.status_code),
        description=h.description,
        timestamp=h.timestamp,
        received_at=h.received_at,
        out_of_order=h.out_of_order,
        emitted_by_gateway=h.emitted_by_gateway,
    )


def agency_info(a: AgencyRecord) -> AgencyInfo:
    """A registry row as the contract shows it to systems (no channel settings, no certificates)."""
    return AgencyInfo(
        organ_id=a.organ_id, name=a.name, parent=a.parent, level=a.level, channel=a.channel, active=a.active
    )


__all__ = ["agency_info", "delivery_head", "pending_item", "sent_item", "status_code", "status_entry"]
