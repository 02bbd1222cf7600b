from datetime import date

from cases.calendar import ChineseCalendar, DayKind

__all__: list[str] = []


def test_2025_spring_festival_and_swaps():
    cal = ChineseCalendar()
    assert cal.kind(date(2025, 1, 28)) == DayKind.HOLIDAY
    assert cal.kind(date(2025, 2, 4)) == DayKind.HOLIDAY
    assert cal.is_working_day(date(2025, 1, 26)) and cal.is_working_day(date(2025, 2, 8))
    assert cal.kind(date(2025, 10, 8)) == DayKind.HOLIDAY and cal.is_working_day(date(2025, 10, 11))
    assert cal.reason(date(2026, 10, 1)) == "国庆节"


def test_add_working_days_across_national_day_2026():
    cal = ChineseCalendar()
    r = cal.add_working_days(date(2026, 10, 3), 3)
    assert r == (r.__class__(date(2026, 10, 10), False))  # 10/8 Thu, 10/9 Fri, 10/10 Sat swapped
    assert cal.add_working_days(date(2026, 10, 3), 1).date == date(2026, 10, 8)


def test_uncovered_year_is_provisional_unless_overridden():
    cal = ChineseCalendar()
    assert not cal.covers(2027)
    assert cal.add_working_days(date(2026, 12, 30), 3).provisional
    assert not cal.add_working_days(date(2026, 12, 1), 3).provisional
    over = ChineseCalendar({date(2027, 1, 1): DayKind.HOLIDAY, date(2026, 12, 31): DayKind.HOLIDAY})
    assert over.add_working_days(date(2026, 12, 30), 1).date == date(2027, 1, 4)
    assert over.add_working_days(date(2026, 12, 30), 1).provisional  # 1/2, 1/3 guessed
