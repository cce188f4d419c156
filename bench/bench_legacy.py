#!/usr/bin/env python3
"""Benchmark: legacy e-doc.vn ``SendDocument`` of 10 KB, 1 MB and 20 MB documents with SwA attachments.

Served: gunicorn with deploy/gunicorn.conf.py (2 workers) on 127.0.0.1; clients on keep-alive connections post
``multipart/related`` SendDocument requests to ``/legacy/edoc`` exactly as a Bkav-era system does (the envelope
as root part, the file as a raw binary part; OrganId + Token in the header), every request a new document
committed durably. Baseline, in the same run: the same requests handled in this process — the MIME parsed with
the same streaming reader, the same conversion to the canonical package, and ``GatewayService.submit`` on a
fresh database of the same kind. ``ratio`` = served documents/s ÷ in-process documents/s.

Memory: the peak resident set (VmHWM) of the gunicorn workers, reset to their resident set after small requests
(bench/served.py ``reset_peaks``: otherwise it still holds the start-up peak, which hid ≈ 50 MiB of the cost), then
read after the 20 MB requests, sent one at a time: the increase is what one document costs. The MIME
parts are streamed to spool files; what remains is intake holding the canonical package (the file's bytes, its
base64 inside the package, the parsed tree, the stored row) — issue 14's subject.

    .venv/bin/python bench/bench_legacy.py [--database-url postgresql+psycopg://...] [--quick]
"""

from __future__ import annotations

import argparse
import dataclasses
import http.client
import io
import os
import secrets
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from served import free_port, reset_peaks, start_gateway, worker_peaks

from gateway.config import load_settings
from gateway.db.migrations import upgrade
from gateway.demo.documents import demo_package
from gateway.demo.pki import create_demo_pki
from gateway.edxml import EdocPackage, Organization, add_files, render
from gateway.protocols import edocvn
from gateway.protocols.edocvn.names import Operation
from gateway.services.gateway import GatewayService
from gateway.services.registry import Registry

A, B = "000.00.01.H53", "000.00.00.G22"
SIZES = {"10 KB": 10_000, "1 MB": 1_000_000, "20 MB": 20_000_000}
COUNTS = {"10 KB": 300, "1 MB": 40, "20 MB": 6}
CLIENTS = 4
PATH = "/legacy/edoc"


def documents(target: int, count: int, tag: str) -> list[EdocPackage]:
    """``count`` documents from A to B, each with one attachment of ``target`` bytes and its own DocumentId."""
    base = dataclasses.replace(demo_package(), references=(), attachments=())
    base = add_files(base, [("scan.pdf", os.urandom(target))], zip=False)
    out = []
    for i in range(count):
        h = dataclasses.replace(
            base.message_header,
            to=(Organization(organ_id=B, organ_name="Văn phòng Chính phủ"),),
            document_id=f"{A},2026/12/03,{tag}{i}/VP-HCTC",
        )
        out.append(dataclasses.replace(base, message_header=h))
    return out


def request(pkg: EdocPackage, token: str) -> tuple[str, bytes]:
    body = edocvn.send_document_request(pkg, A, token)
    return body.content_type, body.to_bytes()


def setup_db(tmp: Path, name: str, database_url: str | None, pki, env_extra: dict[str, str]) -> tuple[dict, str]:
    env = {
        "EDOC_GATEWAY_DATA_DIR": str(tmp / name),
        "EDOC_GATEWAY_SECRET_KEY": secrets.token_urlsafe(24),
        "EDOC_GATEWAY_GATEWAY_KEY": str(pki.gateway_key),
        "EDOC_GATEWAY_GATEWAY_CERT": str(pki.gateway_cert),
        "EDOC_GATEWAY_TRUST_STORE": str(pki.trust),
        "EDOC_GATEWAY_CRL_FILES": ",".join(str(c) for c in pki.crls),
        **env_extra,
    }
    if database_url:
        env["EDOC_GATEWAY_DATABASE_URL"] = database_url
    (tmp / name).mkdir()
    settings = load_settings(env=env)
    upgrade(settings)
    registry = Registry.from_settings(settings)
    registry.import_records(
        [{"organ_id": A, "name": "Văn phòng UBND tỉnh Tây Ninh"}, {"organ_id": B, "name": "Văn phòng Chính phủ"}]
    )
    return env, registry.add_system("district-qlvb", [A], legacy_organ=A)


def in_process(env: dict[str, str], bodies: list[tuple[str, bytes]]) -> float:
    """What the edge does with a request, minus HTTP: parse the MIME (spooled), convert, submit."""
    settings = load_settings(env=env)
    service = GatewayService.from_settings(settings)

    def handle(ctype: str, data: bytes) -> None:
        with edocvn.read_related(io.BytesIO(data), ctype, spool_dir=str(settings.data_dir)) as rel:
            req = edocvn.read_request(rel.root.read(), Operation.SEND_DOCUMENT)
            pkg = edocvn.edoc_from_legacy(req.message_header, req.trace_header_list, req.manifest, rel.attachments)
        service.submit("district-qlvb", render(pkg))

    try:
        handle(*bodies[0])  # warm-up (schema compile, first connection)
        t0 = time.perf_counter()
        for ctype, data in bodies[1:]:
            handle(ctype, data)
        return (len(bodies) - 1) / (time.perf_counter() - t0)
    finally:
        service.close()


def sent(answer: bytes, ctype: str) -> bool:
    """The SendDocument answer says success (an SwA request is answered in SwA, §2.4)."""
    if not edocvn.is_multipart(ctype):
        return edocvn.read_answer(answer, Operation.SEND_DOCUMENT).ok
    with edocvn.read_related(io.BytesIO(answer), ctype) as rel:
        return edocvn.read_answer(rel.root.read(), Operation.SEND_DOCUMENT).ok


def served(port: int, bodies: list[tuple[str, bytes]], clients: int = CLIENTS) -> tuple[float, list[float]]:
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    it = iter(bodies)

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        while True:
            with lock:
                item = next(it, None)
            if item is None:
                break
            ctype, data = item
            t0 = time.perf_counter()
            conn.request("POST", PATH, body=data, headers={"Content-Type": ctype, "SOAPAction": "SendDocument"})
            resp = conn.getresponse()
            answer = resp.read()
            dt = time.perf_counter() - t0
            ok = resp.status == 200 and sent(answer, resp.getheader("Content-Type", ""))
            with lock:
                latencies.append(dt)
                if not ok:
                    errors.append(answer[:400].decode(errors="replace"))
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(min(clients, len(bodies)))]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    if errors:
        raise RuntimeError(f"{len(errors)} requests failed, first: {errors[0]}")
    return len(bodies) / elapsed, latencies


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--database-url", help="PostgreSQL URL of a database server the bench may create databases in")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        pki = create_demo_pki(tmp / "pki")
        db_kind = "PostgreSQL" if args.database_url else "SQLite (WAL, synchronous=FULL)"
        print(
            f"edoc-gateway legacy SendDocument bench — {db_kind}, gunicorn 2 workers, SwA raw parts, "
            f"{CLIENTS} client threads, {os.cpu_count()} cores"
        )
        print(
            f"{'size':>7} {'n':>4} | {'in-process/s':>12} | {'served/s':>9} {'p50 ms':>8} {'max ms':>8} | {'ratio':>5}"
        )
        for label, target in SIZES.items():
            n = max(2, COUNTS[label] // (3 if args.quick else 1))
            tag = label.replace(" ", "")
            ip_bodies = [request(p, "unused-in-process=") for p in documents(target, n + 1, f"ip{tag}-")]
            urls: list[str | None] = [None, None]
            if args.database_url:
                import psycopg

                admin = args.database_url.replace("postgresql+psycopg://", "postgresql://")
                for i in range(2):
                    name = f"bench_{secrets.token_hex(6)}"
                    with psycopg.connect(admin, autocommit=True) as conn:
                        conn.execute(f'CREATE DATABASE "{name}"')
                    urls[i] = args.database_url.rsplit("/", 1)[0] + f"/{name}"
            env_ip, _ = setup_db(tmp, f"ip-{tag}", urls[0], pki, {})
            rate_ip = in_process(env_ip, ip_bodies)
            del ip_bodies
            port = free_port()
            env_sv, token = setup_db(
                tmp,
                f"sv-{tag}",
                urls[1],
                pki,
                {
                    "EDOC_GATEWAY_BIND": f"127.0.0.1:{port}",
                    "EDOC_GATEWAY_WORKERS": "2",
                    "EDOC_GATEWAY_LOG_LEVEL": "WARNING",
                    "EDOC_GATEWAY_WORKER_THREADS": str(CLIENTS),
                    "EDOC_GATEWAY_MAX_REQUESTS_PER_SYSTEM": str(CLIENTS),
                    "EDOC_GATEWAY_RATE_PER_ADDRESS": "0",
                    "EDOC_GATEWAY_RATE_PER_SYSTEM": "0",
                },
            )
            sv_bodies = [request(p, token) for p in documents(target, n, f"sv{tag}-")]
            proc = start_gateway(env_sv, tmp / f"gunicorn-{port}.log", port)
            try:
                served(port, [request(p, token) for p in documents(10_000, 4, f"warm{tag}-")])
                before = reset_peaks(proc)  # VmHWM := resident set after small requests
                # 20 MB: one client, so that a worker's peak is what ONE document costs it
                rate_sv, lat = served(port, sv_bodies, 1 if label == "20 MB" else CLIENTS)
                after = worker_peaks(proc)
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=30)
            print(
                f"{label:>7} {n:>4} | {rate_ip:12.2f} | {rate_sv:9.2f} {statistics.median(lat) * 1000:8.1f} "
                f"{max(lat) * 1000:8.1f} | {rate_sv / rate_ip:5.2f}"
            )
            if label == "20 MB":
                mib = 1024 * 1024
                grew = max(after[pid] - before.get(pid, 0) for pid in after)
                print(
                    f"   gunicorn workers: resident {max(before.values()) / mib:.0f} MiB after small requests (peak "
                    f"reset there); peak after {n} × 20 MB one at a time +{grew / mib:.0f} MiB for a "
                    f"{target / mib:.1f} MiB attachment"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
