"""``edoc-gateway legacy …`` as an integrator runs it: a subprocess against the stand-in Bkav axis
(tests/legacy_axis.py), the token from the environment or standard input, Bkav's refusals printed with exit 1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from legacy_axis import serve_axis
from test_adapter_edocvn import PDF, TR, TS, R, S, with_pdf
from test_services import edoc, status

from gateway.edxml import StatusCode
from gateway.edxml.model import EdocPackage
from gateway.edxml.reader import read_bytes
from gateway.edxml.writer import render

ROOT = Path(__file__).resolve().parents[1]


def cli(*args: str, token: str | None = None, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDOC_GATEWAY_")}
    env["PYTHONPATH"] = str(ROOT)
    if token is not None:
        env["EDOC_GATEWAY_LEGACY_TOKEN"] = token
    return subprocess.run([sys.executable, "-m", "gateway.cli", "legacy", *args], env=env, input=stdin,
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def test_send_pending_get_confirm_status_traces(tmp_path):
    with serve_axis({S: TS, R: TR}) as (url, ax):
        sent = render(with_pdf(edoc(S, (R,))))
        (tmp_path / "doc.edxml").write_bytes(sent)
        as_s = ("--endpoint", url, "--organ", S)
        as_r = ("--endpoint", url, "--organ", R)
        run = cli("send", str(tmp_path / "doc.edxml"), *as_s, token=TS)
        assert (run.returncode, run.stdout.strip()) == (0, "48213"), run.stderr
        assert TS not in run.stdout + run.stderr
        run = cli("pending", *as_r, "--token-stdin", stdin=TR + "\n")
        assert (run.returncode, run.stdout.split()) == (0, ["48213"]), run.stderr
        out, files = tmp_path / "got.edxml", tmp_path / "files"
        run = cli("get", "48213", "--out", str(out), "--attachments", str(files), *as_r, token=TR)
        assert run.returncode == 0, run.stderr
        got = read_bytes(out.read_bytes())
        assert isinstance(got, EdocPackage) and got.attachments[0].data == PDF
        assert (files / "125-SXD-VP.pdf").read_bytes() == PDF
        assert cli("confirm", "48213", *as_r, token=TR).returncode == 0
        assert cli("pending", *as_r, token=TR).stdout.strip() == ""
        (tmp_path / "status.edxml").write_bytes(status(R, sent, StatusCode.ACCEPTED))
        assert cli("status", str(tmp_path / "status.edxml"), *as_r, token=TR).returncode == 0
        pkg = read_bytes(sent)
        flags = ("--document-id", pkg.document_id, "--code", str(pkg.message_header.code), "--to", S)
        run = cli("status", *flags, "--status-code", "06", "--description", "Hoàn thành", *as_r, token=TR)
        assert run.returncode == 0, run.stderr
        run = cli("traces", "--json", *as_s, token=TS)
        rows = [json.loads(line) for line in run.stdout.splitlines()]
        assert sorted(r["status_code"] for r in rows) == ["01", "03", "06"]
        assert cli("traces", *as_s, token=TS).stdout == ""  # consumed
        replay = cli("traces", "--since", "2000/01/01 00:00:00", *as_s, token=TS)
        assert len(replay.stdout.splitlines()) == 3
        assert len(ax.traces) == 3


def test_refusals_print_bkav_code_and_exit_1():
    with serve_axis({S: TS, R: TR}) as (url, _ax):
        run = cli("get", "99999", "--endpoint", url, "--organ", R, token=TR)
        assert run.returncode == 1
        assert run.stderr.startswith("legacy get: M.GetDocumentCheckAllow: Not find document pending")
        run = cli("pending", "--endpoint", url, "--organ", R, token="not-the-token")
        assert run.returncode == 1 and "EDOCVN.ERROR" in run.stderr and "not-the-token" not in run.stderr
        run = cli("pending", "--endpoint", "http://127.0.0.1:9/", "--organ", R, token=TR)
        assert run.returncode == 1 and "EDOCVN.ERROR" in run.stderr
    assert cli("pending", "--endpoint", "http://x", "--organ", R).returncode == 2  # no token
    assert cli("status", "--endpoint", "http://x", "--organ", R, token=TR).returncode == 2
