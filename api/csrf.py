"""CSRF tokens for the HR console (cookie-authenticated requests).

The token is an HMAC of the console's session cookie under ``QIANLI_SECRET_KEY``: stateless,
different for every login, and useless without the cookie it is bound to. Pages carry it in a
hidden form field or a ``<meta>`` tag; ``fetch`` calls send it as ``X-CSRF-Token``. Before login
the login form uses a double-submit cookie instead (see ``api.console``).
"""

from __future__ import annotations

import hashlib
import hmac

from flask import request

from cases.errors import Forbidden

from api.context import runtime

__all__ = ["CSRF_HEADER", "CSRF_FIELD", "csrf_token", "check_csrf_header", "check_csrf_value"]

CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"


def csrf_token(session_token: str) -> str:
    key = runtime().settings.secret_key.encode()
    return hmac.new(key, b"qianli-hr-csrf:" + session_token.encode(), hashlib.sha256).hexdigest()


def check_csrf_value(session_token: str, presented: str | None) -> None:
    if not presented or not hmac.compare_digest(presented.encode(), csrf_token(session_token).encode()):
        raise Forbidden("csrf_failed", "页面已过期，请刷新后重试")


def check_csrf_header(session_token: str) -> None:
    check_csrf_value(session_token, request.headers.get(CSRF_HEADER))
