"""Running the gateway: ``serve`` (gunicorn), ``db upgrade`` (alembic) and ``worker`` (push deliveries)."""

from __future__ import annotations

import dataclasses
import json
import os

import click

from gateway import logs, metrics_dir
from gateway.cli.common import _db_settings, _reporting, _settings
from gateway.web.launch import gunicorn_argv


@click.command()
def serve() -> None:
    """Run the gateway under gunicorn with deploy/gunicorn.conf.py (bind, workers from the settings).

    gunicorn and its workers read the settings from the environment: --config reaches them as EDOC_GATEWAY_CONFIG.
    """
    settings = _settings()
    with _reporting("serve"):
        settings.require_service()
        logs.formatter(settings.log_format)  # an unknown log_format stops here, not in every gunicorn worker
        from gateway.db.migrations import upgrade

        upgrade(settings)
    argv = gunicorn_argv(settings)
    os.execv(argv[0], argv)  # noqa: S606 -- gunicorn replaces this process: signals and exit are its own


@click.group()
def db() -> None:
    """Database schema (alembic migrations)."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Create or migrate the database schema (the one command besides serve that creates a database)."""
    from gateway.db.engine import database_url
    from gateway.db.migrations import current_revision, upgrade

    settings = _settings()
    with _reporting("db"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        upgrade(settings, revision)
        shown = database_url(settings).render_as_string(hide_password=True)
        click.echo(f"database {shown} at revision {current_revision(settings)}")


@click.command()
@click.option("--once", is_flag=True, help="Deliver what is due now, then exit (cron, tests).")
@click.option("--json", "as_json", is_flag=True, help="With --once: print the totals as JSON.")
def worker(once: bool, as_json: bool) -> None:
    """Run a delivery worker: push due deliveries to SOAP/REST/VDXP peers, retry, dead-letter."""
    settings = _db_settings(unreachable_ok=True)
    with _reporting("worker"):
        logs.configure(settings.log_level, settings.log_format)
        # Before prometheus_client is first imported (by the services below): it picks its mode at import. With
        # the gateway's data_dir, /metrics shows this worker's counters (gateway.metrics_dir).
        metrics_dir.prepare_worker(settings.data_dir)
        from gateway.worker import run_worker

        stats = run_worker(settings, once=once)
    if once and as_json:
        click.echo(json.dumps(dataclasses.asdict(stats), indent=2))
    elif once:
        click.echo(
            f"worker: {stats.delivered} delivered, {stats.retried} to retry, {stats.dead} dead-lettered, "
            f"{stats.unknown} with an unknown outcome, {stats.released} released, {stats.lost} lost, "
            f"{stats.opened} circuits opened ({stats.claimed} claimed)"
        )
        if stats.polls:
            click.echo(
                f"upstream: {stats.polled} fetched in {stats.polls} polls, {stats.ingested} stored, "
                f"{stats.ingest_duplicates} already stored, {stats.ingest_refused} refused"
            )


COMMANDS: tuple[click.Command, ...] = (serve, db, worker)
