"""What the Report page lays out, computed from ``Report.to_dict()`` only (pure functions: no Flask, no store).

The page (:mod:`gateway.web.console.pages_report`) asks the service once; everything here reads that JSON: the rows
of the tables (each agency with its subtree's figures, as the workbook's sheets have them), the charts, the agency
picker's tree and the period presets. Nothing is counted again here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Final, Protocol

from markupsafe import Markup

from gateway.web.console.charts import Series, bar_chart, line_chart

#: The period presets of the form, in the order they are offered (ids in links, English labels for ``_()``).
PRESETS: Final = (
    ("this-month", "This month"),
    ("last-month", "Last month"),
    ("this-quarter", "This quarter"),
    ("this-year", "This year"),
)
#: The Decision-28 rules, in the report's order: (JSON name, English label).
RULES: Final = (
    ("late_sending", "Late sending"),
    ("late_receipt", "Late receipt"),
    ("not_taken", "Not taken"),
    ("not_registered", "Not registered"),
    ("overdue", "Overdue"),
)
#: Status-feedback buckets (distinct statuses a receiving unit reported): (JSON key, English label, the chart's
#: legend — short, as the legend is one line under the chart).
FEEDBACK: Final = (
    ("5+", "5 statuses or more", "≥ 5"),
    ("3-4", "3–4 statuses", "3–4"),
    ("1-2", "1–2 statuses", "1–2"),
    ("0", "No status", "0"),
)
#: The timing milestones: (JSON key, English label) — time from availability to the recipient's status.
MILESTONES: Final = (
    ("t01", "Arrived (01)"),
    ("t03", "Accepted (03)"),
    ("t06", "Done (06)"),
)
Translate = Callable[[str], str]


class AgencyLike(Protocol):
    """Met by the registry's ``AgencyRecord``."""

    @property
    def organ_id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def parent(self) -> str | None: ...


@dataclass(frozen=True)
class Option:
    """One agency of the picker, indented by its depth in the tree."""

    organ_id: str
    name: str
    depth: int


@dataclass(frozen=True)
class Row:
    """One line of the report's tables: an agency (its subtree's figures), the external units, or the total."""

    key: str
    organ_id: str
    name: str
    depth: int
    figures: Mapping[str, Any]


def month_end(day: date) -> date:
    following = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return following - timedelta(days=1)


def preset_period(preset: str, today: date) -> tuple[date, date]:
    """The whole calendar month, quarter or year (as an official report names its period), ``today`` local."""
    if preset == "last-month":
        end = today.replace(day=1) - timedelta(days=1)
        return end.replace(day=1), end
    if preset == "this-quarter":
        first = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
        return first, month_end(date(first.year, first.month + 2, 1))
    if preset == "this-year":
        return date(today.year, 1, 1), date(today.year, 12, 31)
    first = today.replace(day=1)
    return first, month_end(first)


def agency_options(records: Iterable[AgencyLike], visible: set[str] | None) -> list[Option]:
    """The agencies a caller may report on (``visible``; None: all), in tree order — children sorted by OrganId,
    as the report's rows are. A unit whose parent is not visible starts a tree of its own."""
    units = {r.organ_id: r for r in records if visible is None or r.organ_id in visible}
    children: dict[str | None, list[str]] = {}
    for r in units.values():
        parent = r.parent if r.parent in units and r.parent != r.organ_id else None
        children.setdefault(parent, []).append(r.organ_id)
    out: list[Option] = []
    todo = [(top, 0) for top in sorted(children.get(None, []), reverse=True)]
    while todo:  # a parent loop (A → B → A) has no top and is never entered
        organ_id, depth = todo.pop()
        out.append(Option(organ_id, units[organ_id].name, depth))
        todo += [(child, depth + 1) for child in sorted(children.get(organ_id, []), reverse=True)]
    return out


def rows(report: Mapping[str, Any], *, whole: bool, t: Translate) -> list[Row]:
    """The agencies (subtree figures, as the workbook's sheets), then — for a whole-axis report — the units outside
    the registry, then the total."""
    out = [Row(a["organ_id"], a["organ_id"], a["name"], a["depth"], a["total"]) for a in report["agencies"]]
    if whole:
        out.append(Row("external", "", t("Units outside the registry"), 0, report["external"]))
    out.append(Row("total", "", t("Total"), 0, report["total"]))
    return out


def hours(seconds: float | None) -> float | None:
    return None if seconds is None else seconds / 3600


#: The width of a chart's plot in SVG units (charts.py draws 640 wide, 60 of them for the axis) and an average
#: character's width at its label size: a unit's name under its bar is cut to what its slot holds.
_PLOT_WIDTH, _CHAR_WIDTH = 580, 6.5


def short(name: str, slots: int) -> str:
    """``name`` cut to fit one of ``slots`` bars (the tables beside the chart give it whole)."""
    room = max(8, int(_PLOT_WIDTH / max(1, slots) / _CHAR_WIDTH))
    return name if len(name) <= room else name[: room - 1].rstrip() + "…"


def charts(report: Mapping[str, Any], table: Sequence[Row], t: Translate) -> dict[str, Markup]:
    """The three charts of the report: signed share and status-feedback buckets (stacked) for the chosen unit and
    each unit directly below it — one bar each, their subtrees' figures, as the table's first two levels — and
    the time to each status for the whole subtree (median and 90th percentile, in hours)."""
    units = [r for r in table if r.organ_id and r.depth <= 1]
    labels = [short(r.name, len(units)) for r in units]
    signed = [r.figures["signatures"]["valid"]["percent"] for r in units]
    feedback = [Series(legend, [r.figures["feedback_units"][key] for r in units]) for key, _l, legend in FEEDBACK]
    latency = report["total"]["latency_seconds"]
    return {
        "signed": bar_chart(t("Share of documents with a valid signature (%)"), labels, [Series(t("Signed"), signed)]),
        "feedback": bar_chart(t("Receiving units by the number of statuses they reported"), labels, feedback),
        "timing": line_chart(
            t("Time to each status (hours)"),
            [t(label) for _key, label in MILESTONES],
            [
                Series(t("Median"), [hours(latency[key]["median"]) for key, _l in MILESTONES]),
                Series(t("90th percentile"), [hours(latency[key]["p90"]) for key, _l in MILESTONES]),
            ],
        ),
    }


#: The English ids this module and the report templates use, with their Vietnamese text (registered by the page).
MESSAGES: Final = {
    "This month": "Tháng này",
    "Last month": "Tháng trước",
    "This quarter": "Quý này",
    "This year": "Năm nay",
    "Late sending": "Gửi muộn",
    "Late receipt": "Chậm báo đã nhận",
    "Not taken": "Chưa nhận về",
    "Not registered": "Chưa vào sổ",
    "Overdue": "Quá hạn xử lý",
    "5 statuses or more": "Phản hồi từ 5 trạng thái",
    "3–4 statuses": "Phản hồi 3–4 trạng thái",
    "1–2 statuses": "Phản hồi 1–2 trạng thái",
    "No status": "Không phản hồi trạng thái",
    "Arrived (01)": "Đã đến (01)",
    "Accepted (03)": "Tiếp nhận (03)",
    "Done (06)": "Hoàn thành (06)",
    "Units outside the registry": "Đơn vị ngoài danh bạ",
    "Total": "Tổng cộng",
    "Share of documents with a valid signature (%)": "Tỷ lệ văn bản ký số hợp lệ (%)",
    "Signed": "Ký số hợp lệ",
    "Receiving units by the number of statuses they reported": "Số đơn vị nhận theo số trạng thái đã phản hồi",
    "Time to each status (hours)": "Thời gian đến từng trạng thái (giờ)",
    "Median": "Trung vị",
    "90th percentile": "Phân vị 90",
}

__all__ = [
    "FEEDBACK",
    "MESSAGES",
    "MILESTONES",
    "PRESETS",
    "RULES",
    "Option",
    "Row",
    "agency_options",
    "charts",
    "month_end",
    "preset_period",
    "rows",
    "short",
]
