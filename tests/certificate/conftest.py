"""Certificate and closing fixtures: a case at final approval whose last day has passed (or not yet),
and poppler's pdfsig (the signing tests' checker)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from cases.clock import beijing_date, beijing_today
from cases.states import CaseAction
from qianli.services import cases as case_svc
from tests.signing.conftest import Pdfsig, pdfsig_fix, pdfsig_for  # noqa: F401 - the same fixtures


class EndWorld:
    def __init__(self, runtime, db_session, factory):
        self.rt, self.s, self.f = runtime, db_session, factory
        self.company = factory.company(name="示例科技有限公司")
        self.spec = factory.hr(self.company, "hr_specialist", username="spec")
        self.manager = factory.hr(self.company, "hr_manager", username="mgr")
        self.head = factory.hr(self.company, "dept_head", username="head", department="研发部")
        self.other_head = factory.hr(self.company, "dept_head", username="head2", department="市场部")
        self.auditor = factory.hr(self.company, "auditor", username="aud")

    def h(self, user):
        return self.f.hr_headers(user)

    def approved_case(self, *, last_day_offset: int = -1, employee=None, **employee_kw):
        """A case at final approval whose last day is ``last_day_offset`` days from today (Beijing)."""
        emp = employee or self.f.employee(self.company, **employee_kw)
        last_day = beijing_today() + timedelta(days=last_day_offset)
        arrived = datetime.combine(last_day - timedelta(days=31), datetime.min.time(), timezone.utc) + timedelta(hours=4)
        arrived = min(arrived, datetime.now(timezone.utc) - timedelta(minutes=1))
        if last_day <= beijing_date(arrived):
            arrived = datetime.now(timezone.utc) - timedelta(days=40)
        c = case_svc.open_case(self.s, self.rt.settings, employee=emp, source="miniprogram", notice_arrived_at=arrived,
                               actor=f"employee:{emp.id}", reason_category="compensation", reason_text="薪资不满意",
                               requested_last_day=last_day, handover_items=[{"item": "代码交接", "owner": "李四",
                                                                            "deadline": None}])
        case_svc.apply_action(self.s, c, CaseAction.SUBMIT_LETTER, actor=f"employee:{emp.id}")
        case_svc.apply_action(self.s, c, CaseAction.APPROVE_FINAL, actor=f"hr:{self.spec.id}")
        c.agreed_last_day = last_day
        self.s.commit()
        return c, emp


@pytest.fixture
def end(runtime, db_session, factory):
    return EndWorld(runtime, db_session, factory)


HIRED = date(2023, 3, 1)
