"""A gateway served as ``edoc-gateway serve`` serves it, for the bench scripts that measure it over HTTP.

Shared by bench_intake.py, bench_legacy.py and hostile_load.py (each runs as ``python bench/<script>.py``, so this
directory is on ``sys.path``): starting gunicorn, the SOAP request a system sends, and what ``/proc`` says about
the gunicorn workers (peak resident set, CPU time).
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
import socket
import subprocess
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from gateway.config import load_settings
from gateway.web.launch import gunicorn_argv

WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
TOKEN = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0"
BASE64 = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"


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


def send_edoc_envelope(system: str, secret: str, package_b64: bytes) -> bytes:
    """A SOAP ``SendEdoc`` request as an integrator's client sends it: a fresh WS-Security PasswordDigest token
    (new nonce, ``Created`` now), the package as base64 text. Build it shortly before sending: the gateway
    refuses a ``Created`` outside its replay window (``wss_window_seconds``) and a nonce it has seen."""
    nonce = secrets.token_bytes(16)
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    digest = base64.b64encode(hashlib.sha1(nonce + created.encode() + secret.encode()).digest()).decode()
    head = (
        '<?xml version="1.0" encoding="UTF-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">'
        f'<soap:Header><wsse:Security xmlns:wsse="{WSSE}" xmlns:wsu="{WSU}"><wsse:UsernameToken>'
        f"<wsse:Username>{system}</wsse:Username>"
        f'<wsse:Password Type="{TOKEN}#PasswordDigest">{digest}</wsse:Password>'
        f'<wsse:Nonce EncodingType="{BASE64}">{base64.b64encode(nonce).decode()}</wsse:Nonce>'
        f"<wsu:Created>{created}</wsu:Created></wsse:UsernameToken></wsse:Security></soap:Header>"
        '<soap:Body><tns:SendEdoc xmlns:tns="urn:edoc-gateway:soap:1"><tns:edxmlPackage>'
    )
    return head.encode() + package_b64 + b"</tns:edxmlPackage></tns:SendEdoc></soap:Body></soap:Envelope>"


def worker_pids(master: subprocess.Popen[bytes]) -> list[int]:
    """The live gunicorn workers of ``master`` (its child processes)."""
    return [int(pid) for pid in Path(f"/proc/{master.pid}/task/{master.pid}/children").read_text().split()]


def worker_peaks(master: subprocess.Popen[bytes]) -> dict[int, int]:
    """VmHWM (peak resident set since the process started, bytes) of each gunicorn worker of ``master``, by pid.

    A high-water mark, so a reading after a phase says what the worst moment of everything before it cost; the
    growth over a reading taken after small requests only is what the phase in between added."""
    peaks = {}
    for pid in worker_pids(master):
        match = re.search(r"^VmHWM:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.M)
        if match:
            peaks[pid] = int(match.group(1)) * 1024
    return peaks


def worker_cpu(master: subprocess.Popen[bytes]) -> dict[int, float]:
    """CPU seconds (user + system) each gunicorn worker of ``master`` has used, by pid: tells which worker served
    a request (the one whose CPU time moved), since the kernel, not the client, picks who accepts a connection."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for pid in worker_pids(master):
        # fields after the parenthesised command name: state is [0], utime [11], stime [12]
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        out[pid] = (int(fields[11]) + int(fields[12])) / tick
    return out


def reset_peaks(master: subprocess.Popen[bytes]) -> dict[int, int]:
    """Reset each worker's VmHWM to its current resident set (``/proc/<pid>/clear_refs`` ← ``5``, Linux ≥ 4.0) and
    return that resident set (bytes), by pid.

    Without the reset a worker's VmHWM still holds its start-up peak (imports, XSD compilation), so a request
    costing less than that headroom would show no growth at all; after it, VmHWM − this value is exactly what the
    requests since then added to the worker's worst moment."""
    resident = {}
    for pid in worker_pids(master):
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        match = re.search(r"^VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.M)
        if match:
            resident[pid] = int(match.group(1)) * 1024
    return resident
