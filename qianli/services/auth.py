"""Sessions for employees (short access token + rotating refresh token) and HR logins.

Access tokens are HS256 JWTs signed with ``QIANLI_SECRET_KEY``; they carry the company id so
every request is company-scoped before it touches the database. Refresh tokens are random,
stored only as SHA-256, rotated on every use; presenting a used one revokes its whole family
(token theft detection). HR passwords are argon2id hashes.

Every access token is checked against the database on each request (:func:`resolve_principal`):
an HR token names its server-side session (``hr_sessions``), which must be live, and its user,
who must be active; the role and department used are the user's current ones, never the token's.
An employee token carries the employee's session epoch, bumped by an HR unbind, so an unbind
ends the employee's access tokens at once, not when they expire.

HR logins are throttled per account (company code + username, whether or not it exists) and per
client address: ``hr_login_max_failures`` failures within ``hr_login_window_s`` lock the account
for ``hr_login_lockout_s`` (429 ``login_locked``; an HR alert and an account event record it),
``hr_login_max_failures_per_ip`` failures from one address give 429 ``login_throttled``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import secrets
import time
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, cast

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from cases.errors import InvalidInput, RateLimited, Unauthorized
from qianli.db import keep, keep_on_error, new_id, utcnow
from qianli.models import HR_ROLES, Company, Employee, HrAccountEvent, HrSession, HrUser, RefreshToken
from qianli.settings import Settings

__all__ = ["Principal", "TokenPair", "issue_access_token", "decode_access_token", "issue_employee_session",
           "issue_pending_session", "issue_alumnus_session", "refresh_employee_session", "hash_password", "verify_password", "hr_login",
           "create_hr_user", "revoke_employee_sessions", "open_hr_session", "resolve_principal", "end_hr_session",
           "end_hr_sessions", "record_account_event", "clear_login_lock"]

log = logging.getLogger(__name__)

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("timing-equaliser")


@dataclass(frozen=True)
class Principal:
    """Who is calling: kind is 'employee', 'wechat_pending' (logged in, not yet bound), 'alumnus' (a
    former employee, deactivated at close: alumni operations only) or 'hr'."""

    kind: str
    subject_id: str | None
    company_id: str | None
    openid: str | None = None
    role: str | None = None
    department: str | None = None
    session_id: str | None = None  # HR: the hr_sessions row
    epoch: int = 0  # employee: the session epoch the token was issued in

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
                              "oid": principal.openid, "sid": principal.session_id, "sep": principal.epoch or None,
                              "iat": int(now.timestamp()), "exp": int((now + timedelta(seconds=ttl)).timestamp()),
                              "jti": secrets.token_hex(8)}
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, settings.secret_key, algorithm="HS256"), ttl


def decode_access_token(settings: Settings, token: str) -> Principal:
    try:
        # Expiry is checked against the one clock (cases.clock.utcnow, which a development deployment may move
        # forward), not pyjwt's own: a token issued after the clock moved would otherwise look issued in the future.
        c = jwt.decode(token, settings.secret_key, algorithms=["HS256"],
                       options={"require": ["exp", "typ"], "verify_exp": False, "verify_iat": False})
    except jwt.PyJWTError:
        raise Unauthorized("token_invalid", "登录凭证无效") from None
    if not isinstance(c["exp"], int) or c["exp"] <= utcnow().timestamp():
        raise Unauthorized("token_expired", "登录已过期，请重新登录")
    if c["typ"] not in ("employee", "wechat_pending", "hr", "alumnus"):
        raise Unauthorized("token_invalid", "登录凭证无效")
    return Principal(c["typ"], c.get("sub"), c.get("cid"), c.get("oid"), session_id=c.get("sid"),
                     epoch=int(c.get("sep") or 0))


_REVOKED = ("session_revoked", "登录已失效，请重新登录")


def resolve_principal(session: Session, principal: Principal) -> Principal:
    """The caller as the database sees them now; 401 ``session_revoked`` if their session has ended.

    HR: the session row must be live and the user active in the token's company; role and
    department come from the user row. Employee: the token's epoch must be the employee's.
    """
    if principal.kind == "hr":
        # One round trip for both rows (every HR request pays it); the identity map keeps them for the view.
        found = session.execute(select(HrSession, HrUser).join(HrUser, HrUser.id == HrSession.hr_user_id)
                                .where(HrSession.id == principal.session_id)).first() if principal.session_id else None
        if found is None:
            raise Unauthorized(*_REVOKED)
        row, user = found
        if row.hr_user_id != principal.subject_id or row.ended_at is not None or row.expires_at <= utcnow():
            raise Unauthorized(*_REVOKED)
        if not user.active or user.company_id != principal.company_id:
            raise Unauthorized(*_REVOKED)
        keep(session, row, user)  # the request reads them again (get_reviewer)
        return replace(principal, role=user.role, department=user.department)
    if principal.kind in ("employee", "alumnus"):
        emp = session.get(Employee, principal.subject_id) if principal.subject_id else None
        if emp is None or emp.company_id != principal.company_id or (emp.session_epoch or 0) != principal.epoch:
            raise Unauthorized(*_REVOKED)
        keep(session, emp)
    return principal


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_employee_session(session: Session, settings: Settings, employee: Employee, *, openid: str | None,
                           family_id: str | None = None) -> TokenPair:
    principal = Principal("employee", employee.id, employee.company_id, openid, epoch=employee.session_epoch or 0)
    access, ttl = issue_access_token(settings, principal)
    refresh = secrets.token_urlsafe(32)
    session.add(RefreshToken(company_id=employee.company_id, employee_id=employee.id, family_id=family_id or new_id(),
                             token_hash=_hash_token(refresh), openid=openid,
                             expires_at=utcnow() + timedelta(seconds=settings.refresh_token_ttl_s)))
    session.flush()
    return TokenPair(access, ttl, refresh, settings.refresh_token_ttl_s)


def issue_alumnus_session(settings: Settings, employee: Employee, *, openid: str) -> TokenPair:
    """A former employee (deactivated) logging in with WeChat: an access token for the alumni
    operations only (consent, job openings), no refresh token (wx.login again when it expires)."""
    access, ttl = issue_access_token(settings, Principal("alumnus", employee.id, employee.company_id, openid,
                                                         epoch=employee.session_epoch or 0))
    return TokenPair(access, ttl)


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
    """End every session of the employee now: refresh tokens revoked, access tokens refused."""
    session.execute(update(RefreshToken).where(RefreshToken.employee_id == employee_id, RefreshToken.revoked_at.is_(None))
                    .values(revoked_at=utcnow()))
    session.execute(update(Employee).where(Employee.id == employee_id)
                    .values(session_epoch=Employee.session_epoch + 1))


def hash_password(password: str) -> str:
    if len(password) < 10:
        raise InvalidInput("password_too_short", "Password must have at least 10 characters")
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


# -- HR logins: throttling, sessions -------------------------------------------------------------
_LOGIN_PREFIX = "qianli:hrlogin"


def _account_key(settings: Settings, company_code: str, username: str) -> str:
    msg = f"hr-login\x00{company_code.strip().lower()}\x00{username.strip().lower()}".encode()
    return hmac.new(settings.secret_key.encode(), msg, hashlib.sha256).hexdigest()[:32]


def _login_allowed(redis: Any, settings: Settings, account: str, ip: str) -> None:
    lock_ttl = redis.ttl(f"{_LOGIN_PREFIX}:lock:{account}")
    if lock_ttl and lock_ttl > 0:
        raise RateLimited("login_locked", "登录失败次数过多，账号已临时锁定，请稍后再试或联系人事经理",
                          details={"retry_after_s": int(lock_ttl)})
    if ip:
        key, now = f"{_LOGIN_PREFIX}:fail:ip:{ip}", time.time()
        window = settings.hr_login_window_s
        if redis.zcount(key, now - window, "+inf") >= settings.hr_login_max_failures_per_ip:
            oldest = redis.zrangebyscore(key, now - window, "+inf", start=0, num=1, withscores=True)
            retry = math.ceil(oldest[0][1] + window - now) if oldest else window
            raise RateLimited("login_throttled", "当前网络登录失败次数过多，请稍后再试",
                              details={"retry_after_s": max(1, retry)})


def _login_failed(redis: Any, settings: Settings, account: str, ip: str) -> int:
    """Count a failure; return the account's failures in the window if this one locked it, else 0."""
    now, window = time.time(), settings.hr_login_window_s
    member = f"{now!r}:{secrets.token_hex(4)}"
    keys = [f"{_LOGIN_PREFIX}:fail:acct:{account}"] + ([f"{_LOGIN_PREFIX}:fail:ip:{ip}"] if ip else [])
    with redis.pipeline() as pipe:
        for key in keys:
            pipe.zremrangebyscore(key, "-inf", now - window)
            pipe.zadd(key, {member: now})
            pipe.expire(key, window + 60)
        pipe.zcount(keys[0], now - window, "+inf")
        failures = int(pipe.execute()[-1])
    if failures >= settings.hr_login_max_failures and \
            redis.set(f"{_LOGIN_PREFIX}:lock:{account}", "1", ex=settings.hr_login_lockout_s, nx=True):
        redis.delete(keys[0])
        return failures
    return 0


def clear_login_lock(redis: Any, settings: Settings, company_code: str, username: str) -> None:
    """Lift a lockout (a manager's password reset does this)."""
    account = _account_key(settings, company_code, username)
    redis.delete(f"{_LOGIN_PREFIX}:lock:{account}", f"{_LOGIN_PREFIX}:fail:acct:{account}")


def record_account_event(session: Session, *, company_id: str, hr_user_id: str | None, action: str, actor: str,
                         detail: dict[str, Any] | None = None, ip: str = "") -> HrAccountEvent:
    event = HrAccountEvent(company_id=company_id, hr_user_id=hr_user_id, action=action, actor=actor[:120],
                           detail=detail or {}, ip=ip[:64])
    session.add(event)
    session.flush()
    return event


def _on_lock(session: Session, settings: Settings, *, company_code: str, username: str, ip: str,
             failures: int) -> None:
    """An account got locked: alert the company's HR and keep an account event (survives the 401)."""
    from qianli.services.alerts import raise_alert

    company = session.scalar(select(Company).where(Company.code == company_code))
    log.warning("HR login locked for %r at %r after %d failures (from %s)", username, company_code, failures, ip)
    if company is None:
        return
    user = session.scalar(select(HrUser).where(HrUser.company_id == company.id, HrUser.username == username))
    minutes = max(1, settings.hr_login_lockout_s // 60)
    detail = {"username": username[:64], "ip": ip, "failures": failures, "lockout_s": settings.hr_login_lockout_s,
              "account_exists": user is not None}
    raise_alert(session, company_id=company.id, kind="hr_login_locked",
                message=f"HR 账号 {username[:64]} 登录连续失败 {failures} 次，已锁定 {minutes} 分钟（来源 {ip or '未知'}）",
                payload=detail)
    record_account_event(session, company_id=company.id, hr_user_id=user.id if user else None,
                         action="login_locked", actor="system", detail=detail, ip=ip)
    keep_on_error(session)


def hr_login(session: Session, settings: Settings, *, company_code: str, username: str, password: str,
             redis: Any = None, ip: str = "", user_agent: str = "") -> tuple[HrUser, TokenPair]:
    """Check the password and open a server-side session. With ``redis``, failures are throttled."""
    account = _account_key(settings, company_code, username)
    if redis is not None:
        _login_allowed(redis, settings, account, ip)
    user = session.scalar(select(HrUser).join(Company, Company.id == HrUser.company_id)
                          .where(Company.code == company_code, HrUser.username == username))
    if user is None:
        verify_password(_DUMMY_HASH, password)  # same work either way: no user enumeration by timing
        ok = False
    else:
        ok = verify_password(user.password_hash, password) and user.active
    if not ok:
        if redis is not None:
            failures = _login_failed(redis, settings, account, ip)
            if failures:
                _on_lock(session, settings, company_code=company_code, username=username, ip=ip, failures=failures)
        raise Unauthorized("login_failed", "Wrong company, username or password")
    assert user is not None
    if redis is not None:
        redis.delete(f"{_LOGIN_PREFIX}:fail:acct:{account}")
    return user, open_hr_session(session, settings, user, ip=ip, user_agent=user_agent)


def open_hr_session(session: Session, settings: Settings, user: HrUser, *, ip: str = "",
                    user_agent: str = "") -> TokenPair:
    ttl = settings.hr_session_ttl_s
    row = HrSession(company_id=user.company_id, hr_user_id=user.id, expires_at=utcnow() + timedelta(seconds=ttl),
                    ip=ip[:64], user_agent=user_agent[:300])
    session.add(row)
    session.flush()
    token, ttl = issue_access_token(settings, Principal("hr", user.id, user.company_id, session_id=row.id), ttl_s=ttl)
    return TokenPair(token, ttl)


def end_hr_session(session: Session, session_id: str, reason: str = "logout") -> None:
    session.execute(update(HrSession).where(HrSession.id == session_id, HrSession.ended_at.is_(None))
                    .values(ended_at=utcnow(), end_reason=reason))


def end_hr_sessions(session: Session, hr_user_id: str, reason: str, *, keep: str | None = None) -> int:
    """End every live session of an HR user (but ``keep``); returns how many were ended."""
    q = update(HrSession).where(HrSession.hr_user_id == hr_user_id, HrSession.ended_at.is_(None))
    if keep:
        q = q.where(HrSession.id != keep)
    return cast(CursorResult, session.execute(q.values(ended_at=utcnow(), end_reason=reason))).rowcount or 0


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
