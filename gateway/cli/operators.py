"""``operators``: accounts of the web console — add, list, disable/enable, reset-password (issue 12 item 2).

Passwords are read from a prompt (typed twice, never echoed) or from standard input with ``--password-stdin``
(scripts, the demo), never from the command line, where ``ps`` and shell histories would keep them.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click

from gateway.cli.common import _db_settings, _page_footer, _page_request, _paging, _reporting

if TYPE_CHECKING:
    from gateway.services.operators import Operators

ROLES = ("viewer", "operator", "admin")
_STDIN_HELP = "Read the password from standard input (one line) instead of a prompt."


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(click.prompt("password", hide_input=True, confirmation_prompt=True))


@contextmanager
def _accounts(subject: str) -> Iterator[Operators]:
    """The accounts over the configured store; a failure is reported as ``subject: CODE: message``."""
    from gateway.services.delivery_admin import open_store
    from gateway.services.operators import Operators

    settings = _db_settings()
    with _reporting(subject), open_store(settings) as store:
        yield Operators(store, settings)


@click.group("operators")
def operators() -> None:
    """Console accounts: a role (viewer reads; operator also re-drives; admin also manages the registry and
    systems) and an optional OrganId scope."""


@operators.command("add")
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), required=True, help="viewer, operator or admin.")
@click.option("--scope", help="OrganId: the operator sees only this agency and the units below it (default: all).")
@click.option("--name", "display_name", default="", help="Full name shown in the console.")
@click.option("--password-stdin", is_flag=True, help=_STDIN_HELP)
def operators_add(username: str, role: str, scope: str | None, display_name: str, password_stdin: bool) -> None:
    """Create an account (password at least 12 characters, stored as an argon2id hash)."""
    password = _password(password_stdin)
    with _accounts(username) as accounts:
        info = accounts.add(username, password, role, scope=scope, display_name=display_name)
    click.echo(f"operator {info.username}: role {info.role.value}, scope {info.scope or 'all'}")


@operators.command("list")
@_paging
@click.option("--json", "as_json", is_flag=True, help='{"items": […], "total": N, "next_cursor": …}')
def operators_list(limit: int, offset: int, cursor: str | None, as_json: bool) -> None:
    """List accounts by name, a page at a time."""
    from gateway.services.operators import LISTING

    request = _page_request(LISTING, 1, limit, offset, cursor)
    with _accounts("operators") as accounts:
        page = accounts.list(request)
    if as_json:
        click.echo(json.dumps(page.to_dict(), ensure_ascii=False, indent=2))
        return
    for r in page.items:
        state = f"disabled {r.disabled_at.isoformat()}" if r.disabled_at else "active"
        last = r.last_login_at.isoformat() if r.last_login_at else "never"
        click.echo(f"{r.username:<20} {r.role.value:<8} {r.scope or 'all':<16} last login {last}  {state}")
    _page_footer(page, "operators")


@operators.command("disable")
@click.argument("username")
def operators_disable(username: str) -> None:
    """Disable an account; its sessions end at once."""
    with _accounts(username) as accounts:
        info = accounts.disable(username)
    click.echo(f"operator {info.username} disabled")


@operators.command("enable")
@click.argument("username")
def operators_enable(username: str) -> None:
    """Enable a disabled account again."""
    with _accounts(username) as accounts:
        info = accounts.enable(username)
    click.echo(f"operator {info.username} enabled")


@operators.command("reset-password")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help=_STDIN_HELP)
def operators_reset_password(username: str, password_stdin: bool) -> None:
    """Set a new password; every session of the account ends."""
    password = _password(password_stdin)
    with _accounts(username) as accounts:
        info = accounts.reset_password(username, password)
    click.echo(f"operator {info.username}: password changed, sessions ended")


COMMANDS: tuple[click.Command, ...] = (operators,)
