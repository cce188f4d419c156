"""A gateway served as ``edoc-gateway serve`` serves it, for the bench scripts that measure it over HTTP.

Shared by bench_intake.py and hostile_load.py (each runs as ``python bench/<script>.py``, so this directory is on
``sys.path``).
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

from gateway.config import load_settings
from gateway.web.launch import gunicorn_argv


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gateway(env: dict[str, str], log: Path, port: int) -> subprocess.Popen[bytes]:
    """gunicorn with the ``EDOC_GATEWAY_*`` settings ``env`` (and none inherited), once ``/readyz`` answers 200."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("EDOC_GATEWAY_")}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            gunicorn_argv(load_settings(env=env)), env={**clean, **env}, stdout=out, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(log.read_text(errors="replace"))
