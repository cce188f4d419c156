"""The command line and its settings (issue 8 item 4), run as a user runs it: real subprocesses, real gunicorn.

* ``--config FILE`` reaches every process a command starts (gunicorn's master and workers under ``serve``);
* a command that needs the database never creates one: it names the database it tried, where its settings came
  from, and how to configure or migrate;
* unknown settings keys are refused, in the file and in the environment;
* exit status: 0 success, 1 failure (one line per failure), 2 usage error.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from gatewayproc import free_port

from gateway.db import head_revision

EXE = shutil.which("edoc-gateway", path=str(Path(sys.executable).parent)) or "edoc-gateway"
#: The user's environment without any gateway settings: only what the command line is given counts.
CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith("EDOC_GATEWAY_")}


def run(*args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [EXE, *map(str, args)], capture_output=True, text=True, timeout=120, cwd=cwd, env=env or CLEAN_ENV
    )


def write_config(path: Path, **settings: object) -> Path:
    lines = [f"{key} = {json.dumps(value)}" for key, value in settings.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_serve_with_config_flag_reaches_the_gunicorn_workers(tmp_path, pki):
    """The flag alone (no EDOC_GATEWAY_CONFIG) is enough: the workers read the same file as the command."""
    port = free_port()
    config = write_config(
        tmp_path / "gateway.toml",
        data_dir="state",
        bind=f"127.0.0.1:{port}",
        workers=2,
        secret_key="serve-config-test-0123456789",
        gateway_key=str(pki.gateway_key),
        gateway_cert=str(pki.gateway_cert),
        trust_store=str(pki.trust),
        crl_files=[str(c) for c in pki.crls],
    )
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [EXE, "--config", config.name, "serve"], cwd=tmp_path, env=CLEAN_ENV, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text(errors="replace")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(0.2)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/soap?wsdl", timeout=5) as r:
            assert b"definitions" in r.read()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    assert (tmp_path / "state" / "gateway.db").is_file()  # the data_dir of the file, relative to the file
    assert "missing settings" not in log.read_text(errors="replace")


def test_a_database_command_without_settings_creates_nothing_and_says_what_to_do(tmp_path):
    for args in (["agencies", "list"], ["systems", "list"], ["deliveries", "list"], ["agencies", "export"]):
        proc = run(*args, cwd=tmp_path)
        assert proc.returncode == 1, proc
        [line] = proc.stderr.splitlines()
        assert line.startswith("database: CONFIG.INVALID: no database at ")
        assert str(tmp_path / "data" / "gateway.db") in line
        assert "neither --config nor EDOC_GATEWAY_CONFIG is set" in line
        assert "edoc-gateway db upgrade" in line
        assert not (tmp_path / "data").exists()  # no empty database left behind
    proc = run("worker", "--once", cwd=tmp_path)
    assert proc.returncode == 1 and "no database at" in proc.stderr
    assert not (tmp_path / "data").exists()


def test_database_commands_name_an_empty_or_old_database_and_run_after_db_upgrade(tmp_path, database_url):
    config = write_config(tmp_path / "gateway.toml", data_dir=str(tmp_path), database_url=database_url)
    first = run("--config", config, "agencies", "list")
    assert first.returncode == 1
    if database_url.startswith("sqlite"):
        assert f"no database at {tmp_path / 'gateway.db'} (settings file {config})" in first.stderr
    else:
        assert "CONFIG.INVALID: database postgresql+psycopg://" in first.stderr and " is empty " in first.stderr
    assert run("--config", config, "db", "upgrade", "--revision", "0001").returncode == 0
    old = run("--config", config, "systems", "list")
    assert old.returncode == 1
    head = head_revision()  # the newest migration, whichever it is
    assert f"is at schema revision 0001, this version needs {head}; run `edoc-gateway db upgrade`" in old.stderr
    upgraded = run("--config", config, "db", "upgrade")
    assert upgraded.returncode == 0 and upgraded.stdout.startswith("database ")
    assert f"at revision {head}" in upgraded.stdout
    assert run("--config", config, "agencies", "list").returncode == 0


def test_an_empty_sqlite_file_is_named_as_empty(tmp_path):
    (tmp_path / "gateway.db").write_bytes(b"")
    config = write_config(tmp_path / "gateway.toml", data_dir=".")
    proc = run("--config", config, "agencies", "list")
    assert proc.returncode == 1
    assert f"CONFIG.INVALID: database sqlite:///{tmp_path / 'gateway.db'} is empty" in proc.stderr


def test_an_unreachable_database_server_is_service_unavailable_without_the_password(tmp_path):
    url = f"postgresql+psycopg://gw:hunter2-secret@127.0.0.1:{free_port()}/gateway"
    config = write_config(tmp_path / "gateway.toml", data_dir=".", database_url=url)
    proc = run("--config", config, "deliveries", "list")
    assert proc.returncode == 1
    assert proc.stderr.startswith("database: SERVICE.UNAVAILABLE: database postgresql+psycopg://gw:***@127.0.0.1:")
    assert "is not reachable" in proc.stderr and "hunter2" not in proc.stderr


def test_unknown_settings_are_refused_through_the_command_line(tmp_path):
    config = write_config(tmp_path / "gateway.toml", data_dir=".", wokers=2)
    proc = run("--config", config, "agencies", "list")
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        f"config: CONFIG.INVALID: unknown setting(s) in {config}: 'wokers' (did you mean 'workers'?)"
    )
    typo = run("agencies", "list", env={**CLEAN_ENV, "EDOC_GATEWAY_DATABASE": "sqlite:///x.db"})
    assert typo.returncode == 1
    assert "EDOC_GATEWAY_DATABASE (did you mean EDOC_GATEWAY_DATABASE_URL?)" in typo.stderr
    assert not (tmp_path / "x.db").exists()


def test_worker_once_prints_a_human_summary_or_json(tmp_path):
    config = write_config(tmp_path / "gateway.toml", data_dir=".")
    assert run("--config", config, "db", "upgrade").returncode == 0
    human = run("--config", config, "worker", "--once")
    assert human.returncode == 0, human.stderr
    assert human.stdout.startswith("worker: 0 delivered, 0 to retry, 0 dead-lettered")
    assert "WorkerStats(" not in human.stdout
    totals = json.loads(run("--config", config, "worker", "--once", "--json").stdout)
    assert totals["delivered"] == 0 and "batches" in totals


def test_exit_status_is_2_for_usage_errors_and_1_for_failures(tmp_path):
    for usage in (["validate"], ["no-such-command"], ["validate", "--no-such-option", "x"], ["deliveries", "redrive"]):
        proc = run(*usage, cwd=tmp_path)
        assert proc.returncode == 2, usage
        assert "Usage:" in proc.stderr or "Error:" in proc.stderr
    failed = run("validate", tmp_path / "missing.edxml", cwd=tmp_path)
    assert failed.returncode == 1
    assert failed.stderr.strip() == f"{tmp_path / 'missing.edxml'}: IO.ERROR: No such file or directory"
