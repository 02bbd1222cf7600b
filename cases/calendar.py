"""Chinese working-day calendar: statutory holidays and swapped working days (调休).

Three sources, in order of precedence:

1. company overrides (HR-added days);
2. published State Council schedules (国务院办公厅关于部分节假日安排的通知): the bundled
   2020-2026 data plus schedules imported later (``qianli calendar import`` / the HR API),
   an imported year replacing the bundled one;
3. for a year without a published schedule, the law itself (cases.statutory): the statutory
   holidays of the 《全国年节及纪念日放假办法》 are holidays with certainty, the art. 6 make-up
   days are estimated on the first weekdays after the holiday, other days follow the weekday.

A day is *certain* when an override or a published schedule names it, when it is a statutory
holiday, or when no unpublished arrangement could reach it (it is more than
``ARRANGEMENT_WINDOW_DAYS`` from every statutory day of a year whose schedule is unpublished).
A result is ``provisional`` exactly when it relied on an uncertain day; a statutory holiday is
never counted as a working day, provisional or not.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Mapping, Sequence

from cases.holidays_data import SCHEDULES
from cases.statutory import (ARRANGEMENT_WINDOW_DAYS, FIRST_YEAR, LAST_YEAR, estimated_makeup_days, statutory_days,
                             statutory_set)

__all__ = ["DayKind", "WorkingDayResult", "ChineseCalendar", "Schedule", "schedule_days"]

# (holidays: [(name, first_iso, last_iso)], swapped working days: [(name, day_iso)])
Schedule = tuple[Sequence[tuple[str, str, str]], Sequence[tuple[str, str]]]


class DayKind(str, enum.Enum):
    WORKING = "working"
    WEEKEND = "weekend"
    HOLIDAY = "holiday"
    SWAPPED_WORKDAY = "swapped_workday"


@dataclass(frozen=True)
class WorkingDayResult:
    date: date
    provisional: bool


def schedule_days(schedule: Schedule) -> dict[date, tuple[DayKind, str]]:
    holidays, swaps = schedule
    days: dict[date, tuple[DayKind, str]] = {}
    for name, first, last in holidays:
        d, end = date.fromisoformat(first), date.fromisoformat(last)
        while d <= end:
            days[d] = (DayKind.HOLIDAY, name)
            d += timedelta(days=1)
    for name, day in swaps:
        days[date.fromisoformat(day)] = (DayKind.SWAPPED_WORKDAY, f"{name}调休上班")
    return days


def _in_law_range(year: int) -> bool:
    return FIRST_YEAR <= year <= LAST_YEAR


class ChineseCalendar:
    """Company view of the calendar (see the module docstring for precedence)."""

    def __init__(self, overrides: Mapping[date, DayKind] | None = None,
                 schedules: Mapping[int, Schedule] | None = None) -> None:
        self._overrides = dict(overrides or {})
        published: dict[int, Schedule] = dict(SCHEDULES)
        published.update(schedules or {})
        self._published_years = frozenset(published)
        self._days: dict[date, tuple[DayKind, str]] = {}
        for year in sorted(published):
            self._days.update(schedule_days(published[year]))

    # -- what is known -------------------------------------------------------------------
    def covers(self, year: int) -> bool:
        """True when the State Council's schedule for ``year`` is published (bundled or imported)."""
        return year in self._published_years

    def is_statutory(self, d: date) -> bool:
        return _in_law_range(d.year) and d in statutory_set(d.year)

    def pending_years(self, d: date) -> list[int]:
        """Unpublished years whose arrangement could still change the kind of ``d``."""
        if d in self._overrides or self.is_statutory(d):
            return []
        out = []
        for year in (d.year - 1, d.year, d.year + 1):
            if self.covers(year):
                continue
            if not _in_law_range(year):
                if year == d.year:
                    out.append(year)
                continue
            if any(abs((d - s).days) <= ARRANGEMENT_WINDOW_DAYS for s in statutory_set(year)):
                out.append(year)
        return out

    def is_known(self, d: date) -> bool:
        """True when no unpublished arrangement could change the kind of ``d``."""
        return not self.pending_years(d)

    # -- the kind of a day ---------------------------------------------------------------
    def _law_kind(self, d: date) -> tuple[DayKind, str] | None:
        if self.covers(d.year) or not _in_law_range(d.year):
            return None
        for s in statutory_days(d.year):
            if s.day == d:
                return DayKind.HOLIDAY, s.name
        for s in estimated_makeup_days(d.year):
            if s.day == d:
                return DayKind.HOLIDAY, f"{s.name}（暂定）"
        return None

    def _kind_reason(self, d: date) -> tuple[DayKind, str]:
        if d in self._overrides:
            k = self._overrides[d]
            return k, "公司设定" + ("休息日" if k == DayKind.HOLIDAY else "工作日")
        if d in self._days:
            return self._days[d]
        law = self._law_kind(d)
        if law is not None:
            return law
        return (DayKind.WEEKEND, "周末") if d.weekday() >= 5 else (DayKind.WORKING, "工作日")

    def kind(self, d: date) -> DayKind:
        return self._kind_reason(d)[0]

    def reason(self, d: date) -> str:
        return self._kind_reason(d)[1]

    def is_working_day(self, d: date) -> bool:
        return self.kind(d) in (DayKind.WORKING, DayKind.SWAPPED_WORKDAY)

    def add_working_days(self, start: date, n: int) -> WorkingDayResult:
        """The n-th working day after ``start`` (``start`` itself is not counted)."""
        if n < 1:
            raise ValueError("n must be >= 1")
        d, counted, provisional = start, 0, False
        while counted < n:
            d += timedelta(days=1)
            provisional |= not self.is_known(d)
            if self.is_working_day(d):
                counted += 1
        return WorkingDayResult(d, provisional)

    def pending_years_between(self, start: date, end: date) -> list[int]:
        """Unpublished years an arrangement of which could change a day in (start, end]."""
        years: set[int] = set()
        d = start
        while d < end:
            d += timedelta(days=1)
            years.update(self.pending_years(d))
        return sorted(years)
