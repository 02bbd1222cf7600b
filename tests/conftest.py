"""Shared fixtures: real SQLite or PostgreSQL, real Redis, the app, and factories.

Database: SQLite (a temp file) by default; PostgreSQL when QIANLI_TEST_DATABASE_URL is set
(``make test`` runs the database tests on both). Each test runs inside a transaction that is
rolled back afterwards (the app's commits become SAVEPOINT releases), so tests don't see each
other. Tests that need data visible to other processes (real rq workers, a live server) use
``committed_runtime``, a fresh database of their own.

Redis: database QIANLI_TEST_REDIS_DB (default 15) on QIANLI_TEST_REDIS_URL's server, flushed
before each test that uses it.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest
import redis as redis_lib
from sqlalchemy import text
from sqlalchemy.orm import sessionmaker

from qianli.db import Base, make_engine
from qianli.migrate import APPEND_ONLY_TABLES, EVIDENCE_APPEND_ONLY_SQL, append_only_sql
from qianli.runtime import Runtime, set_runtime
from qianli.settings import load_settings, reset_settings_cache

REDIS_BASE = os.environ.get("QIANLI_TEST_REDIS_URL", "redis://127.0.0.1:6379")
REDIS_DB = int(os.environ.get("QIANLI_TEST_REDIS_DB", "15"))
PG_URL = os.environ.get("QIANLI_TEST_DATABASE_URL", "")


def pytest_collection_modifyitems(config, items):
    """Tests that touch the database carry the ``db`` marker (run on both backends)."""
    for item in items:
        if {"db_session", "runtime", "app", "client", "committed_runtime"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.db)


def pytest_configure(config):
    config.addinivalue_line("markers", "db: uses the database (run on SQLite and PostgreSQL)")


@pytest.fixture(scope="session")
def var_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("var")


def _test_settings(var_dir: Path, database_url: str, **overrides):
    env = {"QIANLI_ENV": "test", "QIANLI_VAR_DIR": str(var_dir), "DATABASE_URL": database_url,
           "REDIS_URL": f"{REDIS_BASE}/{REDIS_DB}", "QIANLI_LOG_LEVEL": "WARNING",
           # the uniform-timing floor of binding answers is tested on its own (tests/identity/test_sms_limits.py)
           "QIANLI_BIND_ANSWER_FLOOR_S": "0"}
    return replace(load_settings(env), **overrides) if overrides else load_settings(env)


def create_schema(engine) -> None:
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    import qianli.models  # noqa: F401

    Base.metadata.create_all(engine)
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            for stmt in EVIDENCE_APPEND_ONLY_SQL:
                conn.execute(text(stmt))
            for table in (t for t in APPEND_ONLY_TABLES if t != "evidence_entries"):  # that one: above
                for stmt in append_only_sql(table):
                    conn.execute(text(stmt))


@pytest.fixture(scope="session")
def base_settings(var_dir):
    url = PG_URL or f"sqlite:///{var_dir / 'test.db'}"
    s = _test_settings(var_dir, url)
    reset_settings_cache(s)
    return s


@pytest.fixture(scope="session")
def engine(base_settings):
    eng = make_engine(base_settings.database_url)
    create_schema(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def settings(base_settings):
    return base_settings


@pytest.fixture
def redis_client():
    r = redis_lib.Redis.from_url(f"{REDIS_BASE}/{REDIS_DB}")
    r.flushdb()
    yield r
    r.close()


@pytest.fixture
def runtime(settings, engine, redis_client):
    """A Runtime whose sessions all join one outer transaction, rolled back after the test."""
    conn = engine.connect()
    outer = conn.begin()
    rt = Runtime(settings).override(
        engine=engine, redis=redis_client,
        session_factory=sessionmaker(bind=conn, expire_on_commit=False, join_transaction_mode="create_savepoint"))
    set_runtime(rt)
    reset_settings_cache(settings)
    yield rt
    set_runtime(None)
    outer.rollback()
    conn.close()


@pytest.fixture
def committed_runtime(tmp_path, redis_client):
    """A fresh, really-committing database (SQLite file, or a fresh PostgreSQL schema)."""
    url = PG_URL or f"sqlite:///{tmp_path / 'committed.db'}"
    s = _test_settings(tmp_path / "var", url)
    eng = make_engine(url)
    create_schema(eng)
    rt = Runtime(s).override(engine=eng, redis=redis_client)
    set_runtime(rt)
    reset_settings_cache(s)
    yield rt
    set_runtime(None)
    if eng.dialect.name == "postgresql":
        # The same database serves the rolled-back tests that follow: leave it empty, not with our rows.
        create_schema(eng)
    eng.dispose()


@pytest.fixture
def db_session(runtime):
    s = runtime.session_factory()
    yield s
    s.close()


@pytest.fixture
def app(runtime):
    from api.app import create_app

    application = create_app(runtime)
    application.testing = True
    return application


@pytest.fixture
def client(app):
    return app.test_client()


# ---- factories ---------------------------------------------------------------------------------

class Factory:
    """Creates committed-in-test rows through the real services."""

    def __init__(self, runtime: Runtime, session):
        self.rt, self.s = runtime, session
        self._n = 0

    def _next(self) -> int:
        self._n += 1
        return self._n

    def company(self, code: str | None = None, name: str = "示例科技有限公司", **policy):
        from qianli.models import Company

        c = Company(code=code or f"co{self._next()}", name=name, policy=policy)
        self.s.add(c)
        self.s.commit()
        return c

    def employee(self, company, *, employee_no: str | None = None, name: str = "张三", phone: str | None = None,
                 national_id: str = "11010519491231002X", probation_end=None, department: str = "研发部",
                 position: str = "工程师", openid: str | None = None, **kw):
        from datetime import date

        from qianli.services.employees import create_employee

        n = self._next()
        emp = create_employee(self.s, self.rt, company_id=company.id, employee_no=employee_no or f"E{n:04d}",
                              name=name, phone=phone or f"1380013{n:04d}", national_id=national_id,
                              department=department, position=position, hire_date=kw.pop("hire_date", date(2023, 3, 1)),
                              probation_end=probation_end, contract_term=kw.pop("contract_term", "2023-03-01至2026-02-28"))
        emp.wechat_openid = openid
        self.s.commit()
        return emp

    def hr(self, company, role: str = "hr_specialist", *, username: str | None = None, department: str | None = None,
           password: str = "correct horse battery"):
        from qianli.services.auth import create_hr_user

        u = create_hr_user(self.s, company_id=company.id, username=username or f"hr{self._next()}",
                           display_name=f"HR {role}", password=password, role=role,
                           department=department or ("研发部" if role == "dept_head" else None))
        self.s.commit()
        return u

    def employee_headers(self, emp, openid: str | None = None) -> dict[str, str]:
        from qianli.services.auth import Principal, issue_access_token

        token, _ = issue_access_token(self.rt.settings, Principal("employee", emp.id, emp.company_id,
                                                                  openid or emp.wechat_openid or f"openid-{emp.id}",
                                                                  epoch=emp.session_epoch or 0))
        return {"Authorization": f"Bearer {token}"}

    def hr_headers(self, user) -> dict[str, str]:
        """A real server-side HR session (as hrLogin opens), committed in the test's transaction."""
        from qianli.services.auth import open_hr_session

        pair = open_hr_session(self.s, self.rt.settings, user)
        self.s.commit()
        return {"Authorization": f"Bearer {pair.access_token}"}


@pytest.fixture
def factory(runtime, db_session):
    return Factory(runtime, db_session)
