"""Status relay (edxml.md §5.1, gateway.md "Status feedback"): where a status package goes, the history row it
adds, and the 01 the gateway emits on a receiver's behalf.

01–06/15/16 come from a RECIPIENT of the document (``ResponseFor/OrganId`` = the document's sender) and are
delivered to the sender; 13 (recall request) comes from the SENDER and names the receiver in
``ResponseFor/OrganId``, and is delivered to that receiver, who answers 15/16. History is kept per (document,
recipient) and never forced monotonic: a status ranked below the highest already recorded for the pair
(01 < 02 < 03 < 04 < 05 < 06; 13/15/16 unranked) is stored with ``out_of_order``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Final
from uuid import uuid4

from gateway.db import AgencyRecord, AuditEntry, DocumentRecord, NewDocument, StatusRecord, Store
from gateway.edxml import Organization, PackageKind, ResponseFor, StatusCode, StatusPackage, render
from gateway.edxml.dates import VN_TZ
from gateway.errors import AccessError, NotFoundError, RouteError, StatusQuotaError
from gateway.services.routing import PUSH_CHANNELS, Plan, hosted_here, iso, original_of
from gateway.services.values import status_code
from gateway.xmlcheck.signature import SignatureState

#: Rank of the receiver-side processing statuses, for the out-of-order flag (gateway.md "Status feedback").
STATUS_RANK: Final[dict[StatusCode, int]] = {
    StatusCode.ARRIVED: 1,
    StatusCode.REJECTED: 2,
    StatusCode.ACCEPTED: 3,
    StatusCode.ASSIGNED: 4,
    StatusCode.IN_PROGRESS: 5,
    StatusCode.DONE: 6,
}
EMITTED_01_DESCRIPTION: Final = (
    "Đã đến - cổng trục phát thay đơn vị nhận khi hệ thống của đơn vị xác nhận đã nhận văn bản"
)


def plan_status(
    store: Store,
    pkg: StatusPackage,
    now: datetime,
    *,
    upstream: bool = False,
    max_per_day: int = 0,
    max_total: int = 0,
    agencies: Mapping[str, AgencyRecord] | None = None,
) -> Plan:
    """The delivery and history row of a status package (module docstring); ``upstream``: polled from the axis.

    ``max_per_day`` / ``max_total`` (0: no cap) bound the statuses one (document, recipient) may accumulate
    (issue 10: 10,000 statuses for one document were all accepted and relayed): a real history is a handful.
    ``agencies``: registry records already read (intake's lookup names ``ResponseFor/OrganId``, who a status
    goes to whenever it names one); the status recipient is read from the registry only when not among them.
    """
    doc, deliver_to, recipient = _concerned(store, pkg)
    seen = store.statuses.pair_summary(doc.doc_id, recipient, _vn_midnight(now))
    _check_quota(seen, recipient, now, max_per_day, max_total)
    known = agencies or {}
    target = known[deliver_to] if deliver_to in known else store.registry.agencies([deliver_to]).get(deliver_to)
    if target is None:
        raise RouteError(f"the status recipient {deliver_to} is not registered", recipients=[deliver_to])
    if upstream and not hosted_here(target):
        # An axis routes statuses between the agencies it reaches itself: sending one back would loop.
        raise RouteError(
            f"a status polled from an axis for {deliver_to}, which this gateway does not host",
            recipients=[deliver_to],
        )
    out_of_order = _out_of_order(seen, pkg.status_code)
    status = StatusRecord(
        doc_id=doc.doc_id,
        recipient=recipient,
        reporter=pkg.sender,
        status_code=pkg.status_code.value,
        received_at=now,
        description=pkg.description,
        timestamp=pkg.timestamp,
        out_of_order=out_of_order,
    )
    rf = pkg.response_for
    meta = {"response_for_organ_id": rf.organ_id, "timestamp": iso(pkg.timestamp), "out_of_order": out_of_order}
    return Plan(
        recipients=((deliver_to, target.channel),),
        related_doc_id=doc.doc_id,
        status=status,
        meta=meta,
    )


def _concerned(store: Store, pkg: StatusPackage) -> tuple[DocumentRecord, str, str]:
    """The document a status is about, who it goes to, and whose processing it describes. When the sender's
    update, replacement or revocation shares the DocumentId, the status is about the original
    (:func:`~gateway.services.routing.original_of`), as a revocation's link is."""
    rf = pkg.response_for
    if pkg.status_code.sent_by_sender:
        # 13: From = the document's sender, ResponseFor/OrganId = the receiver asked to give it back.
        candidates = store.documents.edocs_with_recipients(pkg.document_id, pkg.sender)
        if not candidates:
            raise unknown_document(pkg)
        named = [d for d, recipients in candidates if rf.organ_id in recipients]
        doc = original_of(named) if named else None
        if doc is None:
            raise RouteError(
                f"recall (13) must name a receiver of {pkg.document_id} in ResponseFor/OrganId "
                f"(got {rf.organ_id or 'nothing'})",
                recipients=[rf.organ_id],
            )
        return doc, rf.organ_id, rf.organ_id
    candidates = store.documents.edocs_with_recipients(pkg.document_id, rf.organ_id or None)
    if not candidates:
        raise unknown_document(pkg)
    received = [d for d, recipients in candidates if pkg.sender in recipients]
    doc = original_of(received) if received else None
    if doc is None:
        raise AccessError(
            f"{pkg.sender} is not a recipient of {pkg.document_id}; only recipients report its status",
            organ_id=pkg.sender,
        )
    return doc, doc.sender, pkg.sender


def _vn_midnight(now: datetime) -> datetime:
    """The start of ``now``'s Vietnam day, in UTC: where the per-day status quota counts from."""
    local = now.astimezone(VN_TZ)
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


def _check_quota(seen: Mapping[str, tuple[int, int]], recipient: str, now: datetime, per_day: int, total: int) -> None:
    """``LIMIT.STATUSES`` when the pair already has ``per_day`` statuses this Vietnam day, or ``total`` in all
    (``seen``: :meth:`~gateway.db.statuses.StatusRepository.pair_summary` since the Vietnam midnight).

    Concurrent submissions may overshoot by the number in flight (a count, not a lock): a bound on work, not an
    exact quota."""
    if total > 0 and sum(all_ for all_, _today in seen.values()) >= total:
        raise StatusQuotaError(
            f"{recipient} has already reported {total} statuses for this document, the most accepted",
            limit=total,
            recipient=recipient,
        )
    if per_day > 0 and sum(today for _all, today in seen.values()) >= per_day:
        local = now.astimezone(VN_TZ)
        tomorrow = local.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
        raise StatusQuotaError(
            f"{recipient} has already reported {per_day} statuses for this document today (Vietnam time)",
            limit=per_day,
            recipient=recipient,
            retry_after=max(1, math.ceil((tomorrow - local).total_seconds())),
        )


def _out_of_order(seen: Mapping[str, tuple[int, int]], code: StatusCode) -> bool:
    rank = STATUS_RANK.get(code)
    if rank is None:
        return False
    ranks = [STATUS_RANK.get(status_code(c), 0) for c in seen]
    return bool(ranks) and rank < max(ranks)


def unknown_document(pkg: StatusPackage) -> NotFoundError:
    """The refusal of a status about a document the gateway does not know."""
    # edxml.md §13: a status may overtake its document; parking it for a retry is a possible improvement.
    return NotFoundError(
        f"status {pkg.status_code.value} concerns {pkg.document_id}, which the gateway does not know",
        document_id=pkg.document_id,
    )


def arrived_for(
    doc: DocumentRecord,
    receiver: AgencyRecord,
    sender: AgencyRecord | None,
    delivery_id: str,
    now: datetime,
) -> NewDocument:
    """Status 01 "Đã đến" from the receiver to the sender, built and rendered by the gateway (the per-agency
    "emit 01 on acknowledge" option), stored like a status the receiver had sent itself."""
    local = now.astimezone(VN_TZ).replace(tzinfo=None, microsecond=0)
    raw = render(_arrived_package(doc, receiver, local))
    doc_id = uuid4().hex
    # One emitted 01 per delivery: the key cannot collide with a package the receiver sends itself.
    key = hashlib.sha256(f"emitted-01\x1f{delivery_id}".encode()).hexdigest()
    document = DocumentRecord(
        doc_id=doc_id,
        kind=PackageKind.STATUS.value,
        sender=receiver.organ_id,
        document_id=doc.document_id,
        sha256=hashlib.sha256(raw).hexdigest(),
        size=len(raw),
        received_at=now,
        signature_state=SignatureState.UNSIGNED.value,
        idem_key=key,
        status_code=StatusCode.ARRIVED.value,
        related_doc_id=doc.doc_id,
        submitted_by=None,
        emitted_by_gateway=True,
        subject=EMITTED_01_DESCRIPTION,
        code=doc.code,
        meta={"response_for_organ_id": doc.sender, "timestamp": local.isoformat(), "out_of_order": False},
    )
    status = StatusRecord(
        doc_id=doc.doc_id,
        recipient=receiver.organ_id,
        reporter=receiver.organ_id,
        status_code=StatusCode.ARRIVED.value,
        received_at=now,
        description=EMITTED_01_DESCRIPTION,
        timestamp=local,
        status_doc_id=doc_id,
        emitted_by_gateway=True,
    )
    audit = AuditEntry(
        at=now,
        action="status.emitted",
        doc_id=doc_id,
        organ_id=receiver.organ_id,
        detail={"status_code": "01", "about": doc.doc_id, "delivery_id": delivery_id},
    )
    push = sender is not None and sender.channel in PUSH_CHANNELS
    return NewDocument(document=document, raw=raw, recipients=((doc.sender, push),), audit=audit, status=status)


def _arrived_package(doc: DocumentRecord, receiver: AgencyRecord, local: datetime) -> StatusPackage:
    promulgation = doc.meta.get("promulgation_date")
    return StatusPackage(
        from_=Organization(organ_id=receiver.organ_id, organ_name=receiver.name),
        response_for=ResponseFor(
            organ_id=doc.sender,
            code=doc.code or "",
            promulgation_date=date.fromisoformat(promulgation) if promulgation else None,
            document_id=doc.document_id,
        ),
        status_code=StatusCode.ARRIVED,
        timestamp=local,
        description=EMITTED_01_DESCRIPTION,
    )


__all__ = ["EMITTED_01_DESCRIPTION", "STATUS_RANK", "arrived_for", "plan_status", "unknown_document"]
