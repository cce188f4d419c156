"""How every repository gets a connection: one reader and one writer over the engine, outages translated once.

Database failures are translated here and only here: a lost connection, a locked SQLite file past its busy
timeout, a PostgreSQL restart, a full disk → :class:`~gateway.errors.UnavailableError` (retryable); everything else
propagates unchanged (the repositories turn the integrity errors they expect into their own answers).

Each translated failure is also logged here, once, with its cause and the operation (issue 11 item 7: a full disk
showed only as INFO access lines ``POST /soap 500 … SERVICE.UNAVAILABLE``; 95 of 96 requests had failed at the
nonce write). A failed write is an ERROR — a request was refused, or work was not recorded — a failed read a
WARNING, e.g. ``database write failed: disk full (sqlite3.OperationalError: database or disk is full) at INSERT
INTO wss_nonces``. The operation is the statement's verb and table, never its parameters: no request data, no
package bytes, no secrets reach the log. The readiness probe (:meth:`Connections.read` with ``quiet``) logs
nothing: ``/readyz`` reports its own failures (:mod:`gateway.web.health`), and a load balancer polls every second.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, event
from sqlalchemy.exc import DBAPIError, OperationalError

from gateway.db.engine import reader, writer
from gateway.db.writegate import write_gate
from gateway.errors import UnavailableError

log = logging.getLogger(__name__)

#: ``Connection.info`` key of the writes of the current transaction (:func:`_remember`).
_DONE = "edoc_gateway_writes"

#: What a DBAPI message says went wrong → the cause an operator reads first (the message itself follows).
_CAUSES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"disk is full|no space left|could not extend|DiskFull", re.I), "disk full"),
    (re.compile(r"disk I/O error|input/output error", re.I), "disk I/O error"),
    (re.compile(r"database is locked|database table is locked", re.I), "database locked past the busy timeout"),
    (re.compile(r"read-?only", re.I), "database is read-only"),
    (re.compile(r"connection|server closed|terminat|could not connect|timeout", re.I), "connection lost"),
)
#: The verb and table of a statement: ``INSERT INTO wss_nonces``, ``UPDATE outbox``, ``SELECT FROM documents``.
_OPERATION = re.compile(
    r"^\s*(?:(INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+\"?(\w+)|(SELECT)\b.*?\bFROM\s+\"?(\w+))", re.I | re.S
)


class Connections:
    """The engine's connections as the repositories use them; one per :class:`~gateway.db.store.Store`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._writer = writer(engine)
        # Only the writer's statements are remembered: a listener on the engine itself put every read through
        # SQLAlchemy's event dispatch too (issue 14 profile), for a record only a write transaction keeps.
        event.listen(self._writer, "before_cursor_execute", _remember)
        # Reads need no transaction: every write commits a consistent unit (a document WITH its deliveries),
        # and races are settled by constraints. On PostgreSQL autocommit reads save the BEGIN/ROLLBACK round
        # trips (measured: ~0.3 ms each on loopback); on SQLite the BEGIN/ROLLBACK statements (gateway.db.engine).
        self._reader = reader(engine)

    @contextmanager
    def read(self, *, quiet: bool = False) -> Iterator[Connection]:
        """A connection for reads (no transaction: :func:`~gateway.db.engine.reader`); ``quiet``: a failure is
        not logged (a probe)."""
        with _translated("read", quiet=quiet), self._reader.connect() as conn:
            yield conn

    @contextmanager
    def stream(self) -> Iterator[Connection]:
        """A connection for reading a large result in chunks (``yield_per``), inside a transaction.

        On PostgreSQL ``yield_per`` is a server-side cursor (``DECLARE … CURSOR``), which exists only inside a
        transaction block: the autocommit connection of :meth:`read` refuses it (NoActiveSqlTransaction).
        """
        with _translated("read"), self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def write(self, *, flush: bool = True) -> Iterator[Connection]:
        """One transaction, committed on success (SQLite: ``BEGIN IMMEDIATE``, see :func:`gateway.db.engine.writer`).

        ``flush=False``: the COMMIT does not wait for the disk (SQLite ``synchronous=NORMAL`` for this transaction,
        PostgreSQL ``synchronous_commit=off``); its log records become durable with the next flushed commit of
        anyone, since both logs are written and flushed in order (:func:`_unflushed` says when that is enough)."""
        done: list[str] = []
        gate = write_gate(self.engine)  # SQLite: wait for the turn in the kernel, not in the busy handler
        with (
            gate or contextlib.nullcontext(),
            _translated("write", done),
            self._writer.connect() as conn,
            _unflushed(conn, enabled=not flush),
            conn.begin(),
        ):
            conn.info[_DONE] = done  # what _remember names when the COMMIT itself fails
            if not flush and conn.dialect.name == "postgresql":
                conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
            yield conn


@contextmanager
def _unflushed(conn: Connection, *, enabled: bool) -> Iterator[None]:
    """SQLite: ``synchronous=NORMAL`` around one transaction, then FULL again (engine.py keeps FULL everywhere).

    Only for records whose loss in a power cut is harmless once nothing that depends on them has been answered:
    in WAL mode an unsynced commit is made durable by the next FULL commit on the database (the WAL is appended and
    fsynced in order), so e.g. a WS-Security nonce is durable before the SendEdoc that follows it is answered.
    The PRAGMAs go to the driver's connection directly (no SQLAlchemy autobegin); a connection whose FULL could
    not be restored is discarded, never returned to the pool."""
    if not enabled or conn.dialect.name != "sqlite":
        yield
        return
    driver = conn.connection.driver_connection
    driver.execute("PRAGMA synchronous = NORMAL")
    try:
        yield
    finally:
        try:
            driver.execute("PRAGMA synchronous = FULL")
        except Exception:
            log.warning("could not restore synchronous=FULL on a SQLite connection; discarded", exc_info=True)
            conn.invalidate()


class Repository:
    """What the repositories share: the store's :class:`Connections` (one pool per process)."""

    def __init__(self, db: Connections) -> None:
        self._db = db


def _remember(conn: Connection, _cursor: Any, statement: str, *_args: Any) -> None:
    """The writes of the current transaction (verb and table, the first few), for a failure at COMMIT: SQLite
    writes a small transaction's pages at COMMIT, so that is where a full disk is met, with no statement."""
    done = conn.info.get(_DONE)
    if done is not None and len(done) < 4:
        op = operation(statement)
        if not op.startswith(("SELECT", "BEGIN", "PRAGMA")) and op not in done:
            done.append(op)


@contextmanager
def _translated(mode: str, done: list[str] | None = None, *, quiet: bool = False) -> Iterator[None]:
    """Database outages → UnavailableError (retryable), logged once with their cause; everything else propagates
    unchanged."""
    try:
        yield
    except OperationalError as exc:
        if not quiet:
            _log_failure(mode, exc, done)
        raise UnavailableError(f"database unavailable: {exc.orig.__class__.__name__}") from exc
    except DBAPIError as exc:
        if exc.connection_invalidated:
            if not quiet:
                _log_failure(mode, exc, done)
            raise UnavailableError("database connection lost") from exc
        raise


def _log_failure(mode: str, exc: DBAPIError, done: list[str] | None) -> None:
    """``database write failed: disk full (sqlite3.OperationalError: database or disk is full) at INSERT INTO
    wss_nonces`` — ERROR for a write, WARNING for a read."""
    orig = exc.orig
    kind = f"{type(orig).__module__}.{type(orig).__name__}" if orig is not None else type(exc).__name__
    message = " ".join(str(orig if orig is not None else exc).split())[:300]
    cause = next((name for pattern, name in _CAUSES if pattern.search(f"{message} {kind}")), "database error")
    where = operation(exc.statement)
    if exc.statement is None and done:  # the statements ran; their COMMIT failed
        where = "COMMIT of " + ", ".join(done)
    log.log(
        logging.ERROR if mode == "write" else logging.WARNING,
        "database %s failed: %s (%s: %s) at %s",
        mode,
        cause,
        kind,
        message,
        where,
        extra={"db_cause": cause, "db_operation": where},
    )


@functools.lru_cache(maxsize=256)
def operation(statement: str | None) -> str:
    """The verb and table of ``statement`` (never its parameters); ``connect`` when no statement ran yet.

    Memoised: :func:`_remember` asks it for every statement of a write transaction, and those are the same few
    compiled strings intake after intake."""
    if not statement:
        return "connect"
    found = _OPERATION.match(statement)
    if found is None:
        return " ".join(statement.split()[:1]).upper() or "connect"
    verb, table = (found.group(1), found.group(2)) if found.group(1) else ("SELECT FROM", found.group(4))
    return f"{' '.join(verb.split()).upper()} {table}"


__all__ = ["Connections", "Repository"]
