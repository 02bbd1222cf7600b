"""Sessions for employees (short access token + rotating refresh token) and HR logins.

Access tokens are HS256 JWTs signed with ``QIANLI_SECRET_KEY``; they carry the company id so
every request is company-scoped before it touches the database. Refresh tokens are random,
stored only as SHA-256, rotated on every use; presenting a used one revokes its whole family
(token theft detection). HR passwords are argon2id hashes.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cases.errors import InvalidInput, Unauthorized
from qianli.db import keep_on_error, new_id, utcnow
from qianli.models import HR_ROLES, Company, Employee, HrUser, RefreshToken
from qianli.settings import Settings

__all__ = ["Principal", "TokenPair", "issue_access_token", "decode_access_token", "issue_employee_session",
           "issue_pending_session", "refresh_employee_session", "hash_password", "verify_password", "hr_login",
           "create_hr_user", "revoke_employee_sessions"]

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("timing-equaliser")


@dataclass(frozen=True)
class Principal:
    """Who is calling: kind is 'employee', 'wechat_pending' (logged in, not yet bound) or 'hr'."""

    kind: str
    subject_id: str | None
    company_id: str | None
    openid: str | None = None
    role: str | None = None
    department: str | None = None

    @property
    def actor(self) -> str:
        """How this principal appears in the evidence chain."""
        return f"{self.kind}:{self.subject_id or self.openid}"


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    expires_in: int
    refresh_token: str | None = None
    refresh_expires_in: int | None = None


def issue_access_token(settings: Settings, principal: Principal, ttl_s: int | None = None) -> tuple[str, int]:
    ttl = ttl_s or settings.access_token_ttl_s
    now = utcnow()
    claims: dict[str, Any] = {"typ": principal.kind, "sub": principal.subject_id, "cid": principal.company_id,
                              "oid": principal.openid, "role": principal.role, "dept": principal.department,
                              "iat": int(now.timestamp()), "exp": int((now + timedelta(seconds=ttl)).timestamp()),
                              "jti": secrets.token_hex(8)}
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, settings.secret_key, algorithm="HS256"), ttl


def decode_access_token(settings: Settings, token: str) -> Principal:
    try:
        c = jwt.decode(token, settings.secret_key, algorithms=["HS256"], options={"require": ["exp", "typ"]})
    except jwt.ExpiredSignatureError:
        raise Unauthorized("token_expired", "登录已过期，请重新登录") from None
    except jwt.PyJWTError:
        raise Unauthorized("token_invalid", "登录凭证无效") from None
    if c["typ"] not in ("employee", "wechat_pending", "hr"):
        raise Unauthorized("token_invalid", "登录凭证无效")
    return Principal(c["typ"], c.get("sub"), c.get("cid"), c.get("oid"), c.get("role"), c.get("dept"))


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_employee_session(session: Session, settings: Settings, employee: Employee, *, openid: str | None,
                           family_id: str | None = None) -> TokenPair:
    principal = Principal("employee", employee.id, employee.company_id, openid)
    access, ttl = issue_access_token(settings, principal)
    refresh = secrets.token_urlsafe(32)
    session.add(RefreshToken(company_id=employee.company_id, employee_id=employee.id, family_id=family_id or new_id(),
                             token_hash=_hash_token(refresh), openid=openid,
                             expires_at=utcnow() + timedelta(seconds=settings.refresh_token_ttl_s)))
    session.flush()
    return TokenPair(access, ttl, refresh, settings.refresh_token_ttl_s)


def issue_pending_session(settings: Settings, openid: str) -> TokenPair:
    """A WeChat user not yet bound to an employee: may only bind (10 minutes)."""
    access, ttl = issue_access_token(settings, Principal("wechat_pending", None, None, openid), ttl_s=600)
    return TokenPair(access, ttl)


def refresh_employee_session(session: Session, settings: Settings, refresh_token: str) -> TokenPair:
    row = session.scalar(select(RefreshToken).where(RefreshToken.token_hash == _hash_token(refresh_token)).with_for_update())
    now = utcnow()
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        raise Unauthorized("refresh_token_invalid", "登录已过期，请重新登录")
    if row.used_at is not None:
        # Reuse of a rotated token: someone else holds a copy. Revoke the whole family.
        session.execute(update(RefreshToken).where(RefreshToken.family_id == row.family_id).values(revoked_at=now))
        keep_on_error(session)
        raise Unauthorized("refresh_token_reused", "登录凭证已失效，请重新登录")
    employee = session.get(Employee, row.employee_id)
    if employee is None or not employee.active:
        raise Unauthorized("refresh_token_invalid", "登录已过期，请重新登录")
    row.used_at = now
    return issue_employee_session(session, settings, employee, openid=row.openid, family_id=row.family_id)


def revoke_employee_sessions(session: Session, employee_id: str) -> None:
    session.execute(update(RefreshToken).where(RefreshToken.employee_id == employee_id, RefreshToken.revoked_at.is_(None))
                    .values(revoked_at=utcnow()))


def hash_password(password: str) -> str:
    if len(password) < 10:
        raise InvalidInput("password_too_short", "Password must have at least 10 characters")
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def hr_login(session: Session, settings: Settings, *, company_code: str, username: str, password: str) -> tuple[HrUser, TokenPair]:
    user = session.scalar(select(HrUser).join(Company, Company.id == HrUser.company_id)
                          .where(Company.code == company_code, HrUser.username == username))
    if user is None:
        verify_password(_DUMMY_HASH, password)  # same work either way: no user enumeration by timing
        raise Unauthorized("login_failed", "Wrong company, username or password")
    if not verify_password(user.password_hash, password) or not user.active:
        raise Unauthorized("login_failed", "Wrong company, username or password")
    principal = Principal("hr", user.id, user.company_id, role=user.role, department=user.department)
    token, ttl = issue_access_token(settings, principal, ttl_s=settings.hr_session_ttl_s)
    return user, TokenPair(token, ttl)


def create_hr_user(session: Session, *, company_id: str, username: str, display_name: str, password: str, role: str,
                   department: str | None = None) -> HrUser:
    if role not in HR_ROLES:
        raise InvalidInput("invalid_role", f"role must be one of {', '.join(HR_ROLES)}")
    if role == "dept_head" and not department:
        raise InvalidInput("department_required", "a dept_head needs a department")
    user = HrUser(company_id=company_id, username=username, display_name=display_name,
                  password_hash=hash_password(password), role=role, department=department)
    session.add(user)
    session.flush()
    return user
