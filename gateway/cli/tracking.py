"""``documents`` (list, show, refused) and ``report``: tracking from the command line.

Dates on the command line are Vietnam calendar days (``--from 2026-03-01 --to 2026-03-31`` is the whole of March
in Asia/Ho_Chi_Minh, the last day included); every time printed is local with its zone shown, and ``--json``
gives ISO 8601 UTC next to each ``*_local`` string. The timing rules are the configured ones
(:func:`gateway.tracking.settings.rules_from`), the same the admin API and the alerts judge by.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from gateway.cli.common import _db_settings, _reporting
from gateway.errors import CursorError
from gateway.services.tracking_api import MAX_PAGE as _MAX_PAGE

if TYPE_CHECKING:
    from gateway.services.timeline import Timelines

_DATE = click.DateTime(formats=["%Y-%m-%d"])
_FLAGS = ("late_sending", "late_receipt", "not_taken", "not_registered", "overdue")


@contextmanager
def _timelines(source: str) -> Iterator[Timelines]:
    from gateway.services.delivery_admin import open_store
    from gateway.services.timeline import Timelines
    from gateway.tracking.settings import rules_from

    settings = _db_settings()
    with _reporting(source):
        rules = rules_from(settings)
        with open_store(settings) as store:
            yield Timelines(store, rules)


def _period(first: datetime | None, last: datetime | None) -> tuple[datetime | None, datetime | None]:
    from gateway.services.tracking import local_period

    if first is None and last is None:
        return None, None
    start, end = local_period((first or last).date(), (last or first).date())  # type: ignore[union-attr]
    return (start if first is not None else None), (end if last is not None else None)


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, indent=2))


@click.group()
def documents() -> None:
    """Tracked documents: list with filters, the story of one, refused intakes."""


@documents.command("list")
@click.option("--from", "first", type=_DATE, help="First local day (YYYY-MM-DD) of intake.")
@click.option("--to", "last", type=_DATE, help="Last local day (YYYY-MM-DD), included.")
@click.option("--sender", help="Sending OrganId.")
@click.option("--recipient", help="Only documents delivered to this OrganId.")
@click.option("--kind", type=click.Choice(["edoc", "status", "all"]), default="edoc", show_default=True)
@click.option("--state", type=click.Choice(["queued", "fetched", "delivered", "failed", "dead"]))
@click.option(
    "--flag",
    "flags",
    multiple=True,
    help=f"A timing rule breached for some recipient ({', '.join(_FLAGS)}); RULE:open while still missing. "
    "Repeatable: all must hold.",
)
@click.option("--text", help="Case-insensitive text in the Code or Subject.")
@click.option("--limit", type=click.IntRange(1, _MAX_PAGE), default=50, show_default=True, help="Rows per page.")
@click.option("--offset", type=click.IntRange(min=0), default=0, help="Skip this many matching documents first.")
@click.option("--cursor", help="Continue after a previous page (its next cursor).")
@click.option("--json", "as_json", is_flag=True, help='{"items": […], "total": N|null, "next_cursor": …, …}')
def documents_list(
    first: datetime | None,
    last: datetime | None,
    sender: str | None,
    recipient: str | None,
    kind: str,
    state: str | None,
    flags: tuple[str, ...],
    text: str | None,
    limit: int,
    offset: int,
    cursor: str | None,
    as_json: bool,
) -> None:
    """Documents newest first, with recipients by delivery state and the rules they breach."""
    from gateway.services.timeline import decode_cursor
    from gateway.services.tracking_api import DocumentQuery
    from gateway.tracking.calendar import show

    try:
        decode_cursor(cursor)
    except CursorError as exc:
        raise click.BadParameter(f"{exc.code}: {exc.message}", param_hint="'--cursor'") from None
    with _timelines("documents") as timelines:
        since, until = _period(first, last)
        query = DocumentQuery(
            since=since,
            until=until,
            sender=sender,
            recipient=recipient,
            kind=None if kind == "all" else kind,
            state=state,
            flags=flags,
            text=text,
            cursor=cursor,
            limit=limit,
            offset=offset,
        )
        page = timelines.list_documents(query)
    if as_json:
        _echo_json(page.to_dict())
        return
    for item in page.items:
        d, row = item.doc, item.to_dict()
        states = ",".join(f"{s}={n}" for s, n in row["states"].items()) or "-"
        rules = ",".join(r + (":open" if r in item.open else "") for r in item.breached) or "-"
        click.echo(
            f"{show(d.received_at)}  {d.doc_id}  {d.kind:<6} {d.sender:<15} {d.code or '-':<16} "
            f"{states:<22} {rules}  {(d.subject or '')[:60]}"
        )
    of = f" of {page.total}" if page.total is not None else ""
    click.echo(f"{len(page.items)}{of} document(s), {page.scanned} read; as of {show(page.as_of)}")
    if page.next_cursor:
        click.echo(f"next page: --cursor {page.next_cursor}")


@documents.command("show")
@click.argument("doc_id")
@click.option("--json", "as_json", is_flag=True)
def documents_show(doc_id: str, as_json: bool) -> None:
    """The whole story of one document: header, signature, links, and each recipient's timeline."""
    from gateway.cli.story_text import story_lines

    with _timelines(doc_id) as timelines:
        story = timelines.document_story(doc_id).to_dict()
    if as_json:
        _echo_json(story)
        return
    for line in story_lines(story):
        click.echo(line)


@documents.command("refused")
@click.option("--from", "first", type=_DATE, required=True, help="First local day (YYYY-MM-DD).")
@click.option("--to", "last", type=_DATE, required=True, help="Last local day (YYYY-MM-DD), included.")
@click.option("--json", "as_json", is_flag=True)
def documents_refused(first: datetime, last: datetime, as_json: bool) -> None:
    """Refused intakes per claimed sending agency and system, by error code."""
    from gateway.services.tracking import local_period

    with _timelines("refused") as timelines:
        since, until = local_period(first.date(), last.date())
        summary = timelines.refusals(since, until)
    if as_json:
        _echo_json(summary.to_dict())
        return
    for row in summary.rows:
        click.echo(f"{row['organ_id'] or '-':<16} {row['system_id'] or '-':<20} {row['code']:<24} {row['count']:>6}")
    for code, count in summary.by_code().items():
        click.echo(f"total {code}: {count}")
    click.echo(f"refused: {sum(summary.by_code().values())}")


@click.command("report")
@click.option("--from", "first", type=_DATE, required=True, help="First local day (YYYY-MM-DD).")
@click.option("--to", "last", type=_DATE, required=True, help="Last local day (YYYY-MM-DD), included.")
@click.option("--agency", help="Only this agency's subtree.")
@click.option("--depth", type=click.IntRange(min=0), help="Rows down to this depth (the totals still add up all).")
@click.option("--as-of", "as_of", help="Judge open deadlines at this ISO 8601 time (default: now).")
@click.option(
    "--format", "fmt", type=click.Choice(["table", "csv", "xlsx", "json"]), default="table", show_default=True
)
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to FILE (xlsx needs it).")
def report(
    first: datetime,
    last: datetime,
    agency: str | None,
    depth: int | None,
    as_of: str | None,
    fmt: str,
    output: Path | None,
) -> None:
    """The Decision-28 report for a period: per agency, rolled up through the hierarchy."""
    from gateway.services.tracking import local_period

    if fmt == "xlsx" and output is None:
        raise click.UsageError("--format xlsx needs --output FILE")
    judged_at = _as_of(as_of)
    with _timelines("report") as timelines:
        since, until = local_period(first.date(), last.date())
        built = timelines.tracking.report(since, until, agency=agency, depth=depth, as_of=judged_at).to_dict()
    with _reporting(str(output or "report")):
        _write_report(built, fmt, output)


def _as_of(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not an ISO 8601 time", param_hint="--as-of") from None
    if value.tzinfo is None:
        raise click.BadParameter("give the zone (e.g. 2026-03-31T17:00:00+07:00)", param_hint="--as-of")
    return value


def _write_report(built: dict[str, Any], fmt: str, output: Path | None) -> None:
    from gateway.services.report_export import to_csv, to_table

    if fmt == "xlsx":
        from gateway.services.report_xlsx import write_xlsx

        assert output is not None
        write_xlsx(built, output)
        click.echo(f"wrote {output}", err=True)
        return
    if fmt == "json":
        text = json.dumps(built, ensure_ascii=False, indent=2) + "\n"
    elif fmt == "csv":
        text = to_csv(built)
    else:
        text = to_table(built)
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8", newline="")


COMMANDS: tuple[click.Command, ...] = (documents, report)

__all__ = ["COMMANDS"]
