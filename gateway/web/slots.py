"""Bounded concurrency by key: how many requests one client address or one system has in progress (issue 10).

Counters live in one web worker process (gunicorn forks several; each bounds its own share), in memory, and
are taken and given back around the work they bound — no clock, no table: a key that holds nothing has no
entry. Thread-safe, because the per-system slots are taken in the application threads.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Slots:
    """At most ``limit`` holders per key at a time."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("a slot limit must be at least 1")
        self.limit = limit
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str) -> bool:
        """Take a slot for ``key``; False (and nothing taken) when ``key`` already holds ``limit``."""
        with self._lock:
            held = self._held.get(key, 0)
            if held >= self.limit:
                return False
            self._held[key] = held + 1
            return True

    def release(self, key: str) -> None:
        """Give back a slot taken by :meth:`acquire`."""
        with self._lock:
            held = self._held.get(key, 0) - 1
            if held > 0:
                self._held[key] = held
            else:
                self._held.pop(key, None)

    def held(self, key: str) -> int:
        with self._lock:
            return self._held.get(key, 0)

    @contextmanager
    def hold(self, key: str) -> Iterator[bool]:
        """``with slots.hold(key) as granted:`` — the slot, if granted, is given back on leaving."""
        granted = self.acquire(key)
        try:
            yield granted
        finally:
            if granted:
                self.release(key)


__all__ = ["Slots"]
