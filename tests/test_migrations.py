"""Migrations and models agree (warehouse's CI check), on SQLite and PostgreSQL; upgrade is safe to repeat."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from gateway.config import Settings
from gateway.db import create_engine, current_revision, head_revision, upgrade
from gateway.db.engine import writer
from gateway.db.migrations import alembic_config
from gateway.db.tables import metadata


def _diff(url: str) -> list[object]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
            return compare_metadata(context, metadata)
    finally:
        engine.dispose()


def test_upgraded_schema_equals_the_models(database_url: str):
    assert current_revision(database_url) is None
    upgrade(database_url)
    assert _diff(database_url) == []
    assert current_revision(database_url) == head_revision() == "0012"


def test_upgrade_is_idempotent_and_downgrade_reverses_it(database_url: str):
    upgrade(database_url)
    upgrade(database_url)  # every deploy runs it
    engine = create_engine(database_url)
    try:
        with writer(engine).connect() as conn:
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "base")
            conn.commit()
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        upgrade(engine)
        assert set(metadata.tables) <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert _diff(database_url) == []


def test_upgrade_from_settings_uses_the_default_sqlite_file(tmp_path):
    settings = Settings(data_dir=tmp_path / "state")
    upgrade(settings)
    assert (tmp_path / "state" / "gateway.db").exists()
    assert current_revision(settings) == head_revision()
