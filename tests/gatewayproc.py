"""A real gateway under gunicorn for the end-to-end tests: started as ``edoc-gateway serve`` would start it."""

from __future__ import annotations

import os
import random
import re
import secrets
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gateway.config import Settings
from gateway.web.launch import gunicorn_argv


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gateway_env(data_dir: Path, database_url: str, pki: Any, *, max_package_bytes: int, **extra: str) -> dict[str, str]:
    """The EDOC_GATEWAY_* settings of a test gateway on a free loopback port, with the test PKI's credentials;
    ``extra`` adds settings by their key (``ADMIN_TOKEN="…"`` → ``EDOC_GATEWAY_ADMIN_TOKEN``)."""
    return {
        "EDOC_GATEWAY_DATA_DIR": str(data_dir),
        "EDOC_GATEWAY_DATABASE_URL": database_url,
        "EDOC_GATEWAY_BIND": f"127.0.0.1:{free_port()}",
        "EDOC_GATEWAY_WORKERS": "2",
        "EDOC_GATEWAY_SECRET_KEY": secrets.token_urlsafe(24),
        "EDOC_GATEWAY_GATEWAY_KEY": str(pki.gateway_key),
        "EDOC_GATEWAY_GATEWAY_CERT": str(pki.gateway_cert),
        "EDOC_GATEWAY_TRUST_STORE": str(pki.trust),
        "EDOC_GATEWAY_CRL_FILES": ",".join(str(c) for c in pki.crls),
        "EDOC_GATEWAY_MAX_PACKAGE_BYTES": str(max_package_bytes),
        **{f"EDOC_GATEWAY_{key}": value for key, value in extra.items()},
    }


def free_ports(count: int) -> int:
    """The first of ``count`` consecutive loopback ports nobody listens on right now.

    Drawn below Linux's ephemeral range (32768–60999 by default): the outgoing connections of the other tests
    running in parallel (HTTP clients, PostgreSQL) take their local ports from that range, and one of them landing
    on ``first + 1`` between this check and the demo's bind made the demo refuse its receiver port."""
    rng = random.Random()
    for _ in range(200):
        first = rng.randrange(20000, 32000 - count)
        socks = []
        try:
            for port in range(first, first + count):
                sock = socket.socket()
                socks.append(sock)
                sock.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise AssertionError("no run of free ports")


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


def _status_kib(pid: int, field: str) -> int:
    match = re.search(rf"^{field}:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.M)
    assert match, f"no {field} for process {pid}"
    return int(match.group(1)) * 1024


def worker_pids(master: subprocess.Popen[bytes]) -> list[int]:
    """The live gunicorn workers of ``master`` (its child processes; Linux /proc)."""
    return [int(pid) for pid in Path(f"/proc/{master.pid}/task/{master.pid}/children").read_text().split()]


def reset_worker_peaks(master: subprocess.Popen[bytes]) -> dict[int, int]:
    """Reset each worker's VmHWM to its resident set (``clear_refs`` ← ``5``) and return that resident set in bytes.

    Without the reset VmHWM still holds the worker's start-up peak (imports, XSD compilation), which would hide
    any request costing less than that headroom. The same measure as bench/served.py's (the bench scripts do not
    import the tests' helpers, nor the tests the bench's)."""
    resident = {}
    for pid in worker_pids(master):
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        resident[pid] = _status_kib(pid, "VmRSS")
    return resident


def worker_peaks(master: subprocess.Popen[bytes]) -> dict[int, int]:
    """VmHWM (peak resident set since start or the last reset, bytes) of each gunicorn worker of ``master``."""
    return {pid: _status_kib(pid, "VmHWM") for pid in worker_pids(master)}
