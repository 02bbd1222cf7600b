"""The early-warning pages in headless Chromium: HR uploads a WeCom daily report, previews it, confirms,
sees the red employee on the home page's panel and the 离职预警 board, and dismisses the false alarm."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from tests.browser.live import serve
from tests.browser.test_hr_calendar import PASSWORD, _login, browser  # noqa: F401 - the fixture

pytestmark = pytest.mark.browser


@pytest.fixture
def attrition_live(committed_runtime):
    from qianli.db import session_scope
    from qianli.models import Company
    from qianli.services.auth import create_hr_user
    from qianli.services.employees import create_employee

    rt = committed_runtime
    with session_scope(rt.session_factory) as s:
        company = Company(code="pw", name="浏览器测试有限公司", policy={})
        s.add(company)
        s.flush()
        create_hr_user(s, company_id=company.id, username="spec", display_name="钱专员", password=PASSWORD,
                       role="hr_specialist")
        for no, name in (("P001", "陈晓"), ("P002", "林一")):
            create_employee(s, rt, company_id=company.id, employee_no=no, name=name, phone=f"1390000{no[1:]}0",
                            department="研发部", position="工程师", hire_date=date(2023, 3, 1))
    with serve(rt) as base:
        yield base, rt


def test_import_preview_confirm_board_and_dismiss(attrition_live, browser, tmp_path: Path):  # noqa: F811
    from cases.clock import beijing_today
    from tests.attendance.support import csv_bytes, working_days

    base, rt = attrition_live
    today = beijing_today()
    days = working_days(today - timedelta(days=45), today - timedelta(days=1))
    lines = ["上下班打卡_日报", "姓名,工号,部门,日期,上班打卡时间,下班打卡时间,打卡结果"]
    for d in days:
        lines.append(f"林一,P002,研发部,{d.isoformat()},08:58,18:01,正常")
        gone = d in days[-3:]
        lines.append(f"陈晓,P001,研发部,{d.isoformat()},{'' if gone else '09:00'},,{'未打卡' if gone else '正常'}")
    path = tmp_path / "打卡日报.csv"
    path.write_bytes(csv_bytes(lines, encoding="gbk"))

    page = browser.new_page()
    _login(page, base, "spec")
    page.click("nav >> text=考勤导入")
    page.wait_for_url(f"{base}/hr/attendance")
    page.set_input_files("#attendance-form input[type=file]", str(path))
    page.click("#attendance-form button[type=submit]")
    page.wait_for_selector("#attendance-report")
    report = page.inner_text("#attendance-report")
    assert "预览" in report and f"将新增打卡记录 {2 * len(days)} 条" in report.replace("\n", "")
    page.click("#attendance-confirm button[type=submit]")
    page.wait_for_url(f"{base}/hr/attendance")
    assert "已导入" in page.inner_text("main") and "打卡日报.csv" in page.inner_text("#attendance-imports")

    page.goto(f"{base}/hr/")
    panel = page.inner_text("#attrition-panel")
    assert "陈晓" in panel and "连续 3 个工作日" in panel
    page.click("nav >> text=离职预警")
    page.wait_for_url(f"{base}/hr/attrition")
    row = page.locator("#risks tr[data-level=red]")
    assert row.count() == 1 and "陈晓" in row.inner_text()
    row.locator("input[name=reason]").fill("外地出差，已电话确认")
    row.locator("button[type=submit]").click()
    page.wait_for_url(f"{base}/hr/attrition")
    assert page.locator("#risks tr[data-level=red]").count() == 0
    assert "已标记误报：外地出差，已电话确认" in page.inner_text("#risks")
