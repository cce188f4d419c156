"""The ``edoc-gateway`` command line: the root group :func:`main` (the console-script entry point).

Commands live in one module per group: :mod:`~gateway.cli.packages` (validate, inspect, sign, verify, build,
json-schema), :mod:`~gateway.cli.service` (serve, db, worker), :mod:`~gateway.cli.registry` (agencies),
:mod:`~gateway.cli.systems`, :mod:`~gateway.cli.deliveries`, :mod:`~gateway.cli.tracking` (documents, report),
:mod:`~gateway.cli.alerts` (alerts, certificates), :mod:`~gateway.cli.admin_tokens`, :mod:`~gateway.cli.legacy`
(the e-doc.vn reference client) and :mod:`~gateway.cli.demo`
(demo, demo-pki); what they share is in
:mod:`~gateway.cli.common`. Exit status 0 on success; 1 with one line per failure on standard error of the
form ``FILE: CODE: message [at PATH]``; 2 for a usage error (click's usage message).

``--config FILE`` is exported to the environment as ``EDOC_GATEWAY_CONFIG`` (an absolute path) before any
command runs, so every process a command starts — gunicorn's master and workers under ``serve``, which read
their settings in ``deploy/gunicorn.conf.py`` and ``gateway.web.wsgi`` — reads the same file as the command.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from gateway import __version__
from gateway.cli import (
    admin_tokens,
    alerts,
    deliveries,
    demo,
    legacy,
    operators,
    packages,
    registry,
    service,
    systems,
    tracking,
)
from gateway.cli.common import _Group
from gateway.config import ENV_PREFIX

__all__ = ["main"]


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="edoc-gateway")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="EDOC_GATEWAY_CONFIG",
    help="TOML settings file (default: $EDOC_GATEWAY_CONFIG; EDOC_GATEWAY_* variables override it).",
)
@click.pass_context
def main(ctx: click.Context, config_path: Path | None) -> None:
    """edoc-gateway — send and receive edXML (QCVN 102:2016/BTTTT) official documents.

    Exit status: 0 on success, 1 on a failure (one line per failure on standard error: SOURCE: CODE: message),
    2 on a usage error.
    """
    if config_path is not None:
        config_path = config_path.resolve()
        # The processes a command starts (gunicorn and its workers) know only the environment.
        os.environ[f"{ENV_PREFIX}CONFIG"] = str(config_path)
    ctx.obj = config_path


for _module in (
    packages,
    service,
    registry,
    systems,
    deliveries,
    tracking,
    alerts,
    admin_tokens,
    operators,
    demo,
    legacy,
):
    for _command in _module.COMMANDS:
        main.add_command(_command)
