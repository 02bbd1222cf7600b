"""End to end with real Redis and real rq workers (in-process, burst), time travelled."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import time_machine
from sqlalchemy import select

from cases.states import CaseAction
from qianli.db import session_scope
from qianli.models import EvidenceEntry, HrAlert, HrDigest, ReminderSchedule, ResignationCase
from qianli.services import cases as case_svc
from qianli.services.evidence import verify_case_chain
from qianli.services.reminders import sweep

SH = ZoneInfo("Asia/Shanghai")


def bj(*a):
    return datetime(*a, tzinfo=SH)


def _actions(rt, case_id):
    with session_scope(rt.session_factory) as s:
        return [(e.action, e.payload) for e in s.scalars(select(EvidenceEntry).where(EvidenceEntry.case_id == case_id)
                                                         .order_by(EvidenceEntry.seq))]


def test_national_day_case(rworld):
    rt = rworld.rt
    # The seed case: the message arrives on 3 October 2025, 21:47 Beijing time, during the holiday.
    with time_machine.travel(bj(2025, 10, 3, 21, 50), tick=False):
        case_id, _, phone = rworld.open_case(bj(2025, 10, 3, 21, 47))
        rworld.work()
        assert rworld.outbox() == []  # quiet hours: nothing at night
        with session_scope(rt.session_factory) as s:
            assert s.get(ResignationCase, case_id).letter_due_date.isoformat() == "2025-10-11"
    sent_days = []
    for day in range(4, 15):
        with time_machine.travel(bj(2025, 10, day, 8, 0, 30), tick=False):
            res = sweep(rt)
            rworld.work()
            sweep(rt)  # a second sweep the same morning changes nothing
            rworld.work()
            msgs = rworld.outbox(phone)
            sent_days.append(len(msgs))
            if day == 4:
                assert res.recovered == 1 and "2025年10月11日" in msgs[0]["params"]["text"] and "每天提醒" in msgs[0]["params"]["text"]
            if day <= 11:
                assert "逾期" not in msgs[-1]["params"]["text"]
            else:
                assert "逾期" in msgs[-1]["params"]["text"]
        if day == 13:
            with time_machine.travel(bj(2025, 10, 13, 10, 0), tick=False), session_scope(rt.session_factory) as s:
                case_svc.apply_action(s, s.get(ResignationCase, case_id), CaseAction.SUBMIT_LETTER, actor="employee:x")
    # notice on 4 Oct, one reminder a day up to and including 13 Oct, nothing after the submission
    assert sent_days == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 10]
    assert [r for r in rworld.deliveries(case_id)] == [(i, "sms", "sent") for i in range(10)]
    hr_msgs = rworld.outbox("13900139000")
    assert len(hr_msgs) == 2 and "李雷" in hr_msgs[0]["params"]["text"]  # 12 and 13 October, one a day
    with session_scope(rt.session_factory) as s:
        digests = s.scalars(select(HrDigest).order_by(HrDigest.day, HrDigest.hr_user_id)).all()
        assert sorted((d.day.isoformat(), d.status) for d in digests) == [
            ("2025-10-12", "no_channel"), ("2025-10-12", "sent"), ("2025-10-13", "no_channel"), ("2025-10-13", "sent")]
        assert len(s.scalars(select(HrAlert).where(HrAlert.kind == "letter_overdue")).all()) == 1
        assert s.scalar(select(ReminderSchedule.state).where(ReminderSchedule.case_id == case_id)) == "paused"
        assert verify_case_chain(s, case_id, rworld.company_id).ok
    acts = _actions(rt, case_id)
    sent = [p for a, p in acts if a == "reminder_sent"]
    assert [p["slot"] for p in sent] == list(range(10))
    assert sent[0]["kind"] == "letter_due_notice" and sent[5]["kind"] == "letter_reminder"
    assert sent[8]["kind"] == "letter_overdue_reminder"
    assert all(p["result"] == "sent" and len(p["content_sha256"]) == 64 and p["provider_message_id"] for p in sent)
    assert sent[1]["scheduled_for"].startswith("2025-10-05T00:00:00")  # 08:00 Beijing
    esc = [p for a, p in acts if a == "reminder_escalated"]
    assert [p["day"] for p in esc] == ["2025-10-12", "2025-10-13"]


def test_submission_racing_a_queued_reminder_is_dropped(rworld):
    rt = rworld.rt
    rworld.configure(quiet_hours="")
    case_id, _, phone = rworld.open_case(datetime.now(timezone.utc) - timedelta(minutes=5))
    # the notice job is queued (after commit); the letter arrives before a worker picks it up
    with session_scope(rt.session_factory) as s:
        case_svc.apply_action(s, s.get(ResignationCase, case_id), CaseAction.SUBMIT_LETTER, actor="employee:x")
    rworld.work()
    assert rworld.outbox(phone) == []
    assert rworld.deliveries(case_id) == [(0, "sms", "dropped")]
    dropped = [p for a, p in _actions(rt, case_id) if a == "reminder_dropped"]
    assert dropped and dropped[0]["case_state"] == "submitted" and dropped[0]["result"] == "dropped"
    # the next sweep pauses the schedule instead of sending
    with time_machine.travel(datetime.now(timezone.utc) + timedelta(days=1, minutes=1), tick=False):
        assert sweep(rt).paused == 1
        rworld.work()
    assert rworld.outbox(phone) == []


def test_a_duplicated_job_sends_once(rworld):
    from qianli.services.reminders import enqueue_deliveries

    rworld.configure(quiet_hours="")
    case_id, _, phone = rworld.open_case(datetime.now(timezone.utc) - timedelta(minutes=5))
    enqueue_deliveries(rworld.rt, [(case_id, 0, "sms")] * 3)
    rworld.work()
    assert len(rworld.outbox(phone)) == 1


def test_redis_flushed_loses_nothing(rworld):
    rt = rworld.rt
    rworld.configure(quiet_hours="")
    case_id, _, phone = rworld.open_case(datetime.now(timezone.utc) - timedelta(minutes=5))
    rt.redis.flushdb()  # Redis restarted without its data: the queued notice job is gone
    with session_scope(rt.session_factory) as s:
        sched = s.scalar(select(ReminderSchedule).where(ReminderSchedule.case_id == case_id))
        assert sched.state == "active" and sched.slot == 1
    res = sweep(rt)
    assert res.recovered == 1
    rworld.work()
    assert len(rworld.outbox(phone)) == 1
    # a day later the reminder is due; Redis is flushed again right after the sweep enqueued it
    with time_machine.travel(datetime.now(timezone.utc) + timedelta(days=1, minutes=1), tick=False):
        assert sweep(rt).scheduled == 1
        rt.redis.flushdb()
    with time_machine.travel(datetime.now(timezone.utc) + timedelta(days=1, minutes=2), tick=False):
        assert sweep(rt).recovered == 1
        assert sweep(rt).recovered == 0  # the job is in Redis again: nothing more to recover
        rworld.work()
    # (the dev outbox lives in Redis too, so it only shows the message sent after the second flush)
    assert len(rworld.outbox(phone)) == 1 and rworld.deliveries(case_id) == [(0, "sms", "sent"), (1, "sms", "sent")]
    assert [p["slot"] for a, p in _actions(rt, case_id) if a == "reminder_sent"] == [0, 1]


def test_return_for_revision_notifies_and_resumes_reminders(rworld):
    from qianli.services.reminders import notify_employee

    rt = rworld.rt
    rworld.configure(quiet_hours="")
    start = datetime.now(timezone.utc)
    case_id, _, phone = rworld.open_case(start - timedelta(minutes=5))
    rworld.work()
    with session_scope(rt.session_factory) as s:
        case_svc.apply_action(s, s.get(ResignationCase, case_id), CaseAction.SUBMIT_LETTER, actor="employee:x")
    with time_machine.travel(start + timedelta(days=1, minutes=1), tick=False):
        assert sweep(rt).paused == 1
        with session_scope(rt.session_factory) as s:
            case = s.get(ResignationCase, case_id)
            case_svc.apply_action(s, case, CaseAction.RETURN_FOR_REVISION, actor="hr:x", payload={"reason": "请补充交接清单"})
            notify_employee(s, rt, case, "case_returned", {"reason": "请补充交接清单"})
        rworld.work()
        assert "请补充交接清单" in rworld.outbox(phone)[-1]["params"]["text"]
        assert sweep(rt).scheduled == 0  # reminders resume one interval after the notice, not at once
    with time_machine.travel(start + timedelta(days=2, minutes=2), tick=False):
        assert sweep(rt).scheduled == 1
        rworld.work()
    assert rworld.deliveries(case_id) == [(-1, "sms", "sent"), (0, "sms", "sent"), (1, "sms", "sent")]
    kinds = [p["kind"] for a, p in _actions(rt, case_id) if a == "reminder_sent"]
    assert kinds == ["letter_due_notice", "case_returned", "letter_reminder"]


def test_a_job_rq_gave_up_on_is_sent_by_the_next_sweep(rworld):
    """The database was unreachable on every attempt: rq marks the job failed; the sweep enqueues it again."""
    from rq import Queue
    from rq.registry import FailedJobRegistry

    from qianli.runtime import Runtime, set_runtime
    from qianli.services.reminders import QUEUE

    rt = rworld.rt
    rworld.configure(quiet_hours="", reminder_retry_intervals="")
    case_id, _, phone = rworld.open_case(datetime.now(timezone.utc) - timedelta(minutes=5))
    broken = Runtime(replace(rt.settings, database_url=f"sqlite:///{rt.settings.var_dir}/missing/dir/x.db"))
    broken.override(redis=rt.redis)
    set_runtime(broken)
    try:
        rworld.work()
    finally:
        set_runtime(rt)
    assert FailedJobRegistry(queue=Queue(QUEUE, connection=rt.redis)).count == 1
    assert rworld.deliveries(case_id) == [(0, "sms", "pending")] and rworld.outbox(phone) == []
    assert sweep(rt).recovered == 1
    rworld.work()
    assert rworld.deliveries(case_id) == [(0, "sms", "sent")] and len(rworld.outbox(phone)) == 1
