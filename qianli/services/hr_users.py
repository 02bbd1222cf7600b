"""HR accounts: list, deactivate / reactivate, change role or department, reset or change a password.

Used by the API and console (HR managers) and the ``qianli hr`` CLI (operators). Every change is an
``hr_account_events`` row (who, what, from where). Deactivation and password changes end the
user's live sessions at once; role and department are read from the database on every request,
so a change of either applies to the user's next request without a new login.
"""

from __future__ import annotations

import re

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cases.errors import Conflict, Forbidden, InvalidInput, NotFound
from cases.offboarding import DUTY_ROLES
from qianli.db import utcnow
from qianli.models import HR_ROLES, Company, HrSession, HrUser
from qianli.services.auth import (clear_login_lock, end_hr_sessions, hash_password, record_account_event,
                                  verify_password)
from qianli.settings import Settings

__all__ = ["KEEP", "HrUserView", "list_hr_users", "get_hr_user", "find_hr_user", "update_hr_user", "reset_hr_password",
           "change_own_password"]


@dataclass(frozen=True)
class HrUserView:
    id: str
    username: str
    display_name: str
    role: str
    department: str | None
    active: bool
    created_at: Any
    live_sessions: int
    task_roles: tuple[str, ...] = ()
    wecom_userid: str | None = None


def _live_sessions(session: Session, user_ids: list[str]) -> dict[str, int]:
    if not user_ids:
        return {}
    rows = session.execute(select(HrSession.hr_user_id, func.count()).where(
        HrSession.hr_user_id.in_(user_ids), HrSession.ended_at.is_(None), HrSession.expires_at > utcnow())
        .group_by(HrSession.hr_user_id))
    return {uid: n for uid, n in rows}


def _view(user: HrUser, live: int) -> HrUserView:
    return HrUserView(user.id, user.username, user.display_name, user.role, user.department, bool(user.active),
                      user.created_at, live, tuple(user.task_roles or ()), user.wecom_userid)


def list_hr_users(session: Session, company_id: str) -> list[HrUserView]:
    users = list(session.scalars(select(HrUser).where(HrUser.company_id == company_id).order_by(HrUser.username)))
    live = _live_sessions(session, [u.id for u in users])
    return [_view(u, live.get(u.id, 0)) for u in users]


def get_hr_user(session: Session, company_id: str, user_id: str) -> HrUser:
    user = session.scalar(select(HrUser).where(HrUser.id == user_id, HrUser.company_id == company_id))
    if user is None:
        raise NotFound("hr_user_not_found", "找不到该 HR 账号")
    return user


def find_hr_user(session: Session, company_code: str, username: str) -> HrUser:
    user = session.scalar(select(HrUser).join(Company, Company.id == HrUser.company_id)
                          .where(Company.code == company_code, HrUser.username == username))
    if user is None:
        raise NotFound("hr_user_not_found", f"no HR user {username!r} in company {company_code!r}")
    return user


def view(session: Session, user: HrUser) -> HrUserView:
    return _view(user, _live_sessions(session, [user.id]).get(user.id, 0))


KEEP: Any = object()
"""``department=KEEP``: leave the department as it is (None clears it)."""


WECOM_USERID_RE = re.compile(r"^[A-Za-z0-9_@.-]{1,64}$")


def update_hr_user(session: Session, user: HrUser, *, actor: str, actor_user_id: str | None = None,
                   active: bool | None = None, role: str | None = None, department: Any = KEEP,
                   task_roles: list[str] | None = None, wecom_userid: Any = KEEP, ip: str = "") -> HrUser:
    """Change activity, role, department and/or offboarding duties (``task_roles``: it, admin, finance).
    A manager cannot deactivate or demote themself."""
    new_role = role if role is not None else user.role
    new_dept = user.department if department is KEEP else (department or None)
    if new_role not in HR_ROLES:
        raise InvalidInput("invalid_role", f"role must be one of {', '.join(HR_ROLES)}")
    if new_role == "dept_head" and not new_dept:
        raise InvalidInput("department_required", "部门负责人必须指定部门")
    if actor_user_id == user.id and (active is False or new_role != user.role):
        raise Conflict("hr_self_change", "不能停用自己的账号或更改自己的角色，请由其他人事经理操作")
    if (new_role, new_dept) != (user.role, user.department):
        detail = {"from": {"role": user.role, "department": user.department},
                  "to": {"role": new_role, "department": new_dept}}
        user.role, user.department = new_role, new_dept
        record_account_event(session, company_id=user.company_id, hr_user_id=user.id, action="role_changed",
                             actor=actor, detail=detail, ip=ip)
    if task_roles is not None:
        allowed = [r.value for r in DUTY_ROLES]
        bad = sorted(set(task_roles) - set(allowed))
        if bad:
            raise InvalidInput("invalid_task_role", f"未知的交接职责：{', '.join(bad)}", details={"allowed": allowed})
        new_roles = sorted(set(task_roles))
        if new_roles != sorted(user.task_roles or []):
            record_account_event(session, company_id=user.company_id, hr_user_id=user.id, action="task_roles_changed",
                                 actor=actor, detail={"from": sorted(user.task_roles or []), "to": new_roles}, ip=ip)
            user.task_roles = new_roles
    if wecom_userid is not KEEP and (wecom_userid or None) != user.wecom_userid:
        new_userid = wecom_userid or None
        if new_userid is not None and not WECOM_USERID_RE.match(new_userid):
            raise InvalidInput("invalid_wecom_userid", "企业微信ID只能包含字母、数字和 _-@.（1-64 个字符）")
        record_account_event(session, company_id=user.company_id, hr_user_id=user.id, action="wecom_userid_changed",
                             actor=actor, detail={"from": user.wecom_userid, "to": new_userid}, ip=ip)
        user.wecom_userid = new_userid
    if active is not None and active != bool(user.active):
        user.active = active
        ended = 0 if active else end_hr_sessions(session, user.id, "deactivated")
        record_account_event(session, company_id=user.company_id, hr_user_id=user.id,
                             action="reactivated" if active else "deactivated", actor=actor,
                             detail={"sessions_ended": ended}, ip=ip)
    session.flush()
    return user


def reset_hr_password(session: Session, settings: Settings, redis: Any, user: HrUser, new_password: str, *,
                      actor: str, ip: str = "") -> int:
    """Set a new password (by a manager or an operator): every session ends, a lockout is lifted."""
    user.password_hash = hash_password(new_password)
    ended = end_hr_sessions(session, user.id, "password_changed")
    company = session.get(Company, user.company_id)
    if redis is not None and company is not None:
        clear_login_lock(redis, settings, company.code, user.username)
    record_account_event(session, company_id=user.company_id, hr_user_id=user.id, action="password_reset",
                         actor=actor, detail={"sessions_ended": ended}, ip=ip)
    session.flush()
    return ended


def change_own_password(session: Session, user: HrUser, *, current_password: str, new_password: str,
                        current_session_id: str | None, ip: str = "") -> int:
    """The user changes their own password: their other sessions end, this one stays."""
    if not verify_password(user.password_hash, current_password):
        raise Forbidden("password_wrong", "当前密码不正确")
    if current_password == new_password:
        raise InvalidInput("password_unchanged", "新密码不能与当前密码相同")
    user.password_hash = hash_password(new_password)
    ended = end_hr_sessions(session, user.id, "password_changed", keep=current_session_id)
    record_account_event(session, company_id=user.company_id, hr_user_id=user.id, action="password_changed",
                         actor=f"hr:{user.id}", detail={"sessions_ended": ended}, ip=ip)
    session.flush()
    return ended
