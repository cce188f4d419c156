"""The operator console (issue 12): a web UI over the admin services, at ``/console``.

:func:`console_blueprint` builds it: :class:`~gateway.web.console.edge.Console` (sessions, CSRF, roles, languages,
headers) with every page module's routes installed. Templates are Jinja2 under ``templates/console/``; the
stylesheet and the small progressive-enhancement script are under ``static/`` (no CDN, no inline script).
"""

from __future__ import annotations

from flask import Blueprint

from gateway.config import Settings
from gateway.services.console import ConsoleServices
from gateway.web.console.edge import Console

#: The page modules, in menu order; each has ``install(console)``.
PAGES = ("pages_home",)


def build_console(services: ConsoleServices, settings: Settings) -> Console:
    """The console with every page installed (tests read its ``routes``)."""
    import importlib

    console = Console(services, settings)
    for name in PAGES:
        importlib.import_module(f"gateway.web.console.{name}").install(console)
    return console


def console_blueprint(services: ConsoleServices, settings: Settings) -> Blueprint:
    return build_console(services, settings).blueprint()


__all__ = ["PAGES", "Console", "build_console", "console_blueprint"]
