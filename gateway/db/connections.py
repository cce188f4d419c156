"""How every repository gets a connection: one reader and one writer over the engine, outages translated once.

Database failures are translated here and only here: a lost connection, a locked SQLite file past its busy
timeout, a PostgreSQL restart → :class:`~gateway.errors.UnavailableError` (retryable); everything else propagates
unchanged (the repositories turn the integrity errors they expect into their own answers).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError, OperationalError

from gateway.db.engine import writer
from gateway.errors import UnavailableError


class Connections:
    """The engine's connections as the repositories use them; one per :class:`~gateway.db.store.Store`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._writer = writer(engine)
        # Reads need no transaction: every write commits a consistent unit (a document WITH its deliveries),
        # and races are settled by constraints. On PostgreSQL autocommit reads save the BEGIN/ROLLBACK round
        # trips (measured: ~0.3 ms each on loopback). SQLite reads are cheap either way.
        self._reader = (
            engine.execution_options(isolation_level="AUTOCOMMIT") if engine.dialect.name == "postgresql" else engine
        )

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for reads (no transaction on PostgreSQL)."""
        with _translated(), self._reader.connect() as conn:
            yield conn

    @contextmanager
    def stream(self) -> Iterator[Connection]:
        """A connection for reads streamed through a server-side cursor (``yield_per``): PostgreSQL declares such
        a cursor only inside a transaction, which the autocommit reader has none of."""
        with _translated(), self.engine.connect() as conn:
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One transaction, committed on success (SQLite: ``BEGIN IMMEDIATE``, see :func:`gateway.db.engine.writer`)."""
        with _translated(), self._writer.begin() as conn:
            yield conn


class Repository:
    """What the repositories share: the store's :class:`Connections` (one pool per process)."""

    def __init__(self, db: Connections) -> None:
        self._db = db


@contextmanager
def _translated() -> Iterator[None]:
    """Database outages → UnavailableError (retryable); everything else propagates unchanged."""
    try:
        yield
    except OperationalError as exc:
        raise UnavailableError(f"database unavailable: {exc.orig.__class__.__name__}") from exc
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise UnavailableError("database connection lost") from exc
        raise


__all__ = ["Connections", "Repository"]
