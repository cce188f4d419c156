"""SQLite writers wait their turn in the kernel, not in SQLite's busy handler (issue 14).

SQLite lets one writer at a time hold a database; a ``BEGIN IMMEDIATE`` that finds the lock taken is retried by
SQLite's default busy handler, which *sleeps* between tries: 1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100 ms, then
100 ms at a time. The lock is held for about a millisecond or two (the statements and the WAL fsync), so a waiter
usually sleeps far longer than the lock was held, and one that keeps losing the race to writers that did not sleep
(the application threads of both gunicorn workers, each request writing its WS-Security nonce, then its document)
sleeps 100 ms at a time. Measured on a served gateway (2 workers × 4 threads, 4 clients of 10 KB SendEdoc, py-spy):
a quarter of all request-thread samples were in ``BEGIN IMMEDIATE``, and they made the p99.

:class:`WriteGate` queues the writers of one database file before they reach SQLite: the threads of a process on a
lock, the processes on an exclusive ``flock`` of ``<database>-writegate`` beside the file. Both waits block in the
kernel and end when the holder lets go, so a writer starts as soon as the previous one has committed. The gate is
an optimisation, never the guarantee: SQLite's own lock still decides, so a writer that does not take the gate (a
``sqlite3`` shell, an older process) is waited for by ``busy_timeout`` as before, and a gate that cannot be taken
in time is passed by (``GATE_TIMEOUT_SECONDS``), leaving the writer to SQLite's busy timeout and its
``UnavailableError``. A process that dies holding the ``flock`` releases it with its file descriptors.

PostgreSQL needs none of this: its row locks wait in the server without polling.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Iterator
from typing import Final

from sqlalchemy import Engine

#: How long a writer waits at the gate before passing it by (then SQLite's busy_timeout applies as before).
GATE_TIMEOUT_SECONDS: Final = 30.0

_gates: dict[tuple[int, str], WriteGate] = {}
_gates_lock = threading.Lock()


class WriteGate:
    """The turn of one process's writers to one SQLite database file (module docstring)."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._threads = threading.Lock()
        self._file: _FileLock | None = None

    @contextlib.contextmanager
    def turn(self) -> Iterator[None]:
        """Hold the gate for one write transaction (entered before ``BEGIN IMMEDIATE``, left after COMMIT)."""
        deadline = time.monotonic() + GATE_TIMEOUT_SECONDS
        if not self._threads.acquire(timeout=GATE_TIMEOUT_SECONDS):
            yield  # a writer of this process held it for 30 s: leave the rest to SQLite's busy timeout
            return
        try:
            file = self._open()
            locked = file is not None and file.acquire(deadline - time.monotonic())
            try:
                yield
            finally:
                if locked and file is not None:
                    file.release()
        finally:
            self._threads.release()

    def _open(self) -> _FileLock | None:
        """The process's descriptor of the gate file (None if it cannot be created: then SQLite alone decides)."""
        if self._file is None:
            try:
                fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except OSError:
                return None
            self._file = _FileLock(fd)
        return self._file


class _FileLock:
    """An exclusive ``flock`` of one descriptor, used by one thread at a time (the gate's thread lock is held).

    Free: taken at once. Taken by another process: a helper thread waits for it in the kernel, so that the writer's
    wait can be bounded (``flock`` has no timeout); a writer that gives up leaves the helper to release the lock as
    soon as it gets it, and the next writer of the process waits on that same helper."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._cond = threading.Condition()
        self._wanted = False  # the helper is (or is about to be) waiting in flock for a writer
        self._granted = False  # the helper holds the lock for the writer waiting on _cond
        self._abandoned = False  # that writer gave up: the helper releases what it gets
        self._helper: threading.Thread | None = None

    def acquire(self, timeout: float) -> bool:
        with self._cond:
            if not self._wanted:  # no wait in progress (one would hold the lock soon: never pass it by)
                try:
                    fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return True
                except BlockingIOError:
                    pass
                self._wanted = True
                if self._helper is None:
                    self._helper = threading.Thread(target=self._wait_loop, name="sqlite-writegate", daemon=True)
                    self._helper.start()
                self._cond.notify_all()
            self._abandoned = False
            if self._cond.wait_for(lambda: self._granted, max(timeout, 0.0)):
                self._granted = False
                return True
            self._abandoned = True
            return False

    def release(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _wait_loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._wanted)
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            with self._cond:
                self._wanted = False
                if self._abandoned:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)
                else:
                    self._granted = True
                    self._cond.notify_all()


def write_gate(engine: Engine) -> contextlib.AbstractContextManager[None] | None:
    """The gate of ``engine``'s database file in this process, or None (PostgreSQL, or no file)."""
    if engine.dialect.name != "sqlite":
        return None
    database = engine.url.database or ""
    if not database or database.startswith("file:"):
        return None
    key = (os.getpid(), os.path.abspath(database))  # a forked worker opens its own descriptor: flock is per open file
    with _gates_lock:
        gate = _gates.get(key)
        if gate is None:
            gate = _gates[key] = WriteGate(key[1] + "-writegate")
    return gate.turn()


__all__ = ["GATE_TIMEOUT_SECONDS", "WriteGate", "write_gate"]
