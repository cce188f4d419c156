"""The registry: ``agencies`` (import, add, update, list, export, sync-vdxp); ``systems`` are in
:mod:`gateway.cli.systems`."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import click

from gateway.cli.common import _db_settings, _page_footer, _page_request, _paging, _reporting


class _ImportCommand(click.Command):
    """``agencies import``: its help lists the file's columns, read from the row format itself
    (:data:`gateway.services.registry_rows.COLUMN_HELP`) only when help is asked for, so the command line does
    not load the database layer to start."""

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        from gateway.services.registry_rows import COLUMN_HELP, COLUMNS

        with formatter.section("Columns (CSV header row, or the keys of each JSON object)"):
            formatter.write_dl([(name, COLUMN_HELP[name]) for name in COLUMNS])
        formatter.write_paragraph()
        formatter.write_text(
            "Only organ_id and name are required; an empty cell means 'not given' (an existing agency keeps "
            "that value). The level comes from the OrganId."
        )


@click.group()
def agencies() -> None:
    """The agency registry."""


@agencies.command("import", cls=_ImportCommand)
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def agencies_import(file: Path) -> None:
    """Import (upsert) agencies from FILE.csv or FILE.json, all rows or none.

    A parent must be registered or in the same file, and exactly one OrganId level above its unit; every
    invalid row is listed and nothing is imported.
    """
    from gateway.services.registry import Registry

    settings = _db_settings()
    with _reporting(str(file)), Registry.from_settings(settings) as registry:
        report = registry.import_file(file)
    click.echo(f"{file}: {report.created} created, {report.updated} updated")


@agencies.command("add")
@click.argument("organ_id")
@click.option("--name", required=True, help="The agency's name.")
@click.option("--parent", help="OrganId of the registered unit one level up (default: derived from ORGAN_ID).")
@click.option("--channel", help="mailbox (default), soap, rest or vdxp.")
@click.option("--endpoint", help="URL of its SOAP or REST receiver (channels soap and rest).")
@click.option("--signature-policy", help="require, verify-if-present (default) or off.")
@click.option("--contact-email", help="Where its alert digests go (addresses separated by ',').")
def agencies_add(
    organ_id: str,
    name: str,
    parent: str | None,
    channel: str | None,
    endpoint: str | None,
    signature_policy: str | None,
    contact_email: str | None,
) -> None:
    """Register one new agency ORGAN_ID, checked exactly as an import row is (the values are checked there,
    not here, so both paths refuse the same things with REGISTRY.INVALID)."""
    from gateway.services.registry import Registry

    settings = _db_settings()
    with _reporting(organ_id), Registry.from_settings(settings) as registry:
        a = registry.add_agency(
            organ_id,
            name=name,
            parent=parent,
            channel=channel,
            endpoint=endpoint,
            signature_policy=signature_policy,
            contact_email=contact_email,
        )
    level = f"level {a.level}" if a.level is not None else "no level"
    click.echo(
        f"{a.organ_id}: added ({level}, parent {a.parent or '-'}, channel {a.channel}, "
        f"signature policy {a.signature_policy}) {a.name}"
    )


@agencies.command("update")
@click.argument("organ_id")
@click.option("--contact-email", help="Where its alert digests go (addresses separated by ','; '' clears it).")
def agencies_update(organ_id: str, contact_email: str | None) -> None:
    """Change a registered agency (what `agencies import` would change, one field at a time)."""
    from gateway.services.registry import Registry

    if contact_email is None:
        raise click.UsageError("nothing to change: give --contact-email")
    settings = _db_settings()
    with _reporting(organ_id), Registry.from_settings(settings) as registry:
        a = registry.set_agency_policy(organ_id, contact_email=contact_email)
    click.echo(f"{a.organ_id}: contact e-mail {a.contact_email or '(none)'}")


@agencies.command("list")
@click.option("--parent", help="Only the direct children of this OrganId.")
@_paging
def agencies_list(parent: str | None, limit: int, offset: int, cursor: str | None) -> None:
    """List agencies by OrganId, a page at a time: OrganId, level, channel, signature policy, name (``agencies
    export`` prints the whole registry)."""
    from gateway.services.registry import AGENCY_LISTING, Registry

    request = _page_request(AGENCY_LISTING, 1, limit, offset, cursor)
    settings = _db_settings()
    with _reporting("agencies"), Registry.from_settings(settings) as registry:
        page = registry.agencies_page(parent, request)
    for a in page.items:
        level = a.level if a.level is not None else "-"
        state = "" if a.active else " (inactive)"
        click.echo(f"{a.organ_id:<16} L{level} {a.channel:<8} {a.signature_policy:<17} {a.name}{state}")
    _page_footer(page, "agencies")


@agencies.command("export")
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True)
def agencies_export(fmt: str) -> None:
    """Print the registry as CSV or JSON (re-importable)."""
    from gateway.services.registry import Registry

    settings = _db_settings()
    with _reporting("agencies"), Registry.from_settings(settings) as registry:
        click.echo(registry.export(fmt), nl=False)


@agencies.command("sync-vdxp")
@click.option("--endpoint", required=True, help="The national axis VDXP endpoint (…/XrdAdapter/adapter).")
@click.option("--system-id", required=True, help="Our system id at the axis.")
@click.option(
    "--secret-env", default="EDOC_GATEWAY_VDXP_SECRET", show_default=True, help="Variable holding the secret."
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def agencies_sync_vdxp(endpoint: str, system_id: str, secret_env: str, as_json: bool) -> None:
    """Import the national axis's agency list (getAgenciesList); local agencies are never changed."""
    from adapters.vdxp import VdxpClient, sync_agencies
    from gateway.services.registry import Registry

    secret = os.environ.get(secret_env)
    if not secret:
        raise click.UsageError(f"set {secret_env} to the axis secret (it is never taken on the command line)")
    settings = _db_settings()
    with (
        _reporting("sync-vdxp"),
        Registry.from_settings(settings) as registry,
        VdxpClient(endpoint, system_id, secret) as client,
    ):
        report = sync_agencies(client, registry)
    if as_json:
        click.echo(json.dumps(dataclasses.asdict(report), ensure_ascii=False, indent=2))
        return
    click.echo(
        f"sync-vdxp: {report.created} created, {report.updated} updated, {report.kept_local} hosted here and left "
        f"alone, {len(report.skipped)} skipped"
    )
    if report.skipped:
        click.echo(f"  skipped (not an OrganId, or listed twice): {', '.join(report.skipped)}")


COMMANDS: tuple[click.Command, ...] = (agencies,)
