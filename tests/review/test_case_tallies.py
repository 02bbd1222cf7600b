"""case_tallies (the HR queue's stored counts) stay equal to the cases, and listCases' totals stay exact."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select, text

from cases.states import CaseAction
from qianli.models import CaseTally, Employee, ResignationCase
from qianli.services import cases as case_svc


def tallies(s) -> dict[tuple[str, str, str, str], int]:
    s.expire_all()
    return {(t.company_id, t.department, t.state, t.departure_type): t.n
            for t in s.scalars(select(CaseTally)) if t.n != 0}


def counted(s) -> dict[tuple[str, str, str, str], int]:
    rows = s.execute(select(ResignationCase.company_id, Employee.department, ResignationCase.state,
                            ResignationCase.departure_type, func.count())
                     .join(Employee, Employee.id == ResignationCase.employee_id)
                     .group_by(ResignationCase.company_id, Employee.department, ResignationCase.state,
                               ResignationCase.departure_type)).all()
    return {(c, d, st, t): n for c, d, st, t, n in rows}


def test_tallies_follow_every_insert_move_department_change_and_delete(world, db_session, factory):
    s = db_session
    now = datetime.now(timezone.utc)
    a, emp_a = world.case(department="研发部", submit=False, arrived=now - timedelta(days=20))
    b, _ = world.case(department="研发部")
    c, emp_c = world.case(department="市场部", submit=False)
    other_company = factory.company()
    world.case(company=other_company, department="研发部")
    assert tallies(s) == counted(s) and sum(counted(s).values()) == 4
    assert tallies(s)[(world.company.id, "研发部", "awaiting_letter", "resignation")] == 1

    case_svc.apply_action(s, a, CaseAction.SUBMIT_LETTER, actor=f"employee:{emp_a.id}")  # awaiting -> submitted
    s.commit()
    assert tallies(s) == counted(s)
    assert tallies(s)[(world.company.id, "研发部", "submitted", "resignation")] == 2

    c.departure_type = "agreement"
    s.commit()
    assert tallies(s) == counted(s)

    emp_c.department = "研发部"  # the employee moves: their cases move with them
    s.commit()
    assert tallies(s) == counted(s)
    assert (world.company.id, "市场部", "awaiting_letter", "agreement") not in tallies(s)

    stray = ResignationCase(company_id=world.company.id, employee_id=emp_a.id, state="closed", source="miniprogram",
                            notice_arrived_at=now, arrival_date=now.date(), earliest_lawful_last_day=now.date(),
                            letter_due_date=now.date(), created_by="test")
    s.add(stray)
    s.commit()
    assert tallies(s)[(world.company.id, "研发部", "closed", "resignation")] == 1
    s.delete(stray)
    s.commit()
    assert tallies(s) == counted(s)
    assert b.state == "submitted"


def _total(client, headers, query=""):
    r = client.get(f"/api/v1/hr/cases?page_size=100{query}", headers=headers)
    assert r.status_code == 200, r.json
    return r.json["total"], len(r.json["items"])


def test_list_totals_are_exact_under_every_filter(client, world, db_session):
    now = datetime.now(timezone.utc)
    world.case(department="研发部", submit=False, arrived=now - timedelta(days=20))  # overdue
    world.case(department="研发部", submit=False, arrived=now - timedelta(days=21))  # overdue
    world.case(department="研发部")
    world.case(department="市场部", submit=False, arrived=now - timedelta(days=20))  # overdue
    world.case(department="市场部")
    agreement, _ = world.case(department="市场部", submit=False)
    agreement.departure_type = "agreement"
    db_session.commit()
    spec, head = world.h(world.spec), world.h(world.head)
    for query in ("", "&overdue=true", "&overdue=false", "&state=submitted", "&state=awaiting_letter&overdue=false",
                  "&department=研发部", "&department=市场部&overdue=false", "&departure_type=agreement",
                  "&departure_type=resignation&state=awaiting_letter", "&department=无此部门", "&q=张"):
        total, items = _total(client, spec, query)
        assert total == items, query  # everything fits on one page: the total is the count of what is listed
    assert _total(client, spec)[0] == 6
    assert _total(client, spec, "&overdue=true")[0] == 3
    assert _total(client, spec, "&overdue=false")[0] == 3
    assert _total(client, spec, "&department=市场部&overdue=false")[0] == 2
    assert _total(client, head) == (3, 3)  # a department head: 研发部 only
    assert _total(client, head, "&overdue=false") == (1, 1)
    assert _total(client, head, "&department=市场部") == (0, 0)
    page = client.get("/api/v1/hr/cases?page=2&page_size=4", headers=spec).json
    assert page["total"] == 6 and len(page["items"]) == 2


def test_recount_cli_repairs_the_tallies(runtime, world, db_session):
    from click.testing import CliRunner

    from qianli.cli import cli

    world.case(department="研发部")
    world.case(department="市场部", submit=False)
    db_session.execute(text("UPDATE case_tallies SET n = n + 7"))
    db_session.commit()
    assert tallies(db_session) != counted(db_session)
    r = CliRunner().invoke(cli, ["db", "recount-cases"])
    assert r.exit_code == 0, r.output
    assert "2 cases counted (2 in resignation_cases)" in r.output
    assert tallies(db_session) == counted(db_session)
