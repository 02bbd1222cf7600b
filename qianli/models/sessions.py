"""HR sessions (server-side, revocable) and the audit trail of HR accounts.

An HR access token names its session row (``sid``); every request loads the row and the user, so
a logout, a deactivation, a password reset or a change of role or department takes effect on the
next request, and the role and department used are always the database's.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from qianli.db import Base, UTCDateTime, new_id, utcnow

__all__ = ["HrSession", "HrAccountEvent", "HR_ACCOUNT_ACTIONS", "HR_SESSION_END_REASONS"]

HR_SESSION_END_REASONS = ("logout", "deactivated", "role_changed", "password_changed", "revoked")
HR_ACCOUNT_ACTIONS = ("deactivated", "reactivated", "role_changed", "password_reset", "password_changed",
                      "login_locked", "sessions_revoked", "wecom_userid_changed")


class HrSession(Base):
    """One HR login. Live while ``ended_at`` is empty and ``expires_at`` is ahead."""

    __tablename__ = "hr_sessions"
    __table_args__ = (Index("ix_hr_sessions_user", "hr_user_id", "ended_at"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id"))
    hr_user_id: Mapped[str] = mapped_column(ForeignKey("hr_users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    end_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    ip: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(300), default="")


class HrAccountEvent(Base):
    """Who changed an HR account (or locked it by failed logins), when and from where. Append-only
    (on PostgreSQL the app role may only INSERT and SELECT, and triggers refuse UPDATE and DELETE)."""

    __tablename__ = "hr_account_events"
    __table_args__ = (Index("ix_hr_account_events_user", "company_id", "hr_user_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id"))
    hr_user_id: Mapped[str | None] = mapped_column(ForeignKey("hr_users.id"), nullable=True)
    action: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(120))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    ip: Mapped[str] = mapped_column(String(64), default="")
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
