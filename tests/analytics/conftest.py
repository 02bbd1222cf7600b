"""A hand-built departure world for the analytics tests, every number of which is counted by hand
in the tests (see HAND_COUNTS in test_departure_analytics.py).

Company A, cases with notices arriving in 2026 (Beijing dates):

=========  =======  ==============================================  =====
dept       month    reason x type                                   cases
=========  =======  ==============================================  =====
研发部     2026-01  career_development x4, compensation x2 (resig.)    6
研发部     2026-02  career_development x3, family x1 (resig.)          4
研发部     2026-04  compensation x5 (resig.), none x1 (absconding)     6
市场部     2026-01  compensation x3 (resig.), other x2 (agreement)     5
市场部     2026-04  career_development x6 (resig.)                     6
财务部     2026-02  family x2 (resig.)                                 2
=========  =======  ==============================================  =====

29 departures. Not counted: a withdrawn 研发部 case (2026-01), a 研发部 case whose notice arrived
2025-12-31 23:30 Beijing (before the period), company B's case, and two 研发部 absconding cases of
2026-04 that ended in a return to work and in a conversion to a resignation.

Letters (resignations; due = arrival + 3 days): 研发部 has 3 late (one sent 00:30 Beijing the day
after the due date, still the due date in UTC), 1 missing, 11 on time (one sent 23:30 Beijing on the
due date, the next day in UTC); 市场部 all 9 on time; 财务部 1 on time, 1 missing.

Closed (case_close evidence, whole days after the notice): 研发部 30, 31, 35, 40, 60; 市场部 33, 34.

Handover (first task created to last task done, whole days): 研发部 2, 3, 3, 5, 10 (and one case
with a task still open, not counted); 市场部 1, 4. Alumni marked re-hired: two of 研发部, one of 市场部.

Letter reminders sent (slot >= 1, each slot once): 研发部's missing letter slots 1, 2, 3 (slot 1 on
both channels; slot 0, the notice, not counted), one late letter slot 1 (its slot 2 failed);
财务部's missing letter slots 1, 2; the withdrawn case slot 1 (not counted).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

import pytest

from cases.clock import SHANGHAI
from cases.evidence_kinds import EvidenceKind

NOW = datetime(2026, 7, 15, 4, 0, tzinfo=timezone.utc)


@dataclass
class Spec:
    dept: str
    arrival: date
    reason: str | None
    dtype: str = "resignation"
    letter: str | None = "ontime"  # ontime | ontime_2330 | late | late_0030 | missing | None (no letter)
    state: str = "submitted"
    close_days: int | None = None
    reminders: tuple[tuple[int, str, str], ...] = ()
    handover_days: int | None = None  # tasks: one done this many days after the first was created, one cancelled
    handover_open: bool = False  # plus a task still open (the handover is not complete)
    alumnus: str | None = None  # None, "pool" or "rehired"


def _specs() -> list[Spec]:
    s: list[Spec] = []
    rd, mk, fi = "研发部", "市场部", "财务部"
    jan, feb, apr = date(2026, 1, 12), date(2026, 2, 9), date(2026, 4, 13)
    # 研发部 2026-01: career x4, compensation x2
    s += [Spec(rd, jan, "career_development", letter="late", reminders=((1, "wechat", "sent"), (2, "sms", "failed"))),
          Spec(rd, jan, "career_development", letter="late_0030"),
          Spec(rd, jan, "career_development", letter="ontime_2330", state="closed", close_days=30, handover_days=2,
               alumnus="rehired"),
          Spec(rd, jan, "career_development", state="closed", close_days=31, handover_days=3, alumnus="rehired"),
          Spec(rd, jan, "compensation", state="closed", close_days=35, handover_days=3, alumnus="pool"),
          Spec(rd, jan, "compensation", state="closed", close_days=40, handover_days=5)]
    # 研发部 2026-02: career x3, family x1
    s += [Spec(rd, feb, "career_development", state="closed", close_days=60, handover_days=10),
          Spec(rd, feb, "career_development", letter="late", state="approved", handover_days=1, handover_open=True),
          Spec(rd, feb, "career_development"),
          Spec(rd, feb, "family", letter="missing", state="awaiting_letter",
               reminders=((0, "wechat", "sent"), (1, "wechat", "sent"), (1, "sms", "sent"), (2, "wechat", "sent"),
                          (3, "sms", "sent")))]
    # 研发部 2026-04: compensation x5, one absconding without a reason
    s += [Spec(rd, apr, "compensation") for _ in range(5)]
    s += [Spec(rd, apr, None, dtype="absconding", letter=None, state="approved")]
    # 市场部 2026-01: compensation x3, other x2 (agreement)
    s += [Spec(mk, jan, "compensation", state="closed", close_days=33, handover_days=1, alumnus="rehired"),
          Spec(mk, jan, "compensation", state="closed", close_days=34, handover_days=4),
          Spec(mk, jan, "compensation")]
    s += [Spec(mk, jan, "other", dtype="agreement", letter=None, state="approved") for _ in range(2)]
    # 市场部 2026-04: career x6
    s += [Spec(mk, apr, "career_development") for _ in range(6)]
    # 财务部 2026-02: family x2
    s += [Spec(fi, feb, "family"),
          Spec(fi, feb, "family", letter="missing", state="awaiting_letter",
               reminders=((1, "wechat", "sent"), (2, "wechat", "sent")))]
    return s


def _at(d: date, hh: int, mm: int = 0) -> datetime:
    """``d`` at hh:mm Beijing time, as aware UTC."""
    return datetime.combine(d, time(hh, mm), SHANGHAI).astimezone(timezone.utc)


@pytest.fixture
def world(factory, db_session, runtime):
    from qianli.models import Alumnus, OffboardingTask, ReminderDelivery, ResignationCase
    from qianli.services.evidence import append_evidence

    s = db_session
    a, b = factory.company("anal-a", name="分析科技有限公司"), factory.company("anal-b", name="别家公司")
    n = {"i": 0}

    def add(company, spec: Spec, *, state: str | None = None, arrived_at: datetime | None = None):
        n["i"] += 1
        emp = factory.employee(company, employee_no=f"A{n['i']:03d}", name=f"员工{n['i']}", department=spec.dept)
        arrived = arrived_at or _at(spec.arrival, 10)
        due = spec.arrival + timedelta(days=3)
        submitted = {"ontime": _at(due - timedelta(days=1), 9), "ontime_2330": _at(due, 23, 30),
                     "late": _at(due + timedelta(days=2), 9), "late_0030": _at(due + timedelta(days=1), 0, 30),
                     "missing": None, None: None}[spec.letter]
        case = ResignationCase(company_id=company.id, employee_id=emp.id, state=state or spec.state,
                               source="miniprogram", notice_arrived_at=arrived,
                               arrival_date=arrived.astimezone(SHANGHAI).date(), probation=False,
                               reason_category=spec.reason, reason_text="", earliest_lawful_last_day=spec.arrival
                               + timedelta(days=30), letter_due_date=due, letter_submitted_at=submitted,
                               created_by=f"employee:{emp.id}", departure_type=spec.dtype)
        s.add(case)
        s.flush()
        if spec.close_days is not None:
            append_evidence(s, case, "hr:test", EvidenceKind.CASE_CLOSE, {"from": "approved", "to": "closed"},
                            occurred_at=arrived + timedelta(days=spec.close_days, hours=2))
        if spec.handover_days is not None:
            started = arrived + timedelta(days=20)
            tasks = [("done", started + timedelta(days=spec.handover_days, hours=1)), ("cancelled", None)]
            if spec.handover_open:
                tasks.append(("open", None))
            for k, (status, done_at) in enumerate(tasks):
                s.add(OffboardingTask(company_id=company.id, case_id=case.id, employee_id=emp.id, item_key=f"t{k}",
                                      source="template", departure_type=spec.dtype, template_version=1, group="work",
                                      title=f"任务{k}", last_day=spec.arrival + timedelta(days=30),
                                      due_date=spec.arrival + timedelta(days=30), status=status, completed_at=done_at,
                                      created_by="hr:test", created_at=started + timedelta(minutes=k)))
        if spec.alumnus:
            s.add(Alumnus(company_id=company.id, employee_id=emp.id, case_id=case.id, department=spec.dept,
                          rehired_at=NOW if spec.alumnus == "rehired" else None))
        for slot, channel, status in spec.reminders:
            s.add(ReminderDelivery(company_id=company.id, case_id=case.id, slot=slot, channel=channel, kind="reminder",
                                   status=status, scheduled_for=arrived + timedelta(days=slot)))
        return case

    for spec in _specs():
        add(a, spec)
    # not counted: withdrawn, arrived in December (Beijing), another company
    add(a, Spec("研发部", date(2026, 1, 12), "career_development", reminders=((1, "wechat", "sent"),)), state="withdrawn")
    add(a, Spec("研发部", date(2025, 12, 31), "career_development"), arrived_at=_at(date(2025, 12, 31), 23, 30))
    add(b, Spec("研发部", date(2026, 1, 12), "career_development"))
    add(a, Spec("研发部", date(2026, 4, 13), None, dtype="absconding", letter=None), state="returned_to_work")
    add(a, Spec("研发部", date(2026, 4, 13), None, dtype="absconding", letter=None), state="converted_to_resignation")
    s.commit()
    users = {role: factory.hr(a, role, username=f"u-{role}") for role in ("hr_specialist", "hr_manager", "auditor")}
    users["dept_head"] = factory.hr(a, "dept_head", username="u-head", department="研发部")
    users["foreign"] = factory.hr(b, "hr_manager", username="u-foreign")
    return {"a": a, "b": b, "users": users}
