"""Request-scoped access to the runtime and the database session.

One transaction per request: the session is committed after the view returns a non-error
response and rolled back otherwise (so a 4xx never leaves a half-written record). Views never
commit; services never commit.
"""

from __future__ import annotations

from flask import current_app, g, request
from sqlalchemy.orm import Session

from qianli.db import read_only
from qianli.runtime import Runtime

READ_METHODS = ("GET", "HEAD", "OPTIONS")

__all__ = ["runtime", "db", "finish_request_session"]


def runtime() -> Runtime:
    return current_app.extensions["qianli_runtime"]


def db() -> Session:
    if "db" not in g:
        g.db = runtime().session_factory()
        if request.method in READ_METHODS and not g.get("qianli_write_transaction"):
            # SQLite: a read does not queue behind writers; if it writes after all and meets a
            # conflict, QianLiFlask re-runs the request as a write transaction.
            read_only(g.db)
    return g.db


def finish_request_session(commit: bool) -> None:
    session: Session | None = g.pop("db", None)
    if session is None:
        return
    try:
        if commit or session.info.pop("qianli_keep_on_error", False):
            session.commit()
        else:
            session.rollback()
    finally:
        session.close()
