"""The operator console (issue 12): a web UI over the admin services, at ``/console``.

:func:`console_blueprint` builds it: :class:`~gateway.web.console.edge.Console` (sessions, CSRF, roles, languages,
headers) with every page module's routes installed. Templates are Jinja2 under ``templates/console/``; the
stylesheet and the small progressive-enhancement script are under ``static/`` (no CDN, no inline script).
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

from flask import Blueprint

from gateway.config import Settings
from gateway.services.console import ConsoleServices
from gateway.web.console.edge import Console

#: Menu order of the page modules (``pages_*.py`` in this package, each with ``install(console)``); a page module
#: not named here is installed after these, in name order.
MENU_ORDER = ("pages_home", "pages_documents", "pages_deliveries", "pages_agencies", "pages_systems", "pages_report")


def page_modules() -> list[str]:
    """Every ``pages_*`` module of the package, in menu order."""
    found = {m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if m.name.startswith("pages_")}
    return [n for n in MENU_ORDER if n in found] + sorted(found - set(MENU_ORDER))


def build_console(services: ConsoleServices, settings: Settings) -> Console:
    """The console with every page installed (tests read its ``routes``)."""
    console = Console(services, settings)
    for name in page_modules():
        importlib.import_module(f"gateway.web.console.{name}").install(console)
    return console


def console_blueprint(services: ConsoleServices, settings: Settings) -> Blueprint:
    return build_console(services, settings).blueprint()


__all__ = ["MENU_ORDER", "Console", "build_console", "console_blueprint", "page_modules"]
