"""Leaving without notice (擅自离职): what a case of departure type ``absconding`` keeps besides the
case row and its evidence chain: the confirmed absence and the notices (one row per case), the
postal deliveries HR records as 送达 evidence, and the union notifications (art. 43).

The evidence chain stays the record of what happened; these tables hold the current facts the
rules read (the deadline, whether the union was notified) and the console lists.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from qianli.db import Base, UTCDateTime, new_id, utcnow

__all__ = ["AbsenceCase", "PostalDelivery", "UnionNotification"]


class AbsenceCase(Base):
    """One per absconding case: the absence HR confirmed and the state of the two notices."""

    __tablename__ = "absence_cases"
    case_id: Mapped[str] = mapped_column(ForeignKey("resignation_cases.id"), primary_key=True)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id"), index=True)
    employee_id: Mapped[str] = mapped_column(ForeignKey("employees.id"), index=True)
    absent_days: Mapped[list[str]] = mapped_column(JSON, default=list)  # ISO dates, Chinese working days
    last_seen_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    risk_id: Mapped[str | None] = mapped_column(String(32), nullable=True)  # the risk-list entry confirmed from
    note: Mapped[str] = mapped_column(Text, default="")
    confirmed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    confirmed_by: Mapped[str] = mapped_column(String(120))
    # the return-to-work notice (返岗通知书)
    handbook_clause: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # as cited in the notice
    return_notice_document_id: Mapped[str | None] = mapped_column(ForeignKey("documents.id"), nullable=True)
    return_notice_served_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    deadline: Mapped[date | None] = mapped_column(Date, nullable=True)  # ends 24:00 Beijing time
    deadline_working_days: Mapped[int | None] = mapped_column(nullable=True)
    deadline_provisional: Mapped[bool] = mapped_column(Boolean, default=False)
    return_notice_read_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # the employee's latest answer and a resignation it turned into
    answer: Mapped[str | None] = mapped_column(String(16), nullable=True)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    resignation_case_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # the dismissal (art. 39(2))
    dismissal_document_id: Mapped[str | None] = mapped_column(ForeignKey("documents.id"), nullable=True)
    dismissed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    termination_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    dismissal_read_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class PostalDelivery(Base):
    """A notice sent by post to the employee's agreed address (carrier and tracking number), and what
    became of it: ``sent``, then ``delivered`` (签收) or ``returned`` (退回)."""

    __tablename__ = "postal_deliveries"
    __table_args__ = (Index("ix_postal_deliveries_case", "company_id", "case_id"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id"))
    case_id: Mapped[str] = mapped_column(ForeignKey("resignation_cases.id"))
    notice: Mapped[str] = mapped_column(String(16))  # return_to_work | dismissal
    document_id: Mapped[str | None] = mapped_column(ForeignKey("documents.id"), nullable=True)
    carrier: Mapped[str] = mapped_column(String(64))
    tracking_no: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(Text)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), default="sent")
    status_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    status_note: Mapped[str] = mapped_column(Text, default="")
    recorded_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class UnionNotification(Base):
    """The union told of the intended dismissal before it (Labor Contract Law art. 43): who, when,
    how, and what they answered."""

    __tablename__ = "union_notifications"
    __table_args__ = (Index("ix_union_notifications_case", "company_id", "case_id"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id"))
    case_id: Mapped[str] = mapped_column(ForeignKey("resignation_cases.id"))
    union_name: Mapped[str] = mapped_column(String(200))
    contact_name: Mapped[str] = mapped_column(String(100))
    notified_at: Mapped[datetime] = mapped_column(UTCDateTime)
    method: Mapped[str] = mapped_column(String(16))
    response: Mapped[str] = mapped_column(Text, default="")
    objection: Mapped[bool] = mapped_column(Boolean, default=False)
    responded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    recorded_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
