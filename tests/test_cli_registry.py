"""The registry through the command line (issue 8 items 5 and 6): ``agencies add``, the import columns in
``--help``, every invalid row on its own line, and ``sync-vdxp`` reporting in human lines (or JSON), against a
real second gateway's VDXP edge."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from gatewayproc import gateway_env, served

from gateway.config import load_settings
from gateway.db import upgrade
from gateway.services.registry import Registry
from gateway.services.registry_rows import COLUMN_HELP, COLUMNS

EXE = shutil.which("edoc-gateway", path=str(Path(sys.executable).parent)) or "edoc-gateway"
CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith("EDOC_GATEWAY_")}


def run(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([EXE, *map(str, args)], capture_output=True, text=True, timeout=120, env=env or CLEAN_ENV)


@pytest.fixture
def config(tmp_path) -> Path:
    """A settings file with a migrated SQLite database next to it."""
    path = tmp_path / "gateway.toml"
    path.write_text('data_dir = "."\nsecret_key = "cli-registry-test-0123456789"\n', encoding="utf-8")
    assert run("--config", path, "db", "upgrade").returncode == 0
    return path


def test_import_help_lists_every_column():
    assert set(COLUMN_HELP) == set(COLUMNS)
    text = run("agencies", "import", "--help").stdout
    assert "Columns (CSV header row, or the keys of each JSON object)" in text
    for column in COLUMNS:
        assert f"  {column} " in text, column


def test_agencies_add_through_the_command_line(config):
    province = run("--config", config, "agencies", "add", "000.00.00.H53", "--name", "UBND tỉnh Tây Ninh")
    assert province.returncode == 0, province.stderr
    assert province.stdout.startswith("000.00.00.H53: added (level 1, parent -, channel mailbox")
    unit = run(
        "--config",
        config,
        "agencies",
        "add",
        "000.00.01.H53",
        "--name",
        "Văn phòng UBND tỉnh",
        "--parent",
        "000.00.00.H53",
        "--channel",
        "soap",
        "--endpoint",
        "http://127.0.0.1:9/receiver",
        "--signature-policy",
        "require",
    )
    assert unit.returncode == 0, unit.stderr
    assert "(level 2, parent 000.00.00.H53, channel soap, signature policy require)" in unit.stdout
    orphan = run("--config", config, "agencies", "add", "001.01.01.H53", "--name", "Tổ", "--parent", "000.00.01.H53")
    assert orphan.returncode == 1
    [line] = orphan.stderr.splitlines()
    assert line.startswith("001.01.01.H53: REGISTRY.INVALID: 001.01.01.H53: parent: 001.01.01.H53 (level 4) cannot")
    again = run("--config", config, "agencies", "add", "000.00.00.H53", "--name", "Tên khác")
    assert again.returncode == 1 and "already registered" in again.stderr
    listed = run("--config", config, "agencies", "list").stdout.splitlines()
    assert [line.split()[0] for line in listed] == ["000.00.00.H53", "000.00.01.H53"]
    assert "UBND tỉnh Tây Ninh" in listed[0]  # not renamed by the refused add


def test_import_lists_every_invalid_row_on_its_own_line(config, tmp_path):
    csv = tmp_path / "agencies.csv"
    csv.write_text(
        "organ_id,name,parent\n"
        "000.00.00.H53,UBND tỉnh,\n"
        "000.00.01.H53,Văn phòng,000.00.00.H99\n"
        "001.01.01.H53,Tổ,000.00.00.H53\n",
        encoding="utf-8",
    )
    proc = run("--config", config, "agencies", "import", csv)
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert lines[0].startswith(f"{csv}: REGISTRY.INVALID: 2 problem(s) in row(s) 2, 3 ")
    assert (
        lines[1]
        == f"{csv}: row 2: parent: parent 000.00.00.H99 is not registered (neither in the database nor in this file)"
    )
    assert lines[2].startswith(f"{csv}: row 3: parent: 001.01.01.H53 (level 4) cannot be directly under 000.00.00.H53")
    assert run("--config", config, "agencies", "list").stdout == ""  # nothing imported


def test_sync_vdxp_prints_a_report_not_a_repr(config, tmp_path, pki):
    national = tmp_path / "national"
    national.mkdir()
    env = gateway_env(national, f"sqlite:///{national / 'gateway.db'}", pki, max_package_bytes=256 * 1024)
    settings = load_settings(env=env)
    upgrade(settings)
    with Registry.from_settings(settings) as registry:
        registry.import_records(
            [
                {"organ_id": "000.00.00.G22", "name": "Văn phòng Chính phủ"},
                {"organ_id": "000.00.01.G22", "name": "Vụ Hành chính"},
                {"organ_id": "000.00.00.H41", "name": "UBND tỉnh Nghệ An"},
            ]
        )
        secret = registry.add_system("nghean-axis", ["000.00.00.H41"])
    assert run("--config", config, "agencies", "add", "000.00.00.H41", "--name", "UBND tỉnh Nghệ An").returncode == 0
    sync = ["--config", config, "agencies", "sync-vdxp", "--endpoint", f"http://{settings.bind}/vdxp"]
    sync += ["--system-id", "nghean-axis"]
    with_secret = {**CLEAN_ENV, "EDOC_GATEWAY_VDXP_SECRET": secret}
    with served(settings, env, national / "gunicorn.log"):
        human = run(*sync, env=with_secret)
        assert human.returncode == 0, human.stderr
        assert human.stdout == "sync-vdxp: 2 created, 0 updated, 1 hosted here and left alone, 0 skipped\n"
        report = json.loads(run(*sync, "--json", env=with_secret).stdout)
    assert report == {"created": 0, "updated": 2, "kept_local": 1, "skipped": []}
    listed = run("--config", config, "agencies", "list").stdout
    assert "000.00.01.G22" in listed and "vdxp" in listed


def test_systems_vdxp_replay_options_through_the_command_line(config):
    """Issue 10 finding 7: a system's VDXP replay protection is set by `systems add` and changed by `systems
    update`; legacy-sdk without a source binding, or with an allow-list that allows everything, is refused."""
    assert run("--config", config, "agencies", "add", "000.00.00.H53", "--name", "UBND tỉnh Tây Ninh").returncode == 0
    ours = run("--config", config, "systems", "add", "tayninh-qlvb", "--agency", "000.00.00.H53")
    assert ours.returncode == 0, ours.stderr
    assert "; vdxp=strict" in ours.stdout.splitlines()[0]  # the default
    unbound = run(
        "--config", config, "systems", "add", "00.53.W00", "--agency", "000.00.00.H53", "--vdxp-replay", "legacy-sdk"
    )
    assert unbound.returncode == 1 and "REQUEST.INVALID" in unbound.stderr and "--allow-from" in unbound.stderr
    everyone = [
        "--config", config, "systems", "add", "00.53.W00", "--agency", "000.00.00.H53",
        "--vdxp-replay", "legacy-sdk", "--allow-from", "0.0.0.0/0",
    ]  # fmt: skip
    assert "allows every address" in run(*everyone).stderr
    sdk = [
        "--config", config, "systems", "add", "00.53.W00", "--agency", "000.00.00.H53",
        "--vdxp-replay", "legacy-sdk", "--allow-from", "203.0.113.0/24", "--allow-from", "198.51.100.7",
    ]  # fmt: skip
    added = run(*sdk)
    assert added.returncode == 0, added.stderr
    assert "vdxp=legacy-sdk from=203.0.113.0/24,198.51.100.7/32" in added.stdout
    clear = run("--config", config, "systems", "update", "00.53.W00", "--allow-from", "")
    assert clear.returncode == 1 and "needs a binding" in clear.stderr  # the last binding of a legacy system
    fingerprint = "AB:" * 31 + "AB"
    moved = run("--config", config, "systems", "update", "00.53.W00", "--allow-from", "", "--client-cert", fingerprint)
    assert moved.returncode == 0, moved.stderr
    assert moved.stdout == "system 00.53.W00: vdxp=legacy-sdk certs=1\n"
    assert run("--config", config, "systems", "update", "00.53.W00").returncode == 2  # nothing to change
    assert run("--config", config, "systems", "update", "nobody", "--vdxp-replay", "strict").returncode == 1
    listed = run("--config", config, "systems", "list").stdout.splitlines()
    assert [line.split()[0] for line in listed] == ["00.53.W00", "tayninh-qlvb"]
    assert listed[0].endswith("vdxp=legacy-sdk certs=1") and listed[1].endswith("vdxp=strict")
    with Registry.from_settings(load_settings(config)) as registry:
        assert registry.system_info("00.53.W00").vdxp_client_certs == ("ab" * 32,)
