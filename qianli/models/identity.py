"""Identity tables of the WeChat/SMS half: the history of WeChat bindings.

A binding is not tied to a case (people bind before they resign), so its history is kept here,
append-only, and copied into the evidence chain of the employee's cases when it matters.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from qianli.db import Base, UTCDateTime, utcnow

__all__ = ["WechatBindingEvent", "BINDING_ACTIONS"]

BINDING_ACTIONS = ("bind", "unbind")


class WechatBindingEvent(Base):
    """One bind or unbind: who, which openid, from where. Never updated or deleted."""

    __tablename__ = "wechat_binding_events"
    __table_args__ = (Index("ix_wechat_binding_events_employee", "company_id", "employee_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id"))
    employee_id: Mapped[str] = mapped_column(ForeignKey("employees.id"))
    action: Mapped[str] = mapped_column(String(16))
    openid: Mapped[str] = mapped_column(String(128))
    actor: Mapped[str] = mapped_column(String(120))
    reason: Mapped[str] = mapped_column(String(500), default="")
    ip: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(500), default="")
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
