"""Core tables: companies (tenants), employees, HR users, resignation cases, the evidence log.

Every row carries ``company_id``; services always filter by it. Phone and national ID numbers are
stored encrypted (``*_enc``, see qianli.crypto) with keyed hashes (``*_hash``) for lookups.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import DDL, JSON, Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint, event, text
from sqlalchemy.orm import Mapped, mapped_column

from cases.reasons import REASON_CATEGORIES
from qianli.db import Base, UTCDateTime, new_id, utcnow

__all__ = ["Company", "Employee", "HrUser", "HR_ROLES", "ResignationCase", "EvidenceEntry", "HolidayOverride", "RefreshToken",
           "REASON_CATEGORIES", "CASE_SOURCES"]

HR_ROLES = ("hr_specialist", "hr_manager", "dept_head", "auditor")
CASE_SOURCES = ("miniprogram", "instant_message", "hr_confirmation")


class Company(Base):
    __tablename__ = "companies"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # Company-level policy: letter_due_working_days, holidays_extend_notice, approval_chain, letter_template.
    policy: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Employee(Base):
    __tablename__ = "employees"
    __table_args__ = (
        UniqueConstraint("company_id", "employee_no"),
        UniqueConstraint("company_id", "wechat_openid", name="uq_employees_company_openid"),
        Index("ix_employees_phone_hash", "phone_hash"),
        # with id: a department's employees from the index alone (joined to their overdue cases by hash)
        Index("ix_employees_company_department", "company_id", "department", "id"),
        # listCases ?q= (name or employee number contains): PostgreSQL GIN trigram indexes (LIKE '%...%'); on
        # SQLite empty partial indexes (WHERE 0) that only keep one schema (10,000 rows scan fast there).
        Index("ix_employees_name_trgm", "name", postgresql_using="gin", postgresql_ops={"name": "gin_trgm_ops"},
              sqlite_where=text("0")),
        Index("ix_employees_no_trgm", "employee_no", postgresql_using="gin",
              postgresql_ops={"employee_no": "gin_trgm_ops"}, sqlite_where=text("0")),
    )
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id"), index=True)
    employee_no: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(100))
    department: Mapped[str] = mapped_column(String(100), default="")
    position: Mapped[str] = mapped_column(String(100), default="")
    hire_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    probation_end: Mapped[date | None] = mapped_column(Date, nullable=True)
    contract_term: Mapped[str] = mapped_column(String(100), default="")
    phone_enc: Mapped[str] = mapped_column(Text)
    phone_hash: Mapped[str] = mapped_column(String(64))
    national_id_enc: Mapped[str | None] = mapped_column(Text, nullable=True)
    national_id_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    wechat_openid: Mapped[str | None] = mapped_column(String(128), nullable=True)
    wecom_userid: Mapped[str | None] = mapped_column(String(64), nullable=True)  # 企业微信 member, disabled at revocation
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Bumped when the employee's sessions must end at once (an HR unbind): access tokens carry the
    # epoch they were issued in and are refused once it moved on.
    session_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class HrUser(Base):
    __tablename__ = "hr_users"
    __table_args__ = (UniqueConstraint("company_id", "username"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id"), index=True)
    username: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(32))
    department: Mapped[str | None] = mapped_column(String(100), nullable=True)
    phone_enc: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Offboarding duties besides the HR role (cases.offboarding.DUTY_ROLES: it, admin, finance): the
    # tasks a template gives to that role are this user's too ("my tasks", reminders).
    task_roles: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    wecom_userid: Mapped[str | None] = mapped_column(String(64), nullable=True)  # 企业微信 member (task messages)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ResignationCase(Base):
    __tablename__ = "resignation_cases"
    __table_args__ = (
        Index("ix_cases_company_state", "company_id", "state"),
        # The HR queue (listCases): newest first, and the few cases still waiting for their letter
        # (the overdue ones come first); arrival-date filters.
        Index("ix_cases_company_created", "company_id", "created_at", "id"),
        # employee_id last: the overdue count of a department (or a department head) reads only this index
        Index("ix_cases_awaiting_letter", "company_id", "created_at", "id", "letter_due_date", "employee_id",
              postgresql_where=text("state = 'awaiting_letter' AND letter_submitted_at IS NULL"),
              sqlite_where=text("state = 'awaiting_letter' AND letter_submitted_at IS NULL")),
        Index("ix_cases_company_arrival", "company_id", "arrival_date"),
        # an employee's cases (listMyCases) and the department / search filters of listCases, which start
        # from the matching employees and count their cases from this index alone
        Index("ix_cases_employee_company", "employee_id", "company_id"),
    )
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id"), index=True)
    employee_id: Mapped[str] = mapped_column(ForeignKey("employees.id"))
    state: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(32))
    # cases.departure.DepartureType: resignation (art. 37), absconding (擅自离职), agreement (art. 36).
    departure_type: Mapped[str] = mapped_column(String(20), default="resignation", server_default="resignation")
    notice_arrived_at: Mapped[datetime] = mapped_column(UTCDateTime)
    arrival_date: Mapped[date] = mapped_column(Date)  # Asia/Shanghai calendar date of arrival
    probation: Mapped[bool] = mapped_column(Boolean, default=False)
    reason_category: Mapped[str | None] = mapped_column(String(32), nullable=True)
    reason_text: Mapped[str] = mapped_column(Text, default="")
    requested_last_day: Mapped[date | None] = mapped_column(Date, nullable=True)
    earliest_lawful_last_day: Mapped[date] = mapped_column(Date)
    agreed_last_day: Mapped[date | None] = mapped_column(Date, nullable=True)
    handover_items: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    letter_due_date: Mapped[date] = mapped_column(Date)
    dates_provisional: Mapped[bool] = mapped_column(Boolean, default=False)
    form_submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    letter_submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}

    @property
    def dates_note(self) -> str | None:
        """zh-CN caveat for a provisional letter due date (None when the dates are final)."""
        from cases.notice import provisional_note

        return provisional_note(self.letter_due_date) if self.dates_provisional else None


class EvidenceEntry(Base):
    """Append-only; on PostgreSQL a trigger refuses UPDATE and DELETE (see the migration)."""

    __tablename__ = "evidence_entries"
    __table_args__ = (UniqueConstraint("case_id", "seq"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id"), index=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("resignation_cases.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_digest: Mapped[str] = mapped_column(String(64))
    digest: Mapped[str] = mapped_column(String(64))


class HolidayOverride(Base):
    """HR's per-company corrections to the bundled holiday calendar."""

    __tablename__ = "holiday_overrides"
    __table_args__ = (UniqueConstraint("company_id", "day"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id"), index=True)
    day: Mapped[date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(16))  # "holiday" or "workday"
    note: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RefreshToken(Base):
    """Employee refresh tokens, stored hashed; rotation with reuse detection per family."""

    __tablename__ = "refresh_tokens"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id"), index=True)
    employee_id: Mapped[str] = mapped_column(ForeignKey("employees.id"), index=True)
    family_id: Mapped[str] = mapped_column(String(32), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    openid: Mapped[str | None] = mapped_column(String(128), nullable=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# create_all (tests, development) builds the employees' trigram indexes from the model: the extension comes first.
event.listen(Employee.__table__, "before_create",
             DDL("CREATE EXTENSION IF NOT EXISTS pg_trgm").execute_if(dialect="postgresql"))
