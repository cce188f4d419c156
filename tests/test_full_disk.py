"""A full disk, for real (issue 11 item 7): a small tmpfs filled to the last byte, under a served gateway.

* ``/readyz`` says "disk" is not ready below EITHER floor (a share of the filesystem, an absolute minimum) and why:
  free bytes, percent, thresholds, path — and passes again once space is back;
* a request that meets the full disk is refused with SERVICE.UNAVAILABLE, the log has ONE ERROR line per failure
  naming the cause and the operation (before: only INFO access lines), never the package; nothing is half-stored,
  and the gateway takes the same package once the space is back.

Mounting needs root (CAP_SYS_ADMIN); where it is not permitted the tests skip and say so.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import logging
import os
import re
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
import zeep.exceptions
from gatewayproc import free_port, gateway_env, served

from gateway.client import GatewayClient
from gateway.config import Settings, load_settings
from gateway.db import Store, create_engine
from gateway.db.migrations import upgrade
from gateway.demo.documents import demo_package
from gateway.edxml import Organization, render
from gateway.errors import UnavailableError
from gateway.services.disk import check_disk, disk_paths
from gateway.services.registry import Registry
from gateway.xmlcheck.signing import SigningKey, sign_package

MB = 1024 * 1024
S, R = "000.00.00.G22", "000.00.01.H53"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 12 MiB tmpfs of its own (a real filesystem that fills up), unmounted afterwards."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=12m,mode=0755", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _write_forever(out: Any, size: int) -> None:
    while True:
        out.write(b"\0" * size)


def _fill(disk: Path) -> Path:
    """Write a file until the filesystem refuses another byte (ENOSPC), unbuffered: down to single bytes."""
    filler = disk / "filler.bin"
    with filler.open("wb", buffering=0) as out:
        for size in (64 * 1024, 4096, 1):
            with pytest.raises(OSError) as full:
                _write_forever(out, size)
            assert full.value.errno == errno.ENOSPC
    return filler


def test_the_disk_check_fails_below_either_floor_and_says_why(small_disk):
    ok = check_disk(small_disk, min_free_percent=5, min_free_mb=1)
    assert ok.ok and ok.failed == () and ok.reason is None
    assert ok.total_bytes == 12 * MB and ok.free_percent == 100.0
    (small_disk / "half.bin").write_bytes(b"\0" * (7 * MB))  # 5 MiB free: 41.67 %
    by_percent = check_disk(small_disk, min_free_percent=50, min_free_mb=1)
    assert (by_percent.ok, by_percent.failed) == (False, ("free_percent",))
    assert "41.67% of the filesystem free, below readyz_min_free_percent = 50" in (by_percent.reason or "")
    by_size = check_disk(small_disk, min_free_percent=5, min_free_mb=6)
    assert (by_size.ok, by_size.failed) == (False, ("free_bytes",))
    assert by_size.reason == f"{small_disk}: 5 MiB free ({5 * MB} bytes), below readyz_min_free_mb = 6"
    assert check_disk(small_disk, min_free_percent=0, min_free_mb=0).ok  # both floors off
    _fill(small_disk)
    full = check_disk(small_disk, min_free_percent=5, min_free_mb=1)
    assert (full.ok, full.failed, full.free_bytes) == (False, ("free_percent", "free_bytes"), 0)
    assert full.to_dict()["path"] == str(small_disk) and full.to_dict()["min_free_bytes"] == MB
    gone = check_disk(small_disk / "nowhere", min_free_percent=5, min_free_mb=1)
    assert (gone.ok, gone.failed) == (False, ("unreadable",))


def test_a_sqlite_database_on_another_filesystem_is_checked_as_well(small_disk, tmp_path):
    on_small = f"sqlite:///{small_disk / 'gateway.db'}"
    assert disk_paths(tmp_path, on_small) == {"disk": tmp_path, "database_disk": small_disk}
    assert disk_paths(small_disk, on_small) == {"disk": small_disk}  # the same filesystem: one check
    (tmp_path / "db").mkdir()
    assert disk_paths(tmp_path, f"sqlite:///{tmp_path / 'db' / 'g.db'}") == {"disk": tmp_path}
    missing = tmp_path / "nowhere"  # not there (yet): checked, and its check says it cannot read it
    assert disk_paths(tmp_path, f"sqlite:///{missing / 'g.db'}") == {"disk": tmp_path, "database_disk": missing}
    assert disk_paths(tmp_path, "postgresql+psycopg://gw@db.internal/gateway") == {"disk": tmp_path}


def _package(pki: Any, number: str) -> bytes:
    base = demo_package()
    h = dataclasses.replace(
        base.message_header,
        from_=Organization(organ_id=S, organ_name="Văn phòng Chính phủ"),
        to=(Organization(organ_id=R, organ_name="Văn phòng UBND tỉnh Tây Ninh"),),
        document_id=f"{S},2026/11/28,{number}/VPCP-HC",
        code=dataclasses.replace(base.message_header.code, code_number=number),
        subject=f"SUBJECT-{number}-must-not-be-logged",
    )
    cred = pki.agencies[S]
    return sign_package(
        render(dataclasses.replace(base, message_header=h)), SigningKey.from_files(cred.key, cred.cert, pki.chain)
    )


def _log_lines(log: Path) -> list[dict[str, Any]]:
    lines = []
    for raw in log.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            lines.append(json.loads(raw))
        except ValueError:
            continue
    return lines


def _gateway(data_dir: Path, url: str, tmp_path: Path, pki: Any) -> tuple[Settings, dict[str, str], str]:
    """Settings and environment of a migrated gateway with a sender system; its secret."""
    env = gateway_env(data_dir, url, pki, max_package_bytes=2 * MB, READYZ_MIN_FREE_MB="1", READYZ_MIN_FREE_PERCENT="5")
    settings = load_settings(env=env)
    upgrade(settings)
    registry = Registry.from_settings(settings)
    agencies = tmp_path / "agencies.csv"
    agencies.write_text(f"organ_id,name,channel,endpoint\n{S},VPCP,mailbox,\n{R},VP UBND,mailbox,\n", encoding="utf-8")
    registry.import_file(agencies)
    return settings, env, registry.add_system("SG", [S])


def _refused_writes(log: Path, secret: str, count: int) -> list[str]:
    """The ERROR lines of refused writes: exactly ``count`` (one per failure); nothing of the package or secret."""
    lines = _log_lines(log)
    errors = [x for x in lines if x.get("level") == "error" and "database write failed" in str(x.get("event"))]
    assert len(errors) == count, [x.get("event") for x in errors]
    text = log.read_text(encoding="utf-8", errors="replace")
    assert "must-not-be-logged" not in text and secret not in text
    return [str(x["event"]) for x in errors]


def test_a_full_disk_is_not_ready_and_every_refused_write_is_an_error_line(small_disk, tmp_path, pki):
    settings, env, secret = _gateway(small_disk, f"sqlite:///{small_disk / 'gateway.db'}", tmp_path, pki)
    base = f"http://{settings.bind}"
    log = tmp_path / "gunicorn.log"  # on the big disk: the log must survive the full one
    engine = create_engine(settings)
    store = Store(engine)
    try:
        with served(settings, env, log):
            ready = requests.get(base + "/readyz", timeout=10).json()
            assert ready["ready"] and ready["details"]["disk"]["ok"], ready

            with engine.connect() as conn:  # the WAL keeps its size after a checkpoint: empty it, so writes grow
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            before = store.counts()
            filler = _fill(small_disk)

            answer = requests.get(base + "/readyz", timeout=10)
            body = answer.json()
            assert answer.status_code == 503 and body["checks"]["disk"] is False, body
            disk = body["details"]["disk"]
            assert disk["failed"] == ["free_percent", "free_bytes"] and disk["path"] == str(small_disk)
            assert disk["free_bytes"] < MB and disk["min_free_bytes"] == MB and disk["min_free_percent"] == 5
            assert "below readyz_min_free_mb = 1" in disk["reason"]

            client = GatewayClient(f"{base}/soap", "SG", secret)
            refused = 0
            try:
                for n in range(3):
                    with pytest.raises(zeep.exceptions.Fault) as fault:
                        client.send_edoc(_package(pki, f"90{n}"))
                    assert fault.value.message.startswith("SERVICE.UNAVAILABLE"), fault.value.message
                    refused += 1
                assert store.counts() == before  # nothing half-stored: no nonce, document, delivery, audit row

                filler.unlink()
                assert requests.get(base + "/readyz", timeout=10).status_code == 200
                receipt = client.send_edoc(_package(pki, "900"))  # the same package, once the space is back
                assert receipt.docId
            finally:
                client.close()
        after = store.counts()
        assert after["documents"] == before["documents"] + 1 and after["deliveries"] == before["deliveries"] + 1
    finally:
        engine.dispose()

    cause = "database write failed: disk full (sqlite3.OperationalError: database or disk is full)"
    # The first write of a SOAP call is its WS-Security nonce (the issue: 95 of 96 failed there); SQLite writes a
    # small transaction's pages at COMMIT.
    assert _refused_writes(log, secret, refused) == [f"{cause} at COMMIT of INSERT INTO wss_nonces"] * refused
    lines = _log_lines(log)
    warned = [x for x in lines if x.get("level") == "warning" and "readiness check disk failed" in str(x.get("event"))]
    assert warned and str(small_disk) in str(warned[0]["event"])


@pytest.fixture
def small_tablespace(pg_cluster: Any) -> Iterator[tuple[Path, str]]:
    """A fresh PostgreSQL database whose default tablespace is a 12 MiB tmpfs (owned by the server's user)."""
    if pg_cluster.admin_dsn and os.environ.get("EDOC_GATEWAY_TEST_PG_URL"):
        pytest.skip("an external PostgreSQL: its server cannot see a local tmpfs")
    mount = Path(tempfile.mkdtemp(prefix="edoc-small-"))
    owner = ["uid=postgres,gid=postgres"] if os.geteuid() == 0 else []
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", ",".join(["size=12m", "mode=0700", *owner]), "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        mount.rmdir()
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
    name = f"small_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(pg_cluster.admin_dsn, autocommit=True) as conn:
            conn.execute(f"CREATE TABLESPACE {name} LOCATION '{mount}'")
            conn.execute(f'CREATE DATABASE "{name}" TABLESPACE {name}')
        base = pg_cluster.admin_dsn.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
        yield mount, f"{base}/{name}"
        with psycopg.connect(pg_cluster.admin_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f"DROP TABLESPACE IF EXISTS {name}")
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
        mount.rmdir()


def test_a_full_postgresql_tablespace_is_an_error_line_naming_the_write_and_nothing_is_half_stored(
    small_tablespace, tmp_path, pki
):
    disk, url = small_tablespace
    data_dir = tmp_path / "data"
    settings, env, secret = _gateway(data_dir, url, tmp_path, pki)
    base = f"http://{settings.bind}"
    log = tmp_path / "gunicorn.log"
    engine = create_engine(settings)
    store = Store(engine)
    try:
        with served(settings, env, log):
            before = store.counts()
            filler = _fill(disk)
            client = GatewayClient(f"{base}/soap", "SG", secret)
            try:
                for n in range(2):
                    with pytest.raises(zeep.exceptions.Fault) as fault:
                        client.send_edoc(_package(pki, f"80{n}"))
                    assert fault.value.message.startswith("SERVICE.UNAVAILABLE"), fault.value.message
                # Nothing half-stored. A WS-Security nonce is the replay cache, committed on its own before intake
                # by design: PostgreSQL may still fit one in a page with room left, and the intake then fails.
                assert _without_nonces(store.counts()) == _without_nonces(before)
                filler.unlink()
                assert client.send_edoc(_package(pki, "800")).docId
            finally:
                client.close()
        assert store.counts()["documents"] == before["documents"] + 1
    finally:
        engine.dispose()
    for event in _refused_writes(log, secret, 2):
        assert event.startswith("database write failed: disk full (psycopg.errors.DiskFull: could not extend file")
        assert re.search(r" at (COMMIT of )?INSERT INTO \w+", event), event  # the nonce, or the intake after it


def _without_nonces(counts: dict[str, int]) -> dict[str, int]:
    return {table: n for table, n in counts.items() if table != "wss_nonces"}


def test_an_unreachable_postgresql_is_one_warning_naming_the_cause_and_the_password_never(caplog):
    url = f"postgresql+psycopg://gw:hunter2-secret@127.0.0.1:{free_port()}/none?connect_timeout=2"
    store = Store(create_engine(url))
    try:
        with caplog.at_level(logging.WARNING, logger="gateway.db.connections"), pytest.raises(UnavailableError):
            store.registry.agencies(["000.00.00.H53"])
        assert not store.ping()  # the readiness probe: reported by /readyz, not logged here
    finally:
        store.engine.dispose()
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert record.getMessage().startswith("database read failed: connection lost (psycopg.OperationalError: ")
    assert record.getMessage().endswith(" at connect") and "hunter2" not in record.getMessage()
