"""A case whose due date is provisional (2027 unpublished), through real rq workers: the notice and
reminders say 暂定, the overdue wording and the HR digest say it is judged on the estimate; once the
2027 schedule is imported the case is recomputed and the texts drop the caveat (issue 14)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import time_machine
from sqlalchemy import select

from qianli.db import session_scope
from qianli.models import EvidenceEntry, HrAlert, ResignationCase
from qianli.services.calendar import import_schedule
from qianli.services.reminders import sweep
from tests.holidays.conftest import SCHEDULE_2027

SH = ZoneInfo("Asia/Shanghai")


def bj(*a):
    return datetime(*a, tzinfo=SH)


def test_provisional_due_date_in_every_text(rworld):
    rt = rworld.rt
    with time_machine.travel(bj(2026, 12, 29, 10, 0), tick=False):
        case_id, _, phone = rworld.open_case(bj(2026, 12, 29, 9, 30))
        rworld.work()
        notice = rworld.outbox(phone)[-1]["params"]["text"]
    assert "2027年1月4日（暂定）" in notice and "尚未公布" in notice
    with time_machine.travel(bj(2026, 12, 30, 9, 0), tick=False):
        sweep(rt)
        rworld.work()
        assert "（暂定）" in rworld.outbox(phone)[-1]["params"]["text"]
    # 5 January 2027: overdue by the estimated date, and said so
    for day in (12, 31):
        with time_machine.travel(bj(2026, 12, day, 9, 0), tick=False):
            sweep(rt)
            rworld.work()
    for day in (1, 2, 3, 4, 5):
        with time_machine.travel(bj(2027, 1, day, 9, 0), tick=False):
            sweep(rt)
            rworld.work()
    late = rworld.outbox(phone)[-1]["params"]["text"]
    assert "按暂定截止日期计算，现已逾期" in late
    digest = rworld.outbox("13900139000")[-1]["params"]["text"]
    assert "2027年1月4日（暂定）" in digest and "逾期按暂定日期计算" in digest
    with session_scope(rt.session_factory) as s:
        alert = s.scalars(select(HrAlert).where(HrAlert.case_id == case_id, HrAlert.kind == "letter_overdue")).one()
        assert "暂定" in alert.message and alert.payload["due_date_provisional"] is True
        esc = s.scalars(select(EvidenceEntry).where(EvidenceEntry.case_id == case_id,
                                                    EvidenceEntry.action == "reminder_escalated")).first()
        assert esc.payload["due_date_provisional"] is True
    # the schedule is published: the due date is final (same day here), the texts lose the caveat
    with time_machine.travel(bj(2027, 1, 5, 12, 0), tick=False):
        with session_scope(rt.session_factory) as s:
            import_schedule(s, rt, doc=SCHEDULE_2027, company_id=None, actor="operator:test")
        with session_scope(rt.session_factory) as s:
            case = s.get(ResignationCase, case_id)
            assert (case.letter_due_date.isoformat(), case.dates_provisional) == ("2027-01-04", False)
    with time_machine.travel(bj(2027, 1, 6, 9, 0), tick=False):
        sweep(rt)
        rworld.work()
    text = rworld.outbox(phone)[-1]["params"]["text"]
    assert "逾期" in text and "暂定" not in text
