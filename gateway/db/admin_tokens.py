"""Admin API tokens (``admin_tokens``): named, role- and subtree-scoped, stored as SHA-256 hashes only.

The token itself is shown once by ``edoc-gateway admin-tokens create`` and never stored; a lookup goes by the hash
(unique index), so checking a presented token is one indexed read whatever the number of tokens. Revocation keeps
the row (audit rows name tokens, and a name is never reused for another holder).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from gateway.db import tables as t
from gateway.db.connections import Repository
from gateway.db.paging import RowPage, SortKey, keyset_page
from gateway.db.records import AdminTokenRecord, from_row, to_values
from gateway.errors import RequestError

_tok = t.admin_tokens
_BY_NAME = (SortKey(_tok.c.name, "name"),)


class AdminTokenRepository(Repository):
    """``store.admin_tokens``."""

    def add(self, record: AdminTokenRecord) -> None:
        """Store a new token; REQUEST.INVALID if the name is taken (revoked names included)."""
        taken = RequestError(f"an admin token named {record.name!r} already exists", name=record.name)
        try:
            with self._db.write() as conn:
                if conn.execute(select(_tok.c.name).where(_tok.c.name == record.name)).first() is not None:
                    raise taken
                conn.execute(insert(_tok).values(**to_values(record)))
        except IntegrityError:  # a concurrent add of the same name (or, with odds 2^-256, the same hash)
            raise taken from None

    def by_hash(self, token_hash: str) -> AdminTokenRecord | None:
        """The token whose SHA-256 is ``token_hash`` (revoked or not: the caller decides)."""
        with self._db.read() as conn:
            row = conn.execute(select(_tok).where(_tok.c.token_hash == token_hash)).mappings().first()
        return from_row(AdminTokenRecord, row) if row is not None else None

    def get(self, name: str) -> AdminTokenRecord | None:
        with self._db.read() as conn:
            row = conn.execute(select(_tok).where(_tok.c.name == name)).mappings().first()
        return from_row(AdminTokenRecord, row) if row is not None else None

    def tokens_page(self, *, after: Sequence[Any] | None, offset: int, limit: int) -> RowPage[AdminTokenRecord]:
        """One page of the tokens, by name (:func:`gateway.db.paging.keyset_page`; a name is unique)."""
        with self._db.read() as conn:
            found = keyset_page(conn, select(_tok), _BY_NAME, after=after, offset=offset, limit=limit)
        return found.converted(lambda r: from_row(AdminTokenRecord, r))

    def revoke(self, name: str, at: datetime) -> bool:
        """Mark ``name`` revoked at ``at``; False if there is no such token or it was revoked already."""
        with self._db.write() as conn:
            result = conn.execute(
                update(_tok).where(_tok.c.name == name, _tok.c.revoked_at.is_(None)).values(revoked_at=at)
            )
        return result.rowcount == 1


__all__ = ["AdminTokenRepository"]
