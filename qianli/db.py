"""Database plumbing: the declarative base, engines and sessions.

SQLite (development default) and PostgreSQL (production) are both first-class: types are chosen
to behave the same on both (UTC datetimes stored timezone-aware, JSON columns, string UUID keys).
"""

from __future__ import annotations

import uuid
from contextlib import contextmanager
from datetime import timezone
from typing import Iterator

from sqlalchemy import DateTime, MetaData, create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from cases.clock import utcnow  # re-exported: models and services take the time from the one clock

__all__ = ["Base", "UTCDateTime", "new_id", "utcnow", "make_engine", "make_session_factory", "session_scope", "on_commit", "keep_on_error"]

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes on every backend (SQLite drops tzinfo; we put it back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime stored; use aware UTC datetimes")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


def new_id() -> str:
    """Random, non-enumerable primary keys (32 hex chars)."""
    return uuid.uuid4().hex


def make_engine(database_url: str, **kwargs) -> Engine:
    if database_url.startswith("sqlite"):
        engine = create_engine(database_url, connect_args={"timeout": 30}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - trivial
            # Let SQLAlchemy, not pysqlite, manage transactions (so SAVEPOINTs work; see the
            # SQLAlchemy docs on pysqlite's transaction handling).
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):  # pragma: no cover - trivial
            conn.exec_driver_sql("BEGIN")

        return engine
    return create_engine(database_url, pool_pre_ping=True, **kwargs)


def on_commit(session: Session, callback) -> None:
    """Run ``callback()`` once this session's transaction commits (never if it rolls back).

    This is how jobs are enqueued and messages sent: only once the rows they read are committed.
    """
    session.info.setdefault("qianli_after_commit", []).append(callback)


def keep_on_error(session: Session) -> None:
    """Commit this transaction even though the request ends in an error.

    For the few security writes that must survive the error they cause: revoking a refresh-token
    family on reuse, counting a failed attempt that leads to a lock. Use sparingly.
    """
    session.info["qianli_keep_on_error"] = True


@event.listens_for(Session, "after_commit")
def _run_after_commit(session: Session) -> None:
    callbacks = session.info.pop("qianli_after_commit", [])
    for cb in callbacks:
        cb()


@event.listens_for(Session, "after_soft_rollback")
def _drop_after_commit(session: Session, previous_transaction) -> None:
    if previous_transaction.parent is None:
        session.info.pop("qianli_after_commit", None)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any exception."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
