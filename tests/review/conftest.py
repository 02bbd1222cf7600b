"""Review fixtures: a company with HR users of every role and helpers to put cases in a state."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from cases.clock import beijing_date
from cases.states import CaseAction
from qianli.services import cases as case_svc
from tests.signing_support import sign_case


class ReviewWorld:
    def __init__(self, runtime, db_session, factory):
        self.rt, self.s, self.f = runtime, db_session, factory
        self.company = factory.company()
        self.spec = factory.hr(self.company, "hr_specialist", username="spec")
        self.head = factory.hr(self.company, "dept_head", username="head", department="研发部")
        self.other_head = factory.hr(self.company, "dept_head", username="head2", department="市场部")
        self.manager = factory.hr(self.company, "hr_manager", username="mgr")
        self.auditor = factory.hr(self.company, "auditor", username="aud")

    def h(self, user):
        return self.f.hr_headers(user)

    def case(self, *, employee=None, department="研发部", arrived: datetime | None = None, submit: bool = True,
             requested_last_day: date | None = None, name="张三", company=None, signed: bool = False):
        """A case; ``submit`` marks the letter submitted, ``signed`` really signs it (B-LTA, needed for the
        countersignature on final approval)."""
        company = company or self.company
        emp = employee or self.f.employee(company, department=department, name=name)
        arrived = arrived or datetime.now(timezone.utc) - timedelta(days=1)
        arrival = beijing_date(arrived)
        c = case_svc.open_case(self.s, self.rt.settings, employee=emp, source="miniprogram", notice_arrived_at=arrived,
                               actor=f"employee:{emp.id}", reason_category="career_development", reason_text="个人发展",
                               requested_last_day=requested_last_day or arrival + timedelta(days=40),
                               handover_items=[{"item": "代码仓库权限", "owner": "李四", "deadline": None}])
        if signed:
            self.s.commit()
            sign_case(self.s, self.rt, c, emp)
        elif submit:
            case_svc.apply_action(self.s, c, CaseAction.SUBMIT_LETTER, actor=f"employee:{emp.id}")
        self.s.commit()
        return c, emp


@pytest.fixture
def world(runtime, db_session, factory):
    return ReviewWorld(runtime, db_session, factory)
