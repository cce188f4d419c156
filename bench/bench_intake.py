#!/usr/bin/env python3
"""Benchmark: intake of signed 10 KB, 100 KB and 1 MB packages through the served gateway.

Served: gunicorn with deploy/gunicorn.conf.py (2 workers) on 127.0.0.1, clients on keep-alive connections
posting SOAP ``SendEdoc`` with a fresh WS-Security PasswordDigest token each, every package a new document
committed durably. Baseline, in the same run: the same packages through ``GatewayService.submit`` in this
process on a fresh database of the same kind. ``ratio`` = served packages/s ÷ in-process packages/s.

    .venv/bin/python bench/bench_intake.py [--database-url postgresql+psycopg://...] [--quick]
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import hashlib
import http.client
import os
import secrets
import signal
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from served import free_port, start_gateway

from gateway.config import load_settings
from gateway.db.migrations import upgrade
from gateway.demo.documents import demo_package
from gateway.demo.pki import create_demo_pki
from gateway.edxml import Organization, add_files, render
from gateway.services.gateway import GatewayService
from gateway.services.registry import Registry
from gateway.xmlcheck.signing import SigningKey, sign_package

A, B = "000.00.01.H53", "000.00.00.G22"
SIZES = {"10 KB": 10_000, "100 KB": 100_000, "1 MB": 1_000_000}
COUNTS = {"10 KB": 400, "100 KB": 200, "1 MB": 40}
CLIENTS = 4
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
TOKEN = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0"


def packages(key: SigningKey, target: int, count: int, tag: str) -> list[bytes]:
    """``count`` signed packages of about ``target`` bytes, each a new document (own DocumentId)."""
    base = dataclasses.replace(demo_package(), references=(), attachments=())
    filler = max(0, int((target - len(sign_package(render(base), key))) * 3 / 4) - 300)
    base = add_files(base, [("scan.pdf", os.urandom(filler))])
    out = []
    for i in range(count):
        h = dataclasses.replace(
            base.message_header,
            to=(Organization(organ_id=B, organ_name="Văn phòng Chính phủ"),),
            document_id=f"{A},2026/11/28,{tag}{i}/VP-HCTC",
        )
        out.append(sign_package(render(dataclasses.replace(base, message_header=h)), key))
    return out


def envelope(system: str, secret: str, package_b64: bytes) -> bytes:
    nonce = secrets.token_bytes(16)
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    digest = base64.b64encode(hashlib.sha1(nonce + created.encode() + secret.encode()).digest()).decode()
    head = (
        '<?xml version="1.0" encoding="UTF-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">'
        f'<soap:Header><wsse:Security xmlns:wsse="{WSSE}" xmlns:wsu="{WSU}"><wsse:UsernameToken>'
        f"<wsse:Username>{system}</wsse:Username>"
        f'<wsse:Password Type="{TOKEN}#PasswordDigest">{digest}</wsse:Password>'
        f'<wsse:Nonce EncodingType="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary">{base64.b64encode(nonce).decode()}</wsse:Nonce>'
        f"<wsu:Created>{created}</wsu:Created></wsse:UsernameToken></wsse:Security></soap:Header>"
        '<soap:Body><tns:SendEdoc xmlns:tns="urn:edoc-gateway:soap:1"><tns:edxmlPackage>'
    )
    return head.encode() + package_b64 + b"</tns:edxmlPackage></tns:SendEdoc></soap:Body></soap:Envelope>"


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
        [
            {"organ_id": A, "name": "Văn phòng UBND tỉnh Tây Ninh", "signature_policy": "require"},
            {"organ_id": B, "name": "Văn phòng Chính phủ"},
        ]
    )
    return env, registry.add_system("SA", [A])


def in_process(env: dict[str, str], pkgs: list[bytes]) -> float:
    service = GatewayService.from_settings(load_settings(env=env))
    try:
        service.submit("SA", pkgs[0])  # warm-up (schema compile, first connection)
        t0 = time.perf_counter()
        for data in pkgs[1:]:
            service.submit("SA", data)
        return (len(pkgs) - 1) / (time.perf_counter() - t0)
    finally:
        service.close()


def served(port: int, secret: str, pkgs: list[bytes]) -> tuple[float, list[float]]:
    bodies = [base64.b64encode(p) for p in pkgs]
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    it = iter(bodies)

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while True:
            with lock:
                b = next(it, None)
            if b is None:
                break
            body = envelope("SA", secret, b)
            t0 = time.perf_counter()
            conn.request("POST", "/soap", body=body, headers={"Content-Type": "text/xml; charset=utf-8"})
            resp = conn.getresponse()
            answer = resp.read()
            dt = time.perf_counter() - t0
            with lock:
                latencies.append(dt)
                if resp.status != 200:
                    errors.append(answer[:300].decode(errors="replace"))
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(CLIENTS)]
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
    ap.add_argument("--database-url", help="PostgreSQL URL of a database server the bench may create two databases in")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        pki = create_demo_pki(tmp / "pki")
        cred = pki.agencies[A]
        key = SigningKey.from_files(cred.key, cred.cert, pki.chain)
        db_kind = "PostgreSQL" if args.database_url else "SQLite (WAL, synchronous=FULL)"
        print(
            f"edoc-gateway intake bench — {db_kind}, gunicorn 2 workers (asyncio + 4 threads), "
            f"{CLIENTS} client threads, {os.cpu_count()} cores"
        )
        print(
            f"{'size':>7} {'n':>5} | {'in-process/s':>12} | {'served/s':>9} {'p50 ms':>8} {'p99 ms':>8} | {'ratio':>5}"
        )
        for label, target in SIZES.items():
            n = COUNTS[label] // (5 if args.quick else 1)
            pkgs_a = packages(key, target, n + 1, f"ip{label[:3].strip()}-")
            pkgs_b = packages(key, target, n, f"sv{label[:3].strip()}-")
            urls = [None, None]
            if args.database_url:
                import psycopg

                admin = args.database_url.replace("postgresql+psycopg://", "postgresql://")
                for i in range(2):
                    name = f"bench_{secrets.token_hex(6)}"
                    with psycopg.connect(admin, autocommit=True) as conn:
                        conn.execute(f'CREATE DATABASE "{name}"')
                    urls[i] = args.database_url.rsplit("/", 1)[0] + f"/{name}"
            env_ip, _ = setup_db(tmp, f"ip-{label[:3].strip()}", urls[0], pki, {})
            rate_ip = in_process(env_ip, pkgs_a)
            port = free_port()
            env_sv, secret = setup_db(
                tmp,
                f"sv-{label[:3].strip()}",
                urls[1],
                pki,
                {
                    "EDOC_GATEWAY_BIND": f"127.0.0.1:{port}",
                    "EDOC_GATEWAY_WORKERS": "2",
                    "EDOC_GATEWAY_LOG_LEVEL": "WARNING",
                    # CLIENTS threads of one system may all reach one worker: throughput, not the per-system
                    # bound (issue 10) or the rate limits, is what is measured here.
                    "EDOC_GATEWAY_WORKER_THREADS": str(CLIENTS),
                    "EDOC_GATEWAY_MAX_REQUESTS_PER_SYSTEM": str(CLIENTS),
                    "EDOC_GATEWAY_RATE_PER_ADDRESS": "0",
                    "EDOC_GATEWAY_RATE_PER_SYSTEM": "0",
                },
            )
            proc = start_gateway(env_sv, tmp / f"gunicorn-{port}.log", port)
            try:
                rate_sv, lat = served(port, secret, pkgs_b)
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=30)
            lat.sort()
            p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
            print(
                f"{label:>7} {n:>5} | {rate_ip:12.1f} | {rate_sv:9.1f} {statistics.median(lat) * 1000:8.1f} "
                f"{p99 * 1000:8.1f} | {rate_sv / rate_ip:5.2f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
