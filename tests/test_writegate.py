"""The SQLite write gate (gateway.db.writegate, issue 14): writers of one database file take turns — threads of a
process and processes alike — the wait is bounded, a dead holder frees it, and SQLite's own lock still decides
for a writer that does not take the gate. Real processes, real flock, real SQLite; no timing is asserted beyond
"it ended" (throughput is bench/bench_intake.py's business)."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from gateway.db import writegate
from gateway.db.engine import create_engine
from gateway.db.writegate import write_gate

#: A holder of the gate file that is not this process (as another gunicorn worker would be).
_HOLDER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


def _increment(url: str, counter: Path, rounds: int, threads: int) -> None:
    """``threads`` threads each doing ``rounds`` read-modify-write turns of ``counter`` inside the gate, with a
    pause between the read and the write that lets any other writer in if the gate did not keep it out."""
    engine = create_engine(url)

    def work() -> None:
        for _ in range(rounds):
            gate = write_gate(engine)
            assert gate is not None
            with gate:
                value = int(counter.read_text())
                time.sleep(0.0005)
                counter.write_text(str(value + 1))

    pool = [threading.Thread(target=work) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    engine.dispose()


def test_threads_and_processes_take_turns(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'gateway.db'}"
    counter = tmp_path / "counter"
    counter.write_text("0")
    ctx = multiprocessing.get_context("fork")  # a worker forked from a parent that used the gate, as gunicorn's
    engine = create_engine(url)
    with write_gate(engine) or pytest.fail("SQLite has a gate"):  # the parent opened its descriptor first
        pass
    procs = [ctx.Process(target=_increment, args=(url, counter, 40, 3)) for _ in range(2)]
    for p in procs:
        p.start()
    _increment(url, counter, 40, 3)
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    assert int(counter.read_text()) == 3 * 3 * 40  # no lost update: never two writers at once
    engine.dispose()


def test_the_wait_is_bounded_and_an_abandoned_turn_is_given_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    db = tmp_path / "gateway.db"
    engine = create_engine(f"sqlite:///{db}")
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, f"{db}-writegate", "2"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        monkeypatch.setattr(writegate, "GATE_TIMEOUT_SECONDS", 0.3)
        started = time.monotonic()
        with write_gate(engine) or pytest.fail("SQLite has a gate"):
            waited = time.monotonic() - started
        assert 0.25 < waited < 1.5  # passed by after the timeout (SQLite's busy timeout decides from there)
        holder.wait(10)
        # The helper got the lock after the holder left and gave it back: the next writer passes at once.
        monkeypatch.setattr(writegate, "GATE_TIMEOUT_SECONDS", 5.0)
        started = time.monotonic()
        with write_gate(engine) or pytest.fail("SQLite has a gate"):
            assert time.monotonic() - started < 2.0
        # and holds it against another process: a non-blocking flock there fails
        with write_gate(engine) or pytest.fail("SQLite has a gate"):
            probe = subprocess.run(
                [sys.executable, "-c", _PROBE, f"{db}-writegate"], capture_output=True, text=True, timeout=30
            )
            assert probe.stdout.strip() == "busy"
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()  # type: ignore[union-attr]
        engine.dispose()


_PROBE = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    print("free")
except BlockingIOError:
    print("busy")
"""


def test_a_killed_holder_frees_the_gate(tmp_path: Path):
    db = tmp_path / "gateway.db"
    engine = create_engine(f"sqlite:///{db}")
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, f"{db}-writegate", "600"], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    got = threading.Event()

    def writer() -> None:
        with write_gate(engine) or pytest.fail("SQLite has a gate"):
            got.set()

    t = threading.Thread(target=writer)
    t.start()
    assert not got.wait(0.5)  # waiting for the holder
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    holder.stdout.close()
    assert got.wait(10)  # the kernel released the dead process's flock
    t.join()
    engine.dispose()


def test_a_writer_outside_the_gate_is_still_waited_for_by_sqlite(tmp_path: Path):
    """The gate is an optimisation: a plain sqlite3 writer holding the database lock is waited for by SQLite's
    busy timeout, and the gated write goes through once it commits."""
    db = tmp_path / "gateway.db"
    engine = create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    other = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO t VALUES (1)")
    threading.Timer(0.5, lambda: other.execute("COMMIT")).start()
    from gateway.db.connections import Connections

    with Connections(engine).write() as conn:  # gated, then BEGIN IMMEDIATE waits in SQLite for the COMMIT
        conn.execute(text("INSERT INTO t VALUES (2)"))
    with engine.connect() as conn:
        assert sorted(conn.execute(text("SELECT x FROM t")).scalars()) == [1, 2]
    other.close()
    engine.dispose()


def test_postgresql_and_memory_urls_have_no_gate():
    engine = create_engine("postgresql+psycopg://u:p@127.0.0.1:1/x")
    assert write_gate(engine) is None
    engine.dispose()


def test_an_unflushed_write_leaves_the_connection_as_durable_as_before(database_url: str):
    """``Connections.write(flush=False)`` (the replay caches' writes): inside, the commit does not wait for the
    disk (SQLite ``synchronous`` NORMAL = 1, PostgreSQL ``synchronous_commit`` off); after it, the same pooled
    connection is back at FULL = 2 / on, so no document commit ever inherits the setting. The data is committed."""
    from gateway.db.connections import Connections

    engine = create_engine(database_url, pool_size=1, max_overflow=0)  # one connection: the next use is the same
    sqlite = engine.dialect.name == "sqlite"
    probe = "PRAGMA synchronous" if sqlite else "SHOW synchronous_commit"
    durable, lazy = (2, 1) if sqlite else ("on", "off")
    db = Connections(engine)
    with db.write() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
        assert conn.exec_driver_sql(probe).scalar() == durable
    for flush in (False, True, False):
        with db.write(flush=flush) as conn:
            conn.execute(text("INSERT INTO t VALUES (1)"))
            assert conn.exec_driver_sql(probe).scalar() == (durable if flush else lazy)
        with engine.connect() as conn:
            assert conn.exec_driver_sql(probe).scalar() == durable

    def failing_write() -> None:
        with db.write(flush=False) as conn:
            conn.execute(text("INSERT INTO t VALUES (2)"))
            raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):  # rolled back: restored all the same
        failing_write()
    with engine.connect() as conn:
        assert conn.exec_driver_sql(probe).scalar() == durable
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 3
    engine.dispose()
