"""How the Documents pages lay out what the timeline service returned (:mod:`gateway.web.console.pages_documents`).

Nothing here computes a figure or judges a rule: the service's dictionaries (``DocumentItem.to_dict``,
``DocumentStory.to_dict``) are only given datetimes for their ISO strings (the console shows every time through
its own Vietnam-time filters) and labels in the page's language. Labels of the spec's own codes (rules, business
statuses, priorities, document types) come from the enums that carry both languages; the few the gateway names
itself (delivery states, signature states, event kinds) are here, with their Vietnamese texts registered.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any, Final

from gateway.edxml.codes import BussinessDocType, Priority, StatusCode
from gateway.services.api import DeliveryState
from gateway.tracking.rules import Rule
from gateway.web.console import i18n

STATES: Final = tuple(s.value for s in DeliveryState)
#: Delivery states (the transport, not the business status): Vietnamese, English.
_STATE_LABELS: Final = {
    "queued": ("Đang chờ nhận", "Waiting"),
    "fetched": ("Đã tải về, chưa xác nhận", "Fetched, not acknowledged"),
    "delivered": ("Đã giao", "Delivered"),
    "failed": ("Bên nhận báo lỗi", "Refused by the recipient"),
    "dead": ("Gửi lỗi", "Dead letter"),
}
_KIND_LABELS: Final = {"edoc": ("Văn bản", "Document"), "status": ("Gói trạng thái", "Status package")}
#: CSS tag class per delivery state.
STATE_TONE: Final = {"queued": "", "fetched": "warn", "delivered": "good", "failed": "bad", "dead": "bad"}
_SIGNATURE_LABELS: Final = {
    "valid": ("Chữ ký số hợp lệ", "Valid signature"),
    "unsigned": ("Không ký số", "Not signed"),
    "legacy-placeholder": ("Không ký số (khối chữ ký giả của mẫu cũ)", "Not signed (legacy placeholder)"),
    "present": ("Có chữ ký, chưa kiểm tra", "Signed, not verified"),
}
#: The list's form fields, in order (the template's error marking reads it).
FIELDS: Final = ("from", "to", "sender", "recipient", "kind", "state", "flag", "text", "limit", "cursor")

#: Event kinds of a delivery's timeline (gateway.services.timeline_story.events).
EVENTS: Final = {
    "intake": "Received by the gateway",
    "attempt": "Push attempt",
    "fetch": "Fetched by the recipient's system",
    "acknowledged": "Acknowledged",
    "status": "Business status",
    "dead_letter": "Dead letter",
    "redrive": "Re-driven",
}

i18n.register(
    {
        "Received by the gateway": "Cổng tiếp nhận",
        "Push attempt": "Lần đẩy đi",
        "Fetched by the recipient's system": "Hệ thống bên nhận tải về",
        "Acknowledged": "Xác nhận đã nhận",
        "Business status": "Trạng thái xử lý",
        "Dead letter": "Gửi lỗi",
        "Re-driven": "Gửi lại",
        "system": "hệ thống",
        "channel": "kênh",
        "attempt": "lần",
        "outcome": "kết quả",
        "error": "lỗi",
        "duration": "thời gian",
        "peer answer": "phản hồi của bên nhận",
        "next attempt": "lần thử tiếp",
        "reason": "lý do",
        "attempts": "số lần thử",
        "previous state": "trạng thái trước",
        "by": "bởi",
        "reporter": "người/đơn vị báo",
        "stated time": "thời điểm ghi trong gói tin",
        "arrived out of order": "đến không đúng thứ tự",
        "emitted by the gateway": "do cổng tự phát sinh",
        "Gateway id": "Mã trên cổng",
        "Received (Vietnam time)": "Thời điểm tiếp nhận (giờ Việt Nam)",
        "Kind": "Loại gói tin",
        "Sender": "Đơn vị gửi",
        "Sender name": "Tên đơn vị gửi",
        "Document id": "Mã văn bản (DocumentId)",
        "Code": "Số, ký hiệu",
        "Subject": "Trích yếu",
        "Status": "Trạng thái",
        "Priority": "Độ khẩn",
        "Signature": "Chữ ký số",
        "Recipients": "Đơn vị nhận",
        "Delivery states": "Tình trạng chuyển",
        "Rules breached": "Vi phạm thời hạn",
        "Still open": "Đang quá hạn chưa xử lý",
    }
)


def state_label(state: str, lang: str) -> str:
    vi, en = _STATE_LABELS.get(state, (state, state))
    return vi if lang == "vi" else en


def kind_label(kind: str, lang: str) -> str:
    vi, en = _KIND_LABELS.get(kind, (kind, kind))
    return vi if lang == "vi" else en


def rule_label(rule: str, lang: str) -> str:
    try:
        found = Rule(rule)
    except ValueError:
        return rule
    return found.label_vi if lang == "vi" else found.label_en.capitalize()


def status_label(code: str | None, lang: str) -> str:
    try:
        found = StatusCode(code) if code else None
    except ValueError:
        return code or ""
    if found is None:
        return ""
    return found.label_vi if lang == "vi" else found.label_en


def signature_label(state: str | None, lang: str) -> str:
    vi, en = _SIGNATURE_LABELS.get(state or "", (state or "", state or ""))
    return vi if lang == "vi" else en


def with_times(value: Any) -> Any:
    """A copy of a service dictionary with each ``x`` that has an ``x_local`` twin as a datetime, and each
    ``*_date`` as a date (so templates show them with the console's filters)."""
    if isinstance(value, list):
        return [with_times(v) for v in value]
    if not isinstance(value, Mapping):
        return value
    out: dict[str, Any] = {}
    for key, item in value.items():
        if isinstance(item, str) and f"{key}_local" in value:
            out[key] = datetime.fromisoformat(item)
        elif isinstance(item, str) and key.endswith("_date"):
            out[key] = date.fromisoformat(item)
        else:
            out[key] = with_times(item)
    return out


def event_lines(event: Mapping[str, Any], lang: str) -> list[tuple[str, str]]:
    """The details of one timeline event as (label id, value) pairs, only those the event has."""
    kind = event["kind"]
    pairs: list[tuple[str, Any]] = []
    if kind == "intake":
        pairs = [("system", event.get("submitted_by")), ("channel", event.get("channel"))]
    elif kind == "attempt":
        ms = event.get("duration_ms")
        pairs = [
            ("attempt", event.get("attempt")),
            ("outcome", event.get("outcome")),
            ("error", " ".join(x for x in (event.get("error_code"), event.get("error_message")) if x)),
            ("duration", f"{ms} ms" if ms is not None else None),
            ("peer answer", event.get("peer_answer")),
            ("next attempt", i18n.when_exact(event.get("next_attempt_at"))),
        ]
    elif kind in ("fetch", "acknowledged"):
        pairs = [("outcome", event.get("outcome")), ("reason", event.get("reason")), ("system", event.get("system_id"))]
    elif kind == "status":
        pairs = [
            ("reporter", event.get("reporter")),
            ("stated time", _stated(event.get("timestamp"))),
            ("arrived out of order", "✔" if event.get("out_of_order") else None),
            ("emitted by the gateway", "✔" if event.get("emitted_by_gateway") else None),
        ]
    elif kind == "dead_letter":
        pairs = [("error", event.get("error_code")), ("attempts", event.get("attempts"))]
        pairs.append(("reason", event.get("reason")))
    elif kind == "redrive":
        pairs = [("previous state", state_label(event.get("previous_state") or "", lang)), ("by", event.get("by"))]
    return [(label, str(v)) for label, v in pairs if v not in (None, "")]


def _stated(timestamp: str | None) -> str | None:
    """The time a status package states for itself: Vietnam time when it carries a zone, else as written."""
    if not timestamp:
        return None
    try:
        at = datetime.fromisoformat(timestamp)
    except ValueError:
        return timestamp
    return i18n.when_exact(at) if at.tzinfo is not None else at.strftime("%d/%m/%Y %H:%M:%S")


def story_view(story: Mapping[str, Any], lang: str) -> dict[str, Any]:
    """Labels for the document page: per recipient its state, its rules (in rule order) and each event's title,
    status wording and details."""
    recipients = []
    for r in story["recipients"]:
        rules = (r.get("facts") or {}).get("rules") or {}
        events = [
            {
                **e,
                "title": EVENTS.get(e["kind"], e["kind"]),
                "status_text": status_label(e.get("status_code"), lang) if e["kind"] == "status" else "",
                "lines": event_lines(e, lang),
            }
            for e in r["events"]
        ]
        recipients.append(
            {
                "state_text": state_label(r["state"], lang),
                "tone": STATE_TONE.get(r["state"], ""),
                "rules": [(rule_label(name, lang), rules[name]) for name in (x.value for x in Rule) if name in rules],
                "events": events,
            }
        )
    doc = story["document"]
    sending = story.get("late_sending")
    return {
        "recipients": recipients,
        "kind_text": kind_label(doc["kind"], lang),
        "doc_type_text": _doc_type(doc.get("bussiness_doc_type"), lang),
        "signature_text": signature_label(doc["signature"]["state"], lang),
        "sending_rule": rule_label(sending["rule"], lang) if sending else "",
        "status_text": status_label(doc.get("status_code"), lang),
        "priority_text": doc.get("priority_vi") if lang == "vi" else _priority_en(doc.get("priority")),
        "related": [{**x, "status_text": status_label(x.get("status_code"), lang)} for x in story["related"]],
    }


def _doc_type(value: int | None, lang: str) -> str | None:
    try:
        found = BussinessDocType(value) if value is not None else None
    except ValueError:
        return str(value)
    if found is None:
        return None
    return found.label_vi if lang == "vi" else found.label_en.capitalize()


def _priority_en(priority: int | None) -> str | None:
    try:
        return Priority(priority).label_en.capitalize() if priority is not None else None
    except ValueError:
        return None


def export_headers() -> list[str]:
    """The CSV's column ids (translated by the caller)."""
    return [
        "Gateway id",
        "Received (Vietnam time)",
        "Kind",
        "Sender",
        "Sender name",
        "Document id",
        "Code",
        "Subject",
        "Status",
        "Priority",
        "Signature",
        "Recipients",
        "Delivery states",
        "Rules breached",
        "Still open",
    ]


def export_row(item: Mapping[str, Any], names: Mapping[str, str], lang: str) -> list[Any]:
    """One CSV row of a list item; text the sender wrote is kept from being read as a spreadsheet formula."""
    states = "; ".join(f"{state_label(s, lang)}: {n}" for s, n in item["states"].items())
    return [
        item["doc_id"],
        i18n.when_exact(item["received_at"]),
        kind_label(item["kind"], lang),
        item["sender"],
        _cell(names.get(item["sender"], "")),
        _cell(item["document_id"]),
        _cell(item.get("code") or ""),
        _cell(item.get("subject") or ""),
        item.get("status_code") or "",
        item.get("priority") if item.get("priority") is not None else "",
        item.get("signature_state") or "",
        item["recipients"],
        states,
        "; ".join(rule_label(r, lang) for r in item["breached"]),
        "; ".join(rule_label(r, lang) for r in item["open"]),
    ]


def _cell(text: str) -> str:
    """A leading ``= + - @`` (or tab/CR) makes Excel run a formula: such a cell is prefixed with ``'``."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


__all__ = [
    "EVENTS",
    "FIELDS",
    "STATES",
    "event_lines",
    "export_headers",
    "export_row",
    "kind_label",
    "rule_label",
    "signature_label",
    "state_label",
    "status_label",
    "story_view",
    "with_times",
]
