"""What an alert says: one :class:`AlertItem` per open condition — a delivery a timing rule is open for, or a signer
certificate about to expire or revoked — with the reason in the words a văn thư reads, and its age.

Items are rebuilt from the facts every round (:func:`delivery_item`, and :mod:`gateway.services.certwatch` for
certificates), so a message always shows the age at sending time, and the ``state_key`` says what the subject
looked like: the alert store (:mod:`gateway.db.alerts`) raises one alert per (rule, subject, state), so "not taken,
not fetched" and "not taken, fetched but not acknowledged" are two alerts, and nothing is repeated while the state
stays the same. Times are shown in Vietnam time with the zone (:func:`gateway.tracking.calendar.show`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway.db import NewAlert
from gateway.tracking.calendar import local, show
from gateway.tracking.facts import MAILBOX, Assessment
from gateway.tracking.rules import Rule

#: Rules about signer certificates (the delivery rules are :class:`~gateway.tracking.rules.Rule` values).
CERT_EXPIRY, CERT_REVOKED = "cert_expiry", "cert_revoked"
CERT_RULES = (CERT_EXPIRY, CERT_REVOKED)
DELIVERY_RULES = (Rule.NOT_TAKEN, Rule.LATE_RECEIPT, Rule.NOT_REGISTERED, Rule.OVERDUE)
ALERT_RULES = (*(r.value for r in DELIVERY_RULES), *CERT_RULES)
LABELS = {
    **{r.value: (r.label_vi, r.label_en) for r in DELIVERY_RULES},
    CERT_EXPIRY: ("Chứng thư số sắp hết hạn", "certificate expiring"),
    CERT_REVOKED: ("Chứng thư số bị thu hồi", "certificate revoked"),
}


@dataclass(frozen=True)
class AlertItem:
    """One open condition, ready to be raised (:meth:`new_alert`), listed in an e-mail or posted as JSON."""

    rule: str
    subject_key: str
    state_key: str
    #: The agency whose contact is told: the receiving agency of a delivery, the holder of a certificate.
    organ_id: str | None
    #: Why, in Vietnamese with the English in brackets (e-mail, chat).
    reason: str
    #: What the age is counted from: when the document arrived, or when the certificate entered its window.
    since: datetime
    deadline: datetime | None = None
    doc_id: str | None = None
    delivery_id: str | None = None
    document_id: str | None = None
    sender: str | None = None
    recipient: str | None = None
    code: str | None = None
    subject: str | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.rule, self.subject_key, self.state_key)

    def age_seconds(self, as_of: datetime) -> int:
        return max(0, int((as_of - self.since).total_seconds()))

    def new_alert(self, now: datetime) -> NewAlert:
        return NewAlert(
            rule=self.rule,
            subject_key=self.subject_key,
            state_key=self.state_key,
            raised_at=now,
            organ_id=self.organ_id,
            doc_id=self.doc_id,
            delivery_id=self.delivery_id,
            detail=self.to_json(now),
        )

    def to_json(self, as_of: datetime) -> dict[str, Any]:
        """The webhook's view (and the stored ``detail``): plain values, times in ISO 8601 UTC."""
        return {
            "rule": self.rule,
            "label": LABELS[self.rule][0],
            "reason": self.reason,
            "age_seconds": self.age_seconds(as_of),
            "organ_id": self.organ_id,
            "recipient": self.recipient,
            "sender": self.sender,
            "delivery_id": self.delivery_id,
            "doc_id": self.doc_id,
            "document_id": self.document_id,
            "code": self.code,
            "subject": self.subject,
            "deadline": self.deadline.isoformat() if self.deadline else None,
            "since": self.since.isoformat(),
        }

    def line(self, as_of: datetime) -> str:
        """One line of a digest: ``Chưa nhận về (not taken) — fetched …, not acknowledged — 47 phút (47 min)``."""
        vi, en = LABELS[self.rule]
        return f"{vi} ({en}) — {self.reason} — {age_text(self.age_seconds(as_of))}"

    def describe(self) -> list[str]:
        """The document (or certificate) lines under :meth:`line`."""
        if self.delivery_id is None:
            return [f"    {self.subject or self.subject_key}"]
        return [
            f"    Số, ký hiệu (code): {self.code or '-'}; gửi từ (sender): {self.sender}; tới (to): {self.recipient}",
            f"    Trích yếu (subject): {self.subject or '-'}",
            f"    Hạn (deadline): {show(self.deadline)}; nhận lúc (received): {show(self.since)}",
            f"    DocumentId: {self.document_id}; delivery {self.delivery_id}",
        ]


def delivery_item(a: Assessment, rule: Rule) -> AlertItem:
    """The item of a delivery ``rule`` is open for (:meth:`gateway.services.tracking.Tracking.open_judgements`)."""
    f, doc = a.facts, a.facts.document
    judgement = a.judgements[rule]
    return AlertItem(
        rule=rule.value,
        subject_key=f"delivery:{f.delivery_id}",
        state_key=f"{f.state}/{'fetched' if f.fetched_at else 'unfetched'}"[:64],
        organ_id=f.recipient,
        reason=_delivery_reason(a, rule),
        since=f.created_at,
        deadline=judgement.deadline,
        doc_id=doc.doc_id,
        delivery_id=f.delivery_id,
        document_id=doc.document_id,
        sender=doc.sender,
        recipient=f.recipient,
        code=doc.code,
        subject=doc.subject,
    )


def _delivery_reason(a: Assessment, rule: Rule) -> str:
    f = a.facts
    if rule is Rule.NOT_TAKEN:
        if f.channel not in (MAILBOX, None):
            return f"hệ thống nhận chưa chấp nhận gói tin (push not accepted, {f.channel}, {f.state})"
        if f.fetched_at is not None:
            at = _hm(f.fetched_at)
            return f"đã tải lúc {at}, chưa xác nhận (fetched {at}, not acknowledged)"
        return "chưa tải về (not fetched)"
    if rule is Rule.LATE_RECEIPT:
        return "chưa gửi trạng thái 01 đã nhận (no status 01)"
    if rule is Rule.NOT_REGISTERED:
        return "chưa gửi trạng thái 03 vào sổ hoặc 02 từ chối (no status 03/02)"
    due = f.document.due_date
    return f"hạn xử lý {due.isoformat() if due else '-'}, chưa có trạng thái 06 hoàn thành (no status 06)"


def _hm(at: datetime) -> str:
    return local(at).strftime("%H:%M %d/%m")


def age_text(seconds: int) -> str:
    """``47 phút (47 min)``, ``5 giờ 3 phút (5 h 3 min)``, ``3 ngày 4 giờ (3 d 4 h)``."""
    minutes = seconds // 60
    if minutes < 120:
        return f"{minutes} phút ({minutes} min)"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} giờ {minutes} phút ({hours} h {minutes} min)"
    days, hours = divmod(hours, 24)
    return f"{days} ngày {hours} giờ ({days} d {hours} h)"


__all__ = [
    "ALERT_RULES",
    "CERT_EXPIRY",
    "CERT_REVOKED",
    "CERT_RULES",
    "DELIVERY_RULES",
    "LABELS",
    "AlertItem",
    "age_text",
    "delivery_item",
]
