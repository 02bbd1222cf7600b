from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import given, strategies as st

from cases.calendar import ChineseCalendar
from cases.notice import arrival_date_shanghai, compute_notice

__all__: list[str] = []
CAL = ChineseCalendar()


def _n(arrival, probation=False, extend=False, n=3):
    return compute_notice(arrival, probation, calendar=CAL, holidays_extend=extend, letter_due_working_days=n)


def test_seed_case_national_day_2026():
    r = _n(date(2026, 10, 2))
    assert r.earliest_last_day == date(2026, 11, 1)
    assert r.letter_due_date == date(2026, 10, 10)
    assert not r.provisional


def test_holidays_extend_adds_statutory_days_only():
    """The reading implemented: statutory holidays extend the period, not the whole block.

    National Day 2026 is the block 1-7 October, of which 1-3 October are statutory: the period
    grows by 3 days (not 7), and the weekend and bridge days inside the block count normally."""
    r = _n(date(2026, 9, 30), extend=True)
    assert r.earliest_last_day == date(2026, 10, 30) + timedelta(days=3)
    assert r.extension_days == (date(2026, 10, 1), date(2026, 10, 2), date(2026, 10, 3))
    assert "3天法定节假日顺延" in r.explanation_zh
    # Spring Festival 2026 (block 15-23 February): 4 statutory days (eve + first three days)
    assert _n(date(2026, 2, 1), extend=True).earliest_last_day == date(2026, 3, 3) + timedelta(days=4)
    # no statutory day in the period: no extension
    assert _n(date(2026, 3, 1), extend=True).earliest_last_day == date(2026, 3, 31)
    # probation, 3 days: arrival 30 Apr 2026, 1-2 May are statutory (3-5 May are not)
    assert _n(date(2026, 4, 30), probation=True, extend=True).earliest_last_day == date(2026, 5, 5)


def test_holidays_extend_never_provisional_in_unpublished_year():
    """Statutory days follow from the law alone: the extended last day needs no State Council schedule."""
    r = _n(date(2027, 9, 20), extend=True)
    assert r.earliest_last_day == date(2027, 10, 20) + timedelta(days=3)  # 中秋 15 Sep is before the period
    assert r.extension_days == (date(2027, 10, 1), date(2027, 10, 2), date(2027, 10, 3))


@pytest.mark.parametrize("arrival,after", [
    (date(2026, 12, 29), date(2027, 1, 1)),
    (date(2027, 2, 3), date(2027, 2, 8)),
    (date(2027, 9, 29), date(2027, 10, 3)),
])
def test_unpublished_2027_statutory_days_never_working(arrival, after):
    r = _n(arrival)
    assert r.provisional and "暂定" in r.explanation_zh and r.pending_years == (2027,)
    assert r.letter_due_date > after
    assert r.earliest_last_day == arrival + timedelta(days=30)


def test_provisional_only_when_an_arrangement_could_change_it():
    # March 2027: more than two weeks from any statutory day - final although 2027 is unpublished
    r = _n(date(2027, 3, 10))
    assert not r.provisional and r.letter_due_date == date(2027, 3, 15) and "暂定" not in r.explanation_zh
    # August 2027: final
    assert not _n(date(2027, 8, 10)).provisional


def test_probation_month_end_leap_year():
    assert _n(date(2026, 1, 31), probation=True).earliest_last_day == date(2026, 2, 3)
    assert _n(date(2026, 1, 31)).earliest_last_day == date(2026, 3, 2)
    assert _n(date(2024, 1, 30)).earliest_last_day == date(2024, 2, 29)


def test_uncovered_year_provisional():
    r = _n(date(2026, 12, 29))
    assert r.provisional and "暂定" in r.explanation_zh
    assert r.letter_due_date == date(2027, 1, 4)  # 30, 31 Dec, then 1 Jan (statutory), 2-3 weekend, Mon 4 Jan


def test_shanghai_date():
    assert arrival_date_shanghai(datetime(2026, 9, 30, 16, 30, tzinfo=timezone.utc)) == date(2026, 10, 1)


@given(st.dates(date(2020, 1, 1), date(2026, 11, 30)), st.booleans())
def test_properties(arrival, probation):
    r = _n(arrival, probation)
    assert (r.earliest_last_day - arrival).days == (3 if probation else 30)
    assert r.letter_due_date > arrival and CAL.is_working_day(r.letter_due_date)
