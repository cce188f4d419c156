"""The registry: ``agencies`` (import, list, export, sync-vdxp) and ``systems`` (add, list)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from gateway.cli.common import _reporting, _settings


@click.group()
def agencies() -> None:
    """The agency registry."""


@agencies.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def agencies_import(file: Path) -> None:
    """Import (upsert) agencies from FILE.csv or FILE.json, all rows or none."""
    from gateway.services.registry import Registry

    with _reporting(str(file)):
        report = Registry.from_settings(_settings()).import_file(file)
    click.echo(f"{file}: {report.created} created, {report.updated} updated")


@agencies.command("list")
@click.option("--parent", help="Only the direct children of this OrganId.")
def agencies_list(parent: str | None) -> None:
    """List agencies: OrganId, level, channel, signature policy, name."""
    from gateway.services.registry import Registry

    with _reporting("agencies"):
        rows = Registry.from_settings(_settings()).list_agencies(parent)
    for a in rows:
        level = a.level if a.level is not None else "-"
        state = "" if a.active else " (inactive)"
        click.echo(f"{a.organ_id:<16} L{level} {a.channel:<8} {a.signature_policy:<17} {a.name}{state}")


@agencies.command("export")
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True)
def agencies_export(fmt: str) -> None:
    """Print the registry as CSV or JSON (re-importable)."""
    from gateway.services.registry import Registry

    with _reporting("agencies"):
        click.echo(Registry.from_settings(_settings()).export(fmt), nl=False)


@agencies.command("sync-vdxp")
@click.option("--endpoint", required=True, help="The national axis VDXP endpoint (…/XrdAdapter/adapter).")
@click.option("--system-id", required=True, help="Our system id at the axis.")
@click.option(
    "--secret-env", default="EDOC_GATEWAY_VDXP_SECRET", show_default=True, help="Variable holding the secret."
)
def agencies_sync_vdxp(endpoint: str, system_id: str, secret_env: str) -> None:
    """Import the national axis's agency list (getAgenciesList); local agencies are never changed."""
    from adapters.vdxp import VdxpClient, sync_agencies
    from gateway.services.registry import Registry

    secret = os.environ.get(secret_env)
    if not secret:
        raise click.UsageError(f"set {secret_env} to the axis secret (it is never taken on the command line)")
    with _reporting("sync-vdxp"), Registry.from_settings(_settings()) as registry:
        report = sync_agencies(VdxpClient(endpoint, system_id, secret), registry)
    click.echo(f"sync-vdxp: {report}")


@click.group()
def systems() -> None:
    """API client systems and the agencies they act for."""


@systems.command("add")
@click.argument("system_id")
@click.option("--agency", "agency_ids", multiple=True, required=True, help="OrganId it acts for (repeatable).")
@click.option("--name", help="A human name for the system.")
def systems_add(system_id: str, agency_ids: tuple[str, ...], name: str | None) -> None:
    """Register a system; prints its generated secret ONCE (it is stored encrypted, never shown again)."""
    from gateway.services.registry import Registry

    with _reporting(system_id):
        secret = Registry.from_settings(_settings()).add_system(system_id, agency_ids, name=name)
    click.echo(f"system {system_id} acts for {', '.join(agency_ids)} (and their level-2/3/4 units)")
    click.echo(f"secret: {secret}")


@systems.command("list")
def systems_list() -> None:
    """List systems and the agencies they act for (never secrets)."""
    from gateway.services.registry import Registry

    with _reporting("systems"):
        rows = Registry.from_settings(_settings()).list_systems()
    for sysinfo in rows:
        state = "" if sysinfo.active else " (inactive)"
        click.echo(f"{sysinfo.id:<20} {', '.join(sysinfo.agencies)}{state}")


COMMANDS: tuple[click.Command, ...] = (agencies, systems)
