"""The replay caches authentication keeps in the database, so that every gunicorn worker sees what the others
have seen: WS-Security nonces (``wss_nonces``) and VDXP request signatures (``vdxp_signatures``).

Two tables, one way: INSERT, and the primary key's IntegrityError is the replay — atomic across processes on
SQLite and PostgreSQL alike, with no read-then-write race. VDXP signatures carry their own expiry because
their window is a setting of its own (``vdxp_window_seconds``): pruned by the WS-Security window, a signature
could be forgotten while its request is still fresh enough to be replayed.

Their commits do not wait for the disk (``Connections.write(flush=False)``, issue 14): on SQLite with
``synchronous=FULL`` a commit is a WAL fsync, ≈ 4 ms on the reference machine, taken under the database's one
write lock — a served SendEdoc made two of them (nonce, then the document) where the in-process intake makes one,
which capped the served rate near half of it. An unflushed record is lost only in a power cut or OS crash, and only
until the next flushed commit on the database (logs are flushed in order): the document an operation writes after
it (SendEdoc, acknowledgements, status packages) is committed with a flush before the answer leaves, so the nonce
of any request that changed something is durable by the time its client hears back. What stays exposed is a
read-only request (GetEdoc, a list) captured on the wire and replayed within the Created window right after a power
cut: it reads what the original request read, for the system that sent it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, insert
from sqlalchemy.exc import IntegrityError

from gateway.db import tables as t
from gateway.db.connections import Repository

#: Built once: one runs per authenticated SOAP request (a statement built per call costs its construction).
_INSERT_NONCE = insert(t.wss_nonces)


class NonceRepository(Repository):
    """``store.nonces``."""

    def remember_nonce(self, system_id: str, nonce: str, at: datetime) -> bool:
        """Record a nonce; False if it was already recorded for this system (a replay)."""
        try:
            with self._db.write(flush=False) as conn:
                conn.execute(_INSERT_NONCE, {"system_id": system_id, "nonce": nonce, "created_at": at})
        except IntegrityError:
            return False
        return True

    def prune_nonces(self, before: datetime) -> int:
        """Forget nonces recorded before ``before`` (older ones fall outside the Created window anyway)."""
        with self._db.write(flush=False) as conn:
            return conn.execute(delete(t.wss_nonces).where(t.wss_nonces.c.created_at < before)).rowcount

    def remember_signature(self, system_id: str, signature: str, until: datetime) -> bool:
        """Record a verified VDXP signature until ``until``; False if it is recorded already (a replay)."""
        try:
            with self._db.write(flush=False) as conn:
                conn.execute(
                    insert(t.vdxp_signatures).values(system_id=system_id, signature=signature, expires_at=until)
                )
        except IntegrityError:
            return False
        return True

    def prune_signatures(self, now: datetime) -> int:
        """Forget signatures whose window has passed (their requests are refused as stale from then on)."""
        with self._db.write(flush=False) as conn:
            return conn.execute(delete(t.vdxp_signatures).where(t.vdxp_signatures.c.expires_at < now)).rowcount


__all__ = ["NonceRepository"]
