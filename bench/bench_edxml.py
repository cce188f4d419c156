#!/usr/bin/env python3
"""Benchmark: parse + XSD + verify of signed 10 KB, 1 MB and 20 MB edXML packages.

Printed beside the primitives they are made of, measured in the same run on the same bytes: raw lxml
parse, exclusive C14N, SHA-256 and one RSA-2048 verification. ``ratio`` is the pipeline's time over the
sum of those primitives — the overhead our code adds to the unavoidable work. Run: ``make bench``.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from lxml import etree

from gateway.demo.documents import demo_package
from gateway.demo.pki import create_demo_pki
from gateway.edxml import add_files, check, classify, read_tree, render
from gateway.xmlcheck import schema
from gateway.xmlcheck.safe import parse_bytes
from gateway.xmlcheck.signature import VerifyPolicy, verify_package
from gateway.xmlcheck.signing import SigningKey, sign_package
from gateway.xmlcheck.trust import TrustStore

SIZES = {"10 KB": 10_000, "1 MB": 1_000_000, "20 MB": 20_000_000}
RUNS = {"10 KB": 300, "1 MB": 30, "20 MB": 5}


def make_package(target: int, key: SigningKey) -> bytes:
    """A signed package of about ``target`` bytes (random payload: incompressible, like scanned PDFs)."""
    base = len(sign_package(render(demo_package()), key))
    raw = max(0, int((target - base) * 3 / 4) - 200)
    empty = dataclasses.replace(demo_package(), references=(), attachments=())
    pkg = add_files(empty, [("scan.pdf", os.urandom(raw))])
    return sign_package(render(pkg), key)


def timed(fn: Callable[[], object], runs: int) -> float:
    """Median seconds of ``runs`` calls (after one warm-up call)."""
    fn()
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def bench_one(label: str, data: bytes, runs: int, trust: TrustStore, policy: VerifyPolicy, rsa_pair: tuple) -> str:
    """One table row: our stages and the whole pipeline, then the primitives on the same bytes."""
    rsa_pub, rsa_sig = rsa_pair

    def pipeline() -> None:
        tree = parse_bytes(data, what="edXML package")
        kind = classify(tree.getroot())
        schema.validate(tree, kind)
        signed = verify_package(tree, trust, policy)
        check(read_tree(signed.signed_root)).raise_if_errors()

    tree = parse_bytes(data)
    kind = classify(tree.getroot())
    t_parse = timed(lambda: parse_bytes(data), runs)
    t_xsd = timed(lambda: schema.validate(tree, kind), runs)
    t_read = timed(lambda: check(read_tree(tree)), runs)
    t_verify = timed(lambda: verify_package(tree, trust, policy), runs)
    t_all = timed(pipeline, runs)

    huge = etree.XMLParser(huge_tree=True)
    t_lxml = timed(lambda: etree.fromstring(data, huge), runs)
    c14n = etree.tostring(tree, method="c14n", exclusive=True)
    t_c14n = timed(lambda: etree.tostring(tree, method="c14n", exclusive=True), runs)
    t_sha = timed(lambda: hashlib.sha256(c14n).digest(), runs)
    t_rsa = timed(lambda: rsa_pub.verify(rsa_sig, b"x" * 32, padding.PKCS1v15(), hashes.SHA256()), runs)
    floor = t_lxml + t_c14n + t_sha + t_rsa

    def ms(t: float) -> str:
        return f"{t * 1000:8.2f}"

    return (
        f"{label:>6} {len(data):>10} | {ms(t_parse)} {ms(t_xsd)} {ms(t_read)} {ms(t_verify)} {ms(t_all)} "
        f" {1 / t_all:7.1f} | {ms(t_lxml)} {ms(t_c14n)} {ms(t_sha)} {t_rsa * 1000:7.3f} {ms(floor)} | "
        f"{t_all / floor:5.2f}"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="fewer runs (smoke test)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pki = create_demo_pki(Path(tmp) / "pki")
        agency = next(iter(pki.agencies.values()))
        key = SigningKey.from_files(agency.key, agency.cert, pki.chain)
        trust = TrustStore.from_files(pki.trust, pki.crls)
    policy = VerifyPolicy()
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_sig = rsa_key.sign(b"x" * 32, padding.PKCS1v15(), hashes.SHA256())
    rsa_pub = rsa_key.public_key()

    print(
        f"edoc-gateway edXML bench — Python {platform.python_version()}, lxml {etree.__version__}, "
        f"{platform.machine()}, {os.cpu_count()} cores"
    )
    header = (
        f"{'size':>6} {'bytes':>10} | {'parse':>8} {'xsd':>8} {'read':>8} {'verify':>8} {'pipeline':>9} "
        f"{'pkg/s':>7} | {'lxml':>8} {'c14n':>8} {'sha256':>8} {'rsa':>7} {'floor':>8} | {'ratio':>5}"
    )
    print(header)
    print("-" * len(header))
    for label, target in SIZES.items():
        data = make_package(target, key)
        runs = max(2, RUNS[label] // (10 if args.quick else 1))
        print(bench_one(label, data, runs, trust, policy, (rsa_pub, rsa_sig)))
    print(
        "times are medians in ms; pipeline = parse + XSD + verify + read + business checks; "
        "floor = lxml + c14n + sha256 + rsa; ratio = pipeline / floor"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
