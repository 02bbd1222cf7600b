"""PostgreSQL roles: migrations run as the owner; the app's role may only INSERT and SELECT the evidence
and anchor tables. The attack: the app's credentials (a compromised web worker, or an employer with
access to the app's configuration) used to rewrite the evidence - UPDATE, DELETE, TRUNCATE, switching the
append-only trigger off or dropping it. Each is refused by the database itself.

Needs the ``qianli_app`` role that scripts/services.sh creates (``make setup``); QIANLI_TEST_APP_DATABASE_URL
may name another app role.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import sessionmaker

from qianli.migrate import APPEND_ONLY_TABLES, upgrade
from qianli.runtime import Runtime

PG_URL = os.environ.get("QIANLI_TEST_DATABASE_URL", "")
SCHEMA = "roles_check"

pytestmark = [pytest.mark.db, pytest.mark.skipif(not PG_URL, reason="PostgreSQL only (QIANLI_TEST_DATABASE_URL)")]


def _app_url() -> str:
    given = os.environ.get("QIANLI_TEST_APP_DATABASE_URL")
    if given:
        return given
    return make_url(PG_URL).set(username="qianli_app", password="qianli_app").render_as_string(hide_password=False)


def _engine(url: str):
    return create_engine(url, connect_args={"options": f"-csearch_path={SCHEMA}"})


@pytest.fixture
def roles(settings, redis_client):
    owner = create_engine(PG_URL)
    with owner.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {SCHEMA}"))
    owner.dispose()
    owner = _engine(PG_URL)
    app_url = _app_url()
    upgrade(owner, app_role=make_url(app_url).username)
    app = _engine(app_url)
    rt = Runtime(settings)
    rt.override(engine=app, session_factory=sessionmaker(bind=app, expire_on_commit=False), redis=redis_client)
    yield owner, app, rt
    app.dispose()
    with owner.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {SCHEMA} CASCADE"))
    owner.dispose()


def _refused(engine, statement: str, match: str) -> None:
    with engine.connect() as conn:
        with pytest.raises(DBAPIError, match=match):
            conn.execute(text(statement))
        conn.rollback()


def test_app_role_can_only_insert_and_select_evidence_and_anchors(roles):
    from qianli.models import Company
    from qianli.services import cases as case_svc
    from qianli.services.anchors import make_anchor, trust_roots_der, verify_anchors
    from qianli.services.employees import create_employee
    from qianli.services.evidence import append_evidence, verify_case_chain

    owner, app, rt = roles
    with app.connect() as conn:
        assert conn.execute(text("SELECT current_user")).scalar() == make_url(_app_url()).username
    # the app's normal work, as the app's role: rows in ordinary tables, evidence appended, an anchor made
    with rt.session_factory() as s:
        company = Company(code="roles", name="角色测试有限公司", policy={})
        s.add(company)
        s.flush()
        from datetime import date

        emp = create_employee(s, rt, company_id=company.id, employee_no="R1", name="韩梅梅", phone="13800138111",
                              national_id="11010519491231002X", department="研发部", position="工程师",
                              hire_date=date(2023, 3, 1), probation_end=None, contract_term="")
        case = case_svc.open_case(s, rt.settings, employee=emp, source="instant_message",
                                  notice_arrived_at=datetime(2026, 10, 2, 6, 30, tzinfo=timezone.utc), actor="hr:1",
                                  reason_category="other", reason_text="想离职", requested_last_day=None,
                                  handover_items=[])
        append_evidence(s, case, "hr:1", "chat_evidence_recorded", {"text": "我想离职"})
        s.commit()
        case.reason_text = "ordinary tables stay writable"
        s.commit()
        assert make_anchor(s, rt) is not None
        s.commit()
        assert verify_case_chain(s, case.id, company.id).ok
        assert verify_anchors(s, trust_roots_der(rt)).ok

    for table in APPEND_ONLY_TABLES:
        _refused(app, f"UPDATE {table} SET id = id", "permission denied")
        _refused(app, f"DELETE FROM {table}", "permission denied")
        _refused(app, f"TRUNCATE {table} CASCADE", "permission denied")
        _refused(app, f"ALTER TABLE {table} DISABLE TRIGGER {table}_append_only", "must be owner")
        _refused(app, f"DROP TRIGGER {table}_append_only ON {table}", "must be owner")
        _refused(app, f"DROP TABLE {table} CASCADE", "must be owner")
    _refused(app, "DROP FUNCTION qianli_evidence_append_only() CASCADE", "must be owner")
    _refused(app, "CREATE TABLE evidence_copy (id int)", "permission denied")
    _refused(app, "UPDATE alembic_version SET version_num = 'x'", "permission denied")

    # the rows are still there, unchanged; the owner still meets the trigger when it tries an UPDATE
    with app.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM evidence_entries")).scalar() == 2
    _refused(owner, "UPDATE evidence_entries SET actor = 'hr:2'", "append-only")


def test_production_refuses_to_run_as_a_role_that_can_rewrite_evidence(roles, settings):
    from dataclasses import replace

    from api.app import create_app
    from qianli.migrate import AppRoleTooPowerful, check_app_role

    owner, app, rt = roles
    check_app_role(app)  # the granted app role: fine
    with pytest.raises(AppRoleTooPowerful, match="evidence_entries"):
        check_app_role(owner)  # the owner (what a single-role deployment runs as)
    prod = Runtime(replace(settings, env="production"))
    prod.override(engine=owner, redis=rt.redis)
    with pytest.raises(AppRoleTooPowerful):
        create_app(prod)
    prod.override(engine=app)
    assert create_app(prod) is not None
