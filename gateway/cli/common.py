"""What every ``edoc-gateway`` command shares: failure lines, exit status, the settings, ``--max-bytes``.

Exit status 0 on success; 1 with one line per failure on standard error of the form
``FILE: CODE: message [at PATH]`` — stable codes, so scripts can branch on them; 2 for a usage error (unknown
command or option, missing argument: click's usage message, as most Unix tools do). The underscore names are
private to the :mod:`gateway.cli` package: its command modules use them, nothing else should.

An exception that is no :class:`~gateway.errors.GatewayError` is a defect, but the user still gets one line in
the same format with the stable code ``GATEWAY.INTERNAL`` and exit status 1, never a traceback (issue 10: a
crafted zip made ``inspect --extract`` print one): :func:`_reporting` turns it into that line where the command
names its source (the file), :class:`_Group` everywhere else (the source is then the command's name).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click

from gateway.config import ENV_PREFIX, Settings, load_settings
from gateway.errors import CursorError, GatewayError
from gateway.services.paging import DEFAULT_LIMIT, MAX_LIMIT, Page, PageRequest
from gateway.xmlcheck.safe import DEFAULT_MAX_BYTES

#: The code of a defect (as the edges answer it: gateway.web.faults.INTERNAL_CODE).
_INTERNAL_CODE = "GATEWAY.INTERNAL"
#: click's own control flow, which must pass through the catch-alls.
_CLICK_FLOW = (click.exceptions.Exit, click.exceptions.Abort, click.ClickException)

_MAX = click.option(
    "--max-bytes", type=int, default=DEFAULT_MAX_BYTES, show_default=True, help="Refuse larger packages."
)


_F = TypeVar("_F", bound=Callable[..., Any])


def _paging(command: _F) -> _F:
    """``--limit``, ``--offset`` and ``--cursor`` — the same three options on every list (issue 11 item 7)."""
    for option in reversed(
        (
            click.option(
                "--limit",
                type=click.IntRange(1, MAX_LIMIT),
                default=DEFAULT_LIMIT,
                show_default=True,
                help="Rows per page.",
            ),
            click.option("--offset", type=click.IntRange(min=0), default=0, help="Skip this many rows first."),
            click.option("--cursor", help="Continue after a previous page (the cursor its last line names)."),
        )
    ):
        command = option(command)
    return command


def _page_request(listing: str, size: int, limit: int, offset: int, cursor: str | None) -> PageRequest:
    """The page the options ask for; a cursor that is not one of ``listing``'s (``size`` key values) is a usage
    error (exit 2, with REQUEST.CURSOR's message), checked before the database is opened."""
    request = PageRequest(limit=limit, offset=offset, cursor=cursor)
    try:
        request.after(listing, size)
    except CursorError as exc:
        raise click.BadParameter(f"{exc.code}: {exc.message}", param_hint="'--cursor'") from None
    return request


def _page_footer(page: Page[Any], noun: str) -> None:
    """After a list in text form, on standard error (standard output stays one line per row, for scripts): how
    many of how many, and the cursor of the rest — a page never ends without saying whether more follow."""
    click.echo(page.summary(noun), err=True)


class _Failed(Exception):
    """Raised after a failure line has been printed, to set the exit status."""


def _fail_line(source: str, exc: GatewayError) -> str:
    where = f" at {exc.path}" if exc.path else ""
    return f"{source}: {exc.code}: {exc.message}{where}"


def _problem_lines(source: str, problems: Any) -> list[str]:
    """One more line per listed problem (``REGISTRY.INVALID`` lists every bad row, not only the first)."""
    if not isinstance(problems, list) or len(problems) < 2:
        return []
    lines = []
    for p in problems:
        if isinstance(p, dict) and "message" in p:
            row = f"row {p['row']}: " if "row" in p else ""
            field = f"{p['field']}: " if p.get("field") else ""
            lines.append(f"{source}: {row}{field}{p['message']}")
    return lines


@contextmanager
def _reporting(source: str) -> Iterator[None]:
    try:
        yield
    except GatewayError as exc:
        click.echo(_fail_line(source, exc), err=True)
        for line in _problem_lines(source, exc.detail.get("problems")):
            click.echo(line, err=True)
        raise _Failed from None
    except OSError as exc:
        click.echo(f"{source}: IO.ERROR: {exc.strerror or exc}", err=True)
        raise _Failed from None
    except (_Failed, *_CLICK_FLOW):
        raise
    except Exception as exc:
        click.echo(_internal_line(source, exc), err=True)
        raise _Failed from None


def _internal_line(source: str, exc: BaseException) -> str:
    """A defect as one failure line: the exception's class and its message, cut and on one line."""
    message = " ".join(str(exc).split())[:300]
    return f"{source}: {_INTERNAL_CODE}: unexpected {type(exc).__name__}" + (f": {message}" if message else "")


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except _Failed:
            ctx.exit(1)
        except _CLICK_FLOW:
            raise
        except GatewayError as exc:  # raised outside any _reporting block
            click.echo(_fail_line(ctx.invoked_subcommand or ctx.info_name or "edoc-gateway", exc), err=True)
            ctx.exit(1)
        except Exception as exc:
            click.echo(_internal_line(ctx.invoked_subcommand or ctx.info_name or "edoc-gateway", exc), err=True)
            ctx.exit(1)


def _settings() -> Settings:
    """The settings, read once per command, only by the commands that need them."""
    ctx = click.get_current_context()
    with _reporting("config"):
        return load_settings(ctx.find_root().obj)


def _settings_source() -> str:
    """Where the settings came from, for messages that must tell a lost user what was read."""
    path = click.get_current_context().find_root().obj
    if path:
        return f"settings file {path}"
    return f"no settings file: neither --config nor {ENV_PREFIX}CONFIG is set"


def _db_settings(*, unreachable_ok: bool = False) -> Settings:
    """The settings of a command that works on the database, after checking that the database is there.

    Such a command never creates a database: an empty ``./data/gateway.db`` made by a mistyped or missing
    ``--config`` would hide the real one behind "no such table". It names the database it tried and says how to
    configure or migrate it. ``unreachable_ok`` lets the worker start while PostgreSQL is still down (it backs
    off and retries).
    """
    from gateway.cli.database import require_database

    settings = _settings()
    with _reporting("database"):
        require_database(settings, _settings_source(), unreachable_ok=unreachable_ok)
    return settings
