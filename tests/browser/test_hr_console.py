"""The HR console end to end in Debian's headless Chromium, driven by Playwright.

The real app is served by werkzeug on a free loopback port (a thread of this process) over a
committed database and real Redis. Playwright never downloads a browser: it launches
``/usr/bin/chromium`` (installed by scripts/install-system.sh). The test logs in as the HR
specialist, finds the case in the queue, approves level 1, logs in as the department head,
approves level 2 (the company countersignature), and downloads the dossier.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import zipfile
from datetime import date, datetime, timedelta, timezone

import pytest

from tests.browser.live import serve

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("QIANLI_CHROMIUM", "/usr/bin/chromium")
PASSWORD = "correct horse battery"


@pytest.fixture
def live(committed_runtime):
    from cases.states import CaseAction
    from qianli.db import session_scope
    from qianli.models import Company
    from qianli.services.auth import create_hr_user
    from qianli.services.cases import apply_action, open_case
    from qianli.services.employees import create_employee
    from tests.signing_support import sign_case

    rt = committed_runtime
    with session_scope(rt.session_factory) as s:
        company = Company(code="pw", name="浏览器测试有限公司", policy={})
        s.add(company)
        s.flush()
        create_hr_user(s, company_id=company.id, username="spec", display_name="李敏（人事专员）", password=PASSWORD,
                       role="hr_specialist")
        create_hr_user(s, company_id=company.id, username="head", display_name="王强（研发部负责人）", password=PASSWORD,
                       role="dept_head", department="研发部")
        people = {}
        for no, name, dept in (("P001", "陈晓", "研发部"), ("P002", "刘洋", "研发部"), ("P003", "周杰", "市场部")):
            emp = create_employee(s, rt, company_id=company.id, employee_no=no, name=name, phone=f"1390000{no[1:]}0",
                                  department=dept, position="工程师", hire_date=date(2023, 3, 1))
            arrived = datetime.now(timezone.utc) - timedelta(days=2)
            case = open_case(s, rt.settings, employee=emp, source="miniprogram", notice_arrived_at=arrived,
                             actor=f"employee:{emp.id}", reason_category="career_development", reason_text="个人发展",
                             requested_last_day=arrived.date() + timedelta(days=45),
                             handover_items=[{"item": "代码仓库权限", "owner": "李四", "deadline": None}])
            if no == "P001":  # really signed (B-LTA), so that final approval can countersign it
                s.commit()
                sign_case(s, rt, case, emp)
            elif no == "P003":
                apply_action(s, case, CaseAction.SUBMIT_LETTER, actor=f"employee:{emp.id}")
            people[no] = case.id
    with serve(rt) as base:
        yield base, rt, people


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
    assert "/hr/login" in page.url
    page.fill("#company_code", "pw")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/hr/")


def _logout(page):
    page.click("header .who button")
    page.wait_for_url("**/hr/login**")


def test_login_find_approve_two_levels_and_download_dossier(live, browser, tmp_path):
    base, rt, cases = live
    context = browser.new_context(accept_downloads=True, locale="zh-CN")
    page = context.new_page()
    page.on("dialog", lambda d: d.accept())
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))

    # Wrong password first: stays on the login page with the reason.
    page.goto(f"{base}/hr/login")
    page.fill("#company_code", "pw")
    page.fill("#username", "spec")
    page.fill("#password", "not the password")
    page.click("button[type=submit]")
    assert "用户名或密码错误" in page.inner_text("main")

    # The specialist finds 陈晓's case in the queue (search filter) and opens it.
    _login(page, base, "spec")
    assert "李敏" in page.inner_text("#current-user")
    rows = page.locator("#case-queue tbody tr[data-case-id]")
    assert rows.count() == 3
    page.fill("#search", "陈晓")
    page.click("#filters button[type=submit]")
    page.wait_for_url("**q=**")
    assert page.locator("#case-queue tbody tr[data-case-id]").count() == 1
    row = page.locator(f"tr[data-case-id='{cases['P001']}']")
    assert "待审核" in row.inner_text()
    row.locator("td").nth(1).click()  # the whole row opens the case (vanilla JS)
    page.wait_for_url(f"**/hr/cases/{cases['P001']}")
    assert page.get_attribute("#case-state", "data-state") == "submitted"
    assert "校验通过" in page.inner_text("#chain-status")
    assert page.locator("#timeline tr[data-action='case_submit_letter']").count() == 1

    # Level 1.
    page.fill("#approve-form textarea[name=comment]", "交接清单已核对")
    page.click("#approve-button")
    page.wait_for_selector("#case-state[data-state='first_approved']")
    assert "一级审核已通过" in page.inner_text("main")
    assert page.locator("#approve-form").count() == 0
    _logout(page)

    # Level 2: the department head sees only 研发部 and approves.
    _login(page, base, "head")
    ids = page.eval_on_selector_all("#case-queue tr[data-case-id]", "rows => rows.map(r => r.dataset.caseId)")
    assert set(ids) == {cases["P001"], cases["P002"]}
    page.click(f"tr[data-case-id='{cases['P001']}'] a")
    page.wait_for_url(f"**/hr/cases/{cases['P001']}")
    page.click("#approve-button")
    page.wait_for_selector("#case-state[data-state='approved']")
    assert "终审已通过" in page.inner_text("main")
    assert page.locator("#letter-frame").count() == 1

    # Download the dossier from the case page.
    with page.expect_download() as info:
        page.click("#dossier-link")
    download = info.value
    target = tmp_path / download.suggested_filename
    download.save_as(target)
    data = target.read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        chain = [json.loads(line) for line in zf.read("evidence/chain.jsonl").decode().splitlines()]
    assert manifest["case_id"] == cases["P001"]
    assert {"case_approve_first", "case_approve_final", "letter_countersigned"} <= {e["action"] for e in chain}
    names = [f["path"] for f in manifest["files"]]
    assert any(n.startswith("documents/letter_countersigned/") and n.endswith(".pdf") for n in names), names
    from qianli.services.dossier import verify_dossier

    assert verify_dossier(data).ok
    assert errors == []
    context.close()
    from qianli.db import session_scope
    from qianli.storage import case_documents

    with session_scope(rt.session_factory) as s:
        kinds = [d.kind for d in case_documents(s, cases["P001"], _company_id(s))]
    assert "letter_countersigned" in kinds


def _company_id(session) -> str:
    from sqlalchemy import select

    from qianli.models import Company

    return session.scalar(select(Company.id).where(Company.code == "pw"))
