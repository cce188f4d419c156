"""The console's home: the dashboard (issue 12 item 1, "Dashboard").

Every number comes from :meth:`gateway.services.console_dashboard.ConsoleDashboard.overview` for the operator's
scope; this module only lays it out: summary figures (today, the last 30 days, open now), two server-side SVG
charts with the same figures as a table, the queue per channel and the delivery workers. Each figure links to the
page that lists it (the document list with the matching filters, or the dead letters).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Final
from urllib.parse import urlencode

from flask import Response, g, redirect

from gateway.services.console_dashboard import DELIVERY_RULES, FIGURES, Dashboard
from gateway.services.operators import ConsoleUser
from gateway.web.console import i18n
from gateway.web.console.charts import Series, bar_chart, line_chart
from gateway.web.console.edge import PREFIX, Console

#: English ids of the figures (the page's words; Vietnamese below).
LABELS: Final = {
    "received": "Received",
    "deliveries": "Deliveries",
    "delivered": "Delivered",
    "waiting": "Waiting",
    "failed": "Failed",
    "dead": "Dead letters",
    "refused": "Refused",
    "late_sending": "Late sending",
    "late_receipt": "Late receipt",
    "not_taken": "Not taken",
    "not_registered": "Not registered",
    "overdue": "Overdue",
}
#: Figure → the document-list filter that lists its documents (none: no page lists them one by one).
_FILTERS: Final[dict[str, dict[str, str]]] = {
    "received": {"kind": "edoc"},
    "deliveries": {"kind": "edoc"},
    "delivered": {"state": "delivered"},
    "failed": {"state": "failed"},
    "dead": {"state": "dead"},
    **{rule: {"flag": rule} for rule in ("late_sending", *DELIVERY_RULES)},
}
#: The figures the "today" cards show, with the tag colour a non-zero value gets.
CARDS: Final = (
    ("received", ""),
    ("delivered", "good"),
    ("refused", "warn"),
    ("late_receipt", "warn"),
    ("not_taken", "bad"),
    ("overdue", "warn"),
    ("dead", "bad"),
)
#: The series of the two charts.
VOLUME: Final = ("delivered", "waiting", "failed", "dead")
LATENESS: Final = ("late_sending", "late_receipt", "not_taken")

i18n.register(
    {
        "Received": "Đã nhận",
        "Deliveries": "Lượt chuyển",
        "Delivered": "Đã chuyển giao",
        "Waiting": "Đang chờ",
        "Failed": "Bên nhận báo lỗi",
        "Refused": "Bị từ chối",
        "Late sending": "Gửi muộn",
        "Late receipt": "Chậm báo đã nhận",
        "Not taken": "Chưa nhận về",
        "Not registered": "Chưa vào sổ",
        "Overdue": "Quá hạn xử lý",
        "Today": "Hôm nay",
        "Last 30 days": "30 ngày qua",
        "Open now": "Đang tồn đọng",
        "Figure": "Chỉ tiêu",
        "Summary": "Tổng hợp",
        "Day": "Ngày",
        "Figures as of {when}, for documents taken in from {first} to today.": (
            "Số liệu tính đến {when}, cho văn bản tiếp nhận từ {first} đến hôm nay."
        ),
        "Only agencies under {scope} are counted.": "Chỉ tính các cơ quan thuộc {scope}.",
        "Deliveries per day, by outcome": "Lượt chuyển theo ngày, theo kết quả",
        "Late and not taken per day": "Chậm và chưa nhận về theo ngày",
        "Figures per day": "Số liệu theo ngày",
        "Queue by channel": "Hàng đợi theo kênh",
        "Channel": "Kênh kết nối",
        "queued": "chờ nhận",
        "fetched": "đã tải, chưa xác nhận",
        "Oldest waiting": "Chờ lâu nhất từ",
        "Nothing is waiting.": "Không có gì đang chờ.",
        "Delivery workers": "Tiến trình chuyển phát",
        "Worker": "Tiến trình",
        "Host": "Máy",
        "Started": "Bắt đầu",
        "Last heartbeat": "Tín hiệu gần nhất",
        "State": "Trạng thái",
        "running": "đang chạy",
        "stale": "mất tín hiệu",
        "stopped": "đã dừng",
        "No delivery worker has reported.": "Chưa có tiến trình chuyển phát nào báo tín hiệu.",
        "Push deliveries are waiting and no delivery worker is running.": (
            "Có văn bản chờ đẩy đi nhưng không có tiến trình chuyển phát nào đang chạy."
        ),
        "What the figures count": "Cách tính số liệu",
        "Documents taken in, from senders in scope, by day of intake.": (
            "Văn bản gửi lên trục, của đơn vị gửi trong phạm vi, theo ngày tiếp nhận."
        ),
        "Deliveries of those days' documents to recipients in scope.": (
            "Lượt chuyển văn bản của các ngày đó tới đơn vị nhận trong phạm vi."
        ),
        "Intakes refused (invalid, unsigned, unauthorised …), by the sender the package claimed.": (
            "Gói tin bị từ chối tiếp nhận (sai, thiếu chữ ký, không được phép …), theo đơn vị gửi ghi trong gói."
        ),
        "Deliveries past the rule's deadline (Decision 28 report), and those still missing now.": (
            "Lượt chuyển quá hạn theo quy định (báo cáo Quyết định 28), và số còn tồn đọng hiện tại."
        ),
        "Dead letters: pushes given up after every retry; the queue shows those not yet re-driven.": (
            "Gửi lỗi: đã thử đẩy đi hết số lần; hàng đợi cho biết số chưa được gửi lại."
        ),
    }
)


def install(console: Console) -> None:
    console.menu("dashboard", "Dashboard")

    @console.page("/", endpoint="dashboard")
    def dashboard(user: ConsoleUser) -> Response:
        board = console.services.dashboard.overview(scope=user.principal.scope)
        lang: str = g.get("console_lang", i18n.DEFAULT)
        return console.render(
            "dashboard.html",
            title="Dashboard",
            board=board,
            labels=LABELS,
            cards=CARDS,
            figures=FIGURES,
            rules=("late_sending", *DELIVERY_RULES),
            href=_hrefs(board),
            volume_chart=_volume_chart(board, lang),
            lateness_chart=_lateness_chart(board, lang),
        )

    @console.page("", endpoint="root")
    def root(user: ConsoleUser) -> Response:
        return redirect(f"{PREFIX}/", 308)  # type: ignore[return-value]


def _hrefs(board: Dashboard) -> Callable[..., str | None]:
    """``href(figure, first=None, last=None, open=False)``: the page listing a figure's documents for those days
    (default: the whole dashboard period), or None when no page lists them."""

    def href(figure: str, first: date | None = None, last: date | None = None, open: bool = False) -> str | None:
        if open and figure == "dead":
            return f"{PREFIX}/dead-letters"
        params = _FILTERS.get(figure)
        if params is None:
            return None
        query = {"from": (first or board.first_day).isoformat(), "to": (last or board.today.day).isoformat()}
        query.update(params)
        if open and "flag" in params:
            query["flag"] = f"{params['flag']}:open"
        return f"{PREFIX}/documents?{urlencode(query)}"

    return href


def _day_label(day: date) -> str:
    return day.strftime("%d/%m")


def _volume_chart(board: Dashboard, lang: str) -> object:
    labels = [_day_label(d.day) for d in board.days]
    series = [Series(i18n.translate(LABELS[f], lang), [d[f] for d in board.days]) for f in VOLUME]
    return bar_chart(i18n.translate("Deliveries per day, by outcome", lang), labels, series)


def _lateness_chart(board: Dashboard, lang: str) -> object:
    labels = [_day_label(d.day) for d in board.days]
    series = [Series(i18n.translate(LABELS[f], lang), [d[f] for d in board.days]) for f in LATENESS]
    return line_chart(i18n.translate("Late and not taken per day", lang), labels, series)
