"""Schema migrations (alembic), shipped inside the package; the configuration is built in code.

Why in code: ``edoc-gateway db upgrade`` must work from an installed wheel in any directory, with the
database URL from the gateway's own settings — an ``alembic.ini`` at the repository root would do neither.
Every schema change gets a revision in ``versions/``; tests/test_migrations.py checks that the upgraded
schema equals :data:`gateway.db.tables.metadata` on SQLite and PostgreSQL.

For developers, a new revision (after editing ``tables.py``)::

    python -c "from gateway.db.migrations import revision; revision('what changed', 'sqlite:///tmp/x.db')"
"""

from __future__ import annotations

import functools
from importlib.resources import files
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy.engine import URL

from gateway.config import Settings
from gateway.db.engine import create_engine, database_url, writer

#: This package's directory: env.py, script.py.mako and versions/ are in the wheel (pyproject.toml package-data),
#: found through importlib.resources like the package's other files.
MIGRATIONS_DIR = Path(str(files(__name__)))


def alembic_config(settings_or_url: Settings | str | URL | None = None) -> Config:
    """An alembic :class:`Config` pointing at this directory (and at the database, when given)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("path_separator", "os")
    if settings_or_url is not None:
        url = database_url(settings_or_url).render_as_string(hide_password=False)
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(settings_or_url: Settings | str | URL | Engine, revision: str = "head") -> None:
    """Bring the database to ``revision`` (default: the latest). Idempotent; safe to run on every deploy.

    Runs in one transaction (SQLite and PostgreSQL both have transactional DDL), so a failed upgrade
    leaves the previous schema in place.
    """
    engine, owned = _engine(settings_or_url)
    try:
        with writer(engine).connect() as conn:
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
            conn.commit()
    finally:
        if owned:
            engine.dispose()


def current_revision(settings_or_url: Settings | str | URL | Engine) -> str | None:
    """The revision the database is at (None for an empty database) — for ``/readyz`` and the CLI."""
    engine, owned = _engine(settings_or_url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        if owned:
            engine.dispose()


@functools.cache
def head_revision() -> str | None:
    """The newest revision shipped with this version of the gateway (read once per process)."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def revision(message: str, settings_or_url: Settings | str | URL) -> None:
    """Autogenerate a new revision against a database at the current head (developer helper)."""
    command.revision(alembic_config(settings_or_url), message=message, autogenerate=True)


def _engine(settings_or_url: Settings | str | URL | Engine) -> tuple[Engine, bool]:
    if isinstance(settings_or_url, Engine):
        return settings_or_url, False
    return create_engine(settings_or_url), True
