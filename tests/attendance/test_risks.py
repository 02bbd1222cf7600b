"""The early-warning list end to end: imported files -> red / amber / green on each day, leave,
the daily run's notifications (once per new red), dismissals, rules, department scoping, the API."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from qianli.models import AttendanceRun, AttritionEpisode, HrAlert
from qianli.services.attendance import import_attendance
from qianli.services.attrition import dismiss, evaluate, run_daily, set_rules
from qianli.services.reminders.hr_phones import set_hr_phone
from qianli.services.review import get_reviewer
from tests.attendance.support import csv_bytes, working_days

D = date


def clock_file(rows: dict[tuple[str, str], set[date]], first: date, last: date) -> bytes:
    """A WeCom-style daily report: one row per employee and working day (未打卡 when absent)."""
    lines = ["姓名,工号,部门,日期,上班打卡时间,下班打卡时间,打卡结果"]
    for (name, no), present in rows.items():
        for d in working_days(first, last):
            if d in present:
                lines.append(f"{name},{no},研发部,{d.isoformat()},08:55,18:02,正常")
            else:
                lines.append(f"{name},{no},研发部,{d.isoformat()},,,未打卡")
    return csv_bytes(lines)


def level_of(session, company, emp, day: date) -> tuple[str, int]:
    risks = evaluate(session, company.id, through=day - timedelta(days=1))
    it = next(i for i in risks.items if i.employee.id == emp.id)
    return it.level.value, len(it.assessment.gap_days)


def test_national_day_2024_red_on_the_right_day(runtime, db_session, world):
    """Present through the 调休 Sunday 09-29, then gone: 09-30 and, after the holiday week, 10-08 and 10-09."""
    co, a, b = world
    first, last = D(2024, 8, 1), D(2024, 10, 15)
    every = set(working_days(first, last))
    data = clock_file({("李雷", "A001"): {d for d in every if d <= D(2024, 9, 29)}, ("韩梅梅", "A002"): every},
                      first, last)
    import_attendance(db_session, runtime, company_id=co.id, data=data, actor="hr:test")
    db_session.commit()
    expected = {  # the list as HR sees it on the morning of each day
        D(2024, 9, 30): ("green", 0), D(2024, 10, 1): ("amber", 1), D(2024, 10, 4): ("amber", 1),
        D(2024, 10, 8): ("amber", 1), D(2024, 10, 9): ("amber", 2), D(2024, 10, 10): ("red", 3),
        D(2024, 10, 12): ("red", 5), D(2024, 10, 13): ("red", 6),  # the 调休 Saturday 10-12 counts
        D(2024, 10, 14): ("red", 6),  # Sunday 10-13 does not
    }
    for day, want in expected.items():
        assert level_of(db_session, co, a, day) == want, day
        assert level_of(db_session, co, b, day) == ("green", 0), day


def test_swapped_saturday_2025(runtime, db_session, world):
    co, a, _ = world
    first, last = D(2025, 8, 1), D(2025, 10, 17)
    every = set(working_days(first, last))
    import_attendance(db_session, runtime, company_id=co.id,
                      data=clock_file({("李雷", "A001"): {d for d in every if d <= D(2025, 10, 9)}}, first, last))
    db_session.commit()
    assert level_of(db_session, co, a, D(2025, 10, 11)) == ("amber", 1)
    assert level_of(db_session, co, a, D(2025, 10, 12)) == ("amber", 2)   # Friday + 调休 Saturday
    assert level_of(db_session, co, a, D(2025, 10, 13)) == ("amber", 2)   # Sunday is not a working day
    assert level_of(db_session, co, a, D(2025, 10, 14)) == ("red", 3)


def test_leave_file_closes_the_gap(runtime, db_session, world):
    co, a, _ = world
    first, last = D(2025, 8, 1), D(2025, 10, 17)
    every = set(working_days(first, last))
    import_attendance(db_session, runtime, company_id=co.id,
                      data=clock_file({("李雷", "A001"): {d for d in every if d <= D(2025, 10, 9)}}, first, last))
    db_session.commit()
    assert level_of(db_session, co, a, D(2025, 10, 14))[0] == "red"
    leave = csv_bytes(["姓名,工号,请假类型,开始时间,结束时间,审批状态",
                       "李雷,A001,年假,2025-10-10 09:00,2025-10-13 18:00,已通过"], encoding="gbk")
    import_attendance(db_session, runtime, company_id=co.id, data=leave)
    db_session.commit()
    assert level_of(db_session, co, a, D(2025, 10, 14)) == ("green", 0)
    assert level_of(db_session, co, a, D(2025, 10, 15)) == ("amber", 1)  # 10-14: no clock-in, no leave


FIRST, LAST = D(2025, 8, 1), D(2025, 10, 31)


def _gone_after(runtime, db_session, co, last_present: date, first: date = FIRST, last: date = LAST,
                back: frozenset[date] = frozenset()):
    every = set(working_days(first, last))
    present = {d for d in every if d <= last_present} | set(back)
    import_attendance(db_session, runtime, company_id=co.id,
                      data=clock_file({("李雷", "A001"): present, ("韩梅梅", "A002"): every}, first, last))
    db_session.commit()


def test_daily_run_notifies_each_new_red_once(runtime, db_session, factory, world):
    co, a, _ = world
    spec = factory.hr(co, "hr_specialist", username="spec")
    head = factory.hr(co, "dept_head", username="head")  # 研发部: the employee's department head
    other = factory.hr(co, "dept_head", username="other", department="市场部")
    auditor = factory.hr(co, "auditor", username="aud")
    for u, phone in ((spec, "13900000001"), (head, "13900000002"), (other, "13900000003"), (auditor, "13900000004")):
        set_hr_phone(runtime, u, phone)
    db_session.commit()
    _gone_after(runtime, db_session, co, D(2025, 10, 9), back={D(2025, 10, 20), D(2025, 10, 21)})
    outbox = runtime.sms_gateway

    def texts(phone):
        return [m.params["text"] for m in outbox.messages(phone=phone)]

    assert run_daily(runtime, co.id, D(2025, 10, 13))["notified"] == 0  # amber only
    res = run_daily(runtime, co.id, D(2025, 10, 14))
    assert res["notified"] == 1 and res["counts"]["red"] == 1
    assert len(texts("13900000001")) == 1 and len(texts("13900000002")) == 1
    assert "李雷" in texts("13900000001")[0] and "连续 3 个工作日" in texts("13900000001")[0]
    assert texts("13900000003") == [] and texts("13900000004") == []  # other department, auditor
    assert run_daily(runtime, co.id, D(2025, 10, 14)) == {"status": "already_ran", "day": "2025-10-14"}
    assert run_daily(runtime, co.id, D(2025, 10, 15))["notified"] == 0  # the same gap, one day longer
    assert len(texts("13900000001")) == 1
    ep = db_session.scalars(select(AttritionEpisode).where(AttritionEpisode.employee_id == a.id)).one()
    db_session.refresh(ep)
    assert ep.episode == "gap:2025-10-10" and ep.level == "red" and ep.notified_at is not None
    assert {(n["hr_user_id"], n["channel"], n["status"]) for n in ep.notified} == {
        (spec.id, "sms", "sent"), (head.id, "sms", "sent")}
    alerts = db_session.scalars(select(HrAlert).where(HrAlert.company_id == co.id, HrAlert.kind == "attrition_red")).all()
    assert len(alerts) == 1 and alerts[0].employee_id == a.id
    # back on 10-20 and 10-21, gone from 10-22: a new episode, a new notification on 10-27
    assert run_daily(runtime, co.id, D(2025, 10, 22))["counts"]["red"] == 0
    res = run_daily(runtime, co.id, D(2025, 10, 27))
    assert res["notified"] == 1 and len(texts("13900000001")) == 2
    runs = db_session.scalars(select(AttendanceRun).where(AttendanceRun.company_id == co.id)).all()
    assert len(runs) == 5 and all(r.finished_at for r in runs)


def test_dismissal_silences_the_gap_not_the_next(runtime, db_session, factory, world):
    co, a, _ = world
    spec = factory.hr(co, "hr_specialist", username="spec")
    set_hr_phone(runtime, spec, "13900000001")
    db_session.commit()
    _gone_after(runtime, db_session, co, D(2025, 10, 9), back={D(2025, 10, 20), D(2025, 10, 21)})
    rev = get_reviewer(db_session, spec.id, co.id)
    item = dismiss(db_session, rev, a.id, reason="员工出差，考勤机无记录", through=D(2025, 10, 13))
    db_session.commit()
    assert item.level.value == "green" and item.assessment.level.value == "red"
    ep = db_session.scalars(select(AttritionEpisode).where(AttritionEpisode.employee_id == a.id)).one()
    assert (ep.dismissed_by, ep.dismissal_reason, ep.episode) == (rev.actor, "员工出差，考勤机无记录", "gap:2025-10-10")
    assert run_daily(runtime, co.id, D(2025, 10, 14))["notified"] == 0  # dismissed: no alarm
    risks = evaluate(db_session, co.id, through=D(2025, 10, 16))
    it = next(i for i in risks.items if i.employee.id == a.id)
    assert it.level.value == "green" and it.dismissal is not None and risks.counts()["dismissed"] == 1
    assert len(runtime.sms_gateway.messages(phone="13900000001")) == 0
    res = run_daily(runtime, co.id, D(2025, 10, 27))  # a new gap after the return
    assert res["notified"] == 1 and len(runtime.sms_gateway.messages(phone="13900000001")) == 1


def test_dismiss_refusals(runtime, db_session, factory, world):
    from cases.errors import Conflict, InvalidInput, NotFound

    co, a, b = world
    spec = factory.hr(co, "hr_specialist", username="spec")
    other = factory.hr(co, "dept_head", username="other", department="市场部")
    _gone_after(runtime, db_session, co, D(2025, 10, 9))
    rev = get_reviewer(db_session, spec.id, co.id)
    with pytest.raises(Conflict) as exc:
        dismiss(db_session, rev, b.id, reason="没问题", through=D(2025, 10, 13))
    assert exc.value.code == "no_attrition_risk"
    with pytest.raises(InvalidInput):
        dismiss(db_session, rev, a.id, reason=" ", through=D(2025, 10, 13))
    with pytest.raises(Conflict) as exc:
        dismiss(db_session, rev, a.id, reason="出差", episode="gap:2025-10-01", through=D(2025, 10, 13))
    assert exc.value.code == "attrition_episode_changed"
    with pytest.raises(NotFound):
        dismiss(db_session, get_reviewer(db_session, other.id, co.id), a.id, reason="出差", through=D(2025, 10, 13))
    dismiss(db_session, rev, a.id, reason="出差", through=D(2025, 10, 13))
    with pytest.raises(Conflict) as exc:
        dismiss(db_session, rev, a.id, reason="出差", through=D(2025, 10, 14))
    assert exc.value.code == "attrition_already_dismissed"


def test_rules_change_the_list(runtime, db_session, world):
    from cases.errors import InvalidInput

    co, a, _ = world
    _gone_after(runtime, db_session, co, D(2025, 10, 9))
    assert level_of(db_session, co, a, D(2025, 10, 14)) == ("red", 3)
    set_rules(db_session, co.id, {"red_consecutive_days": 4}, actor="hr:x")
    assert level_of(db_session, co, a, D(2025, 10, 14)) == ("amber", 3)
    assert level_of(db_session, co, a, D(2025, 10, 15)) == ("red", 4)
    with pytest.raises(InvalidInput) as exc:
        set_rules(db_session, co.id, {"amber_consecutive_days": 4}, actor="hr:x")
    assert exc.value.code == "invalid_attrition_rules" and "amber_consecutive_days" in exc.value.details["errors"]


def test_untracked_and_department_scope(runtime, db_session, factory, world):
    co, a, b = world
    factory.employee(co, employee_no="M001", name="王五", department="市场部")  # never in attendance data
    head = factory.hr(co, "dept_head", username="head")
    other = factory.hr(co, "dept_head", username="other", department="市场部")
    _gone_after(runtime, db_session, co, D(2025, 10, 9))
    risks = evaluate(db_session, co.id, through=D(2025, 10, 13))
    assert risks.untracked == 1 and {i.employee.employee_no for i in risks.items} == {"A001", "A002"}
    mine = evaluate(db_session, co.id, through=D(2025, 10, 13), reviewer=get_reviewer(db_session, head.id, co.id))
    assert {i.employee.employee_no for i in mine.items} == {"A001", "A002"}
    theirs = evaluate(db_session, co.id, through=D(2025, 10, 13), reviewer=get_reviewer(db_session, other.id, co.id))
    assert theirs.items == [] and theirs.untracked == 1


# ---- HTTP ------------------------------------------------------------------------------------------

def test_http_import_list_dismiss_rules(runtime, db_session, client, factory, world):
    import io

    from cases.clock import beijing_today

    co, a, _ = world
    spec = factory.hr(co, "hr_specialist", username="spec")
    mgr = factory.hr(co, "hr_manager", username="mgr")
    h, hm = factory.hr_headers(spec), factory.hr_headers(mgr)
    today = beijing_today()
    first, last = today - timedelta(days=90), today - timedelta(days=1)
    every = working_days(first, last)
    gone = every[-3:]  # the last three working days before today
    data = clock_file({("李雷", "A001"): set(every) - set(gone), ("韩梅梅", "A002"): set(every)}, first, last)

    r = client.post("/api/v1/hr/attendance/imports?dry_run=true", headers=h,
                    data={"file": (io.BytesIO(data), "日报.csv")}, content_type="multipart/form-data")
    assert r.status_code == 200 and r.json["applied"] is False and r.json["preview"]
    r = client.post("/api/v1/hr/attendance/imports", headers=h, data={"file": (io.BytesIO(data), "日报.csv")},
                    content_type="multipart/form-data")
    assert r.status_code == 200 and r.json["applied"] and r.json["records_created"] == 2 * len(every)
    bad = csv_bytes(["姓名,工号,日期,上班打卡时间", "无名,Z1,2025-10-09,09:00"])
    r = client.post("/api/v1/hr/attendance/imports", headers=h, data={"file": (io.BytesIO(bad), "x.csv")},
                    content_type="multipart/form-data")
    assert r.status_code == 422 and r.json["code"] == "attendance_has_errors"
    assert r.json["details"]["errors"][0]["code"] == "employee_not_found"
    r = client.post("/api/v1/hr/attendance/imports", headers=factory.hr_headers(factory.hr(co, "auditor")),
                    data={"file": (io.BytesIO(data), "日报.csv")}, content_type="multipart/form-data")
    assert r.status_code == 403
    r = client.get("/api/v1/hr/attendance/imports", headers=h)
    assert r.status_code == 200 and len(r.json) == 1 and r.json[0]["filename"] == "日报.csv"

    r = client.get("/api/v1/hr/attrition-risks", headers=h)
    assert r.status_code == 200 and r.json["through"] == last.isoformat()
    red = [i for i in r.json["items"] if i["level"] == "red"]
    assert [i["employee_no"] for i in red] == ["A001"] and red[0]["gap_days"] == [d.isoformat() for d in gone]
    assert r.json["counts"]["red"] == 1 and r.json["counts"]["green"] == 1
    r = client.get("/api/v1/hr/attrition-risks?level=green", headers=h)
    assert [i["employee_no"] for i in r.json["items"]] == ["A002"]
    assert client.get("/api/v1/hr/attrition-risks?level=purple", headers=h).status_code == 422

    r = client.get("/api/v1/hr/attrition-rules", headers=h)
    assert r.json["red_consecutive_days"] == 3 and r.json["drop_percent"] == 50
    assert client.patch("/api/v1/hr/attrition-rules", headers=h, json={"red_consecutive_days": 4}).status_code == 403
    for body in ({"red_consecutive_days": "4"}, {"red_consecutive_days": 0}, {"surprise": 1},
                 {"amber_consecutive_days": 5}, {"drop_enabled": "yes"}):
        r = client.patch("/api/v1/hr/attrition-rules", headers=hm, json=body)
        assert r.status_code == 422, body
    r = client.patch("/api/v1/hr/attrition-rules", headers=hm, json={"red_consecutive_days": 5, "drop_percent": 60})
    assert r.status_code == 200 and r.json["red_consecutive_days"] == 5 and r.json["amber_consecutive_days"] == 1
    r = client.get("/api/v1/hr/attrition-risks?level=red", headers=h)
    assert r.json["items"] == []
    client.patch("/api/v1/hr/attrition-rules", headers=hm, json={"red_consecutive_days": 3})

    r = client.post(f"/api/v1/hr/attrition-risks/{a.id}/dismissal", headers=h, json={"reason": ""})
    assert r.status_code == 422
    r = client.post(f"/api/v1/hr/attrition-risks/{a.id}/dismissal", headers=h, json={"reason": "外地出差，已电话确认"})
    assert r.status_code == 201 and r.json["level"] == "green" and r.json["dismissed"]["reason"] == "外地出差，已电话确认"
    r = client.get("/api/v1/hr/attrition-risks", headers=h)
    assert r.json["counts"]["red"] == 0 and r.json["counts"]["dismissed"] == 1


def test_scheduler_enqueues_one_daily_job_and_a_worker_runs_it(runtime, db_session, factory, world):
    from datetime import datetime, timezone

    from rq import Queue, SimpleWorker

    from qianli.services.attrition import QUEUE, enqueue_due_runs

    co, a, _ = world
    spec = factory.hr(co, "hr_specialist", username="spec")
    set_hr_phone(runtime, spec, "13900000001")
    db_session.commit()
    _gone_after(runtime, db_session, co, D(2025, 10, 9))
    before = datetime(2025, 10, 14, 6, 59, tzinfo=timezone(timedelta(hours=8)))  # before QIANLI_ATTRITION_RUN_HOUR
    assert enqueue_due_runs(runtime, before.astimezone(timezone.utc)) == 0
    at = datetime(2025, 10, 14, 7, 0, tzinfo=timezone(timedelta(hours=8)))
    assert enqueue_due_runs(runtime, at.astimezone(timezone.utc)) == 1
    assert enqueue_due_runs(runtime, at.astimezone(timezone.utc)) == 0  # already queued
    q = Queue(QUEUE, connection=runtime.redis)
    assert q.job_ids == [f"attendance-daily-{co.id}-2025-10-14"]
    SimpleWorker([q], connection=runtime.redis).work(burst=True, logging_level="WARNING")
    run = db_session.scalars(select(AttendanceRun).where(AttendanceRun.company_id == co.id)).one()
    assert run.day == D(2025, 10, 14) and run.result["notified"] == 1 and run.result["counts"]["red"] == 1
    assert len(runtime.sms_gateway.messages(phone="13900000001")) == 1
    later = datetime(2025, 10, 14, 18, 0, tzinfo=timezone(timedelta(hours=8)))
    assert enqueue_due_runs(runtime, later.astimezone(timezone.utc)) == 0  # ran today


def test_a_failed_run_frees_its_day(runtime, db_session, world, monkeypatch):
    from qianli.services import attrition

    co, *_ = world
    _gone_after(runtime, db_session, co, D(2025, 10, 9))

    def broken(*_a, **_kw):
        raise RuntimeError("database went away")

    monkeypatch.setattr(attrition, "_record_episodes", broken)
    with pytest.raises(RuntimeError):
        run_daily(runtime, co.id, D(2025, 10, 14))
    assert db_session.scalars(select(AttendanceRun).where(AttendanceRun.company_id == co.id)).all() == []
    monkeypatch.undo()
    assert run_daily(runtime, co.id, D(2025, 10, 14))["counts"]["red"] == 1  # the retry runs it
