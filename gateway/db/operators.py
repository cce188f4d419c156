"""Operator accounts and console sessions (``store.operators``; :mod:`gateway.db.console_tables`).

The store keeps hashes only: argon2id for passwords (computed by :mod:`gateway.services.operators`), SHA-256 for
session identifiers. Disabling an account or changing its password deletes its sessions in the same transaction,
so no browser stays logged in on credentials that no longer hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from gateway.db import tables as t
from gateway.db.audit import insert_audit
from gateway.db.connections import Repository
from gateway.db.paging import RowPage, SortKey, keyset_page
from gateway.db.records import AuditEntry, from_row, to_values
from gateway.errors import RequestError

_op, _s = t.operators, t.console_sessions
_BY_NAME = (SortKey(_op.c.username, "username"),)


@dataclass(frozen=True)
class OperatorRecord:
    """One console account (``operators``)."""

    username: str
    display_name: str
    password_hash: str
    role: str
    scope: str | None
    created_at: datetime
    password_changed_at: datetime
    last_login_at: datetime | None = None
    disabled_at: datetime | None = None


@dataclass(frozen=True)
class SessionRecord:
    """One logged-in browser (``console_sessions``)."""

    id_hash: str
    username: str
    csrf: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime


class OperatorRepository(Repository):
    """``store.operators``: accounts and their sessions."""

    def add(self, record: OperatorRecord, audit: AuditEntry) -> None:
        """Store a new account; REQUEST.INVALID if the name is taken (disabled accounts included)."""
        taken = RequestError(f"an operator named {record.username!r} already exists", username=record.username)
        try:
            with self._db.write() as conn:
                if conn.execute(select(_op.c.username).where(_op.c.username == record.username)).first():
                    raise taken
                conn.execute(insert(_op).values(**to_values(record)))
                insert_audit(conn, audit)
        except IntegrityError:  # a concurrent add of the same name
            raise taken from None

    def get(self, username: str) -> OperatorRecord | None:
        with self._db.read() as conn:
            row = conn.execute(select(_op).where(_op.c.username == username)).mappings().first()
        return from_row(OperatorRecord, row) if row is not None else None

    def page(self, *, after: Sequence[Any] | None, offset: int, limit: int) -> RowPage[OperatorRecord]:
        """One page of the accounts, by name (:func:`gateway.db.paging.keyset_page`)."""
        with self._db.read() as conn:
            found = keyset_page(conn, select(_op), _BY_NAME, after=after, offset=offset, limit=limit)
        return found.converted(lambda r: from_row(OperatorRecord, r))

    def change(self, username: str, audit: AuditEntry, **values: Any) -> bool:
        """Set ``values`` on the account and end its sessions (a password reset, a disable); False if unknown."""
        with self._db.write() as conn:
            result = conn.execute(update(_op).where(_op.c.username == username).values(**values))
            if result.rowcount != 1:
                return False
            conn.execute(delete(_s).where(_s.c.username == username))
            insert_audit(conn, audit)
        return True

    # ------------------------------------------------------------------------------------------ sessions

    def open_session(self, record: SessionRecord, audit: AuditEntry) -> None:
        """A new session after a successful login (never a reused identifier: no session fixation)."""
        with self._db.write() as conn:
            conn.execute(insert(_s).values(**to_values(record)))
            conn.execute(update(_op).where(_op.c.username == record.username).values(last_login_at=record.created_at))
            insert_audit(conn, audit)

    def session(self, id_hash: str) -> tuple[SessionRecord, OperatorRecord] | None:
        """The session and its account (one read), or None."""
        query = select(_s, *(c.label(f"op_{c.name}") for c in _op.c)).join(_op, _op.c.username == _s.c.username)
        with self._db.read() as conn:
            row = conn.execute(query.where(_s.c.id_hash == id_hash)).mappings().first()
        if row is None:
            return None
        account = {name.removeprefix("op_"): value for name, value in row.items() if name.startswith("op_")}
        return from_row(SessionRecord, row), from_row(OperatorRecord, account)

    def touch_session(self, id_hash: str, at: datetime) -> None:
        with self._db.write() as conn:
            conn.execute(update(_s).where(_s.c.id_hash == id_hash).values(last_seen_at=at))

    def close_session(self, id_hash: str, audit: AuditEntry | None = None) -> bool:
        with self._db.write() as conn:
            closed = conn.execute(delete(_s).where(_s.c.id_hash == id_hash)).rowcount == 1
            if closed and audit is not None:
                insert_audit(conn, audit)
        return closed

    def prune_sessions(self, now: datetime, idle_since: datetime) -> int:
        """Delete the sessions over their lifetime at ``now`` or idle since before ``idle_since`` (a browser that
        never came back leaves its row; logins sweep them)."""
        with self._db.write() as conn:
            query = delete(_s).where(or_(_s.c.expires_at <= now, _s.c.last_seen_at < idle_since))
            return conn.execute(query).rowcount


__all__ = ["OperatorRecord", "OperatorRepository", "SessionRecord"]
