"""Offboarding tables: per-company template versions, the tasks a settled departure generates, and
every reminder or escalation sent to a task's owner.

Template versions are never changed once written (a new edit is a new version); a task records the
version that made it. Tasks are never deleted: a withdrawal cancels them with a reason. The unique
(case, item_key) pair makes generating a case's tasks idempotent; the unique (task, recipient, day,
kind) reminder row makes a retried or duplicated reminder job send at most once.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from qianli.db import Base, UTCDateTime, new_id, utcnow

__all__ = ["OffboardingTemplate", "OffboardingTask", "TaskReminder", "TASK_REMINDER_KINDS", "TASK_REMINDER_STATUSES"]

TASK_REMINDER_KINDS = ("reminder", "escalation")
TASK_REMINDER_STATUSES = ("pending", "sent", "failed", "no_channel", "dropped")


class OffboardingTemplate(Base):
    """One version of a company's template for one departure type (version 1, 2, ...; the product's
    default is version 0 and has no row)."""

    __tablename__ = "offboarding_templates"
    __table_args__ = (UniqueConstraint("company_id", "departure_type", "version",
                                       name="uq_offboarding_templates_company_type_version"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id"), index=True)
    departure_type: Mapped[str] = mapped_column(String(32))
    version: Mapped[int] = mapped_column(Integer)
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    comment: Mapped[str] = mapped_column(String(500), default="")
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class OffboardingTask(Base):
    __tablename__ = "offboarding_tasks"
    __table_args__ = (
        UniqueConstraint("case_id", "item_key", name="uq_offboarding_tasks_case_item"),
        Index("ix_offboarding_tasks_company_status", "company_id", "status", "due_date"),
    )
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id"))
    case_id: Mapped[str] = mapped_column(ForeignKey("resignation_cases.id"), index=True)
    employee_id: Mapped[str] = mapped_column(ForeignKey("employees.id"))
    item_key: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(16))  # template / employee (the form's handover items)
    departure_type: Mapped[str] = mapped_column(String(32))
    template_version: Mapped[int] = mapped_column(Integer)
    group: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    owner_role: Mapped[str | None] = mapped_column(String(16), nullable=True)
    owner_user_id: Mapped[str | None] = mapped_column(ForeignKey("hr_users.id"), nullable=True, index=True)
    owner_department: Mapped[str | None] = mapped_column(String(100), nullable=True)
    last_day: Mapped[date] = mapped_column(Date)
    offset_days: Mapped[int] = mapped_column(Integer, default=0)
    day_kind: Mapped[str] = mapped_column(String(16), default="working")
    due_date: Mapped[date] = mapped_column(Date)
    due_provisional: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="open")
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    completed_by: Mapped[str | None] = mapped_column(String(120), nullable=True)
    completed_by_name: Mapped[str | None] = mapped_column(String(100), nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")
    document_id: Mapped[str | None] = mapped_column(ForeignKey("documents.id"), nullable=True)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    cancelled_by: Mapped[str | None] = mapped_column(String(120), nullable=True)
    cancel_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class TaskReminder(Base):
    """One message to one owner about one task on one Beijing day (a reminder, or the overdue
    escalation to HR); the row is taken before anything is sent."""

    __tablename__ = "offboarding_task_reminders"
    __table_args__ = (
        UniqueConstraint("task_id", "recipient_id", "day", "kind", name="uq_offboarding_task_reminders_once"),
        Index("ix_offboarding_task_reminders_status", "status", "created_at"),
    )
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id"))
    case_id: Mapped[str] = mapped_column(ForeignKey("resignation_cases.id"), index=True)
    task_id: Mapped[str] = mapped_column(ForeignKey("offboarding_tasks.id"), index=True)
    recipient_id: Mapped[str] = mapped_column(ForeignKey("hr_users.id"))
    day: Mapped[date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str | None] = mapped_column(String(16), nullable=True)  # wecom / sms
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    content_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    provider_message_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
