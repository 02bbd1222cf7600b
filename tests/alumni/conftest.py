"""Alumni fixtures: a company with HR users of every role and a way to close a case."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from cases.alumni import CONSENT_TEXT_VERSION
from qianli.services.evidence import RequestMeta

META = RequestMeta(ip="127.0.0.1", user_agent="pytest")


class AlumniWorld:
    def __init__(self, runtime, session, factory):
        self.rt, self.s, self.f = runtime, session, factory
        self.company = factory.company(code=f"alumni{factory._next()}", name="千里科技有限公司")
        self.users = {role: factory.hr(self.company, role) for role in
                      ("hr_specialist", "hr_manager", "dept_head", "auditor")}

    def employee(self, name: str = "张三", department: str = "研发部", position: str = "工程师", **kw):
        return self.f.employee(self.company, name=name, department=department, position=position, **kw)

    def open_case(self, emp, *, reason: str = "family", last_day: date | None = None):
        from qianli.services.cases import open_case

        case = open_case(self.s, self.rt.settings, employee=emp, source="miniprogram",
                         notice_arrived_at=datetime.now(timezone.utc) - timedelta(days=40), actor=f"employee:{emp.id}",
                         reason_category=reason, reason_text="家庭原因",
                         requested_last_day=last_day or date.today() - timedelta(days=5))
        self.s.commit()
        return case

    def consent(self, emp, purposes=("greetings", "company_news", "job_openings")):
        from qianli.services.alumni import give_consent

        give_consent(self.s, company_id=emp.company_id, employee_id=emp.id, purposes=list(purposes),
                     text_version=CONSENT_TEXT_VERSION, meta=META)
        self.s.commit()

    def close(self, emp, case=None, *, reason: str = "family"):
        """What close_case does for this pool: the case closed, the employee deactivated, the hook."""
        from qianli.services.alumni import on_case_closed

        case = case or self.open_case(emp, reason=reason)
        case.state = "closed"
        emp.active = False
        result = on_case_closed(self.s, case, actor="hr:test", settings=self.rt.settings)
        self.s.commit()
        return case, result

    def alumnus(self, name: str, *, skills=(), tags=(), notes: str = "", grade: str | None = None,
                department: str = "研发部", eligible: bool | None = True, reason: str = "family",
                purposes=("greetings", "company_news", "job_openings"), phone: str | None = None):
        from qianli.services.alumni import update_alumnus

        emp = self.employee(name, department=department, phone=phone)
        if purposes:
            self.consent(emp, purposes)
        case, a = self.close(emp, reason=reason)
        if not purposes:
            return emp, a
        update_alumnus(self.s, a, actor="hr:test", role="hr_manager",
                       changes={"skills": list(skills), "tags": list(tags), "notes": notes,
                                "performance_grade": grade, "rehire_eligible": eligible})
        self.s.commit()
        return emp, a

    def headers(self, role: str):
        return self.f.hr_headers(self.users[role])


@pytest.fixture
def world(runtime, db_session, factory):
    return AlumniWorld(runtime, db_session, factory)
