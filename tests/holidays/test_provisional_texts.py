"""Provisional everywhere it matters: reminder and digest texts, the overdue wording, the mini-program's case."""

from datetime import date, datetime

from cases.clock import SHANGHAI
from cases.reminders import hr_digest_message, letter_message
from tests.holidays.conftest import open_case_at


def bj(*a):
    return datetime(*a, tzinfo=SHANGHAI)


def test_letter_messages_mark_a_provisional_due_date():
    due = date(2027, 1, 4)
    final = letter_message(slot=0, name="李雷", letter_due_date=due, now=bj(2026, 12, 29, 10))
    assert "暂定" not in final.text
    notice = letter_message(slot=0, name="李雷", letter_due_date=due, now=bj(2026, 12, 29, 10), provisional=True)
    assert "2027年1月4日（暂定）（含）前" in notice.text and "尚未公布" in notice.text
    assert notice.wechat_data["thing3"] == "截止日为暂定日期"
    reminder = letter_message(slot=2, name="李雷", letter_due_date=due, now=bj(2026, 12, 31, 10), provisional=True)
    assert reminder.kind == "letter_reminder" and "（暂定）" in reminder.text
    late = letter_message(slot=9, name="李雷", letter_due_date=due, now=bj(2027, 1, 6, 10), provisional=True)
    assert late.kind == "letter_overdue_reminder" and "按暂定截止日期计算，现已逾期" in late.text
    assert "按暂定" not in letter_message(slot=9, name="李雷", letter_due_date=due, now=bj(2027, 1, 6, 10)).text


def test_digest_marks_provisional_cases():
    d = hr_digest_message(hr_name="王芳", day=date(2027, 1, 6),
                          cases=[("李雷", "E1", date(2027, 1, 4), True), ("韩梅梅", "E2", date(2026, 12, 20), False)])
    assert "李雷（E1，应于2027年1月4日（暂定）前）" in d.text and "韩梅梅（E2，应于2026年12月20日前）" in d.text
    assert "逾期按暂定日期计算" in d.text
    plain = hr_digest_message(hr_name="王芳", day=date(2027, 1, 6), cases=[("韩梅梅", "E2", date(2026, 12, 20))])
    assert "暂定" not in plain.text


def test_case_answer_carries_the_caveat(client, runtime, db_session, factory):
    co = factory.company()
    emp = factory.employee(co)
    c = open_case_at(db_session, runtime, emp, "2026-12-29T10:00:00")
    body = client.get(f"/api/v1/cases/{c.id}", headers=factory.employee_headers(emp)).json
    assert body["dates_provisional"] is True and body["letter_due_date"] == "2027-01-04"
    assert "2027-01-04（暂定）" in body["dates_note"] and "法定节假日" in body["dates_note"]
    emp2 = factory.employee(co)
    c2 = open_case_at(db_session, runtime, emp2, "2026-11-20T10:00:00")
    body = client.get(f"/api/v1/cases/{c2.id}", headers=factory.employee_headers(emp2)).json
    assert body["dates_provisional"] is False and body["dates_note"] is None
