"""One SQLAlchemy engine per process, built from :class:`gateway.config.Settings` (never at import time).

SQLite (the default, one host) is configured on every new connection:

* ``journal_mode=WAL`` — readers do not block the writer, and gunicorn workers share the file;
* ``synchronous=FULL`` — kept on purpose: an accepted document must survive a power cut once the receipt
  is out (gateway.md "Reliability"). NORMAL would only lose durability of the last commits, and the
  measured cost of FULL here is about 0.6 ms per commit, far below the rest of the intake pipeline;
* ``foreign_keys=ON`` (off by default in SQLite) and ``busy_timeout`` so that concurrent writers wait
  instead of failing;
* transactions that will write start with ``BEGIN IMMEDIATE`` (through :func:`writer`): a deferred
  transaction that reads first and writes later can hit ``SQLITE_BUSY`` on upgrade, which busy_timeout
  cannot cure. pysqlite's own implicit transaction handling is switched off so we control BEGIN;
* reads (through :func:`reader`) run without BEGIN: each statement is its own implicit read transaction, as
  PostgreSQL's autocommit reads are (see :class:`gateway.db.connections.Connections`).

PostgreSQL goes through psycopg 3 (``postgresql+psycopg://``; a bare ``postgresql://`` URL is read the
same way, psycopg2 is not a dependency), with a small pre-pinged pool.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy.engine import URL, make_url

from gateway.config import Settings

#: Milliseconds a SQLite writer waits for the lock before giving up (then UnavailableError, retryable).
SQLITE_BUSY_TIMEOUT_MS = 30_000
_WRITE = "edoc_gateway_write"
_READ = "edoc_gateway_read"


def database_url(settings_or_url: Settings | str | URL) -> URL:
    """The SQLAlchemy URL from settings or a URL string, with ``postgresql://`` mapped to psycopg 3."""
    if isinstance(settings_or_url, Settings):
        url = make_url(settings_or_url.effective_database_url)
    else:
        url = make_url(settings_or_url)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    return url


def create_engine(settings_or_url: Settings | str | URL, **kwargs: Any) -> Engine:
    """The engine for the configured database; extra ``kwargs`` go to :func:`sqlalchemy.create_engine`."""
    url = database_url(settings_or_url)
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url, **kwargs)
    options: dict[str, Any] = {"pool_pre_ping": True, "pool_size": 5, "max_overflow": 10, "pool_recycle": 1800}
    options.update(kwargs)
    return sa_create_engine(url, **options)


def writer(engine: Engine) -> Engine:
    """The same engine (same pool), flagged so that SQLite transactions begin IMMEDIATE."""
    return engine.execution_options(**{_WRITE: True})


def reader(engine: Engine) -> Engine:
    """The same engine (same pool) for reads without a transaction: autocommit on PostgreSQL, no ``BEGIN`` on
    SQLite (each statement is then its own implicit read transaction, with its own WAL snapshot).

    Why: intake's lookup is three SELECTs in one checkout, and the BEGIN/ROLLBACK around them on SQLite cost about
    as much as one of the SELECTs (issue 14 profile). No reader needs one snapshot across its statements: PostgreSQL
    reads have run in autocommit all along (and READ COMMITTED gave per-statement snapshots before that), every
    write commits a consistent unit, races are settled by constraints, and what must be read consistently in
    pieces uses :meth:`~gateway.db.connections.Connections.stream` (a transaction).
    """
    if engine.dialect.name == "postgresql":
        return engine.execution_options(isolation_level="AUTOCOMMIT")
    return engine.execution_options(**{_READ: True})


def _sqlite_engine(url: URL, **kwargs: Any) -> Engine:
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file::memory:"):
        # In-memory SQLite is one connection's private database: useless across the pool.
        raise ValueError("in-memory SQLite is not supported; use a file URL (sqlite:///path/gateway.db)")
    if not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    options: dict[str, Any] = {"pool_size": 8, "max_overflow": 8, "pool_timeout": 30}
    options.update(kwargs)
    engine = sa_create_engine(url, **options)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (see _on_begin)
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = FULL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        options = conn.get_execution_options()
        if options.get(_WRITE):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        elif not options.get(_READ):  # a reader's statements are each their own implicit transaction
            conn.exec_driver_sql("BEGIN")

    return engine
