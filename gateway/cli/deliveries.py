"""``deliveries``: inspect and re-drive deliveries to push peers (never by SQL)."""

from __future__ import annotations

import json

import click

from gateway.cli.common import _db_settings, _page_footer, _page_request, _paging, _reporting


@click.group()
def deliveries() -> None:
    """Deliveries to push peers: inspect and re-drive (never by SQL)."""


@deliveries.command("list")
@click.option("--state", type=click.Choice(["queued", "fetched", "delivered", "failed", "dead"]))
@click.option("--recipient", help="Only deliveries to this OrganId.")
@_paging
@click.option("--json", "as_json", is_flag=True, help='{"items": […], "total": N, "next_cursor": …}')
def deliveries_list(
    state: str | None, recipient: str | None, limit: int, offset: int, cursor: str | None, as_json: bool
) -> None:
    """List deliveries, newest first, a page at a time (the last line says how many match and how to go on)."""
    from gateway.services.api import DeliveryState
    from gateway.services.delivery_admin import LISTING, list_deliveries, open_store

    request = _page_request(LISTING, 2, limit, offset, cursor)
    settings = _db_settings()
    with _reporting("deliveries"), open_store(settings) as store:
        page = list_deliveries(store, state=DeliveryState(state) if state else None, recipient=recipient, page=request)
    if as_json:
        click.echo(json.dumps(page.to_dict(), ensure_ascii=False, indent=2))
        return
    for r in page.items:
        err = f"  {r.last_error}" if r.last_error else ""
        click.echo(
            f"{r.delivery_id} {r.state.value:<9} {r.channel or '-':<7} {r.recipient:<16} "
            f"attempts={r.attempts} {r.document_id}{err}"
        )
    _page_footer(page, "deliveries")


@deliveries.command("show")
@click.argument("delivery_id")
@click.option("--json", "as_json", is_flag=True)
def deliveries_show(delivery_id: str, as_json: bool) -> None:
    """One delivery with its attempt log."""
    from gateway.services.delivery_admin import open_store, show_delivery

    settings = _db_settings()
    with _reporting(delivery_id), open_store(settings) as store:
        detail = show_delivery(store, delivery_id)
    if as_json:
        click.echo(json.dumps(detail.to_dict(), ensure_ascii=False, indent=2))
        return
    d = detail.delivery
    click.echo(f"delivery:  {d.delivery_id} ({d.state.value}, channel {d.channel or '-'})")
    click.echo(f"document:  {d.document_id} (docId {d.doc_id}) {d.sender} -> {d.recipient}")
    click.echo(f"attempts:  {d.attempts}")
    for a in detail.attempts:
        err = f" {a.error_code}: {a.error_message}" if a.error_code else ""
        click.echo(f"  #{a.attempt} {a.started_at.isoformat()} {a.outcome} {a.duration_ms} ms{err}")


@deliveries.command("redrive")
@click.argument("delivery_id", required=False)
@click.option("--recipient", help="Re-drive every dead delivery to this OrganId.")
def deliveries_redrive(delivery_id: str | None, recipient: str | None) -> None:
    """Queue a dead (or failed, or retrying) delivery again, with a fresh retry budget."""
    import getpass

    from gateway.services.delivery_admin import open_store, redrive

    if bool(delivery_id) == bool(recipient):
        raise click.UsageError("give a DELIVERY_ID or --recipient, not both")
    settings = _db_settings()
    with _reporting(delivery_id or recipient or "redrive"), open_store(settings) as store:
        ids = redrive(store, delivery_id=delivery_id, recipient=recipient, actor=f"cli:{getpass.getuser()}")
    click.echo(f"re-driven: {len(ids)}")
    for i in ids:
        click.echo(f"  {i}")


COMMANDS: tuple[click.Command, ...] = (deliveries,)


@deliveries.command("peers")
@click.option("--all", "show_all", is_flag=True, help="Every peer seen, closed circuits included.")
@click.option("--json", "as_json", is_flag=True)
def deliveries_peers(show_all: bool, as_json: bool) -> None:
    """Peers whose circuit breaker holds their deliveries back (open) or has one probe out (probing)."""
    from gateway.services.delivery_admin import open_store, peer_circuits

    settings = _db_settings()
    with _reporting("peers"), open_store(settings) as store:
        rows = peer_circuits(store, show_all=show_all)
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in rows], ensure_ascii=False, indent=2))
        return
    for r in rows:
        until = f" until {r.open_until.isoformat(timespec='seconds')}" if r.open_until else ""
        click.echo(f"{r.peer:<60} {r.state:<8} failures={r.failures} opened={r.opens}{until}  {r.last_error or ''}")
    click.echo(f"{len(rows)} peers {'seen' if show_all else 'failing'}", err=True)
