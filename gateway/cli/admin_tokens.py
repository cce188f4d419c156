"""``admin-tokens``: the admin API's named tokens — create (shown once), list, revoke (issue 9 item 5)."""

from __future__ import annotations

import json

import click

from gateway.cli.common import _db_settings, _page_footer, _page_request, _paging, _reporting

ROLES = ("viewer", "operator", "admin")


@click.group("admin-tokens")
def admin_tokens() -> None:
    """Tokens of the admin API (/admin/v1): a role (viewer, operator, admin) and an optional OrganId scope."""


@admin_tokens.command("create")
@click.argument("name")
@click.option(
    "--role", type=click.Choice(ROLES), required=True, help="viewer reads; operator also re-drives; admin all."
)
@click.option("--scope", help="OrganId: the token sees only this agency and the units below it (default: all).")
def tokens_create(name: str, role: str, scope: str | None) -> None:
    """Create a token; prints it ONCE (only its SHA-256 is stored)."""
    from gateway.services.admin_auth import AdminAuth
    from gateway.services.delivery_admin import open_store

    settings = _db_settings()
    with _reporting(name), open_store(settings) as store:
        info, token = AdminAuth(store).create(name, role, scope)
    click.echo(f"admin token {info.name}: role {info.role.value}, scope {info.scope or 'all'}")
    click.echo(f"token: {token}")


@admin_tokens.command("list")
@_paging
@click.option("--json", "as_json", is_flag=True, help='{"items": […], "total": N, "next_cursor": …}')
def tokens_list(limit: int, offset: int, cursor: str | None, as_json: bool) -> None:
    """List tokens by name, a page at a time (never the tokens themselves)."""
    from gateway.services.admin_auth import LISTING, AdminAuth
    from gateway.services.delivery_admin import open_store

    request = _page_request(LISTING, 1, limit, offset, cursor)
    settings = _db_settings()
    with _reporting("admin-tokens"), open_store(settings) as store:
        page = AdminAuth(store).list_tokens(request)
    if as_json:
        click.echo(json.dumps(page.to_dict(), ensure_ascii=False, indent=2))
        return
    for r in page.items:
        revoked = f" revoked {r.revoked_at.isoformat()}" if r.revoked_at else ""
        click.echo(f"{r.name:<24} {r.role.value:<8} {r.scope or 'all':<16} created {r.created_at.isoformat()}{revoked}")
    _page_footer(page, "tokens")


@admin_tokens.command("revoke")
@click.argument("name")
def tokens_revoke(name: str) -> None:
    """Revoke a token at once (every gateway process checks the database on each call)."""
    from gateway.services.admin_auth import AdminAuth
    from gateway.services.delivery_admin import open_store

    settings = _db_settings()
    with _reporting(name), open_store(settings) as store:
        info = AdminAuth(store).revoke(name)
    assert info.revoked_at is not None
    click.echo(f"admin token {info.name} revoked at {info.revoked_at.isoformat()}")


COMMANDS: tuple[click.Command, ...] = (admin_tokens,)
