"""The ``edoc-gateway`` console script, run as a user would run it (a real subprocess)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from _samples import EDOCS, MALFORMED, STATUSES, WELL_FORMED, sample

from gateway.edxml import from_json, read_bytes, to_json

EXE = shutil.which("edoc-gateway", path=str(Path(sys.executable).parent)) or "edoc-gateway"


def run(*args: str | Path, ok: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([EXE, *map(str, args)], capture_output=True, text=True, timeout=120)
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_validate_every_well_formed_sample():
    out = run("validate", *WELL_FORMED).stdout.splitlines()
    assert len(out) == len(WELL_FORMED)
    for line, path in zip(out, WELL_FORMED, strict=True):
        kind = "status" if path in STATUSES else "edoc"
        assert line.startswith(f"{path}: OK {kind} ")


def test_validate_reports_each_failure_on_one_line_and_exits_non_zero(tmp_path):
    empty = tmp_path / "empty.edxml"
    empty.write_bytes(b"")
    proc = run("validate", sample(MALFORMED), EDOCS[0], empty, tmp_path / "missing.edxml", ok=False)
    assert proc.returncode == 1
    errors = proc.stderr.strip().splitlines()
    assert len(errors) == 3
    assert errors[0].startswith(f"{sample(MALFORMED)}: EDXML.PARSE: ")
    assert errors[1].startswith(f"{empty}: EDXML.PARSE: ")
    assert errors[2].startswith(f"{tmp_path / 'missing.edxml'}: IO.ERROR: ")
    assert proc.stdout.count(": OK edoc ") == 1


def test_validate_size_limit():
    proc = run("validate", "--max-bytes", "1000", EDOCS[0], ok=False)
    assert ": SIZE.LIMIT: " in proc.stderr


def test_inspect_summary_and_json():
    path = sample("truclienthong-example__edoc_revocation.edxml")
    text = run("inspect", path).stdout
    assert "kind:        edoc" in text
    assert "business:    1 Thu hồi văn bản điện tử" in text
    assert "signature:   legacy-placeholder" in text or "signature:   unsigned" in text
    doc = json.loads(run("inspect", "--json", path).stdout)
    assert from_json(doc) == read_bytes(path.read_bytes())
    status = run("inspect", sample("truclienthong-example__status_rejection_02.edxml")).stdout
    assert "status:      02 Từ chối / rejected" in status


def test_inspect_extracts_attachments(tmp_path):
    run("inspect", "--extract", tmp_path, sample("truclienthong-example__edoc_new.edxml"))
    extracted = tmp_path / "1896_QD-TTg_m_294779.doc"
    # the official sample's "doc" is itself an edXML file (test data, see SOURCES.txt)
    assert extracted.read_bytes().startswith(b'<?xml version="1.0" encoding="UTF-8"?>')


def test_build_from_json_round_trips(tmp_path):
    src = sample("truclienthong-example__edoc_update.edxml")
    doc = to_json(read_bytes(src.read_bytes()))
    (tmp_path / "in.json").write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    run("build", "--json", tmp_path / "in.json", tmp_path / "out.edxml")
    assert read_bytes((tmp_path / "out.edxml").read_bytes()) == read_bytes(src.read_bytes())
    run("validate", tmp_path / "out.edxml")


@pytest.mark.parametrize(("content", "code"), [("{not json", "EDXML.PARSE"), ('{"kind": "edoc"}', "EDXML.STRUCTURE")])
def test_build_refuses_bad_json(tmp_path, content, code):
    (tmp_path / "in.json").write_text(content)
    proc = run("build", "--json", tmp_path / "in.json", tmp_path / "out.edxml", ok=False)
    assert f": {code}: " in proc.stderr
    assert not (tmp_path / "out.edxml").exists()


def test_demo_pki_sign_verify_through_the_cli(tmp_path):
    pki = tmp_path / "pki"
    run("demo-pki", pki)
    again = run("demo-pki", pki, ok=False)
    assert again.returncode == 1
    assert "IO.ERROR" in again.stderr  # an existing PKI is never silently replaced
    agency = next(p for p in sorted(pki.rglob("*.pem")) if "000.00.00.G22" in p.name and "key" in p.name)
    cert = agency.with_name(agency.name.replace("key", "cert"))
    src = sample("truclienthong-example__edoc_new.edxml")
    signed = tmp_path / "signed.edxml"
    run("sign", "--key", agency, "--cert", cert, "--chain", pki / "chain.pem", src, signed)
    crls = [a for c in sorted(pki.glob("*crl*.pem")) for a in ("--crl", c)]
    out = run("verify", "--trust", pki / "trust.pem", *crls, signed).stdout
    assert f"{signed}: valid" in out
    assert "fingerprint: sha256:" in out
    assert "000.00.00.G22" in out
    tampered = tmp_path / "tampered.edxml"
    tampered.write_bytes(signed.read_bytes().replace("kết nối".encode(), b"ket noi", 1))
    bad = run("verify", "--trust", pki / "trust.pem", *crls, tampered, ok=False)
    assert ": EDXML.SIGNATURE: " in bad.stderr
    unsigned = run("verify", "--trust", pki / "trust.pem", *crls, src, ok=False)
    assert ": EDXML.SIGNATURE: " in unsigned.stderr


def test_demo_runs_the_gateway_with_sample_traffic(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    out = run("demo", "--data-dir", tmp_path / "demo", "--bind", f"127.0.0.1:{port}", "--no-wait").stdout
    assert "accepted truclienthong-example__edoc_new.edxml" in out
    assert "accepted truclienthong-example__status_finish_06.edxml" in out
    assert f"refused  {MALFORMED}" in out
    assert "VPCP fetched" in out
    assert "byte-identical: True" in out
    assert "000.00.00.G22: delivered, statuses 01, 03" in out
    assert "000.01.01.H53: delivered, statuses 01" in out  # emitted by the gateway on acknowledge
    assert f"WSDL:        http://127.0.0.1:{port}/soap?wsdl" in out
    # push channels: the worker delivered to the reference SOAP and REST receivers, whose agencies answered
    assert "000.00.00.H14: delivered, statuses 01" in out
    assert "000.00.00.G17: delivered, statuses 03" in out
    # the demo left a usable configuration behind, and the CLI reads it
    env_cfg = ["--config", tmp_path / "demo" / "gateway.toml"]
    agencies = run(*env_cfg, "agencies", "list").stdout
    assert "000.01.01.H53" in agencies
    assert "require" in agencies
    listed = run(*env_cfg, "deliveries", "list", "--state", "delivered").stdout
    assert "000.00.00.H14" in listed
    assert "000.00.00.G17" in listed
    delivery_id = next(line.split()[0] for line in listed.splitlines() if "000.00.00.G17" in line)
    shown = run(*env_cfg, "deliveries", "show", delivery_id).stdout
    assert "delivered" in shown
    assert "#1 " in shown
    refused = run(*env_cfg, "deliveries", "redrive", delivery_id, ok=False)
    assert refused.returncode == 1  # a delivered message is never re-driven
    systems = run(*env_cfg, "systems", "list").stdout
    assert "tayninh-qlvb" in systems
    assert "secret" not in systems.lower()
