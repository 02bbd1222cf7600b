"""Authentication and role checks for views.

Employees (mini-program) and HR (console, API) send ``Authorization: Bearer <access token>``;
the HR console may send the same token in its HttpOnly cookie ``qianli_hr``. The decorators put
the caller in ``g.principal`` and document the security scheme in the OpenAPI document.

Every token is resolved against the database (``resolve_principal``): an ended HR session, a
deactivated HR user or an employee whose sessions were revoked get 401 ``session_revoked``, and an
HR caller's role and department are the database's at this request. A request authenticated by
the cookie (no Authorization header) that is not GET/HEAD/OPTIONS must carry the console's CSRF
token in ``X-CSRF-Token`` (403 ``csrf_failed``), whatever the endpoint.
"""

from __future__ import annotations

from copy import deepcopy
from functools import wraps
from typing import Callable

from flask import g, request

from cases.errors import Forbidden, Unauthorized
from qianli.services.auth import Principal, decode_access_token, resolve_principal

from api.context import db, runtime
from api.csrf import check_csrf_header

__all__ = ["EMPLOYEE_SECURITY", "HR_SECURITY", "PENDING_SECURITY", "current_principal", "employee_required", "signed_in_required",
           "employee_or_alumnus_required",
           "wechat_user_required", "hr_required", "HR_COOKIE", "SECURITY_SCHEMES"]

HR_COOKIE = "qianli_hr"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
EMPLOYEE_SECURITY: list[dict[str, list[str]]] = [{"employeeToken": []}]
PENDING_SECURITY: list[dict[str, list[str]]] = [{"employeeToken": []}]
HR_SECURITY: list[dict[str, list[str]]] = [{"hrToken": []}]
SECURITY_SCHEMES = {
    "employeeToken": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                      "description": "Employee access token from wechatLogin / refreshSession (15 minutes)."},
    "hrToken": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                "description": "HR access token from hrLogin (a server-side session: QIANLI_HR_SESSION_TTL_S, "
                               "8 hours by default, ended by hrLogout, deactivation or a password reset)."},
}


def current_principal() -> Principal:
    if "principal" in g:
        return g.principal
    header = request.headers.get("Authorization", "")
    from_cookie = not header.lower().startswith("bearer ")
    token = request.cookies.get(HR_COOKIE, "") if from_cookie else header[7:].strip()
    if not token:
        raise Unauthorized("auth_required", "请先登录")
    principal = decode_access_token(runtime().settings, token)
    if from_cookie and request.method not in SAFE_METHODS:
        check_csrf_header(token)
    g.principal = resolve_principal(db(), principal)
    return g.principal


def _document(fn: Callable, security: list, responses: tuple[int, ...]) -> None:
    apidoc = deepcopy(getattr(fn, "_apidoc", {}))
    manual = apidoc.setdefault("manual_doc", {})
    manual["security"] = security
    apidoc.setdefault("qianli_auth_responses", responses)
    fn._apidoc = apidoc  # type: ignore[attr-defined]  # flask-smorest's documentation slot


def _decorate(check: Callable[[Principal], None], security: list, responses=(401, 403)):
    def decorator(fn):
        @wraps(fn)
        def wrapper(*args, **kwargs):
            check(current_principal())
            return fn(*args, **kwargs)
        _document(wrapper, security, responses)
        return wrapper
    return decorator


def _employee(p: Principal) -> None:
    if p.kind != "employee":
        if p.kind == "alumnus":
            raise Forbidden("alumni_only", "您已离职，仅可使用离职人才库相关功能")
        raise Forbidden("employee_only", "仅限已绑定的员工使用") if p.kind == "wechat_pending" else Forbidden("employee_only", "仅限员工使用")


def _wechat_user(p: Principal) -> None:
    if p.kind not in ("employee", "wechat_pending") or not p.openid:
        raise Forbidden("wechat_login_required", "请先通过微信登录")


employee_required = _decorate(_employee, EMPLOYEE_SECURITY)
"""The caller is an employee bound to the roster (token from wechatLogin after binding)."""

wechat_user_required = _decorate(_wechat_user, PENDING_SECURITY)
"""Any WeChat-logged-in user, bound or not (for bindEmployee)."""


def hr_required(*roles: str):
    """The caller is HR staff; with ``roles``, one of those roles (hr_manager may do everything HR may)."""

    def check(p: Principal) -> None:
        if p.kind != "hr":
            raise Forbidden("hr_only", "HR staff only")
        if roles and p.role not in roles and p.role != "hr_manager":
            raise Forbidden("role_forbidden", f"requires role: {', '.join(roles)}", details={"role": p.role})

    return _decorate(check, HR_SECURITY)


def _signed_in(p: Principal) -> None:
    if p.kind not in ("employee", "hr"):
        raise Forbidden("signed_in_only", "请先登录")


def _employee_or_alumnus(p: Principal) -> None:
    if p.kind not in ("employee", "alumnus"):
        raise Forbidden("employee_only", "仅限员工或离职员工使用")


employee_or_alumnus_required = _decorate(_employee_or_alumnus, EMPLOYEE_SECURITY)
"""A bound employee, or a former employee with an alumni-only token (wechatLogin: alumni_only)."""

signed_in_required = _decorate(_signed_in, EMPLOYEE_SECURITY + HR_SECURITY)
"""A bound employee or HR staff (e.g. verifyDocument)."""
