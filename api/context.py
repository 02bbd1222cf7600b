"""Request-scoped access to the runtime and the database session.

One transaction per request: the session is committed after the view returns a non-error
response and rolled back otherwise (so a 4xx never leaves a half-written record). Views never
commit; services never commit.
"""

from __future__ import annotations

import ipaddress

from flask import current_app, g, request
from sqlalchemy.orm import Session

from cases.errors import Forbidden

from qianli.runtime import Runtime

__all__ = ["runtime", "db", "finish_request_session", "is_loopback_client", "require_loopback_client"]


def runtime() -> Runtime:
    return current_app.extensions["qianli_runtime"]


def db() -> Session:
    if "db" not in g:
        g.db = runtime().session_factory()
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


def is_loopback_client() -> bool:
    """Whether this request's client address (after any trusted-proxy rewrite) is a loopback address."""
    try:
        return ipaddress.ip_address((request.remote_addr or "").split("%")[0]).is_loopback
    except ValueError:
        return False


def require_loopback_client(what: str) -> None:
    """Development backends (``dev-<openid>`` logins, the SMS outbox, the app's own TSA) answer this machine only.

    A development instance reachable from elsewhere (a forgotten port forward, a proxy) must not hand
    over every account; refused requests get 403 ``dev_backend_loopback_only``.
    """
    if not is_loopback_client():
        raise Forbidden("dev_backend_loopback_only", "开发环境的模拟服务只接受本机请求",
                        details={"backend": what, "client": request.remote_addr or ""})
