"""Schema migrations (Alembic), driven from code so the URL always comes from settings."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine

__all__ = ["alembic_config", "upgrade", "EVIDENCE_APPEND_ONLY_SQL"]

MIGRATIONS = Path(__file__).parent / "migrations"

# PostgreSQL refuses UPDATE and DELETE on the evidence log at the database level.
EVIDENCE_APPEND_ONLY_SQL = [
    """
    CREATE OR REPLACE FUNCTION qianli_evidence_append_only() RETURNS trigger AS $$
    BEGIN
        RAISE EXCEPTION 'evidence_entries is append-only (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
    END;
    $$ LANGUAGE plpgsql
    """,
    "DROP TRIGGER IF EXISTS evidence_entries_append_only ON evidence_entries",
    """
    CREATE TRIGGER evidence_entries_append_only BEFORE UPDATE OR DELETE ON evidence_entries
    FOR EACH ROW EXECUTE FUNCTION qianli_evidence_append_only()
    """,
    "DROP TRIGGER IF EXISTS evidence_entries_no_truncate ON evidence_entries",
    """
    CREATE TRIGGER evidence_entries_no_truncate BEFORE TRUNCATE ON evidence_entries
    FOR EACH STATEMENT EXECUTE FUNCTION qianli_evidence_append_only()
    """,
]


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
