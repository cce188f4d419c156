"""The check every database command makes first: the configured database exists and has this version's schema.

Why: opening a SQLite URL creates the file, so a command run without (or with a wrong) ``--config`` used to
create an empty ``./data/gateway.db`` in whatever directory it ran in and then fail on the missing tables with a
bare ``SERVICE.UNAVAILABLE``. Only ``db upgrade`` and ``serve`` (which migrates) create a database; every other
command names the database it tried, where its settings came from, and what to run.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect
from sqlalchemy.exc import SQLAlchemyError

from gateway.config import ENV_PREFIX, Settings
from gateway.db.engine import create_engine, database_url
from gateway.db.migrations import head_revision
from gateway.errors import ConfigError, UnavailableError

#: A table every revision has: its absence means nobody ever created the schema.
_CORE_TABLE = "agencies"
_HINT = (
    "create or migrate it with `edoc-gateway db upgrade` (with the same settings), or point the command at "
    f"your settings with --config FILE or {ENV_PREFIX}CONFIG"
)


def require_database(settings: Settings, source: str, *, unreachable_ok: bool = False) -> None:
    """Refuse (``CONFIG.INVALID``) a missing SQLite file, an empty database or a schema at another revision;
    an unreachable server is ``SERVICE.UNAVAILABLE`` unless ``unreachable_ok``. Never creates anything."""
    url = database_url(settings)
    shown = url.render_as_string(hide_password=True)
    database = url.database or ""
    if url.get_backend_name() == "sqlite" and database and not database.startswith("file:"):
        path = Path(database).resolve()
        if not path.is_file():
            raise ConfigError(f"no database at {path} ({source}); {_HINT}", database=shown)
    engine = create_engine(url)
    try:
        from alembic.runtime.migration import MigrationContext

        with engine.connect() as conn:
            revision = MigrationContext.configure(conn).get_current_revision()
            has_schema = inspect(conn).has_table(_CORE_TABLE)
    except SQLAlchemyError as exc:
        if unreachable_ok:
            return
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise UnavailableError(
            f"database {shown} is not reachable ({reason}; {source}); check database_url", database=shown
        ) from None
    finally:
        engine.dispose()
    if revision is None and not has_schema:
        raise ConfigError(f"database {shown} is empty ({source}); {_HINT}", database=shown)
    head = head_revision()
    if revision is not None and revision != head:
        raise ConfigError(
            f"database {shown} is at schema revision {revision}, this version needs {head}; "
            "run `edoc-gateway db upgrade`",
            database=shown,
            revision=revision,
        )
