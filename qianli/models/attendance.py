"""Attendance (clock-in days and approved leave) and the early-warning episodes built on it.

An :class:`AttendanceImport` is one file HR imported (its bytes kept in the document store, its
SHA-256 here) or one WeCom check-in pull. :class:`AttendanceRecord` is one employee's day (unique
per employee and day; a later import that adds a clock-in or widens the times updates it and
becomes its source). :class:`AttendanceLeave` is one approved leave (unique per employee, type and
period, so re-importing the same file adds nothing). :class:`AttritionEpisode` is one gap or drop
the early warning found for an employee: notified once, dismissable as a false alarm.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from qianli.db import Base, UTCDateTime, new_id, utcnow

__all__ = ["AttendanceImport", "AttendanceCoverage", "AttendanceRecord", "AttendanceLeave", "AttritionEpisode", "AttendanceRun",
           "ATTENDANCE_SOURCES"]

ATTENDANCE_SOURCES = ("file", "wecom")


class AttendanceImport(Base):
    __tablename__ = "attendance_imports"
    __table_args__ = (Index("ix_attendance_imports_company", "company_id", "created_at"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id"))
    source: Mapped[str] = mapped_column(String(16))  # ATTENDANCE_SOURCES
    filename: Mapped[str] = mapped_column(String(200), default="")
    format: Mapped[str] = mapped_column(String(16), default="")  # csv / xlsx / wecom
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer, default=0)
    document_id: Mapped[str | None] = mapped_column(ForeignKey("documents.id"), nullable=True)
    # The days the data covers (the early warning makes no claim about other days).
    first_day: Mapped[date | None] = mapped_column(Date, nullable=True)
    last_day: Mapped[date | None] = mapped_column(Date, nullable=True)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    actor: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AttendanceCoverage(Base):
    """Days an attendance source speaks for: ``employee_id`` None for a file that lists the whole
    company's clock-ins for its period, else one employee's (a file imported for its own employees
    only, a WeCom pull). Adjacent ranges of the same scope are merged, so a daily pull keeps one row."""

    __tablename__ = "attendance_coverage"
    __table_args__ = (Index("ix_attendance_coverage_company", "company_id", "employee_id", "last_day"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id"))
    employee_id: Mapped[str | None] = mapped_column(ForeignKey("employees.id"), nullable=True)
    first_day: Mapped[date] = mapped_column(Date)
    last_day: Mapped[date] = mapped_column(Date)
    import_id: Mapped[str] = mapped_column(ForeignKey("attendance_imports.id"))  # the latest that extended it


class AttendanceRecord(Base):
    __tablename__ = "attendance_records"
    __table_args__ = (UniqueConstraint("employee_id", "day", name="uq_attendance_records_employee_day"),
                      Index("ix_attendance_records_company_day", "company_id", "day"))
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id"))
    employee_id: Mapped[str] = mapped_column(ForeignKey("employees.id"))
    day: Mapped[date] = mapped_column(Date)  # Asia/Shanghai calendar day
    present: Mapped[bool] = mapped_column(Boolean, default=False)  # at least one clock-in that day
    first_clock_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_clock_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    result: Mapped[str] = mapped_column(String(100), default="")  # the export's own words (打卡结果)
    source: Mapped[str] = mapped_column(String(16))
    import_id: Mapped[str] = mapped_column(ForeignKey("attendance_imports.id"))
    source_sha256: Mapped[str] = mapped_column(String(64))
    source_row: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class AttendanceLeave(Base):
    __tablename__ = "attendance_leaves"
    __table_args__ = (UniqueConstraint("employee_id", "leave_type", "starts_at", "ends_at",
                                       name="uq_attendance_leaves_period"),
                      Index("ix_attendance_leaves_company_days", "company_id", "first_day", "last_day"))
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id"))
    employee_id: Mapped[str] = mapped_column(ForeignKey("employees.id"))
    leave_type: Mapped[str] = mapped_column(String(50))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    first_day: Mapped[date] = mapped_column(Date)
    last_day: Mapped[date] = mapped_column(Date)
    source: Mapped[str] = mapped_column(String(16))
    import_id: Mapped[str] = mapped_column(ForeignKey("attendance_imports.id"))
    source_sha256: Mapped[str] = mapped_column(String(64))
    source_row: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AttritionEpisode(Base):
    """One gap or drop found for an employee (``episode``: ``gap:<first day>`` / ``drop:<first day>``)."""

    __tablename__ = "attrition_episodes"
    __table_args__ = (UniqueConstraint("employee_id", "episode", name="uq_attrition_episodes_employee_episode"),
                      Index("ix_attrition_episodes_company", "company_id", "last_seen_on"))
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id"))
    employee_id: Mapped[str] = mapped_column(ForeignKey("employees.id"))
    episode: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(16))  # cases.attendance.RiskKind
    level: Mapped[str] = mapped_column(String(16))  # the highest level seen
    first_seen_on: Mapped[date] = mapped_column(Date)
    last_seen_on: Mapped[date] = mapped_column(Date)
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    window_last: Mapped[date | None] = mapped_column(Date, nullable=True)  # a drop's recent window end
    notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    notified: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # who, by which channel, outcome
    dismissed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    dismissed_by: Mapped[str | None] = mapped_column(String(120), nullable=True)
    dismissal_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AttendanceRun(Base):
    """The daily early-warning run of one company for one day (at most one)."""

    __tablename__ = "attendance_runs"
    __table_args__ = (UniqueConstraint("company_id", "day", name="uq_attendance_runs_company_day"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id"))
    day: Mapped[date] = mapped_column(Date)
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
