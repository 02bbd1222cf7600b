"""``qianli dev seed``: a demo company for development — refused outside development/test.

Creates company ``demo`` (示例科技有限公司) with HR logins (passwords printed once, development
only) and a few employees, idempotently, so `make run` and `qianli demo` have someone to work with.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import click
from sqlalchemy import select

from qianli.db import session_scope
from qianli.models import Company, HrUser
from qianli.runtime import get_runtime
from qianli.services.auth import create_hr_user
from qianli.services.employees import create_employee, find_employee

__all__ = ["dev_group", "seed_demo", "DEMO_COMPANY", "DEMO_HR_PASSWORD", "DEMO_EMPLOYEES"]

DEMO_COMPANY = ("demo", "示例科技有限公司")
DEMO_HR_PASSWORD = "qianli-dev-password"  # development only; production has no seed
DEMO_HR = [("hr", "李敏（人事专员）", "hr_specialist", None), ("head", "王强（研发部负责人）", "dept_head", "研发部"),
           ("manager", "赵蕾（人事经理）", "hr_manager", None)]
DEMO_EMPLOYEES: list[dict[str, Any]] = [
    dict(employee_no="E1001", name="陈晓", phone="13800138001", national_id="11010519491231002X", department="研发部",
         position="前端工程师", hire_date=date(2023, 3, 1), probation_end=date(2023, 8, 31), contract_term="2023-03-01至2026-02-28"),
    dict(employee_no="E1002", name="刘洋", phone="13800138002", national_id="440524188001010014", department="研发部",
         position="测试工程师", hire_date=date(2026, 9, 1), probation_end=date(2026, 11, 30), contract_term="2026-09-01至2029-08-31"),
]


def seed_demo() -> dict:
    rt = get_runtime()
    if not rt.settings.allows_dev_backends:
        raise click.ClickException("dev seed is for development and test only")
    out: dict[str, Any] = {"company": DEMO_COMPANY[0], "hr_password": DEMO_HR_PASSWORD, "hr_users": [], "employees": []}
    with session_scope(rt.session_factory) as s:
        company = s.scalar(select(Company).where(Company.code == DEMO_COMPANY[0]))
        if company is None:
            company = Company(code=DEMO_COMPANY[0], name=DEMO_COMPANY[1], policy={})
            s.add(company)
            s.flush()
        for username, name, role, dept in DEMO_HR:
            if not s.scalar(select(HrUser.id).where(HrUser.company_id == company.id, HrUser.username == username)):
                create_hr_user(s, company_id=company.id, username=username, display_name=name,
                               password=DEMO_HR_PASSWORD, role=role, department=dept)
            out["hr_users"].append({"username": username, "role": role})
        for e in DEMO_EMPLOYEES:
            try:
                find_employee(s, company_id=company.id, employee_no=e["employee_no"])
            except Exception:  # noqa: BLE001 - NotFound: create it
                create_employee(s, rt, company_id=company.id, **e)
            out["employees"].append({"employee_no": e["employee_no"], "name": e["name"], "phone": e["phone"]})
    return out


@click.group("dev", help="Development helpers (refused in production).")
def dev_group() -> None:
    pass


@dev_group.command("seed", help="Create the demo company, HR logins and employees (idempotent).")
def seed_command() -> None:
    click.echo(json.dumps(seed_demo(), ensure_ascii=False, indent=2))
