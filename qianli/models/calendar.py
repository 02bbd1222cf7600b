"""Published State Council holiday schedules entered after release (bundled years live in cases.holidays_data)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from qianli.db import Base, UTCDateTime, new_id, utcnow

__all__ = ["HolidaySchedule"]


class HolidaySchedule(Base):
    """One year's arrangement: holiday blocks and swapped working days (调休).

    ``company_id`` NULL: entered by the operator for all companies (``qianli calendar import``);
    otherwise entered by that company's HR and applying to it only (it wins over the global one).
    Re-importing a year replaces the row; every open case that relied on a guess is recomputed.
    """

    __tablename__ = "holiday_schedules"
    __table_args__ = (Index("ix_holiday_schedules_company_year", "company_id", "year"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    company_id: Mapped[str | None] = mapped_column(ForeignKey("companies.id"), nullable=True)
    year: Mapped[int] = mapped_column(Integer)
    holidays: Mapped[list[Any]] = mapped_column(JSON)  # [[name, first_iso, last_iso], ...]
    workdays: Mapped[list[Any]] = mapped_column(JSON)  # [[name, day_iso], ...]
    source: Mapped[str] = mapped_column(String(300))
    sha256: Mapped[str] = mapped_column(String(64))
    imported_by: Mapped[str] = mapped_column(String(120))
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
