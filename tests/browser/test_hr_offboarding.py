"""The offboarding console pages in Debian's headless Chromium (Playwright): the IT duty holder finds their
tasks under 我的任务 and completes one with a note and an attachment; the HR manager edits the template;
the specialist reads the case's task board."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from tests.browser.live import serve
from tests.browser.test_hr_console import CHROMIUM, PASSWORD, browser  # noqa: F401 - the browser fixture

pytestmark = pytest.mark.browser


@pytest.fixture
def live(committed_runtime, tmp_path):
    from qianli.db import session_scope
    from qianli.models import Company
    from qianli.services.auth import create_hr_user
    from qianli.services.cases import open_case
    from qianli.services.employees import create_employee
    from qianli.services.offboarding import start_offboarding

    rt = committed_runtime
    with session_scope(rt.session_factory) as s:
        company = Company(code="pw", name="浏览器测试有限公司", policy={})
        s.add(company)
        s.flush()
        for username, name, role, dept in (("spec", "李敏", "hr_specialist", None), ("mgr", "赵经理", "hr_manager", None),
                                           ("it", "IT 小王", "auditor", None)):
            u = create_hr_user(s, company_id=company.id, username=username, display_name=name, password=PASSWORD,
                               role=role, department=dept)
            if username == "it":
                u.task_roles = ["it"]
        emp = create_employee(s, rt, company_id=company.id, employee_no="P001", name="陈晓", phone="13900000010",
                              department="研发部", position="工程师", hire_date=date(2023, 3, 1))
        arrived = datetime.now(timezone.utc) - timedelta(days=2)
        case = open_case(s, rt.settings, employee=emp, source="miniprogram", notice_arrived_at=arrived,
                         actor=f"employee:{emp.id}", reason_category="career_development", reason_text="个人发展",
                         requested_last_day=arrived.date() + timedelta(days=45),
                         handover_items=[{"item": "代码仓库权限", "owner": "李四", "deadline": None}])
        case.state = "approved"
        s.flush()
        start_offboarding(s, rt, case, actor="system:test")
        case_id = case.id
    with serve(rt) as base:
        yield base, rt, case_id


def _login(page, base, username):
    page.goto(f"{base}/hr/login")
    page.fill("#company_code", "pw")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/hr/")


def _logout(page):
    page.click("header .who button")
    page.wait_for_url("**/hr/login**")


def test_my_tasks_complete_with_attachment_template_edit_and_board(live, browser, tmp_path):  # noqa: F811
    base, rt, case_id = live
    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    page.on("dialog", lambda d: d.accept())
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))

    _login(page, base, "it")
    page.click("#nav-my-tasks")
    page.wait_for_url("**/hr/tasks")
    rows = page.locator("#my-tasks tbody tr[data-task-id]")
    assert rows.count() == 2
    text = page.inner_text("#my-tasks")
    assert "收回电脑等办公设备" in text and "关闭邮箱、OA 与业务系统账号" in text and "陈晓" in text
    row = rows.filter(has_text="收回电脑等办公设备")
    row.locator("details.complete summary").click()
    row.locator("textarea[name=note]").fill("电脑已收回，资产编号 IT-0042")
    receipt = tmp_path / "receipt.pdf"
    receipt.write_bytes(b"%PDF-1.4\n% signed receipt\n")
    row.locator("input[name=attachment]").set_input_files(str(receipt))
    row.locator("button[type=submit]").click()
    page.wait_for_load_state()
    assert "已完成" in page.inner_text("main")
    assert page.locator("#my-tasks tbody tr[data-task-id]").count() == 1  # the open list no longer has it
    page.select_option("#task-filters select[name=status]", "done")
    page.wait_for_url("**status=done**")
    assert "收回电脑等办公设备" in page.inner_text("#my-tasks")
    _logout(page)

    # The manager edits the template: a new version.
    _login(page, base, "mgr")
    page.goto(f"{base}/hr/offboarding-templates")
    assert "产品默认模板" in page.inner_text("#template-version")
    page.fill("input[name=title_0]", "工作交接确认（含客户资料）")
    page.fill("input[name=offset_0]", "x")
    page.click("#template-save")
    page.wait_for_selector("#template-error")
    assert "offset" in page.inner_text("#template-error")
    page.fill("input[name=offset_0]", "-1")
    page.fill("#template-comment", "交接提前一天")
    page.click("#template-save")
    page.wait_for_selector("text=模板已保存为第 1 版")
    assert "第 1 版" in page.inner_text("#template-version")
    assert page.input_value("input[name=title_0]") == "工作交接确认（含客户资料）"
    _logout(page)

    # The specialist reads the board: done with who, note and attachment; the rest open.
    _login(page, base, "spec")
    page.goto(f"{base}/hr/cases/{case_id}/tasks")
    done = page.locator("tr[data-key='return_equipment']")
    assert done.get_attribute("data-status") == "done"
    assert "IT 小王" in done.inner_text() and "IT-0042" in done.inner_text() and "task-return_equipment.pdf" in done.inner_text()
    assert page.locator("tr[data-status='open']").count() == 9
    assert "代码仓库权限" in page.inner_text("section[data-group='work_handover']")
    assert errors == []
    context.close()
