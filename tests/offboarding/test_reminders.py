"""Task reminders with the real parts: a committed database, real Redis, real rq workers (burst).

Reminders go on working days of the company calendar inside QIANLI_TASK_REMINDER_HOURS, to the
owners (SMS, the development outbox here), at most once per task, owner and day; an overdue task is
escalated once to HR (alert + message). Every send is an evidence entry."""

from __future__ import annotations

import json
from datetime import date, datetime

from rq import Queue, SimpleWorker
from sqlalchemy import select

from cases.clock import SHANGHAI
from identity.sms import OUTBOX_REDIS_KEY
from qianli.db import session_scope
from qianli.integrations.wecom import ApiWeComClient
from qianli.models import Company, EvidenceEntry, HrAlert, HrUser, OffboardingTask, TaskReminder
from qianli.services import cases as case_svc
from qianli.services.auth import create_hr_user
from qianli.services.employees import create_employee
from qianli.services.offboarding import start_offboarding
from qianli.services.offboarding_reminders import deliver_task_reminder, plan_task_reminders
from qianli.services.reminders import QUEUE, set_hr_phone
from tests.integrations.wecom_emulator import WeComEmulator  # at import: a later import may not resolve

SPEC_PHONE, HEAD_PHONE, IT_PHONE = "13900139000", "13900139001", "13900139002"


def at(y, m, d, hh=10, mm=0):
    return datetime(y, m, d, hh, mm, tzinfo=SHANGHAI)


class World:
    def __init__(self, rt):
        self.rt = rt
        with session_scope(rt.session_factory) as s:
            c = Company(code="tasks", name="示例科技有限公司", policy={})
            s.add(c)
            s.flush()
            self.company_id = c.id
            pw = "correct horse battery"
            spec = create_hr_user(s, company_id=c.id, username="spec", display_name="王芳", password=pw,
                                  role="hr_specialist")
            head = create_hr_user(s, company_id=c.id, username="head", display_name="赵部长", password=pw,
                                  role="dept_head", department="研发部")
            it = create_hr_user(s, company_id=c.id, username="it", display_name="IT 小李", password=pw, role="auditor")
            it.task_roles = ["it"]
            create_hr_user(s, company_id=c.id, username="mgr", display_name="经理", password=pw, role="hr_manager")
            for u, phone in ((spec, SPEC_PHONE), (head, HEAD_PHONE), (it, IT_PHONE)):
                set_hr_phone(rt, u, phone)
            emp = create_employee(s, rt, company_id=c.id, employee_no="E001", name="李雷", phone="13800138000",
                                  national_id="11010519491231002X", department="研发部", position="工程师",
                                  hire_date=None, probation_end=None, contract_term="")
            case = case_svc.open_case(s, rt.settings, employee=emp, source="miniprogram",
                                      notice_arrived_at=datetime(2026, 8, 20, 2, 0, tzinfo=SHANGHAI), actor="test",
                                      handover_items=[{"item": "客户资料", "owner": "韩梅梅", "deadline": None}])
            case.state, case.agreed_last_day = "approved", date(2026, 9, 30)  # the day before 国庆节
            s.flush()
            start_offboarding(s, rt, case, actor="test")
            self.case_id = case.id
        self.rt.redis.delete(OUTBOX_REDIS_KEY)
        Queue(QUEUE, connection=rt.redis).empty()

    def work(self):
        SimpleWorker([Queue(QUEUE, connection=self.rt.redis)], connection=self.rt.redis).work(
            burst=True, logging_level="WARNING")

    def outbox(self):
        return [json.loads(x) for x in reversed(self.rt.redis.lrange(OUTBOX_REDIS_KEY, 0, -1))]

    def rows(self, **filters):
        with session_scope(self.rt.session_factory) as s:
            q = select(TaskReminder).filter_by(**filters)
            return [(r.kind, r.day, r.status, r.channel) for r in s.scalars(q)]

    def evidence(self, action):
        with session_scope(self.rt.session_factory) as s:
            return [e.payload for e in s.scalars(select(EvidenceEntry).where(
                EvidenceEntry.case_id == self.case_id, EvidenceEntry.action == action).order_by(EvidenceEntry.seq))]

    def complete(self, key):
        with session_scope(self.rt.session_factory) as s:
            t = s.scalar(select(OffboardingTask).where(OffboardingTask.case_id == self.case_id,
                                                       OffboardingTask.item_key == key))
            t.status = "done"


def test_reminders_on_working_days_in_hours_once_per_day_and_escalation(committed_runtime):
    w = World(committed_runtime)
    # Tuesday 29 September, 10:00: the tasks due 30 September are within the two-working-day lead.
    res = plan_task_reminders(w.rt, at(2026, 9, 29))
    assert res.reminders > 0 and res.escalations == 0 and res.enqueued == res.reminders
    w.work()
    sent = w.outbox()
    phones = {m["phone"] for m in sent}
    assert phones == {HEAD_PHONE, IT_PHONE}  # dept head (研发部) and the IT duty; HR's task is due 15 October
    assert all(m["template"] == "task" for m in sent)
    it_titles = sorted(m["params"]["task"] for m in sent if m["phone"] == IT_PHONE)
    assert it_titles == sorted(["收回电脑等办公设备", "关闭邮箱、OA 与业务系统账号"])
    ev = w.evidence("task_reminder_sent")
    assert len(ev) == len(sent) and {e["channel"] for e in ev} == {"sms"}
    assert all(e["day"] == "2026-09-29" and e["provider_message_id"] for e in ev)
    # Again the same day: nothing new (one per task, owner and day), even if the job ran twice.
    assert plan_task_reminders(w.rt, at(2026, 9, 29, 15)).reminders == 0
    with session_scope(w.rt.session_factory) as s:
        rid = s.scalar(select(TaskReminder.id).limit(1))
    assert deliver_task_reminder(w.rt, rid) == "sent" and len(w.outbox()) == len(sent)
    # After hours and on a holiday nothing is planned.
    assert plan_task_reminders(w.rt, at(2026, 9, 29, 20)).reminders == 0
    r = plan_task_reminders(w.rt, at(2026, 10, 2))
    assert r.reminders == 0 and r.skipped_companies == [w.company_id]
    # A done task is no longer reminded.
    w.complete("return_equipment")
    # Thursday 8 October, the first working day after 国庆节: the tasks due 30 September are overdue.
    w.rt.redis.delete(OUTBOX_REDIS_KEY)
    res = plan_task_reminders(w.rt, at(2026, 10, 8))
    assert res.escalations > 0
    w.work()
    sent = w.outbox()
    titles_to_it = {m["params"]["task"] for m in sent if m["phone"] == IT_PHONE}
    assert "收回电脑等办公设备" not in titles_to_it and titles_to_it
    escalations = [m for m in sent if m["phone"] == SPEC_PHONE and "逾期" in m["params"]["due"]]
    assert escalations, sent
    with session_scope(w.rt.session_factory) as s:
        alerts = s.scalars(select(HrAlert).where(HrAlert.case_id == w.case_id, HrAlert.kind == "task_overdue")).all()
        assert alerts and all("已逾期" in a.message for a in alerts)
        n_alerts = len(alerts)
    esc = w.evidence("task_escalated")
    assert len(esc) == n_alerts and all(e["notify"] for e in esc)
    # Escalated once: the next working day brings only the task that became overdue then (停止发薪, due
    # the first working day after the last day: 8 October).
    assert plan_task_reminders(w.rt, at(2026, 10, 9)).escalations == 1
    with session_scope(w.rt.session_factory) as s:
        alerts = s.scalars(select(HrAlert).where(HrAlert.kind == "task_overdue")).all()
        assert len(alerts) == n_alerts + 1 and sum("停止发薪" in a.message for a in alerts) == 1


def test_cancelled_task_reminder_is_dropped_and_no_phone_is_recorded(committed_runtime):
    w = World(committed_runtime)
    with session_scope(w.rt.session_factory) as s:
        head = s.scalar(select(OffboardingTask.id).where(OffboardingTask.item_key == "handover_work"))
        s.scalar(select(HrUser).where(HrUser.username == "head")).phone_enc = None
    plan_task_reminders(w.rt, at(2026, 9, 29))
    w.complete("close_accounts")  # done between planning and sending
    w.work()
    assert ("reminder", date(2026, 9, 29), "no_channel", None) in w.rows(task_id=head)
    with session_scope(w.rt.session_factory) as s:
        closed = s.scalar(select(OffboardingTask.id).where(OffboardingTask.item_key == "close_accounts"))
    assert w.rows(task_id=closed) == [("reminder", date(2026, 9, 29), "dropped", None)]
    assert not any(m["params"]["task"].startswith("关闭邮箱") for m in w.outbox())


def test_lost_jobs_are_enqueued_again(committed_runtime):
    w = World(committed_runtime)
    plan_task_reminders(w.rt, at(2026, 9, 29))
    Queue(QUEUE, connection=w.rt.redis).empty()  # Redis lost the jobs
    for key in w.rt.redis.scan_iter("rq:job:task-reminder-*"):
        w.rt.redis.delete(key)
    w.work()
    assert w.outbox() == []
    # The next round (more than two minutes later) finds them pending without a job and enqueues them again.
    res = plan_task_reminders(w.rt, at(2030, 6, 3, 22))  # after hours: nothing new is planned, only recovery
    assert res.recovered > 0
    w.work()
    assert {m["phone"] for m in w.outbox()} == {HEAD_PHONE, IT_PHONE}
    assert {st for _, _, st, _ in w.rows()} == {"sent"}



def test_wecom_message_where_configured_else_sms(committed_runtime):
    w = World(committed_runtime)
    with WeComEmulator() as wecom:
        wecom.add_member("it_xiaoli")
        w.rt.override(wecom=ApiWeComClient(wecom.url, wecom.corp_id, wecom.secret, wecom.agent_id, w.rt.redis,
                                           timeout=3))
        try:
            with session_scope(w.rt.session_factory) as s:
                s.scalar(select(HrUser).where(HrUser.username == "it")).wecom_userid = "it_xiaoli"
                s.scalar(select(HrUser).where(HrUser.username == "head")).wecom_userid = "left_the_corp"
            plan_task_reminders(w.rt, at(2026, 9, 29))
            w.work()
            texts = [m for m in wecom.state.messages if m["touser"] == ["it_xiaoli"]]
            assert len(texts) == 2 and all("交接任务提醒" in m["content"] for m in texts)
            # The head's WeCom userid is unknown to WeCom: the reminder went by SMS instead.
            sms = w.outbox()
            assert {m["phone"] for m in sms} == {HEAD_PHONE}
            ev = w.evidence("task_reminder_sent")
            assert sorted(e["channel"] for e in ev) == sorted(["wecom"] * 2 + ["sms"] * len(sms))
            assert {st for _, _, st, _ in w.rows()} == {"sent"}
        finally:
            w.rt.reset("wecom")
