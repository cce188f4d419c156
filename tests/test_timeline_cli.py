"""``edoc-gateway documents list/show/refused`` and ``report`` on a real store (SQLite and PostgreSQL) filled by
real intake: the table, JSON and CSV outputs, and a real workbook re-opened with openpyxl whose sheets, headers and
values are the JSON report's (issue 9)."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from openpyxl import load_workbook
from test_services import SECRET_KEY, A, B, C, World, edoc, status
from test_services import keys as keys  # module fixtures of the shared world
from test_services import trust as trust
from test_services import world as world
from test_timeline import submit, take

from gateway.cli import main
from gateway.edxml import StatusCode
from gateway.errors import GatewayError
from gateway.services.report_export import LATENCY, PARAMETERS, REFUSALS, SUMMARY, hours
from gateway.tracking.calendar import local_date


def cli(config: Path, *args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(main, ["--config", str(config), *args], catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result


@pytest.fixture
def filled(world: World, database_url: str, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A settings file for the world's database, two documents 35 minutes old (one taken and answered with 01,
    one not taken by C) and one refused intake."""
    w = world
    config = tmp_path / "gateway.toml"
    config.write_text(f'database_url = "{database_url}"\ndata_dir = "{tmp_path}"\nsecret_key = "{SECRET_KEY}"\n')
    w.clock.now = datetime.now(UTC) - timedelta(minutes=35)
    data = edoc(recipients=(B, C), subject="Kế hoạch chuyển đổi số")
    docs = {"a": submit(w, data)}
    take(w, "sys-b", B, docs["a"])
    w.svc.submit("sys-b", w.signed(status(B, data, StatusCode.ARRIVED), B))
    docs["b"] = submit(w, edoc(recipients=(B,), number=424_242))
    with pytest.raises(GatewayError):
        w.svc.submit("sys-a", edoc(recipients=(B,)))  # unsigned: A's policy requires a signature
    return config, docs


def days() -> tuple[str, str]:
    now = datetime.now(UTC)
    return str(local_date(now - timedelta(days=1))), str(local_date(now + timedelta(days=1)))


def test_documents_list_table_json_and_filters(filled):
    config, docs = filled
    table = cli(config, "documents", "list").output
    assert docs["a"] in table and docs["b"] in table and "+07" in table and "delivered=1,queued=1" in table
    page = json.loads(cli(config, "documents", "list", "--json").output)
    assert [i["doc_id"] for i in page["items"]] == [docs["b"], docs["a"]] and page["next_cursor"] is None
    flagged = json.loads(cli(config, "documents", "list", "--flag", "not_taken:open", "--json").output)
    assert [i["doc_id"] for i in flagged["items"]] == [docs["b"], docs["a"]]
    scoped = json.loads(cli(config, "documents", "list", "--recipient", C, "--json").output)
    assert [i["doc_id"] for i in scoped["items"]] == [docs["a"]]
    text = json.loads(cli(config, "documents", "list", "--text", "CHUYỂN ĐỔI", "--json").output)
    assert [i["doc_id"] for i in text["items"]] == [docs["a"]]
    first, last = days()
    listing = ("documents", "list", "--from", first, "--to", last, "--limit", "1", "--json")
    period = json.loads(cli(config, *listing).output)
    assert [i["doc_id"] for i in period["items"]] == [docs["b"]] and period["next_cursor"]
    rest = cli(config, "documents", "list", "--limit", "1", "--cursor", period["next_cursor"], "--json").output
    assert [i["doc_id"] for i in json.loads(rest)["items"]] == [docs["a"]]
    bad = cli(config, "documents", "list", "--flag", "slow", code=1)
    assert "REQUEST.INVALID" in bad.output


def test_documents_show_tells_the_story(filled):
    config, docs = filled
    text = cli(config, "documents", "show", docs["a"]).output
    assert "signature:  valid" in text and "fingerprint" in text
    lines = [line for line in text.splitlines() if line.startswith("  ") and "+07" in line]
    assert any("intake" in line for line in lines) and any("fetched by sys-b" in line for line in lines)
    assert any("acknowledged done" in line for line in lines) and any("status 01" in line for line in lines)
    assert "rule not_taken       OPEN" in text
    story = json.loads(cli(config, "documents", "show", docs["a"], "--json").output)
    assert {r["recipient"] for r in story["recipients"]} == {B, C}
    missing = cli(config, "documents", "show", "0" * 32, code=1)
    assert "NOT_FOUND" in missing.output


def test_documents_refused_counts_by_code(filled):
    config, _docs = filled
    first, last = days()
    summary = json.loads(cli(config, "documents", "refused", "--from", first, "--to", last, "--json").output)
    assert summary["total"] == 1 and summary["rows"][0]["organ_id"] == A
    assert "refused: 1" in cli(config, "documents", "refused", "--from", first, "--to", last).output


def test_report_json_table_csv_and_a_workbook_that_matches_the_json(filled, tmp_path: Path):
    config, _docs = filled
    first, last = days()
    period = ("report", "--from", first, "--to", last)
    report = json.loads(cli(config, *period, "--format", "json").output)
    total = report["total"]
    assert (total["sent"], total["received"]) == (2, 3)
    assert total["rules"]["not_taken"]["count"] == 2 and sum(total["refusals"].values()) == 1
    table = cli(config, *period).output
    assert "Tổng cộng" in table and "Văn phòng UBND tỉnh Tây Ninh" in table

    out = tmp_path / "report.csv"
    cli(config, *period, "--format", "csv", "--output", str(out))
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0][:4] == ["Mã định danh", "Tên cơ quan, đơn vị", "Cấp", "VB đã gửi"]
    assert rows[-1][1] == "Tổng cộng" and rows[-1][3:5] == [str(total["sent"]), str(total["received"])]

    cli(config, *period, "--format", "xlsx", code=2)  # a workbook needs a file
    book_path = tmp_path / "report.xlsx"
    cli(config, *period, "--format", "xlsx", "--output", str(book_path), "--as-of", report["as_of"])
    again = json.loads(cli(config, *period, "--format", "json", "--as-of", report["as_of"]).output)
    book = load_workbook(book_path)
    assert book.sheetnames[0] == SUMMARY and {LATENCY, REFUSALS, PARAMETERS} <= set(book.sheetnames)
    summary = book[SUMMARY]
    assert summary.freeze_panes == "C2" and all(cell.font.bold for cell in summary[1])
    headers = [c.value for c in summary[1]]
    grid = {row[1]: dict(zip(headers, row, strict=True)) for row in summary.iter_rows(min_row=2, values_only=True)}
    assert grid["Tổng cộng"]["VB đã gửi"] == again["total"]["sent"]
    assert grid["Tổng cộng"]["Chưa nhận về"] == again["total"]["rules"]["not_taken"]["count"]
    assert grid["Tổng cộng"]["Chưa nhận về (%)"] == again["total"]["rules"]["not_taken"]["percent"]
    for agency in again["agencies"]:
        assert grid[agency["name"]]["VB đã nhận"] == agency["total"]["received"]
    latency = {row[1]: row for row in book[LATENCY].iter_rows(min_row=2, values_only=True)}
    t01 = again["total"]["latency_seconds"]["t01"]
    assert latency["Tổng cộng"][2:5] == (t01["count"], hours(t01["median"]), hours(t01["p90"]))
    refusals = list(book[REFUSALS].iter_rows(min_row=2, values_only=True))
    assert refusals[0][:2] == (A, "Văn phòng UBND tỉnh Tây Ninh") and refusals[0][3] == 1
    parameters = dict(book[PARAMETERS].iter_rows(min_row=2, values_only=True))
    assert parameters["Chậm báo đã nhận (01): số phút"] == again["rules"]["receipt_minutes"]
    assert parameters["Múi giờ"] == "Asia/Ho_Chi_Minh"
