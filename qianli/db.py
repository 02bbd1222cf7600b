"""Database plumbing: the declarative base, engines and sessions.

SQLite (development default) and PostgreSQL (production) are both first-class: types are chosen
to behave the same on both (UTC datetimes stored timezone-aware, JSON columns, string UUID keys).
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from contextlib import contextmanager
from datetime import timezone
from typing import Any, Callable, Iterator, TypeVar

from sqlalchemy import DateTime, MetaData, create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from cases.clock import utcnow  # re-exported: models and services take the time from the one clock

__all__ = ["Base", "UTCDateTime", "new_id", "utcnow", "make_engine", "make_session_factory", "session_scope", "on_commit", "keep",
           "keep_on_error", "read_only", "is_sqlite_lock_error", "sqlite_lock_backoff", "run_in_transaction",
           "SQLITE_LOCK_RETRIES", "READ_ONLY"]

log = logging.getLogger(__name__)
T = TypeVar("T")

# Execution option naming how an SQLite transaction begins: "IMMEDIATE" (the default: take the write
# lock up front) or "DEFERRED" (read-only transactions, see read_only()).
SQLITE_BEGIN = "qianli_sqlite_begin"
# Execution options of a read-only connection (engine.connect().execution_options(**READ_ONLY)).
READ_ONLY = {SQLITE_BEGIN: "DEFERRED"}
# How many times a unit of work is re-run when SQLite still answers "database is locked".
SQLITE_LOCK_RETRIES = 3

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


def make_engine(database_url: str, *, sqlite_busy_timeout_s: float = 30.0, **kwargs) -> Engine:
    """An engine for ``database_url``.

    SQLite (the development default, shared by the API's gunicorn workers, the rq workers and the
    scheduler): WAL, a busy timeout, and every transaction ``BEGIN IMMEDIATE`` unless it was
    declared read-only (:func:`read_only`). A deferred transaction that reads and then writes while
    another process has committed meanwhile fails at once with ``database is locked`` - SQLite cannot
    upgrade a stale read snapshot, and the busy timeout does not apply - so writers take the lock up
    front, where the busy timeout makes them wait their turn instead. WAL readers never wait.
    """
    if database_url.startswith("sqlite"):
        timeout_ms = int(sqlite_busy_timeout_s * 1000)
        engine = create_engine(database_url, connect_args={"timeout": sqlite_busy_timeout_s}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - trivial
            # Let SQLAlchemy, not pysqlite, manage transactions (so SAVEPOINTs work; see the
            # SQLAlchemy docs on pysqlite's transaction handling).
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute(f"PRAGMA busy_timeout={timeout_ms}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):  # pragma: no cover - trivial
            mode = conn.get_execution_options().get(SQLITE_BEGIN, "IMMEDIATE")
            conn.exec_driver_sql("BEGIN" if mode == "DEFERRED" else "BEGIN IMMEDIATE")

        return engine
    return create_engine(database_url, pool_pre_ping=True, **kwargs)


def read_only(session: Session) -> Session:
    """Declare the session's next transaction read-only: on SQLite it begins DEFERRED (it neither
    takes nor waits for the write lock). If it writes after all, a conflicting write elsewhere makes
    it fail with ``database is locked``, which callers retry as a normal (IMMEDIATE) transaction.
    No effect on PostgreSQL or on a session already in a transaction."""
    if not session.in_transaction() and session.get_bind().dialect.name == "sqlite":
        session.connection(execution_options=READ_ONLY)
    return session


def is_sqlite_lock_error(exc: BaseException) -> bool:
    """SQLite's ``database is locked`` / ``database table is locked`` (SQLITE_BUSY / SQLITE_LOCKED)."""
    if not isinstance(exc, OperationalError):
        return False
    text = str(exc.orig).lower()
    return "database is locked" in text or "database table is locked" in text


def sqlite_lock_backoff(attempt: int) -> None:
    """Sleep before re-running a unit of work that met a lock: 50 ms, 100 ms, 200 ms ... plus jitter."""
    time.sleep(0.05 * (2 ** attempt) * (1 + random.random()))  # noqa: S311 - jitter, not security


def run_in_transaction(factory: sessionmaker[Session], fn: Callable[[Session], T], *,
                       retries: int = SQLITE_LOCK_RETRIES) -> T:
    """Run ``fn(session)`` in one committed transaction; re-run it (at most ``retries`` more times)
    when SQLite answers ``database is locked`` even after its busy timeout. ``fn`` must have no side
    effect outside the session (use :func:`on_commit`)."""
    attempt = 0
    while True:
        try:
            with session_scope(factory) as session:
                return fn(session)
        except OperationalError as exc:
            if not is_sqlite_lock_error(exc) or attempt >= retries:
                raise
            log.warning("database is locked; retrying the transaction (attempt %d of %d)", attempt + 1, retries)
            sqlite_lock_backoff(attempt)
            attempt += 1


def keep(session: Session, *rows: Any) -> None:
    """Hold strong references to loaded rows until the session closes. SQLAlchemy's identity map is
    weak: a row loaded, used and dropped (the caller's employee, company, HR user) would be fetched
    again by the next ``session.get`` of the same request - a database round trip each time."""
    session.info.setdefault("qianli_keep", []).extend(r for r in rows if r is not None)


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
