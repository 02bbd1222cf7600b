from datetime import date, datetime, timedelta, timezone

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


def test_holidays_extend_adds_holiday_days():
    assert _n(date(2026, 9, 30), extend=True).earliest_last_day == date(2026, 10, 30) + timedelta(days=7)


def test_probation_month_end_leap_year():
    assert _n(date(2026, 1, 31), probation=True).earliest_last_day == date(2026, 2, 3)
    assert _n(date(2026, 1, 31)).earliest_last_day == date(2026, 3, 2)
    assert _n(date(2024, 1, 30)).earliest_last_day == date(2024, 2, 29)


def test_uncovered_year_provisional():
    r = _n(date(2026, 12, 29))
    assert r.provisional and "暂定" in r.explanation_zh


def test_shanghai_date():
    assert arrival_date_shanghai(datetime(2026, 9, 30, 16, 30, tzinfo=timezone.utc)) == date(2026, 10, 1)


@given(st.dates(date(2020, 1, 1), date(2026, 11, 30)), st.booleans())
def test_properties(arrival, probation):
    r = _n(arrival, probation)
    assert (r.earliest_last_day - arrival).days == (3 if probation else 30)
    assert r.letter_due_date > arrival and CAL.is_working_day(r.letter_due_date)
