#!/usr/bin/env python3
"""Benchmark: intake of signed packages against its primitive floor, served, open loop and in memory (issue 14).

One run prints, SQLite (WAL, synchronous=FULL) unless ``--database-url`` names a PostgreSQL server:

1. **Sizes** 10 KB / 100 KB / 1 MB / 20 MB, best of ``--rounds`` interleaved rounds, each round on fresh
   packages (RSA-2048 agency signature, agency policy ``require``, each a new document):
   * the primitive floor (bench/floor.py: lxml parse, exclusive C14N, SHA-256 against DigestValue, one RSA-2048
     verify, one durable insert of the bytes) on the very packages the in-process intake then gets;
   * in-process intake: ``GatewayService.submit`` in this process, on a fresh database of the same kind;
   * served intake: gunicorn as ``edoc-gateway serve`` runs it (2 workers, asyncio + 4 application threads) on
     127.0.0.1, SOAP ``SendEdoc`` with a fresh WS-Security PasswordDigest token each, from 4 client threads on
     keep-alive connections (20 MB: one client), every package committed durably;
   * ratios measured within the same round: in-process ÷ floor, served ÷ in-process.
2. **Peak RSS** (VmHWM from /proc) of the gunicorn workers per size: read after small (10 KB) requests reached
   every worker, again after a few packages of the size sent one at a time, and again after the timed rounds; the
   growth of the worker that grew most, also as a multiple of the package's size.
3. **Open loop**: 100 KB packages at a fixed 50 requests/s for ``--open-seconds``, latency measured from each
   request's scheduled time (bench/openloop.py says why: coordinated omission); p50 / p99 / max.

    .venv/bin/python bench/bench_intake.py [--quick] [--rounds 3] [--database-url postgresql+psycopg://...]
        [--sizes 10KB,100KB | --sizes none] [--no-open] [--open-seconds 20]
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import http.client
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from floor import PrimitiveFloor
from openloop import SENDERS, open_loop, percentile
from served import free_port, reset_peaks, send_edoc_envelope, start_gateway, worker_cpu, worker_peaks

from gateway.config import load_settings
from gateway.db.migrations import upgrade
from gateway.demo.documents import demo_package
from gateway.demo.pki import DemoPki, create_demo_pki
from gateway.edxml import Organization, add_files, render
from gateway.services.gateway import GatewayService
from gateway.services.registry import Registry
from gateway.xmlcheck.signing import SigningKey, sign_package

A, B = "000.00.01.H53", "000.00.00.G22"
SIZES = {"10 KB": 10_000, "100 KB": 100_000, "1 MB": 1_000_000, "20 MB": 20_000_000}
#: packages per round and measure (floor and in-process share theirs); --quick divides them by 5 (at least 2)
COUNTS = {"10 KB": 300, "100 KB": 150, "1 MB": 30, "20 MB": 3}
#: packages of the size sent one at a time before the rounds, for the worker's peak
MEMORY_COUNT = 2
CLIENTS = 4
OPEN_RATE = 50.0
MIB = 1024 * 1024


@dataclasses.dataclass
class SizeResult:
    label: str
    size: int
    n: int
    floor: list[float] = dataclasses.field(default_factory=list)
    in_process: list[float] = dataclasses.field(default_factory=list)
    served: list[float] = dataclasses.field(default_factory=list)
    latencies: list[float] = dataclasses.field(default_factory=list)
    baseline: int = 0
    one_at_a_time: int = 0
    under_load: int = 0
    clients: int = CLIENTS


@dataclasses.dataclass(frozen=True)
class Bench:
    tmp: Path
    pki: DemoPki
    key: SigningKey
    database_url: str | None

    def packages(self, target: int, count: int, tag: str) -> list[bytes]:
        """``count`` signed packages of about ``target`` bytes, each a new document (own DocumentId)."""
        base = dataclasses.replace(demo_package(), references=(), attachments=())
        filler = max(0, int((target - len(sign_package(render(base), self.key))) * 3 / 4) - 300)
        base = add_files(base, [("scan.pdf", os.urandom(filler))])
        out = []
        for i in range(count):
            h = dataclasses.replace(
                base.message_header,
                to=(Organization(organ_id=B, organ_name="Văn phòng Chính phủ"),),
                document_id=f"{A},2026/11/28,{tag}{i}/VP-HCTC",
            )
            out.append(sign_package(render(dataclasses.replace(base, message_header=h)), self.key))
        return out

    def new_database(self) -> str | None:
        """A fresh PostgreSQL database on the ``--database-url`` server, or None (SQLite in the data dir)."""
        if not self.database_url:
            return None
        import psycopg

        name = f"bench_{secrets.token_hex(6)}"
        admin = self.database_url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.database_url.rsplit("/", 1)[0] + f"/{name}"

    def setup(self, name: str, env_extra: dict[str, str]) -> tuple[dict[str, str], str]:
        """A migrated gateway database with agencies A (signature policy ``require``) and B, and system SA for A."""
        env = {
            "EDOC_GATEWAY_DATA_DIR": str(self.tmp / name),
            "EDOC_GATEWAY_SECRET_KEY": secrets.token_urlsafe(24),
            "EDOC_GATEWAY_GATEWAY_KEY": str(self.pki.gateway_key),
            "EDOC_GATEWAY_GATEWAY_CERT": str(self.pki.gateway_cert),
            "EDOC_GATEWAY_TRUST_STORE": str(self.pki.trust),
            "EDOC_GATEWAY_CRL_FILES": ",".join(str(c) for c in self.pki.crls),
            **env_extra,
        }
        url = self.new_database()
        if url:
            env["EDOC_GATEWAY_DATABASE_URL"] = url
        (self.tmp / name).mkdir()
        settings = load_settings(env=env)
        upgrade(settings)
        registry = Registry.from_settings(settings)
        registry.import_records(
            [
                {"organ_id": A, "name": "Văn phòng UBND tỉnh Tây Ninh", "signature_policy": "require"},
                {"organ_id": B, "name": "Văn phòng Chính phủ"},
            ]
        )
        return env, registry.add_system("SA", [A])

    @contextmanager
    def gateway(self, name: str) -> Iterator[tuple[subprocess.Popen[bytes], int, str]]:
        """The served gateway (gunicorn, 2 workers) on a fresh database: (master process, port, SA's secret)."""
        port = free_port()
        env, secret = self.setup(
            name,
            {
                "EDOC_GATEWAY_BIND": f"127.0.0.1:{port}",
                "EDOC_GATEWAY_WORKERS": "2",
                "EDOC_GATEWAY_LOG_LEVEL": "WARNING",
                # several client threads of one system may all reach one worker: throughput and latency, not the
                # per-system bound (issue 10) or the rate limits, are what is measured here.
                "EDOC_GATEWAY_WORKER_THREADS": str(CLIENTS),
                "EDOC_GATEWAY_MAX_REQUESTS_PER_SYSTEM": str(SENDERS),
                "EDOC_GATEWAY_MAX_REQUESTS_PER_ADDRESS": str(SENDERS),
                "EDOC_GATEWAY_RATE_PER_ADDRESS": "0",
                "EDOC_GATEWAY_RATE_PER_SYSTEM": "0",
            },
        )
        proc = start_gateway(env, self.tmp / f"gunicorn-{name}.log", port)
        try:
            yield proc, port, secret
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)


def post(conn: http.client.HTTPConnection, body: bytes) -> tuple[int, bytes]:
    conn.request("POST", "/soap", body=body, headers={"Content-Type": "text/xml; charset=utf-8"})
    resp = conn.getresponse()
    return resp.status, resp.read()


def closed_loop(port: int, secret: str, pkgs: list[bytes], clients: int) -> tuple[float, list[float]]:
    """Packages/s with ``clients`` threads each sending its next package once the last one is answered."""
    bodies = [base64.b64encode(p) for p in pkgs]
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    it = iter(bodies)

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        while True:
            with lock:
                b = next(it, None)
            if b is None:
                break
            body = send_edoc_envelope("SA", secret, b)
            t0 = time.perf_counter()
            status, answer = post(conn, body)
            with lock:
                latencies.append(time.perf_counter() - t0)
                if status != 200:
                    errors.append(answer[:300].decode(errors="replace"))
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    if errors:
        raise RuntimeError(f"{len(errors)} requests failed, first: {errors[0]}")
    return len(bodies) / elapsed, latencies


def warm_every_worker(proc: subprocess.Popen[bytes], port: int, secret: str, small: Callable[[], bytes]) -> str:
    """Small packages, each on a new connection, until every worker has served some (its CPU time moved): the
    peak after this is the baseline "a worker that served only small packages". The kernel picks the worker that
    accepts a connection, so this tries up to 40 times; returns a note when a worker stayed cold."""
    start = worker_cpu(proc)
    for _ in range(40):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        status, answer = post(conn, send_edoc_envelope("SA", secret, base64.b64encode(small())))
        conn.close()
        if status != 200:
            raise RuntimeError(answer[:300].decode(errors="replace"))
        now = worker_cpu(proc)
        if all(now[pid] - start.get(pid, 0.0) >= 0.05 for pid in now):
            return ""
    return " (a worker served no small package first: its growth includes its own warm-up)"


def floor_and_in_process(floor: PrimitiveFloor, service: GatewayService, pkgs: list[bytes]) -> tuple[float, float]:
    """Packages/s of the floor and of ``submit`` on the same packages, interleaved package by package (floor, then
    intake, then the next package), so that both meet the same moments of a shared machine: their ratio is far
    steadier than that of two back-to-back loops. ``pkgs[0]`` warms both, untimed."""
    floor.accept(pkgs[0])
    service.submit("SA", pkgs[0])
    t_floor = t_intake = 0.0
    for data in pkgs[1:]:
        t0 = time.perf_counter()
        floor.accept(data)
        t1 = time.perf_counter()
        service.submit("SA", data)
        t_floor, t_intake = t_floor + t1 - t0, t_intake + time.perf_counter() - t1
    return (len(pkgs) - 1) / t_floor, (len(pkgs) - 1) / t_intake


def growth(before: dict[int, int], after: dict[int, int]) -> int:
    """The largest growth of one worker's peak (VmHWM ``after``) over its resident set when its peak was reset
    (``before``); a worker started in between counts from zero."""
    return max(after[pid] - before.get(pid, 0) for pid in after)


def measure_size(bench: Bench, floor: PrimitiveFloor, label: str, target: int, n: int, rounds: int) -> SizeResult:
    tag = label.replace(" ", "")
    clients = 1 if target >= 20_000_000 else CLIENTS
    result = SizeResult(label, 0, n, clients=clients)
    env_ip, _ = bench.setup(f"ip-{tag}", {})
    service = GatewayService.from_settings(load_settings(env=env_ip))
    counter = iter(range(10**6))

    def small(prefix: str) -> bytes:
        return bench.packages(10_000, 1, prefix)[0]

    try:
        service.submit("SA", small(f"ipwarm{tag}-"))  # schema compile, first connection
        with bench.gateway(f"sv-{tag}") as (proc, port, secret):
            note = warm_every_worker(proc, port, secret, lambda: small(f"w{tag}{next(counter)}-"))
            before = reset_peaks(proc)
            big = bench.packages(target, MEMORY_COUNT, f"mem{tag}-")
            result.size = len(big[0])
            closed_loop(port, secret, big, 1)
            del big
            result.one_at_a_time = growth(before, worker_peaks(proc))
            result.baseline = max(before.values())
            for r in range(rounds):
                pkgs = bench.packages(target, n + 1, f"ip{tag}r{r}-")
                rate_floor, rate_ip = floor_and_in_process(floor, service, pkgs)
                result.floor.append(rate_floor)
                result.in_process.append(rate_ip)
                del pkgs
                rate, lat = closed_loop(port, secret, bench.packages(target, n, f"sv{tag}r{r}-"), clients)
                result.served.append(rate)
                result.latencies.extend(lat)
            result.under_load = growth(before, worker_peaks(proc))
            if note:
                print(f"  {label}: {note.strip()}")
    finally:
        service.close()
    return result


def measure_open_loop(bench: Bench, seconds: float) -> str:
    """The open-loop line: 100 KB packages at OPEN_RATE/s against a fresh served gateway."""
    count = int(OPEN_RATE * seconds)
    pkgs = bench.packages(100_000, count + 8, "open-")
    with bench.gateway("open") as (_proc, port, secret):
        closed_loop(port, secret, pkgs[count:], CLIENTS)  # warm both workers (schema, connections, caches)
        # built just before the run (WS-Security Created must be within the replay window), not during it
        bodies = [send_edoc_envelope("SA", secret, base64.b64encode(p)) for p in pkgs[:count]]
        res = open_loop(port, bodies, OPEN_RATE)

    def ms(values: list[float], q: float) -> str:
        return f"{percentile(values, q) * 1000:.1f}"

    return (
        f"open loop, 100 KB at {OPEN_RATE:.0f} req/s for {res.seconds:.0f} s ({res.sent} requests, {SENDERS} "
        f"senders, {res.errors} errors): from the scheduled time p50 {ms(res.from_due, 0.5)} ms, "
        f"p99 {ms(res.from_due, 0.99)} ms, max {ms(res.from_due, 1.0)} ms; from the actual send p50 "
        f"{ms(res.from_send, 0.5)} ms, p99 {ms(res.from_send, 0.99)} ms; answered {res.sent / res.span:.1f}/s; "
        f"{res.late} left > 5 ms after their time (every sender waiting for an answer, or this client short of CPU)"
    )


def spread(values: list[float]) -> str:
    return f"{min(values):.2f}–{max(values):.2f}" if len(values) > 1 else f"{values[0]:.2f}"


def print_sizes(results: list[SizeResult]) -> None:
    print(
        f"{'size':>6} {'bytes':>10} {'n':>4} | {'floor/s':>8} | {'in-proc/s':>9} {'÷floor':>6} {'(rounds)':>11} | "
        f"{'served/s':>8} {'÷in-proc':>8} {'(rounds)':>11} {'p50 ms':>7} {'p99 ms':>7}"
    )
    for r in results:
        ip_floor = [ip / fl for ip, fl in zip(r.in_process, r.floor, strict=True)]
        sv_ip = [sv / ip for sv, ip in zip(r.served, r.in_process, strict=True)]
        best_fl, best_ip, best_sv = max(r.floor), max(r.in_process), max(r.served)
        print(
            f"{r.label:>6} {r.size:>10} {r.n:>4} | {best_fl:8.1f} | {best_ip:9.1f} {best_ip / best_fl:6.2f} "
            f"{spread(ip_floor):>11} | {best_sv:8.1f} {best_sv / best_ip:8.2f} {spread(sv_ip):>11} "
            f"{percentile(r.latencies, 0.5) * 1000:7.1f} {percentile(r.latencies, 0.99) * 1000:7.1f}"
        )


def print_memory(results: list[SizeResult]) -> None:
    print(
        "peak RSS of the gunicorn workers: baseline = resident set after small (10 KB) packages only, where VmHWM is "
        f"reset; growth = VmHWM − baseline of the worker that grew most, after {MEMORY_COUNT} packages of the size "
        "one at a time, then after the timed rounds too"
    )
    print(
        f"{'size':>6} {'package MiB':>11} | {'baseline MiB':>12} | {'one at a time +MiB':>18} {'× pkg':>6} | "
        f"{'+ timed rounds +MiB':>19} {'× pkg':>6}"
    )
    for r in results:
        print(
            f"{r.label:>6} {r.size / MIB:11.2f} | {r.baseline / MIB:12.0f} | {r.one_at_a_time / MIB:18.1f} "
            f"{r.one_at_a_time / r.size:6.1f} | {r.under_load / MIB:19.1f} {r.under_load / r.size:6.1f}"
            f"  ({r.clients} client{'s' if r.clients > 1 else ''})"
        )
    print("(below 1 MB the growth is thread arenas and caches rather than the package: its multiple means little)")


def selected_sizes(spec: str | None) -> dict[str, int]:
    """The sizes named by ``--sizes`` ("10KB,100KB"; "none" for none), in the table's order; all without it."""
    if spec is None:
        return dict(SIZES)
    wanted = {part.strip().upper() for part in spec.split(",") if part.strip() and part.strip() != "none"}
    known = {label.replace(" ", "").upper(): label for label in SIZES}
    unknown = wanted - known.keys()
    if unknown:
        raise SystemExit(f"unknown size(s) {', '.join(sorted(unknown))}: choose from {', '.join(known)}")
    return {label: target for label, target in SIZES.items() if label.replace(" ", "").upper() in wanted}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--database-url", help="PostgreSQL URL of a database server the bench may create databases in")
    ap.add_argument("--quick", action="store_true", help="fewer packages, one round, 5 s of open loop")
    ap.add_argument("--rounds", type=int, help="interleaved rounds per size, best kept (default 3; --quick 1)")
    ap.add_argument("--open-seconds", type=float, help="length of the open-loop run (default 20; --quick 5)")
    ap.add_argument(
        "--sizes",
        help=f"comma-separated sizes to measure, of {', '.join(s.replace(' ', '') for s in SIZES)} "
        "(default all; 'none': only the open loop)",
    )
    ap.add_argument("--no-open", action="store_true", help="skip the open-loop run")
    args = ap.parse_args()
    rounds = args.rounds or (1 if args.quick else 3)
    sizes = selected_sizes(args.sizes)
    open_seconds = args.open_seconds or (5.0 if args.quick else 20.0)
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        pki = create_demo_pki(tmp / "pki")
        cred = pki.agencies[A]
        bench = Bench(tmp, pki, SigningKey.from_files(cred.key, cred.cert, pki.chain), args.database_url)
        floor = PrimitiveFloor(cred.cert, tmp / "floor.db", bench.new_database())
        db_kind = "PostgreSQL" if args.database_url else "SQLite (WAL, synchronous=FULL)"
        print(
            f"edoc-gateway intake bench — {db_kind}; served: gunicorn 2 workers (asyncio + {CLIENTS} threads), "
            f"{CLIENTS} client threads (20 MB: 1); {os.cpu_count()} cores; best of {rounds} interleaved rounds"
        )
        print(floor.description)
        print("÷floor and ÷in-proc: of the best rates; (rounds): the same ratio within each round, lowest–highest")
        results = []
        try:
            for label, target in sizes.items():
                n = COUNTS[label] if not args.quick else max(2, COUNTS[label] // 5)
                results.append(measure_size(bench, floor, label, target, n, rounds))
        finally:
            floor.close()
        if results:
            print_sizes(results)
            print_memory(results)
        if not args.no_open:
            print(measure_open_loop(bench, open_seconds))
    print(f"({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
