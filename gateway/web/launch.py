"""How the gateway runs under gunicorn: the one command line for ``edoc-gateway serve``, the demo and the tests.

Why here and not in the CLI: the demo tooling, the end-to-end tests and the benchmarks start the real gateway
exactly as ``serve`` does, and none of them may import the command line (the demo is itself started by it).
Building the argument list has no side effects; the application is built by gunicorn's workers from
``gateway.web.wsgi:application``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from gateway.config import Settings
from gateway.resources import resource_path

#: The repository's deploy/gunicorn.conf.py, shipped inside the package (:mod:`gateway.resources`); bind, workers
#: and log level come from the settings through it.
GUNICORN_CONF = resource_path("deploy", "gunicorn.conf.py")


def gunicorn_argv(settings: Settings) -> list[str]:
    """The gunicorn command line ``serve`` execs (also used by ``demo``, the tests and the benchmarks)."""
    exe = Path(sys.executable).with_name("gunicorn")
    return [str(exe), "-c", str(GUNICORN_CONF), "-b", settings.bind, "gateway.web.wsgi:application"]
