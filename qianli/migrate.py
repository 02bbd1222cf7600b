"""Schema migrations (Alembic), driven from code so the URL always comes from settings."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine

__all__ = ["alembic_config", "upgrade", "EVIDENCE_APPEND_ONLY_SQL", "APPEND_ONLY_TABLES", "append_only_sql",
           "grant_app_role", "app_role_of", "AppRoleTooPowerful", "check_app_role"]

MIGRATIONS = Path(__file__).parent / "migrations"

# PostgreSQL refuses UPDATE and DELETE on the evidence log at the database level.
EVIDENCE_APPEND_ONLY_SQL = [
    """
    CREATE OR REPLACE FUNCTION qianli_evidence_append_only() RETURNS trigger AS $$
    BEGIN
        RAISE EXCEPTION '% is append-only (% refused)', TG_TABLE_NAME, TG_OP USING ERRCODE = 'insufficient_privilege';
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


# Tables the app may only INSERT into and SELECT from (PostgreSQL: a trigger and the grants below).
APPEND_ONLY_TABLES = ("evidence_entries", "chain_anchors", "chain_anchor_leaves", "hr_account_events",
                      "webhook_endpoint_events")


def append_only_sql(table: str) -> list[str]:
    """The triggers that refuse UPDATE, DELETE and TRUNCATE on ``table`` (the function is EVIDENCE_APPEND_ONLY_SQL's)."""
    return [
        f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}",
        f"""CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
        FOR EACH ROW EXECUTE FUNCTION qianli_evidence_append_only()""",
        f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}",
        f"""CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
        FOR EACH STATEMENT EXECUTE FUNCTION qianli_evidence_append_only()""",
    ]


def app_role_of(url: str) -> str | None:
    """The database user named in a SQLAlchemy URL."""
    from sqlalchemy.engine import make_url

    return make_url(url).username


def grant_app_role(conn, app_role: str) -> None:
    """Give the app's role what it needs and no more: read/write on ordinary tables, INSERT and SELECT only
    on the append-only ones, sequences for their ids. The owner (the migration role) keeps the rest: only it
    can alter or drop a table or its triggers. Run after every upgrade, so new tables are covered."""
    from sqlalchemy import text

    if conn.dialect.name != "postgresql":
        return
    owner = conn.execute(text("SELECT current_user")).scalar()
    if app_role == owner:
        return
    role = conn.dialect.identifier_preparer.quote(app_role)
    schema = conn.execute(text("SELECT current_schema()")).scalar()
    quoted_schema = conn.dialect.identifier_preparer.quote(schema)
    tables = conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")).scalars().all()
    conn.execute(text(f"GRANT USAGE ON SCHEMA {quoted_schema} TO {role}"))
    conn.execute(text(f"REVOKE CREATE ON SCHEMA {quoted_schema} FROM {role}"))
    for table in tables:
        q = conn.dialect.identifier_preparer.quote(table)
        conn.execute(text(f"REVOKE ALL ON {q} FROM {role}"))
        if table in APPEND_ONLY_TABLES:
            conn.execute(text(f"GRANT SELECT, INSERT ON {q} TO {role}"))
        elif table == "alembic_version":
            conn.execute(text(f"GRANT SELECT ON {q} TO {role}"))
        else:
            conn.execute(text(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {q} TO {role}"))
    conn.execute(text(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {quoted_schema} TO {role}"))


class AppRoleTooPowerful(RuntimeError):
    """The app's database role could rewrite the evidence (it owns the tables or may UPDATE/DELETE them)."""


def check_app_role(engine: Engine) -> None:
    """Production start-up check (PostgreSQL): refuse to run as a role that can rewrite evidence or anchors.

    Raises :class:`AppRoleTooPowerful`; does nothing on SQLite or when the tables do not exist yet.
    """
    from sqlalchemy import text

    if engine.dialect.name != "postgresql":
        return
    with engine.connect() as conn:
        for table in APPEND_ONLY_TABLES:
            row = conn.execute(text(
                "SELECT pg_get_userbyid(c.relowner) = current_user, has_table_privilege(c.oid, 'UPDATE'), "
                "has_table_privilege(c.oid, 'DELETE'), has_table_privilege(c.oid, 'TRUNCATE') "
                "FROM pg_class c WHERE c.oid = to_regclass(:t)"), {"t": table}).first()
            if row is not None and any(row):
                raise AppRoleTooPowerful(
                    f"the app's database role may rewrite {table} (owner or UPDATE/DELETE/TRUNCATE): connect the app "
                    "as a role that `qianli db upgrade` granted INSERT and SELECT only, and run migrations with "
                    "QIANLI_MIGRATION_DATABASE_URL (README: Deploying)")


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(engine: Engine, revision: str = "head", *, app_role: str | None = None) -> None:
    """Migrate with ``engine`` (the owner role); then grant ``app_role`` (PostgreSQL, if another role)."""
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
        if app_role:
            grant_app_role(conn, app_role)
