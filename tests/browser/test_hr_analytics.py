"""The HR console's departure analytics dashboard in Debian's headless Chromium (Playwright).

The app serves ECharts itself (api/static/hr/vendor/echarts): the test checks every chart draws
a canvas, the page logs no console error (CSP violations included), the browser asks no host but
the app's, and a chart's CSV/XLSX buttons download the dashboard's numbers.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, time, timedelta, timezone
from urllib.parse import urlparse

import pytest

from tests.browser.live import serve
from tests.browser.test_hr_console import PASSWORD, browser  # noqa: F401 - the fixture

pytestmark = pytest.mark.browser

CHART_IDS = ("by_reason_period", "by_department_period", "by_department_reason", "by_type_period",
             "metrics_by_department")


@pytest.fixture
def live(committed_runtime):
    from cases.clock import SHANGHAI
    from cases.evidence_kinds import EvidenceKind
    from qianli.db import session_scope
    from qianli.models import Company, ResignationCase
    from qianli.services.auth import create_hr_user
    from qianli.services.employees import create_employee
    from qianli.services.evidence import append_evidence

    rt = committed_runtime
    today = datetime.now(timezone.utc).astimezone(SHANGHAI).date()
    month_start = today.replace(day=1)
    last_month = (month_start - timedelta(days=1)).replace(day=1)
    with session_scope(rt.session_factory) as s:
        company = Company(code="an", name="看板测试有限公司", policy={})
        s.add(company)
        s.flush()
        create_hr_user(s, company_id=company.id, username="mgr", display_name="赵敏（人事经理）", password=PASSWORD,
                       role="hr_manager")
        create_hr_user(s, company_id=company.id, username="head", display_name="王强（研发部负责人）", password=PASSWORD,
                       role="dept_head", department="研发部")
        plan = [("研发部", last_month, "career_development")] * 6 + [("研发部", month_start, "compensation")] * 5 \
            + [("市场部", last_month, "family")] * 7 + [("市场部", month_start, "other")] * 2
        for n, (dept, day, reason) in enumerate(plan):
            emp = create_employee(s, rt, company_id=company.id, employee_no=f"D{n:03d}", name=f"员工{n}",
                                  phone=f"1390001{n:04d}", department=dept, position="工程师", hire_date=date(2023, 3, 1))
            arrived = datetime.combine(day, time(10), SHANGHAI).astimezone(timezone.utc)
            case = ResignationCase(company_id=company.id, employee_id=emp.id, state="submitted", source="miniprogram",
                                   notice_arrived_at=arrived, arrival_date=day, probation=False, reason_category=reason,
                                   reason_text="", earliest_lawful_last_day=day + timedelta(days=30),
                                   letter_due_date=day + timedelta(days=3), letter_submitted_at=arrived,
                                   created_by=f"employee:{emp.id}")
            s.add(case)
            s.flush()
            if n < 6:
                append_evidence(s, case, "hr:seed", EvidenceKind.CASE_CLOSE, {"from": "approved", "to": "closed"},
                                occurred_at=arrived + timedelta(days=30 + n))
    with serve(rt) as base:
        yield base, last_month, today


def _login(page, base, username):
    page.goto(f"{base}/hr/login")
    page.fill("#company_code", "an")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/hr/")


def test_dashboard_draws_every_chart_locally_and_exports(live, browser, tmp_path):  # noqa: F811
    base, start, today = live
    host = urlparse(base).netloc
    context = browser.new_context(accept_downloads=True, locale="zh-CN")
    page = context.new_page()
    problems: list[str] = []
    foreign: list[str] = []
    page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text} {m.location}") if m.type in ("error", "warning") else None)
    page.on("response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.on("request", lambda r: foreign.append(r.url) if urlparse(r.url).netloc not in (host, "") and
            not r.url.startswith(("data:", "blob:")) else None)

    _login(page, base, "mgr")
    page.click("header nav >> text=数据分析")
    page.wait_for_url("**/hr/analytics")
    page.fill("input[name=from]", start.isoformat())
    page.fill("input[name=to]", today.isoformat())
    page.click("#analytics-filters button[type=submit]")
    page.wait_for_url("**from=**")
    page.wait_for_selector("body[data-charts-rendered='5']")
    for chart_id in CHART_IDS:
        el = page.locator(f"#chart-{chart_id}")
        assert el.get_attribute("data-rendered") == "1", chart_id
        canvas = el.locator("canvas")
        assert canvas.count() >= 1, chart_id
        box = canvas.first.bounding_box()
        assert box["width"] > 200 and box["height"] > 200, (chart_id, box)
    # something is drawn: the canvas is not blank
    drawn = page.eval_on_selector("#chart-by_department_period canvas", """c => {
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let coloured = 0;
        for (let i = 0; i < d.length; i += 4) if (d[i+3] > 0 && !(d[i] > 240 && d[i+1] > 240 && d[i+2] > 240)) coloured++;
        return coloured; }""")
    assert drawn > 500
    assert page.inner_text("#kpi-departures") == "20"
    # hovering a bar shows the canvas tooltip without a CSP violation
    page.hover("#chart-by_department_period canvas", position={"x": 150, "y": 200})
    page.wait_for_timeout(300)

    with page.expect_download() as info:
        page.click("#card-by_department_period a.export-csv")
    target = tmp_path / info.value.suggested_filename
    info.value.save_as(target)
    raw = target.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = {r[0]: r[1:] for r in csv.reader(io.StringIO(raw.decode("utf-8-sig"))) if r}
    assert rows["研发部"][-1] == "11" and rows["市场部"][-1] == "9" and rows["合计"][-1] == "20"
    with page.expect_download() as info:
        page.click("#card-metrics_by_department a.export-xlsx")
    assert info.value.suggested_filename.endswith(".xlsx")
    xlsx = tmp_path / info.value.suggested_filename
    info.value.save_as(xlsx)
    from openpyxl import load_workbook

    assert "各部门效率指标" in load_workbook(xlsx).sheetnames

    # the department head's dashboard: their department only
    context.clear_cookies()
    _login(page, base, "head")
    page.goto(f"{base}/hr/analytics?from={start.isoformat()}&to={today.isoformat()}")
    page.wait_for_selector("body[data-charts-rendered='5']")
    assert page.inner_text("#kpi-departures") == "11"
    assert "可见范围：研发部" in page.inner_text("#analytics-scope")
    assert page.locator("input[name=department]").count() == 0

    assert problems == []
    assert foreign == []
    context.close()
