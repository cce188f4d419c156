"""Dead letters and retries (issue 12 item 1): the deliveries that need an operator, one delivery with its attempt
log, and the re-drive of one delivery or of every dead letter of a recipient — the console's way to do what
``edoc-gateway deliveries redrive`` and ``POST /admin/v1/deliveries/…/redrive`` do, never by SQL.

Everything goes through :class:`~gateway.services.delivery_admin.DeliveryAdmin` with the operator's scope, exactly
as the admin API calls it: a delivery outside the scope is NOT_FOUND (404) like an unknown one, a recipient
outside it ACCESS.DENIED (403). Re-driving needs the operator role, a POST with the session's CSRF token (checked
by the edge) and a server-side confirmation: the button leads to a page that says what will be re-driven, whose
form carries ``confirm=yes``; a POST without it changes nothing and shows that page again (HTTP 400). Each
re-drive leaves the store's ``delivery.redrive`` rows (one per delivery, by ``console`` and the operator) and one
``console.deliveries.redrive`` row, refusals included.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

from flask import Response, request

from gateway.errors import GatewayError, NotFoundError, RequestError
from gateway.services.admin_roles import Role
from gateway.services.api import DeliveryState
from gateway.services.delivery_admin import DeliveryInfo
from gateway.services.operators import ConsoleUser
from gateway.services.paging import PageRequest
from gateway.web.console import i18n
from gateway.web.console.edge import Console

#: Rows per page of the dead-letter list.
PAGE_SIZE: Final = 50
#: How the store's ``delivery.redrive`` rows name a console re-drive (the admin API writes ``admin-api``).
ACTOR: Final = "console"
#: The lists of the page: deliveries that will not move without an operator.
LISTS: Final = {"dead": DeliveryState.DEAD, "failed": DeliveryState.FAILED}
#: A delivery id as the store writes them (hex); anything else is no delivery.
_DELIVERY_ID = re.compile(r"[0-9a-fA-F]{8,64}")
#: Longest OrganId-like filter value accepted (OrganIds are 13 characters; room for odd legacy ids).
_MAX_RECIPIENT = 64


def install(console: Console) -> None:
    console.menu("dead_letters", "Dead letters")
    deliveries = console.services.admin.deliveries

    @console.page("/dead-letters", endpoint="dead_letters")
    def dead_letters(user: ConsoleUser) -> Response:
        scope = user.principal.scope
        listed = request.args.get("state") or "dead"
        if listed not in LISTS:
            raise RequestError(f"unknown list {listed[:20]!r} (dead or failed)")
        recipient = _recipient(request.args.get("recipient", ""))
        cursor = request.args.get("cursor") or None
        limit = _number(request.args.get("limit", ""), PAGE_SIZE)
        page = deliveries.list_deliveries(
            state=LISTS[listed], recipient=recipient, page=PageRequest(limit=limit, cursor=cursor), scope=scope
        )
        return console.render(
            "dead_letters.html",
            title="Dead letters",
            page=page,
            listed=listed,
            limit=limit if limit != PAGE_SIZE else None,
            recipient=recipient or "",
            first_page=cursor is None,
            circuits=console.services.circuits.not_closed(scope=scope),
            can_redrive=user.principal.allows(Role.OPERATOR),
        )

    @console.page("/deliveries/<delivery_id>", endpoint="delivery")
    def delivery(user: ConsoleUser, delivery_id: str) -> Response:
        detail = deliveries.show_delivery(_delivery_id(delivery_id), scope=user.principal.scope)
        return console.render(
            "delivery.html",
            title="Delivery",
            d=detail.delivery,
            attempts=detail.attempts,
            can_redrive=user.principal.allows(Role.OPERATOR) and _redrivable(detail.delivery),
        )

    _install_redrives(console)


def _install_redrives(console: Console) -> None:
    """The two re-drives (one delivery; a recipient's dead letters), each a confirmation page and its POST."""
    deliveries = console.services.admin.deliveries

    @console.page("/deliveries/<delivery_id>/redrive", role=Role.OPERATOR, methods=("GET", "POST"), endpoint="redrive")
    def redrive(user: ConsoleUser, delivery_id: str) -> Response:
        scope = user.principal.scope
        with _audited(console, user, delivery_id=delivery_id[:64]) as result:
            d = deliveries.show_delivery(_delivery_id(delivery_id), scope=scope).delivery
            if request.method == "GET" or request.form.get("confirm") != "yes":
                return _confirm_one(console, d, request.method == "POST")
            ids = deliveries.redrive(delivery_id=d.delivery_id, actor=ACTOR, system_id=_who(user), scope=scope)
            result["redriven"] = len(ids)
        return console.render("redriven.html", title="Re-driven", ids=ids, recipient=d.recipient)

    @console.page("/dead-letters/redrive", role=Role.OPERATOR, methods=("GET", "POST"), endpoint="redrive_recipient")
    def redrive_recipient(user: ConsoleUser) -> Response:
        scope = user.principal.scope
        raw = request.values.get("recipient", "")
        with _audited(console, user, recipient=raw.strip()[:64]) as result:
            recipient = _recipient(raw)
            if recipient is None:
                raise RequestError("name the recipient whose dead letters to re-drive")
            waiting = deliveries.list_deliveries(
                state=DeliveryState.DEAD, recipient=recipient, page=PageRequest(limit=1), scope=scope
            ).total
            if request.method == "GET" or request.form.get("confirm") != "yes":
                return _confirm_all(console, recipient, waiting, request.method == "POST")
            ids = deliveries.redrive(recipient=recipient, actor=ACTOR, system_id=_who(user), scope=scope)
            result["redriven"] = len(ids)
        return console.render("redriven.html", title="Re-driven", ids=ids, recipient=recipient)


@contextmanager
def _audited(console: Console, user: ConsoleUser, **detail: str) -> Iterator[dict[str, int]]:
    """One ``console.deliveries.redrive`` row per re-drive POST: its outcome (the error code of a refusal — a
    probe outside the scope shows as NOT_FOUND / ACCESS.DENIED) and how many deliveries moved. A POST that only
    showed the confirmation step again moved nothing and leaves no row; a GET never does."""
    result: dict[str, int] = {}
    try:
        yield result
    except GatewayError as exc:
        if request.method == "POST":
            console.services.operators.audit(user, "deliveries.redrive", outcome=exc.code, **detail)
        raise
    if request.method == "POST" and "redriven" in result:
        console.services.operators.audit(user, "deliveries.redrive", redriven=result["redriven"], **detail)


def _confirm_one(console: Console, d: DeliveryInfo, unconfirmed: bool) -> Response:
    """The confirmation step of one re-drive (HTTP 400 when a POST came without ``confirm=yes``)."""
    return console.render(
        "redrive_confirm.html",
        code=400 if unconfirmed else 200,
        title="Re-drive a delivery",
        d=d,
        recipient=None,
        waiting=None,
        unconfirmed=unconfirmed,
    )


def _confirm_all(console: Console, recipient: str, waiting: int, unconfirmed: bool) -> Response:
    """The confirmation step of a recipient's re-drive, with how many dead letters it would move now."""
    return console.render(
        "redrive_confirm.html",
        code=400 if unconfirmed else 200,
        title="Re-drive dead letters",
        d=None,
        recipient=recipient,
        waiting=waiting,
        unconfirmed=unconfirmed,
    )


def _who(user: ConsoleUser) -> str:
    """The ``system_id`` of the store's audit rows: the operator, as the console's own rows name it."""
    return f"operator:{user.principal.name}"[:64]


def _delivery_id(raw: str) -> str:
    if not _DELIVERY_ID.fullmatch(raw):
        raise NotFoundError("no such delivery")
    return raw


def _number(raw: str, default: int) -> int:
    """A page size from the query (bounded by :class:`PageRequest`); the default when not given."""
    if not raw:
        return default
    if not raw.isdigit() or len(raw) > 4:
        raise RequestError("limit must be a number")
    return int(raw)


def _recipient(raw: str) -> str | None:
    value = raw.strip()
    if len(value) > _MAX_RECIPIENT or not value.isprintable():
        raise RequestError("the recipient is not an OrganId")
    return value or None


def _redrivable(d: DeliveryInfo) -> bool:
    """Whether :meth:`DeliveryAdmin.redrive` would take it (its rule): dead, failed, or waiting for a retry — not
    delivered, nor simply waiting in a mailbox. Only decides whether the page offers the button: the service
    still refuses anything else."""
    return d.state in (DeliveryState.DEAD, DeliveryState.FAILED) or (
        d.state in (DeliveryState.QUEUED, DeliveryState.FETCHED) and d.next_attempt_at is not None
    )


i18n.register(
    {
        "Delivery": "Lượt chuyển",
        "Re-driven": "Gửi lại",
        "Re-drive a delivery": "Gửi lại một lượt chuyển",
        "Re-drive dead letters": "Gửi lại các lượt gửi lỗi",
        "Deliveries that will not move without an operator: dead after their retries ran out, or refused by the "
        "recipient's system.": "Các lượt chuyển không thể tiếp tục nếu không có người vận hành: hết số lần thử lại, "
        "hoặc bị hệ thống của đơn vị nhận từ chối.",
        "List": "Danh sách",
        "Dead (retries exhausted)": "Gửi lỗi (hết lần thử lại)",
        "Failed (refused by the recipient)": "Thất bại (đơn vị nhận từ chối)",
        "Recipient (OrganId)": "Đơn vị nhận (mã định danh)",
        "Show": "Xem",
        "Re-drive all dead letters of {recipient}…": "Gửi lại mọi lượt gửi lỗi tới {recipient}…",
        "Re-drive all dead letters of {recipient}": "Gửi lại mọi lượt gửi lỗi tới {recipient}",
        "{shown} of {total} deliveries": "{shown} trên {total} lượt chuyển",
        "Recipient": "Đơn vị nhận",
        "Document": "Văn bản",
        "Sender": "Đơn vị gửi",
        "Created": "Tạo lúc",
        "Attempts": "Số lần thử",
        "Last attempt": "Lần thử gần nhất",
        "Last error": "Lỗi gần nhất",
        "Nothing to do here.": "Không có việc cần xử lý.",
        "Pages": "Trang",
        "First page": "Trang đầu",
        "Peers whose circuit is open": "Điểm nhận đang bị ngắt mạch",
        "The gateway stops calling a peer that keeps failing, and tries it again after a pause; deliveries to it "
        "wait meanwhile.": "Cổng ngừng gọi một điểm nhận liên tục lỗi và thử lại sau một khoảng nghỉ; trong lúc đó "
        "các lượt chuyển tới điểm này phải chờ.",
        "Peer": "Điểm nhận",
        "State": "Trạng thái",
        "Failures": "Số lần lỗi",
        "Closed again at the earliest": "Mở lại sớm nhất lúc",
        "Channel": "Kênh kết nối",
        "not registered": "chưa đăng ký",
        "Next attempt": "Lần thử tiếp theo",
        "Settled": "Kết thúc lúc",
        "Reason": "Lý do",
        "Peer reference": "Mã tham chiếu của điểm nhận",
        "Re-drive…": "Gửi lại…",
        "Attempt log": "Nhật ký các lần thử",
        "Started": "Bắt đầu",
        "Duration (ms)": "Thời lượng (ms)",
        "Outcome": "Kết quả",
        "Error": "Lỗi",
        "Peer answer": "Trả lời của điểm nhận",
        "No attempt is recorded: the recipient fetches from its mailbox, or the gateway has not tried yet.": "Chưa "
        "có lần thử nào: đơn vị nhận tự lấy từ hộp thư, hoặc cổng chưa thử gửi.",
        "Back to the dead letters": "Về danh sách gửi lỗi",
        "Nothing was re-driven: confirm with the button below.": "Chưa gửi lại gì: hãy xác nhận bằng nút bên dưới.",
        "The delivery is queued again at once with a fresh retry budget; the recipient gets it on its next fetch or "
        "push.": "Lượt chuyển được xếp hàng lại ngay với số lần thử lại mới; đơn vị nhận sẽ nhận được ở lần lấy "
        "hoặc lần đẩy tiếp theo.",
        "Re-drive this delivery": "Gửi lại lượt chuyển này",
        "Cancel": "Hủy",
        "Dead letters now": "Số lượt gửi lỗi hiện có",
        "Every dead letter of this recipient is queued again at once with a fresh retry budget.": "Mọi lượt gửi lỗi "
        "tới đơn vị này được xếp hàng lại ngay với số lần thử lại mới.",
        "This recipient has no dead letters.": "Đơn vị này không có lượt gửi lỗi nào.",
        "{count} deliveries to {recipient} are queued again.": "{count} lượt chuyển tới {recipient} đã được xếp hàng "
        "lại.",
        # States and outcomes shown by value (DeliveryState, attempt outcomes, circuit states).
        "queued": "chờ nhận",
        "fetched": "đã tải, chưa xác nhận",
        "delivered": "đã nhận",
        "failed": "thất bại",
        "dead": "gửi lỗi",
        "retry": "sẽ thử lại",
        "sending": "đang gửi",
        "unknown": "không rõ",
        "open": "ngắt",
        "probing": "đang thử lại",
        "closed": "bình thường",
    }
)
