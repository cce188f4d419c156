"""The story of one document as values: its header facts, and per recipient an ordered list of events with the
tracking judgement next to it — what ``edoc-gateway documents show`` prints and ``GET /admin/v1/documents/<id>``
returns.

Every time is given twice: ISO 8601 UTC (``at``) for programs and ``at_local`` (Asia/Ho_Chi_Minh, zone shown) for
people. Nothing here judges: the facts come from :func:`gateway.tracking.facts.assess_delivery`, this module only
lays them out. Events come from three sources that each know a part of the story — the delivery row (what it is
now), the attempt log (every push), the audit log (every fetch, acknowledgement, dead-lettering and re-drive) and
the status history (every business status as it arrived, out-of-order ones flagged, never reordered).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gateway.db import AttemptRecord, AuditEntry, DeliveryRecord, DocumentRecord, StatusRecord
from gateway.edxml.codes import BussinessDocType, Priority, StatusCode
from gateway.tracking.calendar import show
from gateway.tracking.facts import Assessment, Judgement

#: Events at the same instant are told in the order they must have happened.
_ORDER = {"intake": 0, "attempt": 1, "fetch": 2, "acknowledged": 3, "status": 4, "dead_letter": 5, "redrive": 6}


def stamp(name: str, at: datetime | None) -> dict[str, str | None]:
    """``{name: ISO UTC, name_local: Vietnam time}`` — the one way a story or list shows a time."""
    return {name: at.isoformat() if at is not None else None, f"{name}_local": show(at) or None}


def judgement_dict(j: Judgement) -> dict[str, Any]:
    return {
        "rule": j.rule.value,
        "label_vi": j.rule.label_vi,
        **stamp("deadline", j.deadline),
        **stamp("done_at", j.done_at),
        "breached": j.breached,
        "open": j.open,
    }


def assessment_dict(a: Assessment) -> dict[str, Any]:
    """The derived facts of one delivery, as :func:`assess_delivery` gave them (latencies in seconds)."""
    return {
        "delivered": a.delivered,
        "taken": a.taken_at is not None,
        **stamp("available_at", a.available_at),
        **stamp("taken_at", a.taken_at),
        **stamp("registered_at", a.registered_at),
        "latency_seconds": {"t01": a.t01, "t03": a.t03, "t06": a.t06},
        "rules": {rule.value: judgement_dict(j) for rule, j in a.judgements.items()},
        **stamp("as_of", a.as_of),
    }


@dataclass(frozen=True)
class Event:
    """One thing that happened to a delivery; ``detail`` holds what kind of thing it was."""

    at: datetime
    kind: str
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **stamp("at", self.at), **self.detail}


def priority_label(priority: int | None) -> str | None:
    try:
        return Priority(priority).label_vi if priority is not None else None
    except ValueError:
        return None


def status_label(code: str | None) -> str | None:
    try:
        return StatusCode(code).label_vi if code else None
    except ValueError:
        return None


def header(doc: DocumentRecord, sender_name: str | None) -> dict[str, Any]:
    """What the document says about itself, and how the gateway took it in."""
    meta = dict(doc.meta)
    return {
        "doc_id": doc.doc_id,
        "kind": doc.kind,
        "sender": doc.sender,
        "sender_name": sender_name,
        "document_id": doc.document_id,
        "code": doc.code,
        "subject": doc.subject,
        "type_name": meta.get("type_name"),
        "bussiness_doc_type": doc.bussiness_doc_type,
        "bussiness_doc_type_vi": _doc_type_label(doc.bussiness_doc_type),
        "status_code": doc.status_code,
        "priority": doc.priority,
        "priority_vi": priority_label(doc.priority),
        "promulgation_date": doc.promulgation_date.isoformat() if doc.promulgation_date else None,
        "due_date": doc.due_date.isoformat() if doc.due_date else None,
        "attachments": meta.get("attachments"),
        **stamp("received_at", doc.received_at),
        "submitted_by": doc.submitted_by,
        "emitted_by_gateway": doc.emitted_by_gateway,
        "receipt": {"sha256": doc.sha256, "size": doc.size},
        "signature": signature(doc),
    }


def signature(doc: DocumentRecord) -> dict[str, Any]:
    """The signature check as intake recorded it (``meta["signature"]`` exists only for a valid signature)."""
    found = dict(doc.meta.get("signature") or {})
    return {
        "state": doc.signature_state,
        "signer_subject": doc.signer_subject,
        "signer_fingerprint": doc.signer_fingerprint,
        "issuer": found.get("issuer"),
        "serial": found.get("serial"),
        "algorithm": found.get("algorithm"),
        "revocation": found.get("revocation"),
        "warnings": list(found.get("warnings") or ()),
    }


def related(doc: DocumentRecord, linked: list[DocumentRecord]) -> list[dict[str, Any]]:
    """Each linked document with how it relates to ``doc``."""
    out = []
    for other in linked:
        if other.doc_id == doc.related_doc_id:
            relation = "original"
        elif other.kind == "status":
            relation = "status"
        else:
            relation = {1: "revocation", 2: "update", 3: "replacement"}.get(other.bussiness_doc_type or 0, "linked")
        out.append(
            {
                "relation": relation,
                "doc_id": other.doc_id,
                "kind": other.kind,
                "sender": other.sender,
                "document_id": other.document_id,
                "code": other.code,
                "status_code": other.status_code,
                "status_vi": status_label(other.status_code),
                "bussiness_doc_type": other.bussiness_doc_type,
                **stamp("received_at", other.received_at),
            }
        )
    return out


def events(
    doc: DocumentRecord,
    d: DeliveryRecord,
    attempts: list[AttemptRecord],
    audit: list[AuditEntry],
    history: list[StatusRecord],
) -> list[Event]:
    """The delivery's events in time order (ties in causal order: intake, push, fetch, ack, statuses)."""
    found = [Event(doc.received_at, "intake", {"submitted_by": doc.submitted_by, "channel": d.channel})]
    found += [_attempt(a) for a in attempts]
    mine = [e for e in audit if (e.detail or {}).get("delivery_id") == d.delivery_id]
    found += _audited(d, mine, attempts)
    found += [_status(h) for h in history if h.recipient == d.recipient]
    found.sort(key=lambda e: (e.at, _ORDER[e.kind]))
    return found


def _attempt(a: AttemptRecord) -> Event:
    return Event(
        a.started_at,
        "attempt",
        {
            "attempt": a.attempt,
            "outcome": a.outcome,
            "error_code": a.error_code,
            "error_message": a.error_message,
            "duration_ms": a.duration_ms,
            "peer_answer": a.peer_answer,
            "peer_reference": a.peer_reference,
            "worker_id": a.worker_id,
            **stamp("next_attempt_at", a.next_attempt_at),
        },
    )


def _audited(d: DeliveryRecord, audit: list[AuditEntry], attempts: list[AttemptRecord]) -> list[Event]:
    """Fetches, acknowledgements, dead-lettering and re-drives from the audit log; the delivery row stands in
    for what an older database did not audit (only the first fetch and the last settlement are kept there)."""
    found: list[Event] = []
    for e in audit:
        detail = e.detail or {}
        if e.action == "delivery.fetch":
            found.append(Event(e.at, "fetch", {"system_id": e.system_id}))
        elif e.action == "delivery.ack":
            outcome = detail.get("outcome")
            reason = d.ack_reason if d.acknowledged_at == e.at else None
            found.append(Event(e.at, "acknowledged", {"outcome": outcome, "reason": reason, "system_id": e.system_id}))
        elif e.action == "delivery.dead":
            found.append(Event(e.at, "dead_letter", {"error_code": e.outcome, "attempts": detail.get("attempts")}))
        elif e.action == "delivery.redrive":
            found.append(
                Event(e.at, "redrive", {"previous_state": detail.get("previous_state"), "by": detail.get("by")})
            )
    kinds = {e.kind for e in found}
    if "fetch" not in kinds and d.fetched_at is not None:
        found.append(Event(d.fetched_at, "fetch", {"system_id": None}))
    pushed = any(a.outcome in ("delivered", "dead") for a in attempts)
    if "acknowledged" not in kinds and d.acknowledged_at is not None and not pushed and d.state != "dead":
        found.append(Event(d.acknowledged_at, "acknowledged", {"outcome": d.ack_outcome, "reason": d.ack_reason}))
    if "dead_letter" not in kinds and d.state == "dead" and d.acknowledged_at is not None:
        found.append(Event(d.acknowledged_at, "dead_letter", {"error_code": None, "reason": d.ack_reason}))
    return found


def _status(h: StatusRecord) -> Event:
    return Event(
        h.received_at,
        "status",
        {
            "status_code": h.status_code,
            "status_vi": status_label(h.status_code),
            "description": h.description,
            "reporter": h.reporter,
            "timestamp": h.timestamp.isoformat() if h.timestamp is not None else None,
            "out_of_order": h.out_of_order,
            "emitted_by_gateway": h.emitted_by_gateway,
            "status_doc_id": h.status_doc_id,
        },
    )


def _doc_type_label(value: int | None) -> str | None:
    try:
        return BussinessDocType(value).label_vi if value is not None else None
    except ValueError:
        return None


__all__ = ["Event", "assessment_dict", "events", "header", "judgement_dict", "related", "signature", "stamp"]
