from datetime import date, datetime, timezone

import time_machine

from cases.clock import SHANGHAI, aware, beijing_date, beijing_day_start, beijing_text, beijing_today, utcnow


def test_beijing_date_crosses_midnight_eight_hours_early():
    assert beijing_date(datetime(2025, 10, 2, 15, 59, tzinfo=timezone.utc)) == date(2025, 10, 2)
    assert beijing_date(datetime(2025, 10, 2, 16, 0, tzinfo=timezone.utc)) == date(2025, 10, 3)
    assert beijing_date(datetime(2025, 10, 2, 16, 0)) == date(2025, 10, 3)  # naive values are UTC


def test_today_follows_the_clock():
    with time_machine.travel(datetime(2025, 12, 31, 16, 30, tzinfo=timezone.utc), tick=False):
        assert beijing_today() == date(2026, 1, 1)
        assert utcnow() == datetime(2025, 12, 31, 16, 30, tzinfo=timezone.utc)
    assert beijing_today(datetime(2025, 12, 31, 15, 0, tzinfo=timezone.utc)) == date(2025, 12, 31)


def test_day_start_and_text():
    start = beijing_day_start(date(2025, 10, 3))
    assert start.tzinfo is SHANGHAI and start.astimezone(timezone.utc) == datetime(2025, 10, 2, 16, 0, tzinfo=timezone.utc)
    assert beijing_text(datetime(2025, 10, 2, 16, 0, 5, tzinfo=timezone.utc)) == "2025-10-03 00:00:05"
    assert aware(datetime(2025, 1, 1)).tzinfo is timezone.utc
