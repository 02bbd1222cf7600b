"""The alumni console in headless Chromium: the specialist searches in Chinese and edits a profile
without ever seeing the grade; the manager sees it in the table, the profile and the export."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta, timezone

import pytest

from tests.browser.live import serve
from tests.browser.test_hr_console import PASSWORD, browser  # noqa: F401 - the Chromium fixture

pytestmark = pytest.mark.browser


@pytest.fixture
def live_pool(committed_runtime):
    from cases.alumni import CONSENT_TEXT_VERSION
    from qianli.db import session_scope
    from qianli.models import Company
    from qianli.services.alumni import give_consent, on_case_closed, update_alumnus
    from qianli.services.auth import create_hr_user
    from qianli.services.cases import open_case
    from qianli.services.employees import create_employee
    from qianli.services.evidence import RequestMeta

    rt = committed_runtime
    with session_scope(rt.session_factory) as s:
        company = Company(code="pw", name="浏览器测试有限公司", policy={})
        s.add(company)
        s.flush()
        create_hr_user(s, company_id=company.id, username="spec", display_name="李敏（人事专员）", password=PASSWORD,
                       role="hr_specialist")
        create_hr_user(s, company_id=company.id, username="mgr", display_name="赵蕾（人事经理）", password=PASSWORD,
                       role="hr_manager")
        for no, name, notes, grade in (("A1", "周芳", "华东区域销售经理，带过十人团队", "A"), ("A2", "郑洁", "经营数据分析", "C")):
            emp = create_employee(s, rt, company_id=company.id, employee_no=no, name=name, phone=f"139000000{no[1:]}0",
                                  department="市场部", position="销售经理", hire_date=date(2021, 3, 1))
            give_consent(s, company_id=company.id, employee_id=emp.id, purposes=["job_openings"],
                         text_version=CONSENT_TEXT_VERSION, meta=RequestMeta())
            arrived = datetime.now(timezone.utc) - timedelta(days=40)
            case = open_case(s, rt.settings, employee=emp, source="miniprogram", notice_arrived_at=arrived,
                             actor=f"employee:{emp.id}", reason_category="family", reason_text="家庭原因",
                             requested_last_day=arrived.date() + timedelta(days=31))
            case.state, emp.active = "closed", False
            a = on_case_closed(s, case, settings=rt.settings)
            update_alumnus(s, a, actor="hr:seed", role="hr_manager",
                           changes={"skills": ["销售管理"], "notes": notes, "performance_grade": grade})
    with serve(rt) as base:
        yield base


def _login(page, base, username):
    page.goto(f"{base}/hr/login")
    page.fill("#company_code", "pw")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/hr/")


def _export_csv(page, base) -> list[list[str]]:
    """The console's CSV export link, fetched with the browser's own session (its cookie)."""
    resp = page.request.get(base + page.get_attribute("#export-csv", "href"))
    assert resp.status == 200, resp.text()
    return list(csv.reader(io.StringIO(resp.body().decode("utf-8-sig"))))


def test_alumni_search_profile_and_grade_by_role(live_pool, browser, tmp_path):  # noqa: F811 - fixture
    base = live_pool
    errors: list[str] = []
    for username, manager in (("spec", False), ("mgr", True)):
        context = browser.new_context(accept_downloads=True, locale="zh-CN")
        page = context.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        _login(page, base, username)
        page.click("text=离职人才库")
        page.wait_for_url(f"{base}/hr/alumni/")
        assert page.locator("#alumni tbody tr[data-alumnus]").count() == 2
        page.fill("input[name=q]", "区域销售")
        page.click("#alumni-search button[type=submit]")
        page.wait_for_url("**q=**")
        rows = page.locator("#alumni tbody tr[data-alumnus]")
        assert rows.count() == 1 and "周芳" in rows.inner_text()
        assert ("绩效等级" in page.inner_text("#alumni thead")) is manager
        assert (page.locator("#grade-filter").count() == 1) is manager
        header = _export_csv(page, base)[0]
        assert ("绩效等级" in header) is manager
        page.click("#alumni tbody a")
        assert (page.locator("#grade").count() == 1) is manager
        assert (page.locator("select[name=performance_grade]").count() == 1) is manager
        if not manager:
            page.fill("input[name=tags]", "返聘优先")
            page.click("#alumnus-edit button[type=submit]")
            assert "人才档案已更新" in page.inner_text("main")
            assert page.input_value("input[name=tags]") == "返聘优先"
            assert "绩效" not in page.inner_text("main")
        else:
            assert "A（优秀）" in page.inner_text("#grade")
        context.close()
    assert errors == []
