"""A throwaway PostgreSQL cluster for the test session (real PostgreSQL, loopback only).

``initdb`` + ``pg_ctl`` from the Debian packages, in a temporary directory, listening on 127.0.0.1 on a
free port with trust authentication for the local test user. PostgreSQL refuses to run as root, so as
root the server runs as ``postgres`` through ``runuser``. Set ``EDOC_GATEWAY_TEST_PG_URL`` to use an
already running server instead (a URL to a database the tests may create databases from).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import psycopg


def _bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise RuntimeError("PostgreSQL server binaries (initdb) not found: apt-get install postgresql")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgCluster:
    """Start on construction, :meth:`stop` at the end; :meth:`new_database` gives a fresh empty database URL."""

    def __init__(self) -> None:
        external = os.environ.get("EDOC_GATEWAY_TEST_PG_URL")
        self._proc_dir: Path | None = None
        if external:
            self.admin_dsn = external.replace("postgresql+psycopg://", "postgresql://")
            return
        bindir = _bin_dir()
        self._proc_dir = Path(tempfile.mkdtemp(prefix="edoc-pg-"))
        data = self._proc_dir / "data"
        self.port = _free_port()
        as_root = os.geteuid() == 0
        if as_root:
            shutil.chown(self._proc_dir, "postgres")
            self._proc_dir.chmod(0o700)
        prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
        user = "postgres" if as_root else os.environ.get("USER", "postgres")
        subprocess.run(
            [*prefix, str(bindir / "initdb"), "-D", str(data), "-U", user, "--auth=trust", "-E", "UTF8", "--no-sync"],
            check=True,
            capture_output=True,
            timeout=120,
        )
        opts = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self._proc_dir} -c fsync=on"
        )
        self._start = [
            *prefix,
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            opts,
            "-l",
            str(self._proc_dir / "log"),
            "-w",
            "-t",
            "60",
            "start",
        ]
        subprocess.run(self._start, check=True, capture_output=True, timeout=120)
        self._stop = [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]
        self.admin_dsn = f"postgresql://{user}@127.0.0.1:{self.port}/postgres"
        deadline = time.monotonic() + 30
        while True:
            try:
                psycopg.connect(self.admin_dsn, connect_timeout=2).close()
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def new_database(self) -> str:
        """A fresh database; returns its SQLAlchemy URL (psycopg 3 driver)."""
        name = f"t_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        base = self.admin_dsn.rsplit("/", 1)[0]
        return base.replace("postgresql://", "postgresql+psycopg://", 1) + f"/{name}"

    def pause(self) -> None:
        """Stop the server like a crash (``-m immediate``: every connection cut, no checkpoint), keeping its data:
        a database outage for the fault tests. :meth:`resume` starts it again on the same port."""
        assert self._proc_dir is not None, "an external server cannot be paused"
        subprocess.run(self._stop, check=True, capture_output=True, timeout=60)

    def resume(self) -> None:
        """Start the server :meth:`pause` stopped (crash recovery from its WAL), once it accepts connections."""
        assert self._proc_dir is not None, "an external server cannot be resumed"
        subprocess.run(self._start, check=True, capture_output=True, timeout=120)

    def stop(self) -> None:
        if self._proc_dir is None:
            return
        subprocess.run(self._stop, capture_output=True, timeout=60, check=False)
        shutil.rmtree(self._proc_dir, ignore_errors=True)
