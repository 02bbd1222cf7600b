"""Leaving without notice: a company whose policy names the handbook clause, HR users of every role,
an employee who stopped coming, and helpers to walk the case over HTTP."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from cases.clock import SHANGHAI, beijing_today
from qianli.services.cases import company_calendar
from tests.signing.conftest import pdfsig_fix, pdfsig_for  # noqa: F401 - pdfsig fixtures for these tests

CLAUSE = {"reference": "《员工手册》第五章第十二条",
          "text": "员工连续旷工三个工作日及以上的，属于严重违反公司规章制度，公司可以解除劳动合同。"}


def last_working_days(session, company_id: str, n: int, *, before: date | None = None) -> list[date]:
    """The n working days up to ``before`` (default today), oldest first."""
    cal = company_calendar(session, company_id)
    d, out = before or beijing_today(), []
    while len(out) < n:
        if cal.is_working_day(d):
            out.append(d)
        d -= timedelta(days=1)
    return sorted(out)


def after_deadline(deadline: date) -> datetime:
    """10:00 Beijing time the day after the deadline (it ends at 24:00 of its day)."""
    return datetime.combine(deadline + timedelta(days=1), datetime.min.time().replace(hour=10),
                            SHANGHAI).astimezone(timezone.utc)


class AbsenceWorld:
    def __init__(self, runtime, db_session, factory, client, *, clause: bool = True):
        self.rt, self.s, self.f, self.client = runtime, db_session, factory, client
        self.company = factory.company(**({"absconding_handbook_clause": CLAUSE} if clause else {}))
        self.spec = factory.hr(self.company, "hr_specialist", username="spec")
        self.manager = factory.hr(self.company, "hr_manager", username="mgr")
        self.manager2 = factory.hr(self.company, "hr_manager", username="mgr2")
        self.head = factory.hr(self.company, "dept_head", username="head", department="研发部")
        self.other_head = factory.hr(self.company, "dept_head", username="head2", department="市场部")
        self.auditor = factory.hr(self.company, "auditor", username="aud")
        self.emp = factory.employee(self.company, department="研发部", name="王五", openid="openid-absent")
        self._headers: dict[str, dict[str, str]] = {}

    def h(self, user) -> dict[str, str]:
        if user.id not in self._headers:
            self._headers[user.id] = self.f.hr_headers(user)
        return self._headers[user.id]

    def relogin(self) -> None:
        """New HR sessions (after travelling in time the old ones have expired)."""
        self._headers.clear()

    @property
    def eh(self) -> dict[str, str]:
        return self.f.employee_headers(self.emp)

    def absent_days(self, n: int = 3) -> list[date]:
        return last_working_days(self.s, self.company.id, n)

    def confirm(self, **extra):
        days = self.absent_days()
        body = {"employee_id": self.emp.id, "absent_days": [d.isoformat() for d in days],
                "last_seen_on": (days[0] - timedelta(days=1)).isoformat(), "note": "电话无人接听", **extra}
        r = self.client.post("/api/v1/hr/departures", json=body, headers=self.h(self.spec))
        assert r.status_code == 201, r.json
        return r.json

    def serve(self, case_id: str):
        r = self.client.post(f"/api/v1/hr/cases/{case_id}/return-notice", headers=self.h(self.spec))
        assert r.status_code == 201, r.json
        return r.json

    def union(self, case_id: str, notified_at: datetime | None = None):
        r = self.client.post(f"/api/v1/hr/cases/{case_id}/union-notifications", headers=self.h(self.spec), json={
            "union_name": "示例科技有限公司工会委员会", "contact_name": "工会主席 赵六",
            "notified_at": (notified_at or datetime.now(timezone.utc)).isoformat(), "method": "written",
            "response": "", "objection": False})
        assert r.status_code == 201, r.json
        return r.json


@pytest.fixture
def world(runtime, db_session, factory, client):
    return AbsenceWorld(runtime, db_session, factory, client)
