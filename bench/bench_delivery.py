#!/usr/bin/env python3
"""Benchmark: push delivery throughput and recovery, per channel and database, in one run (issues 4 and 11).

For each database (SQLite; PostgreSQL — a throwaway local server started like the tests start theirs, or the one
``--database-url`` names; skipped with a message when neither is available) and each channel (``soap``, ``rest``):

* the reference receiver of the channel (``adapters.soap.receiver`` / ``adapters.rest.receiver``, gunicorn with
  ``--receiver-workers`` sync workers, every package stored durably, REST signatures checked) on 127.0.0.1;
* baseline: the channel's adapter delivering the same packages from this process in a plain loop (no database);
* measured: N deliveries queued for one agency, drained by 2 ``run_worker`` processes (the shipped engine:
  parallel sends, batch claims and commits) — rate from the first attempt to the last;
* ``ratio`` = workers' deliveries/s ÷ baseline deliveries/s. Goals (issue 11): ≥ 300/s on SQLite, ≥ 200/s on
  PostgreSQL, receivers on the same machine.

Then, per database, the re-claim time after ``kill -9``: one worker is killed while it holds claims, a second
worker is running; measured is the time from the kill to the first re-attempt of a delivery the dead worker held,
and to all of them delivered (bound by ``worker_lease_seconds``).

    .venv/bin/python bench/bench_delivery.py [--quick] [--count 3000] [--channels soap,rest]
        [--database-url postgresql+psycopg://…] [--no-postgresql]

The VDXP channel is not measured: its reference peer is a whole second gateway's ``/vdxp`` edge, whose intake
(parse, XSD, signature policy) rather than this engine would set the rate.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from adapters.rest import RestAdapter
from adapters.soap import SoapAdapter
from gateway.db import AgencyRecord, AuditEntry, DocumentRecord, NewDocument, Store, create_engine
from gateway.db import tables as t
from gateway.db.migrations import upgrade
from gateway.edxml.codes import PackageKind
from gateway.payload import Payload
from gateway.ports import OutgoingPackage, Peer

ROOT = Path(__file__).resolve().parent.parent
SENDER, PEER = "000.00.00.A01", "000.00.00.B02"
SIZE = 10_000
WORKERS = 2
GOALS = {"SQLite": 300.0, "PostgreSQL": 200.0}
WORKER = """
import logging
from gateway.config import load_settings
from gateway.worker import run_worker
logging.basicConfig(level=logging.WARNING)
run_worker(load_settings())
"""
HMAC_KEY = secrets.token_urlsafe(24)
APPS = {"soap": "adapters.soap.receiver:make_app()", "rest": "adapters.rest.receiver:make_app()"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _package() -> bytes:
    """A real ~10 KB edXML package (the REST adapter parses what it sends; SOAP carries it opaque)."""
    from gateway.demo.documents import demo_package
    from gateway.edxml import add_files, render

    base = dataclasses.replace(demo_package(), references=(), attachments=())
    return render(add_files(base, [("scan.pdf", os.urandom(SIZE * 3 // 4 - 2500))]))


@contextlib.contextmanager
def _receiver(tmp: Path, workers: int, channel: str) -> Iterator[tuple[str, int]]:
    """The channel's reference receiver under gunicorn on a free loopback port; its URL and the master's pid."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDOC_")}
    env["EDOC_RECEIVER_DIR"] = str(tmp / f"received-{channel}")
    env["EDOC_RECEIVER_HMAC_KEY"] = HMAC_KEY
    log = tmp / f"receiver-{channel}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "gunicorn"),
                "--no-control-socket",
                "-w",
                str(workers),
                "-b",
                f"127.0.0.1:{port}",
                "--log-level",
                "warning",
                APPS[channel],
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(url + "healthz", timeout=2):
                    break
            except urllib.error.HTTPError:  # the REST receiver answers 405 to a GET: it is up
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(log.read_text(errors="replace")) from None
                time.sleep(0.1)
        yield url, proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def _queue(store: Store, count: int, raw: bytes, channel: str) -> None:
    """``count`` stored documents with one push delivery each, as intake leaves them (due at once)."""
    now = datetime.now(UTC)
    for _ in range(count):
        doc_id = uuid.uuid4().hex
        store.documents.insert_document(
            NewDocument(
                document=DocumentRecord(
                    doc_id=doc_id,
                    kind="edoc",
                    sender=SENDER,
                    document_id=f"{SENDER},2026/12/01,{doc_id[:8]}/VP",
                    sha256="00" * 32,
                    size=len(raw),
                    received_at=now,
                    signature_state="unsigned",
                    idem_key=secrets.token_hex(32),
                    meta={},
                ),
                raw=raw,
                recipients=((PEER, channel),),
                audit=AuditEntry(at=now, action="intake.accepted", doc_id=doc_id),
            )
        )


def _outgoing(raw: bytes) -> OutgoingPackage:
    ids = uuid.uuid4().hex, uuid.uuid4().hex
    return OutgoingPackage(*ids, PackageKind.EDOC, SENDER, PEER, "bench", Payload.of(raw), 1)


def _baseline(url: str, count: int, channel: str, raw: bytes) -> float:
    """The adapter alone: ``count`` deliveries from this process in a plain loop, no database."""
    adapter = SoapAdapter(read_timeout=30) if channel == "soap" else RestAdapter(read_timeout=30)
    peer = Peer(PEER, channel, url, {"hmac_key": HMAC_KEY})
    try:
        adapter.deliver(peer, _outgoing(raw))  # warm-up: WSDL parsed, connection open
        started = time.perf_counter()
        for _ in range(count):
            adapter.deliver(peer, _outgoing(raw))
        return count / (time.perf_counter() - started)
    finally:
        adapter.close()


@dataclasses.dataclass
class Database:
    """One database under test: its kind and a way to get a fresh, migrated database on it."""

    kind: str
    admin_url: str | None  # PostgreSQL: where fresh databases are created

    def fresh(self, tmp: Path) -> str:
        if self.admin_url is None:
            url = f"sqlite:///{tmp / f'gateway-{secrets.token_hex(4)}.db'}"
        else:
            import psycopg

            name = f"bench_{secrets.token_hex(6)}"
            with psycopg.connect(
                self.admin_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True
            ) as c:
                c.execute(f'CREATE DATABASE "{name}"')
            url = self.admin_url.replace("postgresql://", "postgresql+psycopg://", 1).rsplit("/", 1)[0] + f"/{name}"
        upgrade(url)
        return url


@contextlib.contextmanager
def _postgresql(args: argparse.Namespace) -> Iterator[Database | None]:
    """``--database-url``, else a throwaway local server (tests/pgcluster.py), else None (with the reason)."""
    if args.no_postgresql:
        yield None
        return
    if args.database_url:
        yield Database("PostgreSQL", args.database_url)
        return
    sys.path.insert(0, str(ROOT / "tests"))
    try:
        from pgcluster import PgCluster

        cluster = PgCluster()
    except Exception as exc:  # no server binaries, cannot run initdb: say so and measure SQLite only
        print(f"PostgreSQL skipped: no local server could be started ({type(exc).__name__}: {exc})")
        yield None
        return
    try:
        yield Database("PostgreSQL", cluster.admin_dsn)
    finally:
        cluster.stop()


class Run:
    """One database, one channel: the queue, the receiver, the workers."""

    def __init__(self, tmp: Path, url: str, channel: str, endpoint: str, settings: dict[str, str]) -> None:
        self.tmp, self.url, self.channel = tmp, url, channel
        self.store = Store(create_engine(url))
        self.store.registry.upsert_agencies(
            [AgencyRecord(SENDER, "sender"), AgencyRecord(PEER, "peer", channel=channel, endpoint=endpoint)],
            now=datetime.now(UTC),
        )
        config = tmp / "bench.toml"  # channel credentials live in the configuration file, not the database
        config.write_text(f'[credentials."{PEER}"]\nhmac_key = "{HMAC_KEY}"\n', encoding="utf-8")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("EDOC_GATEWAY_")}
        self.env.update(
            {
                "EDOC_GATEWAY_CONFIG": str(config),
                "EDOC_GATEWAY_DATABASE_URL": url,
                "EDOC_GATEWAY_DATA_DIR": str(tmp),
                "EDOC_GATEWAY_WORKER_POLL_SECONDS": "0.2",
                **{f"EDOC_GATEWAY_{k.upper()}": v for k, v in settings.items()},
            }
        )
        self.workers: list[subprocess.Popen[bytes]] = []

    def start_worker(self) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([sys.executable, "-c", WORKER], env=self.env, stderr=subprocess.DEVNULL)
        self.workers.append(proc)
        return proc

    def close(self) -> None:
        for w in self.workers:
            if w.poll() is None:
                w.send_signal(signal.SIGTERM)
        for w in self.workers:
            w.wait(timeout=60)
        self.store.engine.dispose()

    def scalar(self, sql: str, **params: object) -> object:
        with self.store.engine.connect() as conn:
            return conn.execute(sa.text(sql), params).scalar_one()

    def undelivered(self) -> int:
        return int(self.scalar("SELECT count(*) FROM deliveries WHERE state <> 'delivered'"))  # type: ignore[arg-type]

    def wait_drained(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.undelivered():
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.undelivered()} deliveries not delivered after {timeout:g} s")
            time.sleep(0.1)

    def attempts(self) -> list[tuple[datetime, int, str]]:
        """(started_at, duration_ms, outcome) of every attempt row."""
        a = t.delivery_attempts
        with self.store.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.select(a.c.started_at, a.c.duration_ms, a.c.outcome))]


def _cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) of a process and its live children, from /proc (None elsewhere than Linux)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                total += _cpu_seconds(int(child)) or 0.0
        return total
    except (OSError, ValueError, IndexError):
        return None


def _throughput(tmp: Path, db: Database, channel: str, raw: bytes, args: argparse.Namespace) -> dict[str, object]:
    with _receiver(tmp, args.receiver_workers, channel) as (endpoint, receiver_pid):
        baseline = _baseline(endpoint, max(100, args.count // 4), channel, raw)
        run = Run(tmp, db.fresh(tmp), channel, endpoint, args.setting)
        try:
            _queue(run.store, args.count, raw, channel)
            receiver_cpu = _cpu_seconds(receiver_pid)
            workers = [run.start_worker() for _ in range(WORKERS)]
            run.wait_drained(600)
            worker_cpu = [_cpu_seconds(w.pid) for w in workers]
            if receiver_cpu is not None:
                receiver_cpu = (_cpu_seconds(receiver_pid) or 0.0) - receiver_cpu
            attempts = run.attempts()
            # What a worker's start costs (imports, adapters, schema check), measured on the idle queue: subtracted.
            idle = run.start_worker()
            time.sleep(3)
            startup = _cpu_seconds(idle.pid)
        finally:
            run.close()
    first = min(a[0] for a in attempts)
    last = max(a[0].timestamp() + a[1] / 1000 for a in attempts)
    rate = args.count / (last - first.timestamp())
    cpu: dict[str, float] = {}
    if None not in worker_cpu and startup is not None and receiver_cpu is not None:
        busy = sum(c for c in worker_cpu if c is not None) - WORKERS * startup
        cpu = {"workers": 1000 * busy / args.count, "receiver": 1000 * receiver_cpu / args.count}
    return {
        "baseline": baseline,
        "rate": rate,
        "retries": sum(1 for a in attempts if a[2] != "delivered"),
        "cpu": cpu,
    }


def _reclaim(tmp: Path, db: Database, raw: bytes, args: argparse.Namespace) -> dict[str, object]:
    """kill -9 of a worker holding claims (a second worker running): seconds to the first re-attempt of what it
    held, and to all of it delivered."""
    count = args.reclaim_count
    with _receiver(tmp, args.receiver_workers, "rest") as (endpoint, _):
        run = Run(tmp, db.fresh(tmp), "rest", endpoint, args.setting)
        try:
            _queue(run.store, count, raw, "rest")
            victim = run.start_worker()
            deadline = time.monotonic() + 120
            while int(run.scalar("SELECT count(*) FROM delivery_attempts")) < count // 10:  # type: ignore[arg-type]
                if time.monotonic() > deadline:
                    raise RuntimeError("the first worker delivered nothing")
                time.sleep(0.01)
            claimed = (
                sa.select(sa.func.count())
                .select_from(t.outbox)
                .where(t.outbox.c.claimed_by.is_not(None), t.outbox.c.lease_until > sa.bindparam("now"))
            )
            while True:  # kill it while it holds claims (not between two batches)
                with run.store.engine.connect() as conn:
                    if conn.execute(claimed, {"now": datetime.now(UTC)}).scalar_one():
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError("the first worker never held a claim")
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            killed, killed_at = time.monotonic(), datetime.now(UTC)
            with run.store.engine.connect() as conn:
                held = list(
                    conn.scalars(
                        sa.select(t.outbox.c.delivery_id).where(
                            t.outbox.c.claimed_by.is_not(None), t.outbox.c.lease_until > killed_at
                        )
                    )
                )
            run.start_worker()
            retaken = (
                sa.select(sa.func.count())
                .select_from(t.delivery_attempts)
                .where(t.delivery_attempts.c.delivery_id.in_(held), t.delivery_attempts.c.started_at > killed_at)
            )
            first_retake: float | None = None
            while True:
                now = time.monotonic()
                if first_retake is None and held:
                    with run.store.engine.connect() as conn:
                        if conn.execute(retaken).scalar_one():
                            first_retake = now - killed
                if not run.undelivered():
                    break
                if now - killed > 900:
                    raise RuntimeError("the killed worker's claims were not delivered within 900 s")
                time.sleep(0.05)
            drained = time.monotonic() - killed
        finally:
            run.close()
    return {"held": len(held), "first": first_retake, "all": drained}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--database-url", help="PostgreSQL URL of a server the bench may create databases in")
    ap.add_argument("--no-postgresql", action="store_true", help="measure SQLite only")
    ap.add_argument("--count", type=int, default=3000, help="deliveries per database and channel")
    ap.add_argument("--reclaim-count", type=int, default=1000, help="deliveries queued for the kill -9 measure")
    ap.add_argument("--receiver-workers", type=int, default=4)
    ap.add_argument("--channels", default="soap,rest")
    ap.add_argument("--quick", action="store_true", help="small counts (CI: does it run, not how fast)")
    ap.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a worker setting other than its default (delivery_peer_concurrency=8); repeatable",
    )
    args = ap.parse_args()
    args.setting = dict(item.split("=", 1) for item in args.setting)
    if args.quick:
        args.count, args.reclaim_count = 200, 200
    channels = [c for c in args.channels.split(",") if c]
    unknown = set(channels) - set(APPS)
    if unknown:
        ap.error(f"unknown channel(s) {', '.join(sorted(unknown))}; measured: {', '.join(APPS)}")
    raw = _package()
    rows: list[tuple[str, str, dict[str, object]]] = []
    reclaims: list[tuple[str, dict[str, object]]] = []
    with tempfile.TemporaryDirectory() as tmpdir, _postgresql(args) as pg:
        tmp = Path(tmpdir)
        for db in [Database("SQLite", None), *([pg] if pg else [])]:
            for channel in channels:
                rows.append((db.kind, channel, _throughput(tmp, db, channel, raw, args)))
            reclaims.append((db.kind, _reclaim(tmp, db, raw, args)))
    print(
        f"edoc-gateway delivery bench — {WORKERS} worker processes per run, reference receivers under gunicorn "
        f"({args.receiver_workers} sync workers) on 127.0.0.1, ~{SIZE // 1000} KB packages, {args.count} deliveries "
        f"per run, {os.cpu_count()} cores"
        + (f"; worker settings {', '.join(f'{k}={v}' for k, v in args.setting.items())}" if args.setting else "")
    )
    print(
        f"{'database':<10} | {'channel':<7} | {'in-process adapter/s':>20} | {'workers/s':>9} {'per worker/s':>12} "
        f"| {'ratio':>5} | goal"
    )
    for kind, channel, r in rows:
        rate, baseline = float(r["rate"]), float(r["baseline"])  # type: ignore[arg-type]
        goal = GOALS[kind]
        verdict = f"≥ {goal:g}/s {'met' if rate >= goal else 'MISSED'}"
        retries = f" ({r['retries']} retried)" if r["retries"] else ""
        cpu: dict[str, float] = r["cpu"]  # type: ignore[assignment]
        if cpu:
            retries += f"; CPU per delivery: workers {cpu['workers']:.1f} ms, receiver {cpu['receiver']:.1f} ms"
        print(
            f"{kind:<10} | {channel:<7} | {baseline:20.1f} | {rate:9.1f} {rate / WORKERS:12.1f} "
            f"| {rate / baseline:5.2f} | {verdict}{retries}"
        )
    print("re-claim after kill -9 of a worker (a second worker running; REST):")
    for kind, r in reclaims:
        first = "—" if r["first"] is None else f"{r['first']:.1f} s"
        print(
            f"{kind:<10} | {r['held']} deliveries held by the killed worker | first re-attempt {first} "
            f"| all delivered {r['all']:.1f} s after the kill"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
