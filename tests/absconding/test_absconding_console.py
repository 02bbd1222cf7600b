"""The HR console's pages for leaving without notice: confirm from the employee page, then serve the notice,
record the post and the union, and see what blocks the dismissal, all on the case page; the policy page."""

from __future__ import annotations

import re

from api.auth import HR_COOKIE
from tests.absconding.conftest import CLAUSE

PASSWORD = "correct horse battery"


def _login(client, world, user) -> str:
    page = client.get("/hr/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)
    r = client.post("/hr/login", data={"csrf_token": token, "company_code": world.company.code,
                                       "username": user.username, "password": PASSWORD, "next": "/hr/"})
    assert r.status_code == 303 and client.get_cookie(HR_COOKIE)
    return re.search(r'<meta name="csrf-token" content="([^"]+)"', client.get("/hr/").get_data(as_text=True)).group(1)


def test_confirm_serve_post_union_from_the_console(client, world, db_session):
    csrf = _login(client, world, world.spec)
    page = client.get(f"/hr/employees/{world.emp.id}/identity").get_data(as_text=True)
    assert 'id="departure-form"' in page
    # from the risk list: the link carries the episode and the gap days into the form
    page = client.get(f"/hr/employees/{world.emp.id}/identity?risk_id=gap:2026-11-25&absent_days=2026-11-25,2026-11-26"
                      ).get_data(as_text=True)
    assert 'value="gap:2026-11-25"' in page and 'value="2026-11-25,2026-11-26"' in page
    days = world.absent_days()
    # a holiday is refused with the reason shown
    r = client.post(f"/hr/employees/{world.emp.id}/departure", data={
        "csrf_token": csrf, "absent_days": "2026-10-03"})
    assert r.status_code == 422 and "休息日、节假日不算缺勤" in r.get_data(as_text=True)
    r = client.post(f"/hr/employees/{world.emp.id}/departure", data={
        "csrf_token": csrf, "absent_days": "，".join(d.isoformat() for d in days), "note": "电话无人接听"})
    assert r.status_code == 303
    case_url = r.headers["Location"]
    html = client.get(case_url).get_data(as_text=True)
    assert 'id="absence"' in html and "已确认擅自离职" in html and 'id="serve-notice-form"' in html
    case_id = case_url.rstrip("/").rsplit("/", 1)[-1]

    r = client.post(f"/hr/cases/{case_id}/return-notice", data={"csrf_token": csrf})
    assert r.status_code == 303
    html = client.get(case_url).get_data(as_text=True)
    assert 'id="return-deadline"' in html and 'id="return-notice-link"' in html and "未读" in html
    pdf = client.get(f"/hr/cases/{case_id}/notices/return_to_work.pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF-")
    assert 'data-blocker="deadline_not_passed"' in html and 'data-blocker="union_notification_missing"' in html

    r = client.post(f"/hr/cases/{case_id}/postal-deliveries", data={
        "csrf_token": csrf, "notice": "return_to_work", "carrier": "EMS", "tracking_no": "1180000000009",
        "address": "上海市浦东新区世纪大道 100 号", "sent_at": "2020-01-01T10:00"})
    assert r.status_code == 422  # before the notice existed
    from datetime import datetime

    from cases.clock import SHANGHAI

    now = datetime.now(SHANGHAI).strftime("%Y-%m-%dT%H:%M")
    r = client.post(f"/hr/cases/{case_id}/postal-deliveries", data={
        "csrf_token": csrf, "notice": "return_to_work", "carrier": "EMS", "tracking_no": "1180000000009",
        "address": "上海市浦东新区世纪大道 100 号", "sent_at": now})
    assert r.status_code == 303
    r = client.post(f"/hr/cases/{case_id}/union-notifications", data={
        "csrf_token": csrf, "union_name": "公司工会委员会", "contact_name": "赵六", "notified_at": now,
        "method": "written", "response": "无异议"})
    assert r.status_code == 303
    html = client.get(case_url).get_data(as_text=True)
    assert "1180000000009" in html and "公司工会委员会" in html and 'data-blocker="union_notification_missing"' not in html
    # CSRF is required for every action
    assert client.post(f"/hr/cases/{case_id}/dismissal", data={}).status_code == 403


def test_policy_page_managers_only(client, runtime, db_session, factory):
    from tests.absconding.conftest import AbsenceWorld

    world = AbsenceWorld(runtime, db_session, factory, client, clause=False)
    csrf = _login(client, world, world.spec)
    page = client.get("/hr/absence-policy").get_data(as_text=True)
    assert "只有人事经理可以修改" in page
    assert client.post("/hr/absence-policy", data={"csrf_token": csrf, "deadline_days": "3"}).status_code == 403
    client.delete_cookie(HR_COOKIE, path="/")
    csrf = _login(client, world, world.manager)
    r = client.post("/hr/absence-policy", data={"csrf_token": csrf, "clause_reference": CLAUSE["reference"],
                                                 "clause_text": CLAUSE["text"], "deadline_days": "4",
                                                 "level1": "hr_manager", "level2": ""})
    assert r.status_code == 303
    db_session.expire_all()
    policy = db_session.get(type(world.company), world.company.id).policy
    assert policy["absconding_handbook_clause"] == CLAUSE and policy["return_notice_deadline_days"] == 4
    assert policy["absconding_approval_chain"] == ["hr_manager"]
    r = client.post("/hr/absence-policy", data={"csrf_token": csrf, "clause_reference": "x", "clause_text": "短",
                                                 "deadline_days": "4", "level1": "hr_manager"})
    assert r.status_code == 422
