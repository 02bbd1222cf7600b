"""Statutory holidays from the law vs. the bundled State Council schedules, and the art. 6 estimate."""

from datetime import date, timedelta

import pytest
from hypothesis import given, strategies as st

from cases.calendar import ChineseCalendar, DayKind, schedule_days
from cases.holidays_data import SCHEDULES
from cases.statutory import (ARRANGEMENT_WINDOW_DAYS, estimated_makeup_days, statutory_count, statutory_days,
                             statutory_set)

__all__: list[str] = []


def test_2027_from_the_law():
    days = {(s.day, s.name) for s in statutory_days(2027)}
    assert days == {
        (date(2027, 1, 1), "元旦"),
        # lunar New Year 2027 is 6 February; the eve (腊月廿九, a short month) is 5 February
        (date(2027, 2, 5), "春节"), (date(2027, 2, 6), "春节"), (date(2027, 2, 7), "春节"), (date(2027, 2, 8), "春节"),
        (date(2027, 4, 5), "清明节"), (date(2027, 5, 1), "劳动节"), (date(2027, 5, 2), "劳动节"),
        (date(2027, 6, 9), "端午节"), (date(2027, 9, 15), "中秋节"),
        (date(2027, 10, 1), "国庆节"), (date(2027, 10, 2), "国庆节"), (date(2027, 10, 3), "国庆节"),
    }


def test_law_versions_counts():
    assert [len(statutory_days(y)) for y in (2013, 2014, 2024, 2025, 2040)] == [11, 11, 11, 13, 13]
    # 2007 revision: eve + first two days; 2013 revision: first three days
    assert {s.day for s in statutory_days(2013) if s.name == "春节"} == {date(2013, 2, 9), date(2013, 2, 10), date(2013, 2, 11)}
    assert {s.day for s in statutory_days(2014) if s.name == "春节"} == {date(2014, 1, 31), date(2014, 2, 1), date(2014, 2, 2)}
    with pytest.raises(ValueError):
        statutory_days(2007)


@pytest.mark.parametrize("year", sorted(SCHEDULES))
def test_bundled_schedules_contain_every_statutory_day(year):
    """Cross-check of the bundled data with the law: every statutory day is inside a holiday block."""
    published = schedule_days(SCHEDULES[year])
    for s in statutory_days(year):
        assert published.get(s.day, (None,))[0] == DayKind.HOLIDAY, (year, s)
    assert len(statutory_days(year)) == statutory_count(year)  # 2020: 中秋 = 国庆 1 October, one day


@pytest.mark.parametrize("year", sorted(SCHEDULES))
def test_bundled_arrangement_days_lie_in_the_window(year):
    """Every day the State Council moved (a weekday off that is not statutory, a swapped working
    day) is within ARRANGEMENT_WINDOW_DAYS of a statutory day: outside it, nothing is a guess."""
    stat = statutory_set(year - 1) | statutory_set(year) | statutory_set(year + 1)
    for d, (kind, _) in schedule_days(SCHEDULES[year]).items():
        moved = kind == DayKind.SWAPPED_WORKDAY or (d.weekday() < 5 and d not in stat)
        if moved:
            assert min(abs((d - s).days) for s in stat) <= ARRANGEMENT_WINDOW_DAYS - 4, (year, d)


@pytest.mark.parametrize("year", [y for y in sorted(SCHEDULES) if y != 2020])  # 2020: COVID extension
def test_bundled_schedules_balance_art6(year):
    """Weekdays off minus swapped working days = the statutory count (make-up days included)."""
    days = schedule_days(SCHEDULES[year])
    off = sum(1 for d, (k, _) in days.items() if k == DayKind.HOLIDAY and d.weekday() < 5)
    swapped = sum(1 for k, _ in days.values() if k == DayKind.SWAPPED_WORKDAY)
    assert off - swapped == statutory_count(year)


@pytest.mark.parametrize("year", sorted(SCHEDULES))
def test_makeup_estimate_is_a_published_day_off(year):
    """The art. 6 estimate (first weekday after the holiday) was a day off in every bundled year."""
    published = schedule_days(SCHEDULES[year])
    for s in estimated_makeup_days(year):
        assert published.get(s.day, (None,))[0] == DayKind.HOLIDAY, (year, s)


def test_makeup_count_follows_art6():
    for year in range(2025, 2035):
        weekend = sum(1 for s in statutory_days(year) if s.day.weekday() >= 5)
        made_up = estimated_makeup_days(year)
        assert len(made_up) == weekend
        assert all(m.day.weekday() < 5 and m.day not in statutory_set(year) for m in made_up)


def test_2027_spring_festival_makeup():
    # 6 and 7 February 2027 are a Saturday and Sunday: two make-up days, estimated on 9 and 10 February
    assert [m.day for m in estimated_makeup_days(2027)] == [date(2027, 2, 9), date(2027, 2, 10), date(2027, 5, 3), date(2027, 5, 4),
                                                            date(2027, 10, 4), date(2027, 10, 5)]


@given(st.dates(date(2027, 1, 1), date(2060, 12, 31)))
def test_statutory_day_never_a_working_day_in_unpublished_year(d):
    cal = ChineseCalendar()
    if d in statutory_set(d.year):
        assert not cal.is_working_day(d) and cal.is_known(d)


@given(st.dates(date(2027, 1, 1), date(2060, 12, 1)), st.integers(1, 10))
def test_provisional_only_near_a_holiday(start, n):
    """A due date computed far from any statutory day of an unpublished year is final."""
    cal = ChineseCalendar()
    r = cal.add_working_days(start, n)
    near = any(abs((start + timedelta(days=i) - s).days) <= ARRANGEMENT_WINDOW_DAYS
               for i in range(1, (r.date - start).days + 1)
               for y in {start.year - 1, start.year, start.year + 1, r.date.year + 1}
               for s in statutory_set(y))
    assert r.provisional == near
    assert not any(cal.is_statutory(start + timedelta(days=i)) and cal.is_working_day(start + timedelta(days=i))
                   for i in range(1, (r.date - start).days + 1))
