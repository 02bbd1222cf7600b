"""The roster may carry each employee's WeCom userid (企业微信ID): set on import, kept when the column
is absent or blank, refused when malformed."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from qianli.models import Employee
from qianli.services.roster import RosterRejected, import_roster

HEADER = "工号,姓名,部门,职位,入职日期,手机号,企业微信ID"


def _csv(*rows: str, header: str = HEADER) -> bytes:
    return ("\r\n".join([header, *rows]) + "\r\n").encode()


def _emp(db_session, company, no):
    return db_session.scalar(select(Employee).where(Employee.company_id == company.id, Employee.employee_no == no))


def test_roster_sets_and_keeps_wecom_userids(db_session, runtime, factory):
    company = factory.company()
    import_roster(db_session, runtime, company_id=company.id, data=_csv(
        "W001,张三,研发部,工程师,2023-03-01,13800138001,zhangsan",
        "W002,李四,市场部,经理,2022-01-10,13800138002,"))
    assert _emp(db_session, company, "W001").wecom_userid == "zhangsan"
    assert _emp(db_session, company, "W002").wecom_userid is None
    # a later file without the column (or with a blank cell) keeps it; a new value replaces it
    report = import_roster(db_session, runtime, company_id=company.id, data=_csv(
        "W001,张三,研发部,工程师,2023-03-01,13800138001", header="工号,姓名,部门,职位,入职日期,手机号"))
    assert report.unchanged == 1 and _emp(db_session, company, "W001").wecom_userid == "zhangsan"
    report = import_roster(db_session, runtime, company_id=company.id, data=_csv(
        "W001,张三,研发部,工程师,2023-03-01,13800138001,zhang.san@corp"))
    assert report.updated == 1 and _emp(db_session, company, "W001").wecom_userid == "zhang.san@corp"


def test_malformed_wecom_userid_is_a_row_error(db_session, runtime, factory):
    company = factory.company()
    with pytest.raises(RosterRejected) as exc:
        import_roster(db_session, runtime, company_id=company.id, data=_csv(
            "W003,王五,研发部,工程师,2023-03-01,13800138003,王五 wecom"))
    [err] = exc.value.report.errors
    assert err.code == "invalid_wecom_userid" and err.field == "wecom_userid"
