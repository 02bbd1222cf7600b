"""Alembic migrations produce exactly the schema the models describe, on SQLite and PostgreSQL."""

import os

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

from qianli.db import Base, make_engine
from qianli.migrate import upgrade


def _fresh_engine(tmp_path):
    pg_url = os.environ.get("QIANLI_TEST_DATABASE_URL", "")
    if pg_url:
        eng = make_engine(pg_url)
        with eng.begin() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS migration_check CASCADE"))
            conn.execute(text("CREATE SCHEMA migration_check"))
        eng.dispose()
        return create_engine(pg_url, connect_args={"options": "-csearch_path=migration_check"})
    return make_engine(f"sqlite:///{tmp_path / 'migrated.db'}")


def test_upgrade_head_matches_models(tmp_path, settings):
    import qianli.models  # noqa: F401

    eng = _fresh_engine(tmp_path)
    upgrade(eng)
    with eng.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    eng.dispose()
    assert diff == [], f"models and migrations differ; regenerate the migration: {diff}"
