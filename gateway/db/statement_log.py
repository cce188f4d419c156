"""What a block of code asks of the database: every statement and transaction command, in order (issue 14,
"statements per intake"; ``bench/bench_statements.py`` prints it, ``tests/test_intake_statements.py`` bounds it).

A statement costs a Python round through SQLAlchemy and the driver on SQLite and a network round trip on
PostgreSQL, so what is counted is what the DATABASE receives, not only what SQLAlchemy compiles:

* every cursor execution (``before_cursor_execute``), named by verb and table (never its parameters); an
  ``executemany`` is marked with its row count — the driver may run it as one statement (SQLite steps one prepared
  statement), or as one statement per row in a pipeline (psycopg 3);
* ``BEGIN`` — SQLite's is a statement of ours (:func:`gateway.db.engine.writer`); psycopg 3 sends its own before
  the first statement of a non-autocommit connection, so it is inferred from the connection's state;
* ``COMMIT`` / ``ROLLBACK`` when the DBAPI connection really has a transaction open (both drivers skip them
  otherwise);
* ``PING`` — the pool's pre-ping (``pool_pre_ping``, PostgreSQL) on every checkout of a pooled connection.

It depends on SQLAlchemy only, so the bench can load it beside an older checkout of the gateway and count that
code's statements the same way.
"""

from __future__ import annotations

import re
from collections import Counter
from types import TracebackType
from typing import Any

from sqlalchemy import Engine, event

#: The verb and table of a statement (``INSERT INTO deliveries``, ``SELECT FROM agencies``).
_OPERATION = re.compile(
    r"^\s*(?:(INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+\"?(\w+)|(SELECT)\b.*?\bFROM\s+\"?(\w+)|(WITH)\b.*?\b"
    r"(INSERT\s+INTO|UPDATE)\s+\"?(\w+))",
    re.I | re.S,
)


def operation(statement: str) -> str:
    """``INSERT INTO deliveries``, ``SELECT FROM documents``, ``WITH … UPDATE signer_certificates``, ``BEGIN``."""
    found = _OPERATION.match(statement)
    if found is None:
        return " ".join(statement.split()[:2]).upper()
    if found.group(1):
        return f"{' '.join(found.group(1).split()).upper()} {found.group(2)}"
    if found.group(3):
        return f"SELECT FROM {found.group(4)}"
    return f"WITH … {' '.join(found.group(6).split()).upper()} {found.group(7)}"


def _in_transaction(dbapi: Any) -> bool:
    """The DBAPI connection has a transaction open (sqlite3 and psycopg 3)."""
    if hasattr(dbapi, "in_transaction"):  # sqlite3
        return bool(dbapi.in_transaction)
    info = getattr(dbapi, "info", None)
    status = getattr(info, "transaction_status", None)
    return status is not None and int(status) != 0  # psycopg: 0 = IDLE


class StatementLog:
    """``with StatementLog(engine) as log: …`` then ``log.entries`` (in order) and :meth:`counts`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.entries: list[str] = []
        self._fresh: set[int] = set()
        self._postgres = engine.dialect.name == "postgresql"

    # ------------------------------------------------------------------------------------------ results

    def __len__(self) -> int:
        return len(self.entries)

    def counts(self) -> Counter[str]:
        """How many of each entry (``{"INSERT INTO deliveries": 1, "COMMIT": 1, …}``)."""
        return Counter(self.entries)

    def verbs(self) -> Counter[str]:
        """How many per first word (SELECT, INSERT, UPDATE, BEGIN, COMMIT, ROLLBACK, PING, WITH)."""
        return Counter(entry.split()[0] for entry in self.entries)

    def clear(self) -> None:
        self.entries.clear()

    # ------------------------------------------------------------------------------------------ listening

    def __enter__(self) -> StatementLog:
        event.listen(self.engine, "before_cursor_execute", self._statement)
        event.listen(self.engine, "commit", self._commit)
        event.listen(self.engine, "rollback", self._rollback)
        event.listen(self.engine.pool, "connect", self._connect)
        event.listen(self.engine.pool, "checkout", self._checkout)
        return self

    def __exit__(
        self, _type: type[BaseException] | None, _exc: BaseException | None, _tb: TracebackType | None
    ) -> None:
        event.remove(self.engine, "before_cursor_execute", self._statement)
        event.remove(self.engine, "commit", self._commit)
        event.remove(self.engine, "rollback", self._rollback)
        event.remove(self.engine.pool, "connect", self._connect)
        event.remove(self.engine.pool, "checkout", self._checkout)

    def _statement(
        self, conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, executemany: bool
    ) -> None:
        if self._postgres:
            dbapi = conn.connection.dbapi_connection
            if not dbapi.autocommit and not _in_transaction(dbapi):
                self.entries.append("BEGIN")
        op = operation(statement)
        if executemany:
            op = f"{op} (executemany ×{len(parameters)})"
        self.entries.append(op)

    def _commit(self, conn: Any) -> None:
        if _in_transaction(conn.connection.dbapi_connection):
            self.entries.append("COMMIT")

    def _rollback(self, conn: Any) -> None:
        dbapi = conn.connection.dbapi_connection if not conn.invalidated else None
        if dbapi is not None and _in_transaction(dbapi):
            self.entries.append("ROLLBACK")

    def _connect(self, dbapi: Any, _record: Any) -> None:
        self._fresh.add(id(dbapi))

    def _checkout(self, dbapi: Any, _record: Any, _proxy: Any) -> None:
        # The pool pings a pooled connection before handing it out, not one it has just opened.
        if id(dbapi) in self._fresh:
            self._fresh.discard(id(dbapi))
        elif getattr(self.engine.pool, "_pre_ping", False):
            self.entries.append("PING")


__all__ = ["StatementLog", "operation"]
