"""Chinese working-day calendar: statutory holidays and swapped working days (调休).

Provisional rule: a day in a year the bundled data does not cover is guessed from the
weekday (Mon-Fri working) unless a company override names it; any result that relied on
such a guess is flagged ``provisional`` - never a silent guess.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Mapping

from cases.holidays_data import SCHEDULES

__all__ = ["DayKind", "WorkingDayResult", "ChineseCalendar"]


class DayKind(str, enum.Enum):
    WORKING = "working"
    WEEKEND = "weekend"
    HOLIDAY = "holiday"
    SWAPPED_WORKDAY = "swapped_workday"


@dataclass(frozen=True)
class WorkingDayResult:
    date: date
    provisional: bool


def _bundled() -> dict[date, tuple[DayKind, str]]:
    days: dict[date, tuple[DayKind, str]] = {}
    for holidays, swaps in SCHEDULES.values():
        for name, first, last in holidays:
            d, end = date.fromisoformat(first), date.fromisoformat(last)
            while d <= end:
                days[d] = (DayKind.HOLIDAY, name)
                d += timedelta(days=1)
        for name, day in swaps:
            days[date.fromisoformat(day)] = (DayKind.SWAPPED_WORKDAY, f"{name}调休上班")
    return days


_BUNDLED = _bundled()


class ChineseCalendar:
    """Company view of the calendar; overrides (HR-added) take precedence over bundled data."""

    def __init__(self, overrides: Mapping[date, DayKind] | None = None) -> None:
        self._overrides = dict(overrides or {})

    def covers(self, year: int) -> bool:
        return year in SCHEDULES

    def is_known(self, d: date) -> bool:
        """True when the kind of ``d`` is not a guess."""
        return d in self._overrides or self.covers(d.year)

    def kind(self, d: date) -> DayKind:
        if d in self._overrides:
            return self._overrides[d]
        if d in _BUNDLED:
            return _BUNDLED[d][0]
        return DayKind.WEEKEND if d.weekday() >= 5 else DayKind.WORKING

    def reason(self, d: date) -> str:
        if d in self._overrides:
            return "公司设定" + ("休息日" if self._overrides[d] == DayKind.HOLIDAY else "工作日")
        if d in _BUNDLED:
            return _BUNDLED[d][1]
        return "周末" if d.weekday() >= 5 else "工作日"

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
