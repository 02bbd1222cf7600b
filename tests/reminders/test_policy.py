"""The reminder policy as pure functions (cases.reminders)."""

from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from cases.calendar import ChineseCalendar
from cases.notice import compute_notice
from cases.reminders import (QuietHours, ReminderPolicy, content_digest, hr_digest_message, is_overdue,
                             letter_message, notification_message, schedule_decision)

SH = ZoneInfo("Asia/Shanghai")


def bj(*a):
    return datetime(*a, tzinfo=SH)


def test_quiet_hours_parse():
    q = QuietHours.parse("21:00-08:00")
    assert (q.start.hour, q.end.hour) == (21, 8)
    assert QuietHours.parse("") is None and QuietHours.parse("off") is None and QuietHours.parse(" None ") is None
    for bad in ("21-08", "25:00-08:00", "08:00-08:00", "21:00"):
        with pytest.raises(ValueError):
            QuietHours.parse(bad)


@pytest.mark.parametrize("t, expected", [
    (bj(2025, 10, 3, 21, 47), bj(2025, 10, 4, 8, 0)),   # evening: next morning
    (bj(2025, 10, 4, 2, 30), bj(2025, 10, 4, 8, 0)),    # after midnight: same morning
    (bj(2025, 10, 4, 7, 59, 59), bj(2025, 10, 4, 8, 0)),
    (bj(2025, 10, 4, 8, 0), bj(2025, 10, 4, 8, 0)),     # the end minute itself is allowed
    (bj(2025, 10, 4, 20, 59), bj(2025, 10, 4, 20, 59)),
    (bj(2025, 10, 4, 21, 0), bj(2025, 10, 5, 8, 0)),    # the start minute is quiet
])
def test_quiet_hours_crossing_midnight(t, expected):
    assert QuietHours.parse("21:00-08:00").next_allowed(t) == expected


def test_quiet_hours_same_day_window():
    q = QuietHours.parse("12:00-14:00")
    assert q.next_allowed(bj(2025, 10, 4, 13, 0)) == bj(2025, 10, 4, 14, 0)
    assert q.next_allowed(bj(2025, 10, 4, 23, 0)) == bj(2025, 10, 4, 23, 0)


def test_send_times_every_interval_and_out_of_quiet_hours():
    p = ReminderPolicy.from_settings(86400, "21:00-08:00")
    times = p.send_times(bj(2025, 10, 3, 21, 47), 4)
    assert times == [bj(2025, 10, 4, 8), bj(2025, 10, 5, 8), bj(2025, 10, 6, 8), bj(2025, 10, 7, 8)]
    day = p.send_times(bj(2025, 10, 3, 15, 20), 3)
    assert day == [bj(2025, 10, 3, 15, 20), bj(2025, 10, 4, 15, 20), bj(2025, 10, 5, 15, 20)]
    assert all(t.tzinfo == timezone.utc for t in day)
    # a short interval walks into the quiet window and is moved to its end
    short = ReminderPolicy.from_settings(3600, "21:00-08:00").send_times(bj(2025, 10, 3, 19, 30), 4)
    assert short == [bj(2025, 10, 3, 19, 30), bj(2025, 10, 3, 20, 30), bj(2025, 10, 4, 8), bj(2025, 10, 4, 9)]
    assert ReminderPolicy.from_settings(60, "").send_times(bj(2025, 10, 3, 23, 0), 2)[1] == bj(2025, 10, 3, 23, 1)


def test_decisions_follow_the_state_machine():
    assert schedule_decision("awaiting_letter").action == "send"
    assert schedule_decision("returned").action == "send"
    assert schedule_decision("submitted").action == "pause"
    assert schedule_decision("first_approved").action == "pause"
    for s in ("approved", "closed", "withdrawn"):
        assert schedule_decision(s).action == "stop"


def test_seed_case_due_date_and_overdue_boundary():
    # Sent 2025-10-03 21:47 during the National Day holiday: due on Saturday 11 Oct (swapped working day).
    due = compute_notice(date(2025, 10, 3), False, calendar=ChineseCalendar(), holidays_extend=False,
                         letter_due_working_days=3).letter_due_date
    assert due == date(2025, 10, 11)
    assert not is_overdue(due, bj(2025, 10, 11, 23, 59))
    assert is_overdue(due, bj(2025, 10, 12, 0, 0))
    # 16:30 UTC on 11 Oct is already 12 Oct in Beijing
    assert is_overdue(due, datetime(2025, 10, 11, 16, 30, tzinfo=timezone.utc))


def test_messages():
    due = date(2025, 10, 11)
    notice = letter_message(slot=0, name="李雷", letter_due_date=due, now=bj(2025, 10, 4, 8))
    assert notice.kind == "letter_due_notice" and "2025年10月11日" in notice.text and list(notice.sms_params) == ["name", "text"]
    assert letter_message(slot=3, name="李雷", letter_due_date=due, now=bj(2025, 10, 7, 8)).kind == "letter_reminder"
    late = letter_message(slot=9, name="李雷", letter_due_date=due, now=bj(2025, 10, 12, 8))
    assert late.kind == "letter_overdue_reminder" and "逾期" in late.text
    assert all(len(v) <= 20 for v in late.wechat_data.values())
    ret = notification_message("case_returned", name="李雷", params={"reason": "请补充交接清单"})
    assert "请补充交接清单" in ret.text
    with pytest.raises(ValueError):
        notification_message("nonsense", name="x", params={})
    digest = hr_digest_message(hr_name="王芳", day=date(2025, 10, 12), cases=[("李雷", "E1", due)] * 12)
    assert "共12人" in digest.text
    a = content_digest("sms", "reminder", notice.sms_params)
    assert a != content_digest("sms", "reminder", late.sms_params) and len(a) == 64
