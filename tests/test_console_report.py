"""The console's Report page (issue 12 item 1 "Report") against a real gunicorn gateway over a seeded month of
history (tests/consolerig.py), on SQLite and PostgreSQL.

The expected numbers come from elsewhere: the admin API's ``GET /admin/v1/report`` (with a token) and
``AdminTracking.report`` called in this process over the same database, for the same period, unit and ``as_of`` —
the page, the print page, the workbook and the CSV must show exactly those. Scope: ``sam`` (scoped to DEPT) asking
for the root or another department gets 404 (decided in pages_report's docstring), never another unit's row.
"""

from __future__ import annotations

import csv
import io
import re
import secrets
from collections.abc import Iterator
from datetime import date
from typing import Any
from urllib.parse import urlencode

import openpyxl
import pytest
import requests
from consolerig import DEPT, HISTORY, OTHER_DEPT, ROOT, ConsoleGateway, console_gateway, text_of

from gateway.services.admin import AdminServices
from gateway.tracking.calendar import local_date, local_start
from gateway.web.console.report_view import FEEDBACK, preset_period

TOKEN = secrets.token_urlsafe(24)
FIRST, LAST = local_date(HISTORY.since), local_date(HISTORY.now)
AS_OF = HISTORY.now.isoformat()
PERIOD = {"from": FIRST.isoformat(), "to": LAST.isoformat(), "as_of": AS_OF}
RULES = ("late_sending", "late_receipt", "not_taken", "not_registered", "overdue")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def gw(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, pki: Any) -> Iterator[ConsoleGateway]:
    tmp = tmp_path_factory.mktemp("console-report")
    url = f"sqlite:///{tmp / 'gateway.db'}"
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_cluster").new_database()
    with console_gateway(tmp, url, pki, ADMIN_TOKEN=TOKEN) as gw:
        yield gw


# ---------------------------------------------------------------------------------------------- expected figures


def admin_report(gw: ConsoleGateway, **args: str) -> dict[str, Any]:
    r = requests.get(
        f"{gw.base}/admin/v1/report?{urlencode(args)}", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60
    )
    assert r.status_code == 200, r.text
    return r.json()


def service_report(gw: ConsoleGateway, agency: str | None = None, scope: str | None = None) -> dict[str, Any]:
    store = gw.store()
    try:
        tracking = AdminServices.over(store, gw.settings).tracking
        since, until = local_start(FIRST), local_start(date.fromordinal(LAST.toordinal() + 1))
        report = tracking.report(since, until, agency=agency, as_of=HISTORY.now, scope=scope)
        return report.to_dict()
    finally:
        store.engine.dispose()


def english(value: float | None, digits: int = 0) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def expected_summary(report: dict[str, Any], *, whole: bool) -> dict[str, dict[str, str]]:
    """Per row key, the summary table's cells as an English page must print them."""
    units = [(a["organ_id"], a["total"]) for a in report["agencies"]]
    units += [("external", report["external"])] if whole else []
    units.append(("total", report["total"]))
    out = {}
    for key, f in units:
        cells = {
            "sent": english(f["sent"]),
            "received": english(f["received"]),
            "signed": english(f["signatures"]["valid"]["count"]),
            "signed_percent": english(f["signatures"]["valid"]["percent"], 1),
            "dead_letters": english(f["dead_letters"]),
        }
        for rule in RULES:
            cells[rule] = english(f["rules"][rule]["count"])
            cells[f"{rule}_percent"] = english(f["rules"][rule]["percent"], 1)
        out[key] = cells
    return out


def expected_timing(report: dict[str, Any]) -> dict[str, dict[str, str]]:
    out = {}
    for a in report["agencies"]:
        cells = {}
        for key, figures in a["total"]["latency_seconds"].items():
            cells[f"{key}_count"] = english(figures["count"])
            for q in ("median", "p90"):
                cells[f"{key}_{q}"] = english(None if figures[q] is None else figures[q] / 3600, 1)
        out[a["organ_id"]] = cells
    return out


# ---------------------------------------------------------------------------------------------- reading pages


def table(page: str, table_id: str) -> dict[str, dict[str, str]]:
    """``<table id=…>``'s rows by ``data-unit``: {data-key: the cell's text}."""
    body = re.search(rf'(?s)<table id="{table_id}">(.*?)</table>', page)
    assert body, f"no table {table_id}"
    rows = {}
    for unit, cells in re.findall(r'(?s)<tr data-unit="([^"]+)"[^>]*>(.*?)</tr>', body.group(1)):
        rows[unit] = {k: text_of(v) for k, v in re.findall(r'(?s)<td class="num" data-key="([^"]+)">(.*?)</td>', cells)}
    return rows


def chart(page: str, name: str) -> str:
    found = re.search(rf'(?s)<figure id="chart-{name}">(.*?)</figure>', page)
    assert found, f"no chart {name}"
    return found.group(1)


def english_client(gw: ConsoleGateway, who: str) -> Any:
    c = gw.client(who)
    assert c.get("/console/report?lang=en").status_code == 303
    return c


# ---------------------------------------------------------------------------------------------- the page


def test_the_page_shows_the_admin_apis_report_figure_for_figure(gw):
    expected = admin_report(gw, **PERIOD)
    assert expected == service_report(gw)  # the two references agree before the page is compared with them
    page = english_client(gw, "vera").get(f"/console/report?{urlencode(PERIOD)}")
    assert page.status_code == 200, page.text
    assert expected["total"]["sent"] > 50 and expected["total"]["rules"]["not_taken"]["count"] > 0  # real history
    assert table(page.text, "summary") == expected_summary(expected, whole=True)
    timing = table(page.text, "timing")
    assert {k: v for k, v in timing.items() if k not in ("external", "total")} == expected_timing(expected)
    feedback = table(page.text, "feedback")
    for a in expected["agencies"]:
        assert feedback[a["organ_id"]] == {k: english(a["total"]["feedback_units"][k]) for k, _l, _s in FEEDBACK}
    text = text_of(page.text)
    assert "Decision-28 report" in text and "All agencies of the axis" in text
    assert f"{FIRST:%d/%m/%Y} – {LAST:%d/%m/%Y}" in text


def test_vietnamese_is_the_default_with_vietnamese_numbers(gw):
    expected = admin_report(gw, **PERIOD)
    page = gw.client("vera").get(f"/console/report?{urlencode(PERIOD)}")
    assert page.status_code == 200
    text = text_of(page.text)
    assert "Báo cáo theo Quyết định 28/2018/QĐ-TTg" in text and "Tỷ lệ ký số" in text
    percent = expected["total"]["signatures"]["valid"]["percent"]
    vietnamese = f"{percent:,.1f}".replace(",", " ").replace(".", ",").replace(" ", ".")
    assert table(page.text, "summary")["total"]["signed_percent"] == vietnamese


def test_charts_are_svg_with_one_bar_per_unit_and_the_reports_values(gw):
    """The chosen unit and each unit directly below it get one bar (their subtrees' figures, as in the table)."""
    expected = admin_report(gw, **PERIOD)
    charted = [a for a in expected["agencies"] if a["depth"] <= 1]
    assert charted[0]["organ_id"] == ROOT and {a["depth"] for a in charted[1:]} == {1}
    assert len(charted) == 4  # the province and its three departments
    page = english_client(gw, "vera").get(f"/console/report?{urlencode(PERIOD)}").text
    signed = chart(page, "signed")
    assert signed.startswith("<svg") and 'role="img"' in signed and "<title" in signed
    bars = re.findall(r'<rect class="series-0"[^>]*><title>([^<]*) · Signed: ([^<]*)</title></rect>', signed)
    with_documents = [a for a in charted if a["total"]["signatures"]["valid"]["percent"]]
    assert len(bars) == len(with_documents) == 4
    for (label, value), a in zip(bars, with_documents, strict=True):
        assert a["name"].startswith(label.rstrip("…")) and float(value) == a["total"]["signatures"]["valid"]["percent"]
    feedback = chart(page, "feedback")
    for i, (key, _label, legend) in enumerate(FEEDBACK):
        drawn = re.findall(rf'<rect class="series-{i}"[^>]*><title>[^<]* · {legend}: ([^<]*)</title></rect>', feedback)
        assert [int(v) for v in drawn] == [
            a["total"]["feedback_units"][key] for a in charted if a["total"]["feedback_units"][key]
        ]
    timing = chart(page, "timing")
    median = expected["total"]["latency_seconds"]["t01"]["median"]
    assert f"Arrived (01) · Median: {median / 3600:g}</title>" in timing


def test_the_printable_page_has_no_navigation_and_the_same_numbers(gw):
    c = english_client(gw, "vera")
    page = c.get(f"/console/report?{urlencode(PERIOD)}").text
    link = re.search(r'href="(/console/report/print\?[^"]+)"', page)
    assert link
    printed = c.get(link.group(1).replace("&amp;", "&"))
    assert printed.status_code == 200 and printed.headers["Cache-Control"] == "no-store"
    assert "<nav" not in printed.text and "<form" not in printed.text and "/console/documents" not in printed.text
    assert re.search(r'<button type="button" data-print>', printed.text)
    for name in ("summary", "feedback", "timing"):
        assert table(printed.text, name) == table(page, name)
    assert table(printed.text, "summary") == expected_summary(admin_report(gw, **PERIOD), whole=True)


# ---------------------------------------------------------------------------------------------- downloads


def test_the_xlsx_and_the_csv_hold_the_admin_apis_numbers_and_are_audited(gw):
    expected = admin_report(gw, agency=DEPT, **PERIOD)
    c = gw.client("vera")
    args = urlencode({**PERIOD, "agency": DEPT})
    r = c.get(f"/console/report/xlsx?{args}")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/vnd.openxmlformats")
    assert r.headers["Content-Disposition"] == (
        f'attachment; filename="bao-cao-qd28_{DEPT}_{FIRST.isoformat()}_{LAST.isoformat()}.xlsx"'
    )
    book = openpyxl.load_workbook(io.BytesIO(r.content))
    sheet = list(book["Tổng hợp"].iter_rows(values_only=True))
    by_unit = {row[0]: row for row in sheet[1:] if row[0]}
    assert list(by_unit) == [a["organ_id"] for a in expected["agencies"]]
    for a in expected["agencies"]:
        f = a["total"]
        row = by_unit[a["organ_id"]]
        assert row[3:7] == (
            f["sent"],
            f["received"],
            f["signatures"]["valid"]["count"],
            f["signatures"]["valid"]["percent"],
        )
        assert row[7] == f["rules"]["late_sending"]["count"] and row[-1] == f["dead_letters"]
    total = next(row for row in sheet if row[1] == "Tổng cộng")
    assert total[3:5] == (expected["total"]["sent"], expected["total"]["received"])

    r = c.get(f"/console/report/csv?{args}")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/csv")
    assert r.headers["Content-Disposition"].endswith(f'_{DEPT}_{FIRST.isoformat()}_{LAST.isoformat()}.csv"')
    assert r.content.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    by_unit_csv = {row[0]: row for row in rows[1:] if row[0]}
    assert {k: (int(v[3]), int(v[4])) for k, v in by_unit_csv.items()} == {
        a["organ_id"]: (a["total"]["sent"], a["total"]["received"]) for a in expected["agencies"]
    }

    store = gw.store()
    try:
        audit = store.audit.entries(action="console.report.download")
    finally:
        store.engine.dispose()
    formats = [(e.system_id, e.detail["format"], e.detail["agency"]) for e in audit if e.detail["as_of"] == AS_OF]
    assert ("operator:vera", "xlsx", DEPT) in formats and ("operator:vera", "csv", DEPT) in formats


def test_download_links_pin_the_pages_evaluation_time(gw):
    page = gw.client("vera").get(f"/console/report?from={FIRST.isoformat()}&to={LAST.isoformat()}").text
    link = re.search(r'href="/console/report/xlsx\?([^"]+)"', page)
    assert link and "as_of=" in link.group(1)
    shown = re.search(r'<time datetime="([^"]+)">', page)
    assert shown and f"as_of={shown.group(1).replace('+', '%2B').replace(':', '%3A')}" in link.group(1)


# ---------------------------------------------------------------------------------------------- scope


def test_a_scoped_operator_gets_its_subtree_and_nothing_else(gw):
    expected = admin_report(gw, agency=DEPT, **PERIOD)
    assert expected == service_report(gw, scope=DEPT)
    whole = admin_report(gw, **PERIOD)
    outside = {a["organ_id"] for a in whole["agencies"]} - {a["organ_id"] for a in expected["agencies"]}
    assert ROOT in outside and OTHER_DEPT in outside
    c = english_client(gw, "sam")
    page = c.get(f"/console/report?{urlencode(PERIOD)}")  # no agency: the scope
    assert page.status_code == 200
    assert table(page.text, "summary") == expected_summary(expected, whole=False)
    picker = re.search(r'(?s)<select id="r-agency" name="agency">(.*?)</select>', page.text)
    assert picker and set(re.findall(r'<option value="([^"]*)"', picker.group(1))) == {
        a["organ_id"] for a in expected["agencies"]
    }
    assert not any(organ in page.text for organ in outside)
    for agency in (ROOT, OTHER_DEPT, "000.00.99.H53"):
        args = urlencode({**PERIOD, "agency": agency})
        for path in ("/console/report", "/console/report/print", "/console/report/xlsx", "/console/report/csv"):
            r = c.get(f"{path}?{args}")
            assert r.status_code == 404 and r.headers["Content-Type"].startswith("text/html"), (path, agency)
            assert "Content-Disposition" not in r.headers
    r = c.get(f"/console/report/csv?{urlencode(PERIOD)}")
    assert r.status_code == 200 and f"_{DEPT}_" in r.headers["Content-Disposition"]
    assert {row[0] for row in csv.reader(io.StringIO(r.content.decode("utf-8-sig"))) if row[0]} - {"Mã định danh"} == {
        a["organ_id"] for a in expected["agencies"]
    }


# ---------------------------------------------------------------------------------------------- bad periods


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"from": "2026-03-31", "to": "2026-03-01"}, "Ngày kết thúc trước ngày bắt đầu."),
        ({"from": "31/03/2026", "to": "2026-04-30"}, "Nhập ngày theo dạng yyyy-mm-dd"),
        ({"from": "2024-01-01", "to": "2026-01-01"}, "Một báo cáo chỉ bao gồm tối đa một năm."),
        ({"from": "2026-03-01"}, "Cần nhập cả ngày đầu và ngày cuối"),
        ({"from": "2026-03-01", "to": "2026-03-31", "depth": "all"}, "Không lập được báo cáo với các tham số này."),
    ],
)
def test_a_bad_period_gives_the_form_again_with_what_is_wrong(gw, args, message):
    c = gw.client("vera")
    for path in ("/console/report", "/console/report/xlsx", "/console/report/csv", "/console/report/print"):
        r = c.get(f"{path}?{urlencode(args)}")
        assert r.status_code == 400 and r.headers["Content-Type"].startswith("text/html")
        assert message in text_of(r.text)
        assert '<form method="get" action="/console/report"' in r.text and 'id="summary"' not in r.text
        assert f'value="{args["from"]}"' in r.text  # what was typed stays in the form


def test_presets_name_whole_calendar_periods():
    assert preset_period("this-month", date(2026, 2, 15)) == (date(2026, 2, 1), date(2026, 2, 28))
    assert preset_period("last-month", date(2026, 1, 15)) == (date(2025, 12, 1), date(2025, 12, 31))
    assert preset_period("this-quarter", date(2026, 5, 2)) == (date(2026, 4, 1), date(2026, 6, 30))
    assert preset_period("this-quarter", date(2026, 12, 31)) == (date(2026, 10, 1), date(2026, 12, 31))
    assert preset_period("this-year", date(2028, 2, 29)) == (date(2028, 1, 1), date(2028, 12, 31))


def test_the_default_period_is_this_month_and_presets_are_links(gw):
    page = gw.client("vera").get("/console/report")
    assert page.status_code == 200 and 'id="summary"' in page.text
    first, last = preset_period("this-month", local_date(HISTORY.now))
    assert f'value="{first.isoformat()}"' in page.text and f'value="{last.isoformat()}"' in page.text
    last_month = preset_period("last-month", local_date(HISTORY.now))
    assert f'href="/console/report?from={last_month[0].isoformat()}&amp;to={last_month[1].isoformat()}"' in page.text
