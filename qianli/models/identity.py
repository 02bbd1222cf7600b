"""Identity tables of the WeChat/SMS half: the history of WeChat bindings.

A binding is not tied to a case (people bind before they resign), so its history is kept here,
append-only, and copied into the evidence chain of the employee's cases when it matters.
"""

from __future__ import annotations

from datetime import datetime

from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from qianli.db import Base, UTCDateTime, new_id, utcnow

__all__ = ["WechatBindingEvent", "BINDING_ACTIONS", "IdentityChange", "IDENTITY_FACTORS"]

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


IDENTITY_FACTORS = ("phone", "wechat", "face")


class IdentityChange(Base):
    """The employee's identity history: a new phone, a WeChat binding after an HR unbind, a face reference.

    Rows are never deleted; only the answer (``confirmed_*`` or ``objected_*``, once) and the
    after-commit ``notice_results`` are filled in later. ``usable_from`` is when the factor may be
    used for signing without the employee's confirmation (None: only with it); see
    qianli.services.identity_trust."""

    __tablename__ = "identity_changes"
    __table_args__ = (Index("ix_identity_changes_employee", "company_id", "employee_id", "created_at"),
                      Index("ix_identity_changes_notify_openid", "notify_openid"))
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id"))
    employee_id: Mapped[str] = mapped_column(ForeignKey("employees.id"))
    factor: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(32))  # roster_import, api, cli, rebind, hr_upload, self_capture, ...
    actor: Mapped[str] = mapped_column(String(120))
    old_value: Mapped[str] = mapped_column(String(64), default="")  # masked
    new_value: Mapped[str] = mapped_column(String(64), default="")  # masked
    reason: Mapped[str] = mapped_column(String(500), default="")
    ip: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(500), default="")
    notify_openid: Mapped[str | None] = mapped_column(String(128), nullable=True)
    notices: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    notice_results: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    usable_from: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    confirmed_by: Mapped[str | None] = mapped_column(String(120), nullable=True)
    objected_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    objected_by: Mapped[str | None] = mapped_column(String(120), nullable=True)
    objection: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
