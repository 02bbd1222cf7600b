"""Statutory holidays from the law (《全国年节及纪念日放假办法》), for any year.

The 放假办法 fixes which days are holidays for all citizens; only the State Council's yearly
arrangement (which working days carry the art. 6 make-up days, and which weekend days are
swapped into working days, 调休) is unknown ahead of time. This module computes the fixed part
with a lunar-calendar library (lunar-python: lunar months and the 24 solar terms) and a
best estimate of the make-up days, plus the "arrangement window": the days an arrangement
could still change.

Versions of the law (the version in force on 1 January of a year applies to that year):

* 2008-2013 (2007 revision): Spring Festival = lunar New Year's Eve + 1st + 2nd day; Labour Day 1 day.
* 2014-2024 (2013 revision): Spring Festival = 1st-3rd day of the first lunar month; Labour Day 1 day.
* 2025 on (2024 revision): Spring Festival = Eve + 1st-3rd day (4 days); Labour Day 1-2 May.

New Year's Day (1 day), Qingming (the solar term, 1 day), Dragon Boat (5/5 lunar, 1 day),
Mid-Autumn (8/15 lunar, 1 day) and National Day (1-3 October) are the same in all three.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

from lunar_python import Lunar

__all__ = ["StatutoryDay", "statutory_days", "statutory_set", "estimated_makeup_days", "ARRANGEMENT_WINDOW_DAYS",
           "FIRST_YEAR", "LAST_YEAR", "law_version", "statutory_count"]

FIRST_YEAR = 2008
LAST_YEAR = 2099  # lunar-python's tables are exact far beyond; the product has no use past this
# An arrangement day (a bridge day off or a swapped working day) has been at most 10 days away
# from a statutory day in every bundled year (2020-2026; tests/cases/test_statutory.py checks
# it); a window of 14 days leaves a margin of a full extra week.
ARRANGEMENT_WINDOW_DAYS = 14


@dataclass(frozen=True)
class StatutoryDay:
    day: date
    name: str  # 元旦, 春节, 清明节, 劳动节, 端午节, 中秋节, 国庆节


def law_version(year: int) -> str:
    if year >= 2025:
        return "2024"
    if year >= 2014:
        return "2013"
    return "2007"


def statutory_count(year: int) -> int:
    return 13 if year >= 2025 else 11


def _solar(lunar: Lunar) -> date:
    s = lunar.getSolar()
    return date(s.getYear(), s.getMonth(), s.getDay())


@lru_cache(maxsize=256)
def statutory_days(year: int) -> tuple[StatutoryDay, ...]:
    """Every day of ``year`` that the law makes a holiday for all citizens, in date order."""
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise ValueError(f"year {year} outside {FIRST_YEAR}-{LAST_YEAR}")
    version = law_version(year)
    days: list[StatutoryDay] = [StatutoryDay(date(year, 1, 1), "元旦")]
    new_year = _solar(Lunar.fromYmd(year, 1, 1))
    spring = [new_year + timedelta(days=i) for i in range(3)]
    eve = new_year - timedelta(days=1)
    if version == "2024":
        spring = [eve, *spring]
    elif version == "2007":
        spring = [eve, *spring[:2]]
    days += [StatutoryDay(d, "春节") for d in spring]
    qingming = Lunar.fromYmd(year, 1, 1).getJieQiTable()["清明"]
    days.append(StatutoryDay(date(qingming.getYear(), qingming.getMonth(), qingming.getDay()), "清明节"))
    days += [StatutoryDay(date(year, 5, i), "劳动节") for i in ((1, 2) if version == "2024" else (1,))]
    days.append(StatutoryDay(_solar(Lunar.fromYmd(year, 5, 5)), "端午节"))
    days.append(StatutoryDay(_solar(Lunar.fromYmd(year, 8, 15)), "中秋节"))
    days += [StatutoryDay(date(year, 10, i), "国庆节") for i in (1, 2, 3)]
    days.sort(key=lambda s: s.day)
    # Every day falls in its own Gregorian year (the eve is never earlier than 20 January).
    assert all(s.day.year == year for s in days), year
    return tuple(days)


@lru_cache(maxsize=256)
def statutory_set(year: int) -> frozenset[date]:
    return frozenset(s.day for s in statutory_days(year))


@lru_cache(maxsize=256)
def estimated_makeup_days(year: int) -> tuple[StatutoryDay, ...]:
    """Art. 6: a statutory day on a Saturday or Sunday is made up on a working day.

    Which working day is the State Council's choice; every year since the rule exists it has
    been the first weekday(s) after the holiday, which is the estimate returned here (always
    flagged provisional by the calendar until the year's arrangement is known).
    """
    stat = statutory_set(year)
    taken: set[date] = set()
    out: list[StatutoryDay] = []
    for s in statutory_days(year):
        if s.day.weekday() < 5:
            continue
        d = s.day
        while d in stat or d.weekday() >= 5 or d in taken:
            d += timedelta(days=1)
        taken.add(d)
        out.append(StatutoryDay(d, f"{s.name}补假"))
    return tuple(sorted(out, key=lambda s: s.day))
