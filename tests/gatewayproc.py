"""A real gateway under gunicorn for the end-to-end tests: started as ``edoc-gateway serve`` would start it."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from gateway.config import Settings
from gateway.web.launch import gunicorn_argv


@contextmanager
def served(settings: Settings, env: Mapping[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """gunicorn with ``env`` (the EDOC_GATEWAY_* settings) until ``/readyz`` answers 200; SIGTERM at the end."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("EDOC_GATEWAY_")}
    with log.open("wb") as out:
        proc = subprocess.Popen(gunicorn_argv(settings), env={**clean, **env}, stdout=out, stderr=subprocess.STDOUT)
    try:
        url = f"http://{settings.bind}/readyz"
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert proc.poll() is None, log.read_text(errors="replace")
            assert time.monotonic() < deadline, "gateway did not become ready"
            time.sleep(0.2)
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
