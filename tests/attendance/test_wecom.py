"""The WeCom check-in connector against the local emulation of ``checkin/getcheckindata`` (h15w's
tests/integrations/wecom_emulator.py): records, 未打卡, coverage of members without check-ins, the
daily run's pull and its WeCom message to HR (SMS to those without a WeCom userid)."""

from __future__ import annotations

from datetime import date, datetime, time

import pytest
from sqlalchemy import select

from cases.clock import SHANGHAI
from qianli.integrations.wecom import ApiWeComClient
from qianli.models import AttendanceCoverage, AttendanceImport, AttendanceRecord, Document
from qianli.services.attrition import companies_due, evaluate, run_daily
from qianli.services.reminders.hr_phones import set_hr_phone
from qianli.services.wecom_checkin import pull_checkins
from qianli.storage import read_document
from tests.attendance.support import working_days
from tests.integrations.wecom_emulator import WeComEmulator

D = date


def at(d: date, hh: int, mm: int) -> datetime:
    return datetime.combine(d, time(hh, mm), SHANGHAI)


@pytest.fixture
def wecom(runtime):
    with WeComEmulator() as server:
        runtime.override(wecom=ApiWeComClient(server.url, server.corp_id, server.secret, server.agent_id,
                                              runtime.redis, timeout=3))
        yield server
    runtime.reset("wecom")


@pytest.fixture
def members(db_session, world, wecom):
    co, a, b = world
    a.wecom_userid, b.wecom_userid = "lilei", "hanmeimei"
    db_session.commit()
    for uid in ("lilei", "hanmeimei", "hr_spec"):
        wecom.add_member(uid)
    for d in working_days(D(2025, 9, 1), D(2025, 10, 17)):
        wecom.add_checkin("hanmeimei", "上班打卡", at(d, 8, 55), scheduled=at(d, 9, 0))
        wecom.add_checkin("hanmeimei", "下班打卡", at(d, 18, 3), scheduled=at(d, 18, 0))
        if d <= D(2025, 10, 9):
            wecom.add_checkin("lilei", "上班打卡", at(d, 9, 2), scheduled=at(d, 9, 0), exception_type="时间异常")
        else:  # WeCom reports a missed scheduled check-in as a record with exception 未打卡
            wecom.add_checkin("lilei", "上班打卡", at(d, 9, 0), scheduled=at(d, 9, 0), exception_type="未打卡")
    return co, a, b


def test_pull_records_days_and_coverage(runtime, db_session, members, wecom):
    co, a, b = members
    res = pull_checkins(runtime, co.id, D(2025, 10, 13), days=45)
    assert res["status"] == "done" and res["members"] == 2 and res["first_day"] == "2025-08-30"
    calls = wecom.calls("/cgi-bin/checkin/getcheckindata")
    assert len(calls) == 2 and sorted(calls[0]["body"]["useridlist"]) == ["hanmeimei", "lilei"]  # 45 days: 2 windows
    recs = {(r.employee_id, r.day): r for r in db_session.scalars(select(AttendanceRecord))}
    assert recs[(a.id, D(2025, 10, 9))].present and recs[(a.id, D(2025, 10, 9))].result == "上班打卡·时间异常"
    assert not recs[(a.id, D(2025, 10, 10))].present and "未打卡" in recs[(a.id, D(2025, 10, 10))].result
    assert recs[(b.id, D(2025, 10, 13))].last_clock_at.astimezone(SHANGHAI).time() == time(18, 3)
    cov = db_session.scalars(select(AttendanceCoverage).where(AttendanceCoverage.company_id == co.id)).all()
    assert sorted((c.employee_id, c.first_day, c.last_day) for c in cov) == sorted(
        [(a.id, D(2025, 8, 30), D(2025, 10, 13)), (b.id, D(2025, 8, 30), D(2025, 10, 13))])
    imp = db_session.get(AttendanceImport, res["import_id"])
    assert imp.source == "wecom" and imp.first_day == D(2025, 8, 30)
    doc = db_session.get(Document, imp.document_id)
    assert doc.sha256 == imp.sha256 and b'"checkindata"' in read_document(runtime.store, doc)
    # the next day's pull (3 days) extends the same coverage rows and duplicates nothing
    n = len(recs)
    again = pull_checkins(runtime, co.id, D(2025, 10, 14))
    # 10-12..10-14: Sunday 10-12 has no check-ins, 10-13 is known, 10-14 is new (for both members)
    assert (again["records_created"], again["records_unchanged"]) == (2, 2)
    assert db_session.scalar(select(AttendanceRecord.id).where(AttendanceRecord.day == D(2025, 10, 12))) is None
    assert len(db_session.scalars(select(AttendanceRecord)).all()) == n + 2
    assert len(db_session.scalars(select(AttendanceCoverage)).all()) == 2


def test_member_without_any_checkin_is_covered(runtime, db_session, members, wecom):
    """A member who stopped clocking in entirely (no 未打卡 records either) is still judged absent."""
    co, a, _ = members
    wecom.state.checkins = [c for c in wecom.state.checkins
                            if not (c["userid"] == "lilei" and c["exception_type"] == "未打卡")]
    pull_checkins(runtime, co.id, D(2025, 10, 13), days=30)
    risks = evaluate(db_session, co.id, through=D(2025, 10, 13))
    lilei = next(i for i in risks.items if i.employee.id == a.id)
    assert lilei.level.value == "red" and [d.isoformat() for d in lilei.assessment.gap_days] == [
        "2025-10-10", "2025-10-11", "2025-10-13"]


def test_daily_run_pulls_and_messages_hr_by_wecom(runtime, db_session, factory, members, wecom):
    co, a, _ = members
    spec = factory.hr(co, "hr_specialist", username="spec")
    head = factory.hr(co, "dept_head", username="head")
    spec.wecom_userid = "hr_spec"
    set_hr_phone(runtime, spec, "13900000001")
    set_hr_phone(runtime, head, "13900000002")
    db_session.commit()
    assert companies_due(db_session, D(2025, 10, 14), wecom=True) == [co.id]  # WeCom members, no file yet
    pull_checkins(runtime, co.id, D(2025, 10, 10), days=30)  # history up to 10-10
    res = run_daily(runtime, co.id, D(2025, 10, 14))  # pulls 10-11..10-13, then judges
    assert res["wecom"]["status"] == "done" and res["wecom"]["first_day"] == "2025-10-11"
    assert res["counts"]["red"] == 1 and res["notified"] == 1
    msgs = wecom.state.messages
    assert len(msgs) == 1 and msgs[0]["touser"] == ["hr_spec"] and "李雷" in msgs[0]["content"]
    assert runtime.sms_gateway.messages(phone="13900000001") == []  # told by WeCom, not also by SMS
    assert len(runtime.sms_gateway.messages(phone="13900000002")) == 1  # the head has no WeCom userid
    assert run_daily(runtime, co.id, D(2025, 10, 15))["notified"] == 0 and len(wecom.state.messages) == 1


def test_wecom_failure_falls_back_to_sms_and_the_run_goes_on(runtime, db_session, factory, members, wecom):
    co, a, _ = members
    spec = factory.hr(co, "hr_specialist", username="spec")
    spec.wecom_userid = "hr_spec"
    set_hr_phone(runtime, spec, "13900000001")
    db_session.commit()
    pull_checkins(runtime, co.id, D(2025, 10, 13), days=30)
    wecom.fail_next("/cgi-bin/checkin/getcheckindata", -1)
    wecom.fail_next("/cgi-bin/checkin/getcheckindata", -1)
    wecom.fail_next("/cgi-bin/message/send", 81013)
    res = run_daily(runtime, co.id, D(2025, 10, 14))
    assert res["wecom"]["status"] == "failed" and res["notified"] == 1
    assert len(runtime.sms_gateway.messages(phone="13900000001")) == 1
    from qianli.models import AttritionEpisode

    ep = db_session.scalars(select(AttritionEpisode).where(AttritionEpisode.employee_id == a.id)).one()
    db_session.refresh(ep)
    assert [(n["channel"], n["status"]) for n in ep.notified] == [("wecom", "failed"), ("sms", "sent")]


def test_not_configured(runtime, db_session, world):
    co, *_ = world
    assert runtime.wecom is None
    assert pull_checkins(runtime, co.id, D(2025, 10, 13)) == {"status": "not_configured"}



