"""The worker process's presence: its id, its heartbeat row (``/readyz``), the renewal of its delivery leases, and
graceful stop on SIGTERM/SIGINT."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.db import Store, WorkerHeartbeat
from gateway.errors import UnavailableError
from gateway.services.delivery import HEARTBEAT_RETENTION

log = logging.getLogger(__name__)


def new_worker_id() -> str:
    """``host:pid:random`` — unique per process, readable in the heartbeat table and the attempt log."""
    return f"{socket.gethostname()[:100]}:{os.getpid()}:{secrets.token_hex(4)}"


@dataclass(frozen=True)
class Leases:
    """What the heartbeat renews: this worker's delivery leases, ``seconds`` long, every quarter of that — but only
    while the delivery engine keeps turning (``last_turn``, a ``time.monotonic()``): a wedged engine lets its
    leases expire, so another worker takes its deliveries over (issue 11: short leases, re-claimed within 30 s of
    a kill -9, held as long as a live worker needs them)."""

    seconds: float
    last_turn: Callable[[], float]


class Heartbeat:
    """Writes the worker's heartbeat row every ``interval`` seconds from a daemon thread, and renews its leases.

    The row says the process is alive (``/readyz``); it is independent of deliveries, which may block on a slow
    peer for up to the adapter timeouts — which is also why leases are renewed here rather than by the sends.
    """

    def __init__(
        self,
        store: Store,
        worker_id: str,
        interval: float,
        clock: Callable[[], datetime],
        *,
        leases: Leases | None = None,
    ) -> None:
        self._store = store
        self._interval = interval
        self._leases = leases
        self._clock = clock
        now = clock()
        self._row = WorkerHeartbeat(
            worker_id=worker_id, host=socket.gethostname()[:255], pid=os.getpid(), started_at=now, seen_at=now
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="edoc-worker-heartbeat", daemon=True)

    def start(self) -> None:
        with contextlib.suppress(UnavailableError):
            self._store.workers.prune_heartbeats(self._clock() - HEARTBEAT_RETENTION)
        self._beat()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._beat(stopped=True)

    def _run(self) -> None:
        tick = self._interval if self._leases is None else min(self._interval, self._leases.seconds / 4)
        next_beat = time.monotonic() + self._interval
        while not self._stop.wait(tick):
            self._renew()
            if time.monotonic() >= next_beat:
                self._beat()
                next_beat = time.monotonic() + self._interval

    def _renew(self) -> None:
        leases = self._leases
        if leases is None or time.monotonic() - leases.last_turn() > leases.seconds / 2:
            return  # no engine, or a wedged one: let the leases run out
        try:
            self._store.outbox.renew_leases(self._row.worker_id, self._clock() + timedelta(seconds=leases.seconds))
        except UnavailableError as exc:
            log.warning("leases not renewed: %s", exc)
        except Exception:
            log.exception("lease renewal failed")

    def _beat(self, *, stopped: bool = False) -> None:
        now = self._clock()
        row = WorkerHeartbeat(
            worker_id=self._row.worker_id,
            host=self._row.host,
            pid=self._row.pid,
            started_at=self._row.started_at,
            seen_at=now,
            stopped_at=now if stopped else None,
        )
        try:
            self._store.workers.beat(row)
        except UnavailableError as exc:
            log.warning("heartbeat not written: %s", exc)
        except Exception:
            log.exception("heartbeat failed")


@contextlib.contextmanager
def signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM/SIGINT set ``stop`` (main thread only: Python delivers signals there); restored on exit."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: object) -> None:
        if not stop.is_set():
            log.info("%s received: finishing the delivery in hand, then stopping", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


__all__ = ["Heartbeat", "Leases", "new_worker_id", "signals"]
