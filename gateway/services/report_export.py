"""The Decision-28 report laid out for people: the views (sheets) of a report, a fixed-width terminal table, and
CSV for Excel — all built from :meth:`gateway.tracking.report.Report.to_dict`, never from the database.

Rendering from the JSON form is deliberate: ``--format json``, the CSV, the terminal table and the workbook
(:mod:`gateway.services.report_xlsx`) then show the same numbers by construction, and a report fetched from the
admin API can be rendered again later. Headers are Vietnamese (the report goes into official correspondence);
latencies are shown in hours (the JSON keeps seconds), percentages next to their counts as the JSON has them.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway.edxml.codes import StatusCode
from gateway.tracking.calendar import show
from gateway.tracking.rules import Rule

DELIVERY_RULES = (Rule.LATE_RECEIPT, Rule.NOT_TAKEN, Rule.NOT_REGISTERED, Rule.OVERDUE)
LATENCIES = (("t01", StatusCode.ARRIVED), ("t03", StatusCode.ACCEPTED), ("t06", StatusCode.DONE))
FEEDBACK = (("5+", "Phản hồi từ 5 trạng thái"), ("3-4", "Phản hồi 3–4 trạng thái"), ("1-2", "Phản hồi 1–2 trạng thái"),
            ("0", "Không phản hồi trạng thái"))  # fmt: skip
EXTERNAL_NAME = "Đơn vị ngoài danh bạ"
TOTAL_NAME = "Tổng cộng"
#: The views, in workbook order (sheet names ≤ 31 characters, Excel's limit).
SUMMARY, LATENCY, FEEDBACK_SHEET, ACTIVE, REFUSALS, PARAMETERS = (
    "Tổng hợp", "Độ trễ", "Phản hồi trạng thái", "Đơn vị hoạt động", "Từ chối", "Tham số",
)  # fmt: skip
_ID, _NAME, _LEVEL = "Mã định danh", "Tên cơ quan, đơn vị", "Cấp"


@dataclass(frozen=True)
class Sheet:
    """One view: a title, Vietnamese column headers and rows of plain values (str, int, float or None)."""

    title: str
    headers: tuple[str, ...]
    rows: list[list[Any]]
    #: Per row, how deep in the agency tree it is (indentation); empty for views that are not per agency.
    depths: tuple[int, ...] = ()


def hours(seconds: float | None) -> float | None:
    return round(seconds / 3600, 2) if seconds is not None else None


def _units(report: Mapping[str, Any]) -> list[tuple[str, str, Any, int, Mapping[str, Any], Mapping[str, Any]]]:
    """(OrganId, name, level, depth, subtree figures, own figures) per row, then the external row and the total."""
    rows = [(a["organ_id"], a["name"], a["level"], a["depth"], a["total"], a["own"]) for a in report["agencies"]]
    rows.append(("", EXTERNAL_NAME, None, 0, report["external"], report["external"]))
    rows.append(("", TOTAL_NAME, None, 0, report["total"], report["total"]))
    return rows


def summary(report: Mapping[str, Any]) -> Sheet:
    headers = [_ID, _NAME, _LEVEL, "VB đã gửi", "VB đã nhận", "VB ký số hợp lệ", "Tỷ lệ ký số hợp lệ (%)"]
    for rule in (Rule.LATE_SENDING, *DELIVERY_RULES):
        headers += [rule.label_vi, f"{rule.label_vi} (%)"]
    headers.append("Không chuyển được")
    rows, depths = [], []
    for organ_id, name, level, depth, f, _own in _units(report):
        signed = f["signatures"]["valid"]
        row: list[Any] = [organ_id, name, level, f["sent"], f["received"], signed["count"], signed["percent"]]
        for rule in (Rule.LATE_SENDING, *DELIVERY_RULES):
            share = f["rules"][rule.value]
            row += [share["count"], share["percent"]]
        row.append(f["dead_letters"])
        rows.append(row)
        depths.append(depth)
    return Sheet(SUMMARY, tuple(headers), rows, tuple(depths))


def latency(report: Mapping[str, Any]) -> Sheet:
    headers = [_ID, _NAME]
    for _name, code in LATENCIES:
        label = f"{code.label_vi} ({code.value})"
        headers += [f"{label}: số VB", f"{label}: trung vị (giờ)", f"{label}: P90 (giờ)"]
    rows, depths = [], []
    for organ_id, name, _level, depth, f, _own in _units(report):
        row: list[Any] = [organ_id, name]
        for key, _code in LATENCIES:
            figures = f["latency_seconds"][key]
            row += [figures["count"], hours(figures["median"]), hours(figures["p90"])]
        rows.append(row)
        depths.append(depth)
    return Sheet(LATENCY, tuple(headers), rows, tuple(depths))


def feedback(report: Mapping[str, Any]) -> Sheet:
    headers = (_ID, _NAME, *(label for _key, label in FEEDBACK))
    units = _units(report)
    rows = [[o, n, *(f["feedback_units"][k] for k, _l in FEEDBACK)] for o, n, _lv, _d, f, _own in units]
    return Sheet(FEEDBACK_SHEET, headers, rows, tuple(d for _o, _n, _l, d, _f, _w in units))


def active(report: Mapping[str, Any]) -> Sheet:
    headers = (_ID, _NAME, "Đơn vị cấp 2", "Đơn vị cấp 3", "Đơn vị cấp 4")
    units = _units(report)
    rows = [[o, n, *(f["active_units_by_level"][lv] for lv in ("2", "3", "4"))] for o, n, _l, _d, f, _w in units]
    return Sheet(ACTIVE, headers, rows, tuple(d for _o, _n, _l, d, _f, _w in units))


def refusals(report: Mapping[str, Any]) -> Sheet:
    """Refused packages per agency the package claimed to come from (own figures: a subtree total would count
    each refusal once per ancestor)."""
    rows: list[list[Any]] = []
    for organ_id, name, _level, _depth, _f, own in _units(report)[:-1]:
        rows += [[organ_id, name, code, count] for code, count in own["refusals"].items()]
    for code, count in report["total"]["refusals"].items():
        rows.append(["", TOTAL_NAME, code, count])
    return Sheet(REFUSALS, (_ID, _NAME, "Mã lỗi", "Số gói tin bị từ chối"), rows)


_PARAMETER_NAMES = {
    "send_morning_end_hour": "Gửi muộn: hạn là giờ này sáng ngày làm việc kế tiếp",
    "urgent_send_hours": "Gửi muộn, VB khẩn (độ khẩn 1–4): số giờ kể từ 0 giờ ngày ban hành",
    "receipt_minutes": "Chậm báo đã nhận (01): số phút",
    "not_taken_minutes": "Chưa nhận về: số phút",
    "register_working_days": "Chưa vào sổ (03/02): số ngày làm việc",
    "extra_days_off": "Ngày nghỉ bổ sung",
    "make_up_working_days": "Ngày làm bù",
    "time_zone": "Múi giờ",
}


def parameters(report: Mapping[str, Any]) -> Sheet:
    rows: list[list[Any]] = [
        ["Từ thời điểm", _local(report["since"])],
        ["Đến thời điểm (không gồm)", _local(report["until"])],
        ["Thời điểm đánh giá", _local(report["as_of"])],
    ]
    for key, value in report["rules"].items():
        text = ", ".join(str(v) for v in value) if isinstance(value, list) else value
        rows.append([_PARAMETER_NAMES.get(key, key), text if text != "" else "—"])
    return Sheet(PARAMETERS, ("Tham số", "Giá trị"), rows)


def sheets(report: Mapping[str, Any]) -> list[Sheet]:
    return [summary(report), latency(report), feedback(report), active(report), refusals(report), parameters(report)]


def _local(iso: str) -> str:
    return show(datetime.fromisoformat(iso))


def to_csv(report: Mapping[str, Any]) -> str:
    """One row per agency (then external, then the total): the summary, latency, feedback and active-unit
    columns side by side. Starts with a UTF-8 byte-order mark, which Excel needs to read Vietnamese."""
    parts = [summary(report), latency(report), feedback(report), active(report)]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([*parts[0].headers, *(h for p in parts[1:] for h in p.headers[2:])])
    for i, row in enumerate(parts[0].rows):
        writer.writerow([_cell(v) for v in [*row, *(v for p in parts[1:] for v in p.rows[i][2:])]])
    return "\ufeff" + out.getvalue()


def _cell(value: Any) -> Any:
    return "" if value is None else value


_TABLE = (  # header, width, column of the summary sheet (or a latency column)
    ("Mã định danh", 16),
    ("Đơn vị", 30),
    ("Gửi", 6),
    ("Nhận", 6),
    ("Ký số%", 7),
    ("Gửi muộn", 9),
    ("Chậm 01", 8),
    ("Chưa nhận", 10),
    ("Chưa vào sổ", 12),
    ("Quá hạn", 8),
    ("Hỏng", 5),
    ("TV 01 (h)", 10),
)


def to_table(report: Mapping[str, Any]) -> str:
    """A fixed-width table for a terminal: one line per agency, indented by depth; percentages in the JSON."""
    s, lat = summary(report), latency(report)
    head = f"Báo cáo theo QĐ 28/2018 — {_local(report['since'])} đến {_local(report['until'])} (không gồm)"
    lines = [head, f"Đánh giá lúc {_local(report['as_of'])}", ""]
    lines.append(" ".join(h.ljust(w) if i < 2 else h.rjust(w) for i, (h, w) in enumerate(_TABLE)))
    lines.append(" ".join("-" * w for _h, w in _TABLE))
    for i, row in enumerate(s.rows):
        depth = s.depths[i]
        name = ("  " * depth + str(row[1]))[: _TABLE[1][1]]
        cells = [row[0], name, row[3], row[4], _pct(row[6]), row[7], row[9], row[11], row[13], row[15], row[17]]
        cells.append(_num(lat.rows[i][3]))
        lines.append(
            " ".join(
                str(c).ljust(w) if j < 2 else str(c if c is not None else "").rjust(w)
                for j, (c, (_h, w)) in enumerate(zip(cells, _TABLE, strict=True))
            )
        )
    return "\n".join(lines) + "\n"


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


__all__ = ["Sheet", "hours", "sheets", "to_csv", "to_table"]
