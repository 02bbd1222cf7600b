"""Reminder tables: one schedule row per case, one delivery row per (case, slot, channel), and the
daily overdue digests to HR users.

The database is the source of truth: Redis only carries jobs that can be rebuilt from these rows
(see qianli.services.reminders.sweep). The unique (case, slot, channel) delivery row is the
idempotency record that makes a retried or duplicated job send at most once.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from qianli.db import Base, UTCDateTime, new_id, utcnow

__all__ = ["ReminderSchedule", "ReminderDelivery", "HrDigest", "SCHEDULE_STATES", "DELIVERY_STATUSES",
           "DELIVERY_CHANNELS"]

SCHEDULE_STATES = ("active", "paused", "stopped")
DELIVERY_STATUSES = ("pending", "sending", "sent", "dropped", "failed")
DELIVERY_CHANNELS = ("wechat", "sms")


class ReminderSchedule(Base):
    """Where a case's reminders stand: the next slot to send and when."""

    __tablename__ = "reminder_schedules"
    __table_args__ = (Index("ix_reminder_schedules_due", "state", "next_due_at"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id"), index=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("resignation_cases.id"), unique=True)
    state: Mapped[str] = mapped_column(String(16), default="active")
    slot: Mapped[int] = mapped_column(Integer, default=0)  # the next slot to send (0: the notice)
    next_due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    stop_reason: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ReminderDelivery(Base):
    """One send to the employee on one channel; slots >= 0 are letter reminders (0: the notice),
    negative slots are one-off notifications (case returned, withdrawal decided, ...)."""

    __tablename__ = "reminder_deliveries"
    __table_args__ = (
        UniqueConstraint("case_id", "slot", "channel", name="uq_reminder_deliveries_case_slot_channel"),
        Index("ix_reminder_deliveries_open", "status", "enqueued_at"),
    )
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id"), index=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("resignation_cases.id"))
    slot: Mapped[int] = mapped_column(Integer)
    channel: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(40))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    template: Mapped[str | None] = mapped_column(String(100), nullable=True)
    content_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    provider: Mapped[str | None] = mapped_column(String(32), nullable=True)
    provider_message_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    scheduled_for: Mapped[datetime] = mapped_column(UTCDateTime)
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class HrDigest(Base):
    """One HR user's daily list of overdue letters (at most one per user per Beijing day)."""

    __tablename__ = "hr_digests"
    __table_args__ = (UniqueConstraint("hr_user_id", "day", name="uq_hr_digests_user_day"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id"), index=True)
    hr_user_id: Mapped[str] = mapped_column(ForeignKey("hr_users.id"))
    day: Mapped[date] = mapped_column(Date)
    case_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # sent / dropped (no phone) / failed
    channel: Mapped[str] = mapped_column(String(16), default="sms")
    content_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    provider_message_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
