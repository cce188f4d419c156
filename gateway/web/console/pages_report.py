"""The console's Report page (issue 12 item 1, "Report"): the Decision-28 report for a period and a subtree, with
charts and tables, and the same report as an Excel workbook, CSV and a page laid out for paper.

One source for every number: the page asks :meth:`AdminTracking.report` once, with the parameters read by
:func:`gateway.web.admin_tracking.report_query` — the parser of ``GET /admin/v1/report`` — and the caller's scope,
and lays out ``Report.to_dict()``. The workbook (:mod:`gateway.services.report_xlsx`), the CSV
(:func:`gateway.services.report_export.to_csv`) and the print page render that same JSON, so none of them can
disagree with the screen or with the admin API.

Periods are local dates (Vietnam time), ``from`` and ``to`` inclusive; without either the page shows this month.
Downloads and the print page pin ``as_of`` to the evaluation time of the page they were reached from, so what is
downloaded holds the numbers that were on the screen, however long after it is fetched.

Scope: a scoped operator's report is its own subtree by default, and at most. Asking for a unit outside it (the
province root, a sibling department) is answered 404, like any unit the operator cannot see — not clamped to the
scope (a report headed with one unit and holding another's figures must not reach an official letter) and not
403 (which would confirm that the unit exists).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from io import BytesIO
from typing import Any, Final
from urllib.parse import urlencode

from flask import Response, g, request, url_for

from gateway.errors import NotFoundError, RequestError
from gateway.services.admin_roles import Role
from gateway.services.operators import ConsoleUser
from gateway.services.report_export import to_csv
from gateway.services.report_xlsx import write_xlsx
from gateway.services.tracking import MAX_PERIOD
from gateway.tracking.calendar import local_date
from gateway.web.admin_tracking import ReportQuery, report_query
from gateway.web.console import i18n, report_view
from gateway.web.console.edge import Console

XLSX_TYPE: Final = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
#: What a bad period is told, by the parameter the shared parser names.
_DATE = "Write the dates as yyyy-mm-dd, for example 2026-03-31."
_MISSING = "Give both the first and the last day of the period."
_ORDER = "The period ends before it starts."
_LENGTH = "A report covers at most one year."
_OTHER = "This report cannot be made from these parameters."


class ReportPage:
    """The report's routes over one console: the page, the print layout and the two downloads."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.tracking = console.services.admin.tracking

    # ------------------------------------------------------------------------------------------ asking

    def asked(self, user: ConsoleUser) -> ReportQuery:
        """The request's report parameters, checked against the caller's scope (NOT_FOUND outside it) and the
        service's longest period (REQUEST.INVALID, parameter ``period``)."""
        today = local_date(datetime.now(UTC))
        query = report_query(default=report_view.preset_period("this-month", today))
        if query.until - query.since > MAX_PERIOD:
            raise RequestError("a report covers at most one year", parameter="length")
        visible = self.tracking.visible(user.principal.scope)
        if query.agency is not None and visible is not None and query.agency not in visible:
            raise NotFoundError(f"no agency {query.agency} in the scope {user.principal.scope}")
        return query

    def report(self, user: ConsoleUser) -> Response | tuple[ReportQuery, dict[str, Any]]:
        """(query, the report's JSON), or the report page's form again with what is wrong (HTTP 400) — also for
        a download or the print page, which have no form of their own."""
        try:
            query = self.asked(user)
            return query, query.run(self.tracking, user.principal.scope).to_dict()
        except RequestError as exc:
            problem = _problem(exc)
            detail = exc.message if problem == _OTHER else ""  # the known cases need no English detail
            return self.form(user, "report.html", problem=problem, detail=detail, code=400)

    # ------------------------------------------------------------------------------------------ pages

    def form(
        self,
        user: ConsoleUser,
        template: str,
        *,
        query: ReportQuery | None = None,
        report: Mapping[str, Any] | None = None,
        problem: str = "",
        detail: str = "",
        code: int = 200,
    ) -> Response:
        """The report page (or its print layout): the form, and the report when there is one."""
        scope = user.principal.scope
        agency = query.agency if query is not None else request.args.get("agency") or None
        options = report_view.agency_options(
            self.console.services.registry.list_agencies(), self.tracking.visible(scope)
        )
        context: dict[str, Any] = {
            "title": "Decision-28 report",
            "form": {k: request.args.get(k, "") for k in ("from", "to")},
            "options": options,
            "selected": agency or scope or "",
            "whole_allowed": scope is None,
            "presets": self._presets(agency),
            "problem": problem,
            "detail": detail,
            "report": None,
        }
        if query is not None and report is not None:
            context.update(self._laid_out(user, query, report))
            context["form"] = {"from": query.first.isoformat(), "to": query.last.isoformat()}
        return self.console.render(template, code=code, **context)

    def _laid_out(self, user: ConsoleUser, query: ReportQuery, report: Mapping[str, Any]) -> dict[str, Any]:
        lang = g.get("console_lang", i18n.DEFAULT)

        def t(msgid: str) -> str:
            return i18n.translate(msgid, lang)

        whole = query.agency is None and user.principal.scope is None
        table = report_view.rows(report, whole=whole, t=t)
        pinned = _args(query, report)
        return {
            "report": report,
            "query": query,
            "as_of": datetime.fromisoformat(report["as_of"]),
            "unit": t("All agencies of the axis") if whole else report["agencies"][0]["name"],
            "unit_id": "" if whole else report["agencies"][0]["organ_id"],
            "rows": table,
            "charts": report_view.charts(report, table, t),
            "rules": report_view.RULES,
            "feedback": report_view.FEEDBACK,
            "milestones": report_view.MILESTONES,
            "links": {
                name: f"{url_for(f'console.{endpoint}')}?{pinned}"
                for name, endpoint in (("xlsx", "report_xlsx"), ("csv", "report_csv"), ("print", "report_print"))
            }
            | {"page": f"{url_for('console.report')}?{pinned}"},
        }

    def _presets(self, agency: str | None) -> list[dict[str, str]]:
        today = local_date(datetime.now(UTC))
        out = []
        for preset, label in report_view.PRESETS:
            first, last = report_view.preset_period(preset, today)
            args = {"from": first.isoformat(), "to": last.isoformat(), **({"agency": agency} if agency else {})}
            out.append({"label": label, "href": f"{url_for('console.report')}?{urlencode(args)}"})
        return out

    def page(self, user: ConsoleUser, template: str) -> Response:
        answer = self.report(user)
        if isinstance(answer, Response):
            return answer
        query, report = answer
        return self.form(user, template, query=query, report=report)

    # ------------------------------------------------------------------------------------------ downloads

    def download(self, user: ConsoleUser, fmt: str) -> Response:
        """The report as a file, audited (who, which format, period and unit)."""
        answer = self.report(user)
        if isinstance(answer, Response):
            return answer
        query, report = answer
        if fmt == "xlsx":
            buffer = BytesIO()
            write_xlsx(report, buffer)
            body, mimetype = buffer.getvalue(), XLSX_TYPE
        else:
            body, mimetype = to_csv(report).encode("utf-8"), "text/csv; charset=utf-8"
        unit = query.agency or user.principal.scope
        self.console.services.operators.audit(
            user,
            "report.download",
            format=fmt,
            agency=unit,
            period=f"{query.first.isoformat()}/{query.last.isoformat()}",
            as_of=report["as_of"],
        )
        response = Response(body, 200, mimetype=mimetype)
        response.headers["Content-Disposition"] = f'attachment; filename="{filename(query, unit, fmt)}"'
        return response


def filename(query: ReportQuery, unit: str | None, fmt: str) -> str:
    """``bao-cao-qd28_<unit or toan-truc>_<first>_<last>.<fmt>``: the period and the unit, in ASCII (an OrganId is
    letters, digits and dots)."""
    return f"bao-cao-qd28_{unit or 'toan-truc'}_{query.first.isoformat()}_{query.last.isoformat()}.{fmt}"


def _args(query: ReportQuery, report: Mapping[str, Any]) -> str:
    """The query string that asks for this very report again (``as_of`` pinned to its evaluation time)."""
    args = {"from": query.first.isoformat(), "to": query.last.isoformat()}
    if query.agency:
        args["agency"] = query.agency
    if query.depth is not None:
        args["depth"] = str(query.depth)
    args["as_of"] = report["as_of"]
    return urlencode(args)


def _problem(exc: RequestError) -> str:
    """The message id that tells the operator what is wrong with the period (the service's text is the detail)."""
    parameter = exc.detail.get("parameter")
    if parameter in ("from", "to"):
        return _DATE
    if parameter == "period":
        return _ORDER if request.args.get("from") and request.args.get("to") else _MISSING
    return _LENGTH if parameter == "length" else _OTHER


def install(console: Console) -> None:
    pages = ReportPage(console)
    console.menu("report", "Report")

    @console.page("/report", endpoint="report", role=Role.VIEWER)
    def report(user: ConsoleUser) -> Response:
        return pages.page(user, "report.html")

    @console.page("/report/print", endpoint="report_print", role=Role.VIEWER)
    def report_print(user: ConsoleUser) -> Response:
        return pages.page(user, "report_print.html")

    @console.page("/report/xlsx", endpoint="report_xlsx", role=Role.VIEWER)
    def report_xlsx(user: ConsoleUser) -> Response:
        return pages.download(user, "xlsx")

    @console.page("/report/csv", endpoint="report_csv", role=Role.VIEWER)
    def report_csv(user: ConsoleUser) -> Response:
        return pages.download(user, "csv")


_MESSAGES: Final = {
    "Decision-28 report": "Báo cáo theo Quyết định 28/2018/QĐ-TTg",
    _DATE: "Nhập ngày theo dạng yyyy-mm-dd, ví dụ 2026-03-31.",
    _MISSING: "Cần nhập cả ngày đầu và ngày cuối của kỳ báo cáo.",
    _ORDER: "Ngày kết thúc trước ngày bắt đầu.",
    _LENGTH: "Một báo cáo chỉ bao gồm tối đa một năm.",
    _OTHER: "Không lập được báo cáo với các tham số này.",
    "All agencies of the axis": "Toàn bộ cơ quan trên trục",
    "From": "Từ ngày",
    "To": "Đến ngày",
    "Agency": "Cơ quan, đơn vị",
    "Show": "Xem",
    "Periods": "Kỳ báo cáo",
    "Downloads": "Tải về",
    "Excel workbook (xlsx)": "Bảng tính Excel (xlsx)",
    "CSV": "CSV",
    "Printable page": "Bản in",
    "Print": "In",
    "Back to the report": "Quay lại báo cáo",
    "Period": "Kỳ báo cáo",
    "Evaluated at": "Thời điểm đánh giá",
    "Summary": "Tổng hợp",
    "Sent": "Đã gửi",
    "Received": "Đã nhận",
    "Signed share": "Tỷ lệ ký số",
    "Dead letters": "Gửi lỗi",
    "Unit": "Đơn vị",
    "OrganId": "Mã định danh",
    "Documents": "Văn bản",
    "Status feedback": "Phản hồi trạng thái",
    "Timing": "Thời gian xử lý",
    "Deliveries": "Lượt chuyển",
    "Hours": "Giờ",
    "Signed, valid": "Ký số hợp lệ",
    "Late sending, late receipt, not taken, not registered, overdue: count and share of the documents or "
    "deliveries each rule applies to.": "Gửi muộn, chậm báo đã nhận, chưa nhận về, chưa vào sổ, quá hạn xử lý: số "
    "lượng và tỷ lệ trên số văn bản hoặc lượt chuyển mà mỗi quy tắc áp dụng.",
    "Each agency's figures include the units below it.": "Số liệu của mỗi cơ quan gồm cả các đơn vị trực thuộc.",
    "Receiving units by the number of distinct statuses they reported.": "Số đơn vị nhận theo số trạng thái khác "
    "nhau đã phản hồi.",
    "Time from a document becoming available to the recipient's status, in hours.": "Thời gian từ khi văn bản sẵn "
    "sàng cho đơn vị nhận đến khi có trạng thái, tính bằng giờ.",
    "Count": "Số lượng",
}

i18n.register(report_view.MESSAGES | _MESSAGES)

__all__ = ["XLSX_TYPE", "ReportPage", "filename", "install"]
