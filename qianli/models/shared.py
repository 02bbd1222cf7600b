"""Tables shared by several areas: stored documents (PDFs, screenshots, photos) and HR alerts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from qianli.db import Base, UTCDateTime, new_id, utcnow

__all__ = ["Document", "DOCUMENT_KINDS", "HrAlert", "ALERT_KINDS"]

DOCUMENT_KINDS = ("letter_unsigned", "letter_signed", "letter_countersigned", "chat_screenshot",
                  "face_reference", "dossier", "agreement_addendum", "attendance_import", "task_attachment",
                  "termination_certificate", "departure_report", "return_to_work_notice", "dismissal_notice",
                  "absence_attachment", "other")
ALERT_KINDS = ("face_locked", "reminder_failed", "letter_overdue", "case_submitted", "notice_disputed",
               "identity_objection", "hr_login_locked", "dates_recomputed", "attrition_red", "task_overdue",
               "certificate_facts_missing", "webhook_failed", "webhook_endpoint_disabled", "revocation_unconfirmed",
               "wecom_failed",
               "absence_answered", "other")


class Document(Base):
    """A stored file (bytes live in the document store, see qianli.storage); its SHA-256 is kept here."""

    __tablename__ = "documents"
    __table_args__ = (Index("ix_documents_case", "company_id", "case_id"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id"))
    case_id: Mapped[str | None] = mapped_column(ForeignKey("resignation_cases.id"), nullable=True)
    employee_id: Mapped[str | None] = mapped_column(ForeignKey("employees.id"), nullable=True)
    kind: Mapped[str] = mapped_column(String(32))
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(300))
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class HrAlert(Base):
    """Something HR must look at (a locked face check, a failed reminder, an overdue letter)."""

    __tablename__ = "hr_alerts"
    __table_args__ = (Index("ix_hr_alerts_open", "company_id", "resolved_at"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id"))
    kind: Mapped[str] = mapped_column(String(32))
    case_id: Mapped[str | None] = mapped_column(ForeignKey("resignation_cases.id"), nullable=True)
    employee_id: Mapped[str | None] = mapped_column(ForeignKey("employees.id"), nullable=True)
    message: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    resolved_by: Mapped[str | None] = mapped_column(String(120), nullable=True)
