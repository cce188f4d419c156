"""The notifications of one alert round, composed (not sent): a digest e-mail per receiving agency contact, one
summary e-mail to the operators, one JSON document for the webhook. Sending is the worker's
(:mod:`gateway.worker.notify`): this module has no network code, so what is said is testable on its own.

Each message carries the ids of the NEW alerts it tells about: an alert is marked notified only when every message
that carries it went out (:meth:`gateway.services.alerts.Alerts.notify`). A digest lists ALL open items of its
agency — what a văn thư has to act on — with the new ones marked; only new alerts make a digest go out at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from gateway.services.alert_items import AlertItem
from gateway.tracking.calendar import show

#: Python 3.11 folds a long non-ASCII Subject into encoded words and drops the space at a fold ("việcliên");
#: headers are kept on one line (998 is RFC 5322's hard limit) so the Vietnamese subject arrives intact.
_POLICY = policy.SMTP.clone(max_line_length=998)


@dataclass(frozen=True)
class Mail:
    """One e-mail: ``to`` addresses, Vietnamese subject, plain-text body, and the new alerts it announces."""

    to: tuple[str, ...]
    subject: str
    body: str
    alert_ids: frozenset[int]
    #: For logs: which digest this is (an OrganId, or ``operators``) — never the body.
    label: str

    def message(self, sender: str) -> EmailMessage:
        msg = EmailMessage(policy=_POLICY)
        msg["From"] = sender
        msg["To"] = ", ".join(self.to)
        msg["Subject"] = self.subject
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = make_msgid(domain="edoc-gateway")
        msg.set_content(self.body, charset="utf-8")
        return msg


@dataclass(frozen=True)
class Entry:
    """An open item with its alert id, and whether the alert is new in this round."""

    alert_id: int
    item: AlertItem
    new: bool


def addresses(text: str | None) -> tuple[str, ...]:
    """``contact_email`` (comma or semicolon separated) as a tuple of addresses."""
    if not text:
        return ()
    return tuple(a.strip() for a in text.replace(";", ",").split(",") if a.strip())


def agency_digest(organ_id: str, name: str, to: Sequence[str], entries: Sequence[Entry], as_of: datetime) -> Mail:
    """The digest of one agency: its open items, new first, then by age."""
    new = [e for e in entries if e.new]
    subject = f"[edoc-gateway] {name}: {len(entries)} việc liên thông văn bản cần xử lý ({len(new)} mới)"
    head = [
        f"Kính gửi văn thư {name} ({organ_id}),",
        "",
        f"Lúc {show(as_of)}, trục liên thông ghi nhận {len(entries)} việc chưa hoàn thành của đơn vị "
        f"({len(new)} mới). / {len(entries)} open items ({len(new)} new):",
        "",
    ]
    return Mail(
        to=tuple(to),
        subject=subject,
        body="\n".join([*head, *_lines(entries, as_of), _FOOTER]),
        alert_ids=frozenset(e.alert_id for e in new),
        label=organ_id,
    )


def operator_summary(to: Sequence[str], entries: Sequence[Entry], names: Mapping[str, str], as_of: datetime) -> Mail:
    """Every new alert of the round, grouped by agency."""
    by_agency: dict[str, list[Entry]] = {}
    for e in entries:
        by_agency.setdefault(e.item.organ_id or "-", []).append(e)
    lines = [f"Lúc {show(as_of)}: {len(entries)} cảnh báo mới (new alerts) ở {len(by_agency)} đơn vị.", ""]
    for organ in sorted(by_agency):
        lines += [f"== {names.get(organ, organ)} ({organ})", *_lines(by_agency[organ], as_of), ""]
    return Mail(
        to=tuple(to),
        subject=f"[edoc-gateway] Cảnh báo liên thông: {len(entries)} cảnh báo mới ở {len(by_agency)} đơn vị",
        body="\n".join([*lines, _FOOTER]),
        alert_ids=frozenset(e.alert_id for e in entries),
        label="operators",
    )


def webhook_payload(entries: Iterable[Entry], as_of: datetime) -> dict[str, Any]:
    """One JSON document per round: the new alerts, each with rule, reason, age and the document's identity."""
    alerts = [{"alert_id": e.alert_id, **e.item.to_json(as_of)} for e in entries]
    return {
        "source": "edoc-gateway",
        "as_of": as_of.isoformat(),
        "as_of_local": show(as_of),
        "count": len(alerts),
        "text": f"edoc-gateway: {len(alerts)} cảnh báo mới (new alerts)",
        "alerts": alerts,
    }


def _lines(entries: Sequence[Entry], as_of: datetime) -> list[str]:
    ordered = sorted(entries, key=lambda e: (not e.new, e.item.since, e.alert_id))
    lines = []
    for number, e in enumerate(ordered, 1):
        mark = " [MỚI/NEW]" if e.new else ""
        lines += [f"{number}.{mark} {e.item.line(as_of)}", *e.item.describe(), ""]
    return lines


_FOOTER = (
    "Giờ Việt Nam (Asia/Ho_Chi_Minh). Thư tự động của edoc-gateway: chỉ gửi khi có cảnh báo mới; "
    "một việc chỉ được báo lại khi trạng thái của nó thay đổi.\n"
    "Times are Vietnam time. Sent only when something is new; an item is told again only when its state changes."
)


__all__ = ["Entry", "Mail", "addresses", "agency_digest", "operator_summary", "webhook_payload"]
