"""Alembic environment: run by :func:`gateway.db.migrations.upgrade` (config built in code, no alembic.ini).

The caller passes an open connection in ``config.attributes["connection"]``; without one (the ``alembic``
command line pointed at this directory) an engine is built from ``sqlalchemy.url`` with the same SQLite
pragmas as the service. ``render_as_batch`` lets future migrations alter tables on SQLite.
"""

from __future__ import annotations

from alembic import context

from gateway.db.engine import create_engine, writer
from gateway.db.tables import metadata

config = context.config


def _run(connection: object) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=True,
        compare_type=True,
        compare_server_default=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    conn = config.attributes.get("connection")
    if conn is not None:
        _run(conn)
    else:
        engine = writer(create_engine(config.get_main_option("sqlalchemy.url") or ""))
        try:
            with engine.connect() as connection:
                _run(connection)
                connection.commit()
        finally:
            engine.dispose()
