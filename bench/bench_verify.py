#!/usr/bin/env python3
"""Benchmark: where the time of signature verification goes, before and after verifying on the parsed tree.

One invocation builds signed packages of 10 KB, 100 KB and 1 MB (demo PKI, RSA-2048, ``sign_package``, as
``bench_intake.py`` does), then runs child processes on the same files, interleaved, three rounds, best of three:

* ``before`` — the code at ``--before`` (default ``/work/main``: the last landed code, signxml on a copy);
* ``after`` — this tree;
* ``xmlsec`` — this tree plus the ``xmlsec`` binding of libxmlsec1, only when ``--xmlsec-python`` names an
  interpreter that can import it (a scratch venv: xmlsec is not a project dependency).

Each child prints, per size: the stages of the intake path (safe parse, XSD, model read + checks, the signature
checks before the cryptography, the cryptography, reading the signed content), the pieces signxml repeats (whole
document serialised and parsed again, canonical form parsed again), and the primitive floor (lxml parse +
exclusive C14N + SHA-256 + one RSA-2048 verify). Then the in-process intake (``GatewayService.submit``, SQLite WAL,
synchronous=FULL) of signed 10 KB packages. Times are medians in ms; ratios are within one run.

    PYTHONPATH=$PWD .venv/bin/python bench/bench_verify.py [--quick] [--xmlsec-python /tmp/xs/bin/python]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

HERE = Path(__file__).resolve().parent
SIZES = {"10 KB": 10_000, "100 KB": 100_000, "1 MB": 1_000_000}
RUNS = {"10 KB": 300, "100 KB": 100, "1 MB": 20}
INTAKE_N = 300
A = "000.00.01.H53"


def timed(fn: Callable[[], object], runs: int) -> float:
    """Median milliseconds of ``runs`` calls after one warm-up call."""
    fn()
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1000


# ============================================================================================ child side


def child_sizes(work: Path, runs_div: int, use_xmlsec: bool) -> dict[str, dict[str, float]]:
    """Stage timings per size on the package files of ``work``."""
    from gateway.xmlcheck.trust import TrustStore

    meta = json.loads((work / "meta.json").read_text())
    trust = TrustStore.from_files(Path(meta["trust"]), [Path(c) for c in meta["crls"]])
    out: dict[str, dict[str, float]] = {}
    for label in SIZES:
        data = (work / f"{label.replace(' ', '')}.edxml").read_bytes()
        out[label] = measure(data, max(3, RUNS[label] // runs_div), trust, use_xmlsec)
    return out


def measure(data: bytes, runs: int, trust, use_xmlsec: bool) -> dict[str, float]:
    """One size: the stages of today's path, signxml's repeated work, the floor (and xmlsec)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    from lxml import etree

    from gateway.edxml import check, classify, read_tree
    from gateway.services import intake as intake_mod
    from gateway.services import signature_policy
    from gateway.validation import validate_package
    from gateway.xmlcheck import dsig, schema
    from gateway.xmlcheck.safe import parse_bytes
    from gateway.xmlcheck.signature import VerifyPolicy, verify_package
    from gateway.xmlcheck.trust import validated_path

    policy = VerifyPolicy()
    # Reading the signed content: signature_policy.signed_package since issue 14, intake._signed_content before.
    signed_package = getattr(signature_policy, "signed_package", None) or intake_mod._signed_content
    tree = parse_bytes(data, what="edXML package")
    root = tree.getroot()
    kind = classify(root)
    ns, sig = dsig.locate_signature(root)
    certs = dsig.keyinfo_certificates(sig)
    leaf = dsig.end_entity(certs)
    at = policy.validation_time()

    def pre_crypto() -> None:
        _n, s = dsig.locate_signature(root)
        dsig.check_signed_info(s, allow_sha1=False)
        c = dsig.keyinfo_certificates(s)
        validated_path(dsig.end_entity(c), c, trust, at, policy.trust)

    def intake_path() -> None:
        # What Intake.submit runs on the XML before the database: validate, verify, read the signed content.
        validated = validate_package(data)
        checked = verify_package(validated.tree, trust, policy)
        signed_package(checked, validated.package)

    row = {
        "bytes": len(data),
        "parse": timed(lambda data=data: parse_bytes(data, what="edXML package"), runs),
        "xsd": timed(lambda tree=tree, kind=kind: schema.validate(tree, kind), runs),
        "read": timed(lambda tree=tree: check(read_tree(tree)), runs),
        "pre_crypto": timed(pre_crypto, runs),
        "signxml": timed(lambda: dsig.signxml_verify(root, ns, leaf, at, allow_sha1=False), runs),
        "verify": timed(lambda tree=tree: verify_package(tree, trust, policy), runs),
        "intake_xml": timed(intake_path, runs),
    }
    signed = verify_package(tree, trust, policy).signed_root
    row["read_signed"] = timed(lambda signed=signed: read_tree(signed), runs)
    # What signxml repeats on an element input: serialise + parse the whole document (3 times per call),
    # and parse the canonical form once more for VerifyResult.signed_xml.
    row["ser_parse"] = timed(lambda root=root: etree.fromstring(etree.tostring(root)), runs)
    c14n = etree.tostring(root, method="c14n", exclusive=True)
    row["reparse_c14n"] = timed(lambda c14n=c14n: etree.fromstring(c14n), runs)
    # The primitive floor.
    huge = etree.XMLParser(huge_tree=True)
    row["f_lxml"] = timed(lambda data=data: etree.fromstring(data, huge), runs)
    row["f_c14n"] = timed(lambda tree=tree: etree.tostring(tree, method="c14n", exclusive=True), runs)
    row["f_sha"] = timed(lambda c14n=c14n: hashlib.sha256(c14n).digest(), runs)
    pub = leaf.public_key()
    sig_value = _rsa_sig(data)
    row["f_rsa"] = timed(lambda: _try(lambda: pub.verify(sig_value, b"x", padding.PKCS1v15(), hashes.SHA256())), runs)
    row["floor"] = row["f_lxml"] + row["f_c14n"] + row["f_sha"] + row["f_rsa"]
    if use_xmlsec:
        row["xmlsec"] = timed(_xmlsec_verifier(root, leaf), runs)
    return row


def _rsa_sig(data: bytes) -> bytes:
    """The package's own SignatureValue (the RSA verify floor is one verify of that size, success or not)."""
    import base64
    import re

    m = re.search(rb"SignatureValue[^>]*>([^<]+)<", data)
    return base64.b64decode(m.group(1)) if m else b"\0" * 256


def _try(fn: Callable[[], object]) -> None:
    from cryptography.exceptions import InvalidSignature

    with contextlib.suppress(InvalidSignature):
        fn()


def _xmlsec_verifier(root, leaf) -> Callable[[], None]:
    """libxmlsec1 (through the ``xmlsec`` binding) verifying the same parsed tree with the same leaf key."""
    import xmlsec
    from cryptography.hazmat.primitives.serialization import Encoding

    key = xmlsec.Key.from_memory(leaf.public_bytes(Encoding.PEM), xmlsec.KeyFormat.CERT_PEM, None)
    node = xmlsec.tree.find_node(root, xmlsec.constants.NodeSignature)

    def run() -> None:
        ctx = xmlsec.SignatureContext()
        ctx.key = key
        ctx.verify(node)

    return run


def child_intake(work: Path, n: int) -> float:
    """In-process intake of signed 10 KB packages (bench_intake.py's setup and loop)."""
    sys.path.insert(0, str(HERE))
    from bench_intake import in_process, packages, setup_db

    from gateway.xmlcheck.signing import SigningKey

    meta = json.loads((work / "meta.json").read_text())
    pki = _pki_from_meta(meta)
    cred = pki.agencies[A]
    key = SigningKey.from_files(cred.key, cred.cert, pki.chain)
    pkgs = packages(key, SIZES["10 KB"], n + 1, f"b{os.getpid()}-")
    with tempfile.TemporaryDirectory() as tmp:
        env, _ = setup_db(Path(tmp), "ip", None, pki, {})
        return in_process(env, pkgs)


def _pki_from_meta(meta: dict) -> SimpleNamespace:
    """The DemoPki fields setup_db and SigningKey read, from their paths."""
    p = {k: Path(v) for k, v in meta["paths"].items()}
    agency = SimpleNamespace(key=p["key"], cert=p["cert"])
    crls = [Path(c) for c in meta["crls"]]
    return SimpleNamespace(
        agencies={A: agency},
        chain=p["chain"],
        trust=p["trust"],
        crls=crls,
        gateway_key=p["gateway_key"],
        gateway_cert=p["gateway_cert"],
    )


def child_main(work: Path, quick: bool, use_xmlsec: bool) -> None:
    div = 10 if quick else 1
    result = {"sizes": child_sizes(work, div, use_xmlsec)}
    if not use_xmlsec:
        result["intake_10kb"] = child_intake(work, INTAKE_N // div)
    print(json.dumps(result))


# ============================================================================================ parent side


def build(work: Path) -> None:
    sys.path.insert(0, str(HERE))
    from bench_intake import packages

    from gateway.demo.pki import create_demo_pki
    from gateway.xmlcheck.signing import SigningKey

    pki = create_demo_pki(work / "pki")
    cred = pki.agencies[A]
    key = SigningKey.from_files(cred.key, cred.cert, pki.chain)
    for label, target in SIZES.items():
        (work / f"{label.replace(' ', '')}.edxml").write_bytes(packages(key, target, 1, "v")[0])
    paths = {
        "key": cred.key,
        "cert": cred.cert,
        "chain": pki.chain,
        "trust": pki.trust,
        "gateway_key": pki.gateway_key,
        "gateway_cert": pki.gateway_cert,
    }
    meta = {"trust": str(pki.trust), "crls": [str(c) for c in pki.crls], "paths": {k: str(v) for k, v in paths.items()}}
    (work / "meta.json").write_text(json.dumps(meta))


def run_child(python: str, pythonpath: str, work: Path, quick: bool, use_xmlsec: bool) -> dict:
    env = {**os.environ, "PYTHONPATH": pythonpath}
    argv = [python, str(Path(__file__).resolve()), "--child", str(work)]
    argv += ["--quick"] if quick else []
    argv += ["--xmlsec"] if use_xmlsec else []
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"child {pythonpath} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def best(results: list[dict]) -> dict:
    """Per size and stage the minimum over rounds (best of three); intake the maximum rate."""
    out: dict = {"sizes": {}}
    for label in SIZES:
        keys = results[0]["sizes"][label].keys()
        out["sizes"][label] = {k: min(r["sizes"][label][k] for r in results) for k in keys}
    if "intake_10kb" in results[0]:
        out["intake_10kb"] = max(r["intake_10kb"] for r in results)
        out["intake_spread"] = (min(r["intake_10kb"] for r in results), out["intake_10kb"])
    return out


def report(name: str, res: dict) -> None:
    cols = ["parse", "xsd", "read", "pre_crypto", "signxml", "verify", "read_signed", "intake_xml"]
    cols += ["ser_parse", "reparse_c14n", "floor"] + (["xmlsec"] if "xmlsec" in res["sizes"]["10 KB"] else [])
    print(f"\n[{name}] medians in ms, best of rounds")
    print(f"{'size':>7} {'bytes':>9} " + " ".join(f"{c:>12}" for c in cols) + f" {'xml/floor':>9}")
    for label, row in res["sizes"].items():
        cells = " ".join(f"{row[c]:12.3f}" for c in cols)
        print(f"{label:>7} {int(row['bytes']):>9} {cells} {row['intake_xml'] / row['floor']:9.2f}")
    if "intake_10kb" in res:
        lo, hi = res["intake_spread"]
        floor = 1000 / res["sizes"]["10 KB"]["floor"]
        print(f"in-process intake, signed 10 KB: {hi:.1f}/s (rounds {lo:.1f}–{hi:.1f}); XML floor {floor:.0f}/s")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer runs (smoke test)")
    ap.add_argument("--before", default="/work/main", help="checkout holding the code to compare against")
    ap.add_argument("--xmlsec-python", help="an interpreter that can import xmlsec (a scratch venv)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--xmlsec", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child_main(args.child, args.quick, args.xmlsec)
        return 0
    after = str(HERE.parent)
    site = next(p for p in sys.path if p.endswith("site-packages"))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        build(work)
        runs: dict[str, list[dict]] = {"before": [], "after": [], "xmlsec": []}
        for _ in range(args.rounds):
            runs["before"].append(run_child(sys.executable, args.before, work, args.quick, False))
            runs["after"].append(run_child(sys.executable, after, work, args.quick, False))
            if args.xmlsec_python:
                # The scratch venv's own lxml comes after ours on the path: one lxml, the project's pin.
                path = f"{after}:{site}"
                runs["xmlsec"].append(run_child(args.xmlsec_python, path, work, args.quick, True))
    print(f"edoc-gateway verification bench — {os.cpu_count()} cores, {args.rounds} interleaved rounds")
    for name, results in runs.items():
        if results:
            report(name, best(results))
    b, a = best(runs["before"]), best(runs["after"])
    print("\nbefore → after (intake_xml = validate + verify + signed content, ms; intake = packages/s)")
    for label in SIZES:
        rb, ra = b["sizes"][label], a["sizes"][label]
        print(
            f"{label:>7}: verify {rb['verify']:.3f} → {ra['verify']:.3f}; intake_xml {rb['intake_xml']:.3f} → "
            f"{ra['intake_xml']:.3f} ({rb['intake_xml'] / rb['floor']:.2f} → {ra['intake_xml'] / ra['floor']:.2f} "
            "of the floor)"
        )
    print(f"in-process intake 10 KB: {b['intake_10kb']:.1f}/s → {a['intake_10kb']:.1f}/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
