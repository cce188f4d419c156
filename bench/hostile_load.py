#!/usr/bin/env python3
"""Load under attack (issue 10, "Show"): legitimate SendEdoc latency while slow and heavy clients hammer the gateway.

Served exactly as ``edoc-gateway serve`` serves it (``gunicorn_argv``: deploy/gunicorn.conf.py, 2 workers,
embedded defaults, SQLite) on 127.0.0.1. Two phases in the same run, each ``--seconds`` long:

* baseline — one legitimate client (system SA, from 127.0.0.1) sends signed ~10 KB ``SendEdoc`` requests one
  after the other, each a new document, each with a fresh WS-Security PasswordDigest token;
* attack — the same client, while
  - 64 slow connections trickle at 1 byte/s: 32 send their request headers, 32 send complete headers then the
    body. They come from four loopback addresses (127.0.0.10–13, 16 each: the per-address bound would otherwise
    refuse most of them at once, and the point is to measure the serving model, not only that bound). A
    connection the gateway closes (header deadline, body rate) is opened again at once;
  - 4 authenticated heavy requests in a loop (system SX, from 127.0.0.3): one element with 100,000 attributes
    (≈1.1 MB), a 20 MB text node, 100,000-deep nesting, and the attributes again.

Printed: p50/p99/max latency and errors of the legitimate calls in each phase and their ratio; what happened to
the slow connections and the heavy requests; the workers' RSS (VmRSS of each gunicorn worker, from /proc) idle
before the attack (after a warm-up that reaches every application thread), the peak during it, and 10 s after it.
Worker recycling (``max_requests``) is off for the run, so the same workers are compared.

    .venv/bin/python bench/hostile_load.py [--seconds 30]
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import hashlib
import http.client
import itertools
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from served import free_port, start_gateway

from gateway.config import load_settings
from gateway.db.migrations import upgrade
from gateway.demo.documents import demo_package
from gateway.demo.pki import DemoPki, create_demo_pki
from gateway.edxml import Organization, add_files, render
from gateway.services.registry import Registry
from gateway.xmlcheck.signing import SigningKey, sign_package

A, B, X = "000.00.01.H53", "000.00.00.G22", "000.00.00.H53"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
DIGEST = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest"
B64 = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"
XML = "text/xml; charset=utf-8"
SLOW_SOURCES = ("127.0.0.10", "127.0.0.11", "127.0.0.12", "127.0.0.13")
HEAVY_SOURCE = "127.0.0.3"


# ------------------------------------------------------------------------------------------------ requests


def envelope(system: str, secret: str, body: str, header_extra: str = "", op_attrs: str = "") -> bytes:
    """A SOAP 1.1 SendEdoc envelope with a fresh PasswordDigest UsernameToken; ``body`` is the package text."""
    nonce = secrets.token_bytes(16)
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    digest = base64.b64encode(hashlib.sha1(nonce + created.encode() + secret.encode()).digest()).decode()
    return (
        '<?xml version="1.0" encoding="UTF-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">'
        f'<soap:Header><wsse:Security xmlns:wsse="{WSSE}" xmlns:wsu="{WSU}"><wsse:UsernameToken>'
        f'<wsse:Username>{system}</wsse:Username><wsse:Password Type="{DIGEST}">{digest}</wsse:Password>'
        f'<wsse:Nonce EncodingType="{B64}">{base64.b64encode(nonce).decode()}</wsse:Nonce>'
        f"<wsu:Created>{created}</wsu:Created></wsse:UsernameToken></wsse:Security>{header_extra}</soap:Header>"
        f'<soap:Body><tns:SendEdoc xmlns:tns="urn:edoc-gateway:soap:1"{op_attrs}><tns:edxmlPackage>{body}'
        "</tns:edxmlPackage></tns:SendEdoc></soap:Body></soap:Envelope>"
    ).encode()


def legit_packages(pki: DemoPki) -> Iterator[str]:
    """Signed packages from A to B of about 10 KB, each a new document, base64 for SendEdoc (made as needed)."""
    cred = pki.agencies[A]
    key = SigningKey.from_files(cred.key, cred.cert, pki.chain)
    base = dataclasses.replace(demo_package(), references=(), attachments=())
    filler = max(0, int((10_000 - len(sign_package(render(base), key))) * 3 / 4) - 300)
    base = add_files(base, [("scan.pdf", os.urandom(filler))])
    for i in itertools.count():
        header = dataclasses.replace(
            base.message_header,
            to=(Organization(organ_id=B, organ_name="Văn phòng Chính phủ"),),
            document_id=f"{A},2026/11/28,{i}/HOSTILE",
        )
        yield base64.b64encode(sign_package(render(dataclasses.replace(base, message_header=header)), key)).decode()


def heavy_bodies() -> dict[str, Callable[[str], bytes]]:
    """The heavy requests of issue 10 (findings 2 and 5), each built with a fresh token when sent."""
    attrs = "".join(f' a{i}="1"' for i in range(100_000))
    text = "A" * (20 * 1024 * 1024)
    deep = "<x:d>" * 100_000 + "</x:d>" * 100_000
    return {
        "100k-attributes": lambda secret: envelope("SX", secret, "PA==", op_attrs=attrs),
        "20MB-text": lambda secret: envelope(
            "SX", secret, "PA==", header_extra=f'<x:pad xmlns:x="urn:x">{text}</x:pad>'
        ),
        "100k-deep": lambda secret: envelope(
            "SX", secret, "PA==", header_extra=f'<x:deep xmlns:x="urn:x">{deep}</x:deep>'
        ),
    }


# ------------------------------------------------------------------------------------------------ clients


class Legit:
    """Sequential SendEdoc from 127.0.0.1 on one keep-alive connection; latencies and errors per phase."""

    def __init__(self, port: int, secret: str, packages: Iterator[str], lock: threading.Lock) -> None:
        self.port = port
        self.secret = secret
        self.packages = packages
        self.lock = lock  # the package generator is shared by the warm-up clients

    def run(self, seconds: float) -> tuple[list[float], Counter[str]]:
        latencies: list[float] = []
        errors: Counter[str] = Counter()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            with self.lock:
                package = next(self.packages)
            body = envelope("SA", self.secret, package)
            started = time.perf_counter()
            try:
                conn.request("POST", "/soap", body=body, headers={"Content-Type": XML})
                resp = conn.getresponse()
                answer = resp.read()
                if resp.status != 200:
                    errors[f"HTTP {resp.status} {answer[:120]!r}"] += 1
            except OSError as exc:
                errors[type(exc).__name__] += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            latencies.append(time.perf_counter() - started)
        conn.close()
        return latencies, errors


class SlowConnections:
    """64 connections trickling at 1 byte/s; a connection the gateway ends is opened again."""

    def __init__(self, port: int, body_len: int) -> None:
        self.port = port
        self.head = f"POST /soap HTTP/1.1\r\nHost: gw\r\nContent-Type: {XML}\r\nContent-Length: {body_len}\r\n\r\n"
        self.body = "<" + "x" * (body_len - 1)
        self.stop = threading.Event()
        self.ended: Counter[str] = Counter()  # how the gateway ended them: first bytes of its answer, or "closed"
        self.opened = 0
        self._slots: list[tuple[str, str, socket.socket | None, int]] = []
        for i in range(64):
            kind = "headers" if i % 2 == 0 else "body"
            self._slots.append((kind, SLOW_SOURCES[i % len(SLOW_SOURCES)], None, 0))
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _open(self, kind: str, source: str) -> socket.socket | None:
        try:
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=5, source_address=(source, 0))
        except OSError:
            self.ended["connect failed"] += 1
            return None
        if kind == "body":
            sock.sendall(self.head.encode())
        sock.setblocking(False)
        self.opened += 1
        return sock

    def _run(self) -> None:
        while not self.stop.is_set():
            for index, (kind, source, sock, sent) in enumerate(self._slots):
                if sock is None:
                    sock, sent = self._open(kind, source), 0
                if sock is None:
                    continue
                data = self.head if kind == "headers" else self.body
                try:
                    answer = sock.recv(64)
                    self.ended[answer.split(b"\r\n", 1)[0].decode("latin-1") or "closed"] += 1
                    sock.close()
                    sock = None
                except BlockingIOError:
                    try:
                        sock.send(data[sent % len(data)].encode())
                        sent += 1
                    except OSError:
                        self.ended["reset"] += 1
                        sock.close()
                        sock = None
                except OSError:
                    self.ended["reset"] += 1
                    sock.close()
                    sock = None
                self._slots[index] = (kind, source, sock, sent)
            self.stop.wait(1.0)
        for _, _, sock, _ in self._slots:
            if sock is not None:
                sock.close()


class Heavy:
    """4 authenticated heavy requests in a loop, from 127.0.0.3 (system SX)."""

    def __init__(self, port: int, secret: str, skip: frozenset[str] = frozenset()) -> None:
        self.port = port
        self.secret = secret
        self.stop = threading.Event()
        self.results: Counter[str] = Counter()
        self.slowest: dict[str, float] = {}
        self.lock = threading.Lock()
        bodies = heavy_bodies()
        kinds = [k for k in ["100k-attributes", "20MB-text", "100k-deep", "100k-attributes"] if k not in skip]
        kinds = [*kinds, *kinds][:4] if kinds else []
        self.threads = [threading.Thread(target=self._run, args=(k, bodies[k]), daemon=True) for k in kinds]

    def _run(self, kind: str, build: Callable[[str], bytes]) -> None:
        while not self.stop.is_set():
            body = build(self.secret)
            started = time.perf_counter()
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300, source_address=(HEAVY_SOURCE, 0))
            try:
                conn.request("POST", "/soap", body=body, headers={"Content-Type": XML})
                resp = conn.getresponse()
                answer = resp.read()
                code = answer.split(b"<code>", 1)[1].split(b"<", 1)[0].decode() if b"<code>" in answer else "-"
                outcome = f"{kind}: HTTP {resp.status} {code}"
            except OSError as exc:
                outcome = f"{kind}: {type(exc).__name__}"
            finally:
                conn.close()
            elapsed = time.perf_counter() - started
            with self.lock:
                self.results[outcome] += 1
                self.slowest[kind] = max(self.slowest.get(kind, 0.0), elapsed)


# ------------------------------------------------------------------------------------------------ RSS


def worker_pids(master: int) -> list[int]:
    path = Path(f"/proc/{master}/task/{master}/children")
    return [int(pid) for pid in path.read_text().split()] if path.exists() else []


def rss_mb(pids: list[int]) -> dict[int, float]:
    out = {}
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    out[pid] = int(line.split()[1]) / 1024
        except OSError:
            pass
    return out


class RssSampler:
    def __init__(self, master: int) -> None:
        self.master = master
        self.peak: dict[int, float] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            for pid, mb in rss_mb(worker_pids(self.master)).items():
                self.peak[pid] = max(self.peak.get(pid, 0.0), mb)
            self.stop.wait(0.25)


# ------------------------------------------------------------------------------------------------ main


def summary(name: str, latencies: list[float], errors: Counter[str]) -> tuple[float, float, float]:
    ordered = sorted(latencies)
    p50 = statistics.median(ordered) * 1000
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
    top = ordered[-1] * 1000
    print(
        f"{name:>9} | {len(ordered):5d} calls | p50 {p50:7.1f} ms | p99 {p99:7.1f} ms | max {top:7.1f} ms | "
        f"errors {sum(errors.values())}"
    )
    for error, count in errors.most_common(5):
        print(f"{'':>9} |   {count} × {error}")
    return p50, p99, top


def fmt_rss(values: dict[int, float]) -> str:
    return (
        ", ".join(f"{pid}: {mb:.0f} MB" for pid, mb in sorted(values.items()))
        + f" (total {sum(values.values()):.0f} MB)"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=30.0, help="length of each phase (default 30)")
    ap.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=["100k-attributes", "20MB-text", "100k-deep"],
        help="leave out one kind of heavy request (the other kinds fill its threads); repeatable",
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        pki = create_demo_pki(tmp / "pki")
        port = free_port()
        env = {
            "EDOC_GATEWAY_DATA_DIR": str(tmp / "data"),
            "EDOC_GATEWAY_SECRET_KEY": secrets.token_urlsafe(24),
            "EDOC_GATEWAY_GATEWAY_KEY": str(pki.gateway_key),
            "EDOC_GATEWAY_GATEWAY_CERT": str(pki.gateway_cert),
            "EDOC_GATEWAY_TRUST_STORE": str(pki.trust),
            "EDOC_GATEWAY_CRL_FILES": ",".join(str(c) for c in pki.crls),
            "EDOC_GATEWAY_BIND": f"127.0.0.1:{port}",
            "EDOC_GATEWAY_LOG_LEVEL": "WARNING",
            # No recycling after max_requests: the refused heavy requests are cheap and would replace the workers
            # mid-run, and RSS is compared per worker, before and after.
            "GUNICORN_CMD_ARGS": "--max-requests 0",
        }
        (tmp / "data").mkdir()
        settings = load_settings(env=env)
        upgrade(settings)
        registry = Registry.from_settings(settings)
        registry.import_records(
            [
                {"organ_id": A, "name": "Văn phòng UBND tỉnh Tây Ninh", "signature_policy": "require"},
                {"organ_id": B, "name": "Văn phòng Chính phủ"},
                {"organ_id": X, "name": "UBND tỉnh Tây Ninh"},
            ]
        )
        secret_a, secret_x = registry.add_system("SA", [A]), registry.add_system("SX", [X])
        packages = legit_packages(pki)
        log = tmp / "gunicorn.log"
        proc = start_gateway(env, log, port)
        try:
            print(
                f"edoc-gateway hostile load — gunicorn {settings.workers} workers × "
                # (getattr: the script also measures checkouts from before the serving model, with sync workers)
                f"{getattr(settings, 'worker_threads', 1)} threads, SQLite, {os.cpu_count()} cores, "
                f"{args.seconds:.0f} s per phase"
                + (f"; heavy requests without {', '.join(args.skip)}" if args.skip else "")
            )
            lock = threading.Lock()
            legit = Legit(port, secret_a, packages, lock)
            # Warm-up, so that "idle" is a worker that has served: every pool thread has compiled its XSD and
            # holds its database connection (8 concurrent clients reach all threads of both workers).
            warm = [Legit(port, secret_a, packages, lock) for _ in range(8)]
            warmers = [threading.Thread(target=w.run, args=(5,)) for w in warm]
            for thread in warmers:
                thread.start()
            for thread in warmers:
                thread.join()
            base_lat, base_err = legit.run(args.seconds)
            idle = rss_mb(worker_pids(proc.pid))

            slow = SlowConnections(port, 10_000)
            heavy = Heavy(port, secret_x, frozenset(args.skip))
            sampler = RssSampler(proc.pid)
            sampler.thread.start()
            slow.thread.start()
            for thread in heavy.threads:
                thread.start()
            time.sleep(2)  # let the attack build up
            att_lat, att_err = legit.run(args.seconds)
            slow.stop.set()
            heavy.stop.set()
            slow.thread.join()
            for thread in heavy.threads:
                thread.join(310)
            sampler.stop.set()
            sampler.thread.join()
            attack_end = time.monotonic()
            time.sleep(max(0.0, 10 - (time.monotonic() - attack_end)))
            after = rss_mb(worker_pids(proc.pid))

            print(f"{'phase':>9} |")
            b50, b99, _ = summary("baseline", base_lat, base_err)
            a50, a99, _ = summary("attack", att_lat, att_err)
            print(f"{'ratio':>9} | attack/baseline: p50 × {a50 / b50:.2f}, p99 × {a99 / b99:.2f}")
            print(f"slow connections: {slow.opened} opened; ended by the gateway: {dict(slow.ended)}")
            print(f"heavy requests: {dict(heavy.results)}")
            print("heavy requests, slowest: " + ", ".join(f"{k} {v:.1f} s" for k, v in heavy.slowest.items()))
            print(f"worker RSS idle before: {fmt_rss(idle)}")
            print(f"worker RSS peak during: {fmt_rss(sampler.peak)}")
            print(f"worker RSS 10 s after:  {fmt_rss(after)}")
            if set(after) != set(idle):
                print(f"  (workers replaced during the run: before {sorted(idle)}, after {sorted(after)})")
            else:
                worst = max(after[pid] / idle[pid] - 1 for pid in idle)
                print(f"  largest change idle → after: {worst * 100:+.1f} %")
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
