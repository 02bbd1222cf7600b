"""Reminder fixtures: a really-committing database (workers read it), real Redis, real rq."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime

import pytest
from rq import Queue, SimpleWorker

from identity.sms import OUTBOX_REDIS_KEY
from qianli.db import session_scope
from qianli.models import Company, ReminderDelivery
from qianli.services import cases as case_svc
from qianli.services.auth import create_hr_user
from qianli.services.employees import create_employee
from qianli.services.reminders import QUEUE, on_case_opened, set_hr_phone
from qianli.settings import reset_settings_cache


class ReminderWorld:
    def __init__(self, rt):
        self.rt = rt
        self._n = 0

    def configure(self, **overrides):
        self.rt.settings = replace(self.rt.settings, **overrides)
        self.rt.reset()  # the adapters built from the old settings
        reset_settings_cache(self.rt.settings)

    def setup_company(self):
        with session_scope(self.rt.session_factory) as s:
            c = Company(code="rm", name="示例科技有限公司", policy={})
            s.add(c)
            s.flush()
            self.company_id = c.id
            spec = create_hr_user(s, company_id=c.id, username="spec", display_name="王芳", password="correct horse battery",
                                  role="hr_specialist")
            set_hr_phone(self.rt, spec, "13900139000")
            create_hr_user(s, company_id=c.id, username="head", display_name="赵部长", password="correct horse battery",
                           role="dept_head", department="研发部")
            create_hr_user(s, company_id=c.id, username="aud", display_name="审计", password="correct horse battery",
                           role="auditor")
            self.spec_id = spec.id
        return self

    def open_case(self, arrived: datetime, *, name="李雷", openid=None, department="研发部"):
        self._n += 1
        with session_scope(self.rt.session_factory) as s:
            emp = create_employee(s, self.rt, company_id=self.company_id, employee_no=f"E{self._n:03d}", name=name,
                                  phone=f"1380013{self._n:04d}", national_id="11010519491231002X", department=department,
                                  position="工程师", hire_date=None, probation_end=None, contract_term="")
            emp.wechat_openid = openid
            case = case_svc.open_case(s, self.rt.settings, employee=emp, source="instant_message",
                                      notice_arrived_at=arrived, actor="hr:test")
            on_case_opened(s, self.rt, case)
            return case.id, emp.id, f"1380013{self._n:04d}"

    def work(self):
        """Run every queued job in this process with a real rq worker (burst)."""
        q = Queue(QUEUE, connection=self.rt.redis)
        SimpleWorker([q], connection=self.rt.redis).work(burst=True, logging_level="WARNING")

    def outbox(self, phone=None):
        msgs = [json.loads(x) for x in self.rt.redis.lrange(OUTBOX_REDIS_KEY, 0, -1)]
        return [m for m in reversed(msgs) if phone is None or m["phone"] == phone]

    def deliveries(self, case_id):
        with session_scope(self.rt.session_factory) as s:
            rows = s.query(ReminderDelivery).filter_by(case_id=case_id).order_by(ReminderDelivery.slot).all()
            return [(r.slot, r.channel, r.status) for r in rows]


@pytest.fixture
def rworld(committed_runtime):
    return ReminderWorld(committed_runtime).setup_company()
