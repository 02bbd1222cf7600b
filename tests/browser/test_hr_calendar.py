"""The holiday-schedule page in headless Chromium: the HR manager enters the 2027 schedule through the
form; the open case that relied on the law's estimate is recomputed and the page says so (issue 14)."""

from __future__ import annotations

import json
import os
import shutil
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from tests.browser.live import serve
import time_machine

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("QIANLI_CHROMIUM", "/usr/bin/chromium")
PASSWORD = "correct horse battery"
SCHEDULE_2027 = json.loads((Path(__file__).resolve().parents[1] / "fixtures" / "holidays" / "schedule-2027-test.json")
                           .read_text(encoding="utf-8"))


@pytest.fixture
def browser():
    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} missing: run scripts/install-system.sh (Debian package chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"])
        try:
            yield b
        finally:
            b.close()


def _login(page, base, username):
    page.goto(f"{base}/hr/")
    page.fill("#company_code", "pw")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/hr/")


@pytest.fixture
def calendar_live(committed_runtime):
    from cases.clock import SHANGHAI
    from qianli.db import session_scope
    from qianli.models import Company
    from qianli.services.auth import create_hr_user
    from qianli.services.cases import open_case
    from qianli.services.employees import create_employee

    rt = committed_runtime
    with session_scope(rt.session_factory) as s:
        company = Company(code="pw", name="浏览器测试有限公司", policy={})
        s.add(company)
        s.flush()
        create_hr_user(s, company_id=company.id, username="mgr", display_name="赵经理", password=PASSWORD,
                       role="hr_manager")
        emp = create_employee(s, rt, company_id=company.id, employee_no="P010", name="陈晓", phone="13900000100",
                              department="研发部", position="工程师", hire_date=date(2023, 3, 1))
        arrived = datetime(2027, 2, 3, 10, 0, tzinfo=SHANGHAI).astimezone(timezone.utc)
        with time_machine.travel(arrived, tick=False):
            case = open_case(s, rt.settings, employee=emp, source="instant_message", notice_arrived_at=arrived,
                             actor="hr:test")
        case_id = case.id
    with serve(rt) as base:
        yield base, rt, case_id


def test_manager_enters_the_2027_schedule(calendar_live, browser):
    base, rt, case_id = calendar_live
    page = browser.new_page()
    _login(page, base, "mgr")
    page.goto(f"{base}/hr/cases/{case_id}")
    assert "2027-02-12（暂定" in page.inner_text("main")
    page.click("nav >> text=节假日安排")
    page.wait_for_url(f"{base}/hr/calendar")
    assert "2027-02-05 春节" in page.inner_text("#statutory")
    page.fill("input[name=source]", SCHEDULE_2027["source"])
    page.fill("textarea[name=holidays]", "\n".join(f"{h['name']} {h['first']} {h['last']}" for h in SCHEDULE_2027["holidays"]))
    page.fill("textarea[name=workdays]", "\n".join(f"{w['name']} {w['date']}" for w in SCHEDULE_2027["workdays"]))
    page.click("#schedule-form button[type=submit]")
    page.wait_for_selector("#import-result")
    result = page.inner_text("#import-result")
    assert "2027-02-12（暂定） → 2027-02-15" in result and "已通知员工" in result
    assert "2027" in page.inner_text("#schedules")
    page.click("#import-result a")
    page.wait_for_url(f"**/hr/cases/{case_id}")
    text = page.inner_text("main")
    assert "2027-02-15" in text and "2027-02-15（暂定" not in text
    assert "按公布的节假日安排重新计算日期" in text  # the timeline shows the evidence entry
