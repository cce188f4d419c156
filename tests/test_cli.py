"""The ``edoc-gateway`` console script, run as a user would run it (a real subprocess)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from _samples import OWN, REAL, REAL_ABSENT, is_status, own_entries, real
from gatewayproc import free_ports

from gateway.edxml import from_json, read_bytes, to_json

EXE = shutil.which("edoc-gateway", path=str(Path(sys.executable).parent)) or "edoc-gateway"


def run(*args: str | Path, ok: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([EXE, *map(str, args)], capture_output=True, text=True, timeout=120)
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_validate_every_well_formed_sample(corpus):
    out = run("validate", *corpus.well_formed).stdout.splitlines()
    assert len(out) == len(corpus.well_formed)
    for line, path in zip(out, corpus.well_formed, strict=True):
        kind = "status" if is_status(path) else "edoc"
        assert line.startswith(f"{path}: OK {kind} ")


def test_validate_reports_each_failure_on_one_line_and_exits_non_zero(corpus, tmp_path):
    empty = tmp_path / "empty.edxml"
    empty.write_bytes(b"")
    proc = run("validate", corpus.malformed, corpus.edocs[0], empty, tmp_path / "missing.edxml", ok=False)
    assert proc.returncode == 1
    errors = proc.stderr.strip().splitlines()
    assert len(errors) == 3
    assert errors[0].startswith(f"{corpus.malformed}: EDXML.PARSE: ")
    assert errors[1].startswith(f"{empty}: EDXML.PARSE: ")
    assert errors[2].startswith(f"{tmp_path / 'missing.edxml'}: IO.ERROR: ")
    assert proc.stdout.count(": OK edoc ") == 1


def test_validate_size_limit(corpus):
    proc = run("validate", "--max-bytes", "1000", corpus.edocs[0], ok=False)
    assert ": SIZE.LIMIT: " in proc.stderr


def test_inspect_summary_and_json(corpus):
    path = corpus.path("edoc_revocation")
    text = run("inspect", path).stdout
    assert "kind:        edoc" in text
    assert "business:    1 Thu hồi văn bản điện tử" in text
    assert "signature:   legacy-placeholder" in text or "signature:   unsigned" in text
    doc = json.loads(run("inspect", "--json", path).stdout)
    assert from_json(doc) == read_bytes(path.read_bytes())
    status = run("inspect", corpus.path("status_02")).stdout
    assert "status:      02 Từ chối / rejected" in status


#: The AttachmentName of each corpus' new-document sample.
_ATTACHMENT = {OWN: "15-UBND-VP.doc", REAL: "1896_QD-TTg_m_294779.doc"}


def test_inspect_extracts_attachments(corpus, tmp_path):
    run("inspect", "--extract", tmp_path, corpus.path("edoc_new"))
    extracted = tmp_path / _ATTACHMENT[corpus.name]
    # the sample's "doc" is itself an edXML file (test data, as in the official samples: see their SOURCES.txt)
    assert extracted.read_bytes().startswith(b'<?xml version="1.0" encoding="UTF-8"?>')


def test_build_from_json_round_trips(corpus, tmp_path):
    src = corpus.path("edoc_update")
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


@pytest.mark.parametrize("entry", [e for e in own_entries() if e.is_json], ids=lambda e: e.name)
def test_build_takes_the_canonical_json_of_the_own_corpus_and_refuses_the_other_forms(tmp_path, entry):
    (tmp_path / entry.name).write_bytes(entry.data)
    out = tmp_path / "out.edxml"
    proc = run("build", "--json", tmp_path / entry.name, out, ok=entry.refused is None)
    if entry.refused:
        assert f": {entry.refused}: " in proc.stderr
        assert not out.exists()
    else:
        assert read_bytes(out.read_bytes()) == entry.model


#: The third-party JSON of the real corpus (edxml-convert): annotated with // comments, flattened, or wrapped.
_REAL_JSON = {
    "edxml-convert__edoc.json": "EDXML.PARSE",
    "edxml-convert__status.json": "EDXML.PARSE",
    "edxml-convert__edoc_req.json": "EDXML.STRUCTURE",
    "edxml-convert__status_req.json": "EDXML.STRUCTURE",
    "edxml-convert__status_response.json": "EDXML.STRUCTURE",
}


@pytest.mark.parametrize(
    ("name", "code"),
    [pytest.param(n, c, marks=[] if real() else [pytest.mark.skip(reason=REAL_ABSENT)]) for n, c in _REAL_JSON.items()],
)
def test_build_refuses_the_real_third_party_json_with_a_clear_code(tmp_path, name, code):
    path = real().directory / name
    proc = run("build", "--json", path, tmp_path / "out.edxml", ok=False)
    assert proc.stderr.startswith(f"{path}: {code}: ")
    assert not (tmp_path / "out.edxml").exists()


def test_demo_pki_sign_verify_through_the_cli(corpus, tmp_path):
    pki = tmp_path / "pki"
    run("demo-pki", pki)
    again = run("demo-pki", pki, ok=False)
    assert again.returncode == 1
    assert "IO.ERROR" in again.stderr  # an existing PKI is never silently replaced
    agency = next(p for p in sorted(pki.rglob("*.pem")) if "000.00.00.G22" in p.name and "key" in p.name)
    cert = agency.with_name(agency.name.replace("key", "cert"))
    src = corpus.path("edoc_new")
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


@contextlib.contextmanager
def _serving_demo(data_dir: Path, port: int) -> Iterator[str]:
    """``edoc-gateway demo`` as a user runs it: it sends its traffic and serves; yields its output so far, then
    stops it with Ctrl-C (SIGINT) and checks it ended cleanly."""
    log = (data_dir.parent / "demo.stderr").open("w")
    argv = [EXE, "demo", "--data-dir", str(data_dir), "--bind", f"127.0.0.1:{port}"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log, text=True)
    guard = threading.Timer(300, proc.kill)  # a hung demo fails the test instead of hanging the run
    guard.start()
    try:
        lines = []
        while not (lines and lines[-1].startswith("== serving")):
            line = proc.stdout.readline()
            assert line, f"the demo ended early: {''.join(lines)}{(data_dir.parent / 'demo.stderr').read_text()}"
            lines.append(line)
        yield "".join(lines)
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=90)
        guard.cancel()
        proc.stdout.close()
        log.close()
    assert code == 0, (data_dir.parent / "demo.stderr").read_text()


def test_demo_runs_the_gateway_with_sample_traffic(tmp_path):
    port = free_ports(3)  # the demo's gateway, then its SOAP and REST receivers on the next two ports
    with _serving_demo(tmp_path / "demo", port) as out:
        _the_printed_commands_work(out)  # while it serves, as a user would paste them
    # the own corpus travels whatever is beside the checkout: every package as its entry says
    for e in own_entries():
        if not e.is_json:
            assert f"{'refused ' if e.refused else 'accepted'} {e.name}" in out
    assert "refused  edoc_jmeter_template.edxml: EDXML.PARSE" in out
    if real() is None:
        assert "no real samples to send" in out
    else:  # and the real samples after it
        assert "accepted truclienthong-example__edoc_new.edxml" in out
        assert "refused  truclienthong-example__edoc.edxml: EDXML.PARSE" in out
    assert "VPCP fetched" in out
    assert "byte-identical: True" in out
    assert "000.00.00.G22: delivered, statuses 01, 03" in out
    assert "000.01.01.H53: delivered, statuses 01" in out  # emitted by the gateway on acknowledge
    # tracking: the day's report, then one alert round whose e-mails reached the local SMTP sink
    report = out.split("== Decision-28 report for ", 1)[1].split("\n== ", 1)[0]
    assert "Tổng cộng" in report and "Văn phòng Chính phủ" in report
    alerts = out.split("== alerts: one round judged as of ", 1)[1].split("\n== ", 1)[0]
    assert "moves its clock 31 minutes ahead" in alerts and "at the local SMTP sink 127.0.0.1:" in alerts
    assert re.search(r"-- To: vanthu@[a-z.]+demo\.example\n +Subject: \[edoc-gateway\] ", alerts)
    assert "-- To: truc-van-hanh@demo.example" in alerts and "Chưa nhận về (not taken)" in alerts
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
    peers = run(*env_cfg, "deliveries", "peers", "--json")  # the demo's receivers answer: no failing peer
    assert json.loads(peers.stdout) == []
    assert "0 peers failing" in run(*env_cfg, "deliveries", "peers").stderr
    refused = run(*env_cfg, "deliveries", "redrive", delivery_id, ok=False)
    assert refused.returncode == 1  # a delivered message is never re-driven
    systems = run(*env_cfg, "systems", "list").stdout
    assert "tayninh-qlvb" in systems
    assert "secret" not in systems.lower()


def _the_printed_commands_work(out: str) -> None:
    """Every command the demo prints under "try next" runs as pasted (no shell needed: the lines are plain
    argv, the ``export`` sets the environment of the ones after it), and says something."""
    lines = out.split("commands (", 1)[1].splitlines()[1:]
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDOC_GATEWAY_")}
    ran = 0
    for line in (x.strip() for x in lines if x.startswith("   ")):
        argv = shlex.split(line)
        if argv[0] == "export":
            name, _, value = argv[1].partition("=")
            env[name] = value
            continue
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env)
        assert proc.returncode == 0, (line, proc.stderr)
        assert proc.stdout.strip() or "build" in argv, line
        ran += 1
    assert ran == 9
    mailbox = proc.stdout.splitlines()  # the python -c example, last: a mailbox the traffic filled
    assert len(mailbox) >= 3 and all(item.startswith("000.00.00.G22 ") for item in mailbox), mailbox
