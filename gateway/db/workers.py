"""Delivery worker heartbeats (``worker_heartbeats``): which workers run, so readiness and operators can tell a
queue that nobody serves from one that is merely slow."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, insert, select, update

from gateway.db import tables as t
from gateway.db.connections import Repository
from gateway.db.records import WorkerHeartbeat, from_row, to_values


class WorkerRepository(Repository):
    """``store.workers``."""

    def beat(self, heartbeat: WorkerHeartbeat) -> None:
        """Insert or refresh a worker's heartbeat row."""
        h = t.worker_heartbeats
        with self._db.write() as conn:
            result = conn.execute(
                update(h)
                .where(h.c.worker_id == heartbeat.worker_id)
                .values(seen_at=heartbeat.seen_at, stopped_at=heartbeat.stopped_at)
            )
            if result.rowcount == 0:
                conn.execute(insert(h).values(**to_values(heartbeat)))

    def worker_heartbeats(self) -> list[WorkerHeartbeat]:
        """Every worker heartbeat, most recently seen first."""
        h = t.worker_heartbeats
        with self._db.read() as conn:
            rows = conn.execute(select(h).order_by(h.c.seen_at.desc(), h.c.worker_id)).mappings()
            return [from_row(WorkerHeartbeat, r) for r in rows]

    def prune_heartbeats(self, before: datetime) -> int:
        """Forget workers not seen since ``before``."""
        h = t.worker_heartbeats
        with self._db.write() as conn:
            return conn.execute(delete(h).where(h.c.seen_at < before)).rowcount


__all__ = ["WorkerRepository"]
