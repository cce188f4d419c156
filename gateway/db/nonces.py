"""WS-Security nonces (``wss_nonces``): the replay cache that authentication keeps in the database, so every
gunicorn worker sees the nonces the others have seen."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, insert
from sqlalchemy.exc import IntegrityError

from gateway.db import tables as t
from gateway.db.connections import Repository


class NonceRepository(Repository):
    """``store.nonces``."""

    def remember_nonce(self, system_id: str, nonce: str, at: datetime) -> bool:
        """Record a nonce; False if it was already recorded for this system (a replay)."""
        try:
            with self._db.write() as conn:
                conn.execute(insert(t.wss_nonces).values(system_id=system_id, nonce=nonce, created_at=at))
        except IntegrityError:
            return False
        return True

    def prune_nonces(self, before: datetime) -> int:
        """Forget nonces recorded before ``before`` (older ones fall outside the Created window anyway)."""
        with self._db.write() as conn:
            return conn.execute(delete(t.wss_nonces).where(t.wss_nonces.c.created_at < before)).rowcount


__all__ = ["NonceRepository"]
