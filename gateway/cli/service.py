"""Running the gateway: ``serve`` (gunicorn), ``db upgrade`` (alembic) and ``worker`` (push deliveries)."""

from __future__ import annotations

import os

import click

from gateway.cli.common import _reporting, _settings
from gateway.web.launch import gunicorn_argv


@click.command()
def serve() -> None:
    """Run the gateway under gunicorn with deploy/gunicorn.conf.py (bind, workers from the settings)."""
    settings = _settings()
    with _reporting("serve"):
        settings.require_service()
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
    """Create or migrate the database schema."""
    from gateway.db.migrations import current_revision, upgrade

    settings = _settings()
    with _reporting("db"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        upgrade(settings, revision)
        click.echo(f"database at revision {current_revision(settings)}")


@click.command()
@click.option("--once", is_flag=True, help="Deliver what is due now, then exit (cron, tests).")
def worker(once: bool) -> None:
    """Run a delivery worker: push due deliveries to SOAP/REST/VDXP peers, retry, dead-letter."""
    import logging

    from gateway.worker import run_worker

    settings = _settings()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s [%(process)d] [%(levelname)s] %(name)s: %(message)s"
    )
    with _reporting("worker"):
        stats = run_worker(settings, once=once)
    if once:
        click.echo(f"worker: {stats}")


COMMANDS: tuple[click.Command, ...] = (serve, db, worker)
