"""What every ``edoc-gateway`` command shares: failure lines, exit status, the settings, ``--max-bytes``.

Exit status 0 on success; otherwise 1 with one line per failure on standard error of the form
``FILE: CODE: message [at PATH]`` — stable codes, so scripts can branch on them. The underscore names are
private to the :mod:`gateway.cli` package: its command modules use them, nothing else should.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click

from gateway.config import Settings, load_settings
from gateway.errors import GatewayError
from gateway.xmlcheck.safe import DEFAULT_MAX_BYTES

_MAX = click.option(
    "--max-bytes", type=int, default=DEFAULT_MAX_BYTES, show_default=True, help="Refuse larger packages."
)


class _Failed(Exception):
    """Raised after a failure line has been printed, to set the exit status."""


def _fail_line(source: str, exc: GatewayError) -> str:
    where = f" at {exc.path}" if exc.path else ""
    return f"{source}: {exc.code}: {exc.message}{where}"


@contextmanager
def _reporting(source: str) -> Iterator[None]:
    try:
        yield
    except GatewayError as exc:
        click.echo(_fail_line(source, exc), err=True)
        raise _Failed from None
    except OSError as exc:
        click.echo(f"{source}: IO.ERROR: {exc.strerror or exc}", err=True)
        raise _Failed from None


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except _Failed:
            ctx.exit(1)


def _settings() -> Settings:
    """The settings, read once per command, only by the commands that need them."""
    ctx = click.get_current_context()
    with _reporting("config"):
        return load_settings(ctx.find_root().obj)
