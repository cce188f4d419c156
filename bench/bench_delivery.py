#!/usr/bin/env python3
"""Benchmark: push delivery throughput to the reference SOAP or REST receiver (issue 4).

Setup: N deliveries of ~10 KB packages queued for one agency on the ``soap`` channel; the reference receiver
(``adapters.soap.receiver``) under gunicorn (2 sync workers) on 127.0.0.1, storing every package durably (fsync of the
file and the directory). Measured: ``edoc-gateway worker`` processes (``run_worker``) draining the queue — claim,
SOAP call, one durable commit per delivery recording the attempt — from the first attempt to the last. Baseline, in
the same run: the same kind of packages sent by :class:`SoapAdapter` from this process in a loop (no database).
``ratio`` = workers' deliveries/s ÷ baseline deliveries/s.

    .venv/bin/python bench/bench_delivery.py [--channel soap|rest] [--database-url postgresql+psycopg://…]
        [--count 2000] [--workers 2]

With ``--channel rest`` the packages are real edXML (the REST adapter converts each to canonical JSON) and the
receiver is ``adapters.rest.receiver`` checking the HMAC signature of every message.
"""

from __future__ import annotations

import argparse
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
from datetime import UTC, datetime
from pathlib import Path

from adapters.rest import RestAdapter
from adapters.soap import SoapAdapter
from gateway.db import AgencyRecord, AuditEntry, DocumentRecord, NewDocument, Store, create_engine
from gateway.db.migrations import upgrade
from gateway.edxml.codes import PackageKind
from gateway.ports import OutgoingPackage, Peer

SENDER, PEER = "000.00.00.A01", "000.00.00.B02"
SIZE = 10_000
WORKER = """
import logging
from gateway.config import load_settings
from gateway.worker import run_worker
logging.basicConfig(level=logging.WARNING)
run_worker(load_settings())
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


HMAC_KEY = secrets.token_urlsafe(24)
APPS = {"soap": "adapters.soap.receiver:make_app()", "rest": "adapters.rest.receiver:make_app()"}


def _package() -> bytes:
    """A real ~10 KB edXML package (the REST adapter parses what it sends; SOAP carries it opaque)."""
    import dataclasses

    from gateway.demo.documents import demo_package
    from gateway.edxml import add_files, render

    base = dataclasses.replace(demo_package(), references=(), attachments=())
    return render(add_files(base, [("scan.pdf", os.urandom(SIZE * 3 // 4 - 2500))]))


def _receiver(tmp: Path, workers: int, channel: str) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDOC_")}
    env["EDOC_RECEIVER_DIR"] = str(tmp / "received")
    env["EDOC_RECEIVER_HMAC_KEY"] = HMAC_KEY
    with (tmp / "receiver.log").open("wb") as out:
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
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "healthz", timeout=2):
                return proc, url
        except urllib.error.HTTPError:  # the REST receiver answers 405 to a GET: it is up
            return proc, url
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError((tmp / "receiver.log").read_text(errors="replace"))


def _queue(store: Store, count: int, raw: bytes) -> None:
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
                    size=SIZE,
                    received_at=now,
                    signature_state="unsigned",
                    idem_key=secrets.token_hex(32),
                    meta={},
                ),
                raw=raw,
                recipients=((PEER, True),),
                audit=AuditEntry(at=now, action="intake.accepted", doc_id=doc_id),
            )
        )


def _baseline(url: str, count: int, channel: str, raw: bytes) -> float:
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


def _outgoing(raw: bytes) -> OutgoingPackage:
    return OutgoingPackage(uuid.uuid4().hex, uuid.uuid4().hex, PackageKind.EDOC, SENDER, PEER, "bench", raw, 1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--database-url", help="PostgreSQL URL of a server the bench may create a database in")
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--receiver-workers", type=int, default=2)
    ap.add_argument("--channel", choices=sorted(APPS), default="soap")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        url = f"sqlite:///{tmp / 'gateway.db'}"
        if args.database_url:
            import psycopg

            name = f"bench_{secrets.token_hex(6)}"
            with psycopg.connect(
                args.database_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True
            ) as c:
                c.execute(f'CREATE DATABASE "{name}"')
            url = args.database_url.rsplit("/", 1)[0] + f"/{name}"
        upgrade(url)
        store = Store(create_engine(url))
        receiver, endpoint = _receiver(tmp, args.receiver_workers, args.channel)
        raw = _package() if args.channel == "rest" else os.urandom(SIZE)
        config = tmp / "bench.toml"  # channel credentials live in the configuration file, not the database
        config.write_text(f'[credentials."{PEER}"]\nhmac_key = "{HMAC_KEY}"\n', encoding="utf-8")
        try:
            store.registry.upsert_agencies(
                [AgencyRecord(SENDER, "sender"), AgencyRecord(PEER, "peer", channel=args.channel, endpoint=endpoint)],
                now=datetime.now(UTC),
            )
            baseline = _baseline(endpoint, max(200, args.count // 4), args.channel, raw)
            _queue(store, args.count, raw)
            env = {k: v for k, v in os.environ.items() if not k.startswith("EDOC_GATEWAY_")}
            env.update(
                {
                    "EDOC_GATEWAY_CONFIG": str(config),
                    "EDOC_GATEWAY_DATABASE_URL": url,
                    "EDOC_GATEWAY_DATA_DIR": str(tmp),
                    "EDOC_GATEWAY_WORKER_BATCH": "20",
                    "EDOC_GATEWAY_WORKER_POLL_SECONDS": "0.2",
                }
            )
            workers = [
                subprocess.Popen([sys.executable, "-c", WORKER], env=env, stderr=subprocess.DEVNULL)
                for _ in range(args.workers)
            ]
            try:
                while store.deliveries.list_deliveries(state="queued", limit=1):
                    time.sleep(0.2)
            finally:
                for w in workers:
                    w.send_signal(signal.SIGTERM)
                for w in workers:
                    w.wait(timeout=60)
            attempts = [
                a
                for r in store.deliveries.list_deliveries(limit=args.count)
                for a in store.outbox.delivery_attempts(r.delivery_id)
            ]
            first = min(a.started_at for a in attempts)
            last = max(a.finished_at for a in attempts)
            rate = args.count / (last - first).total_seconds()
            db_kind = "PostgreSQL" if args.database_url else "SQLite (WAL, synchronous=FULL)"
            print(
                f"edoc-gateway delivery bench — {args.channel}, {db_kind}, {args.workers} worker processes, "
                f"receiver gunicorn {args.receiver_workers} sync workers, {SIZE // 1000} KB packages, "
                f"{os.cpu_count()} cores"
            )
            print(f"{'n':>6} | {'in-process adapter/s':>20} | {'workers/s':>9} {'per worker/s':>12} | {'ratio':>5}")
            print(
                f"{args.count:>6} | {baseline:20.1f} | {rate:9.1f} {rate / args.workers:12.1f} | {rate / baseline:5.2f}"
            )
            retries = sum(1 for a in attempts if a.outcome != "delivered")
            if retries:
                print(f"({retries} attempts were retries)")
        finally:
            receiver.send_signal(signal.SIGTERM)
            receiver.wait(timeout=30)
            store.engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
