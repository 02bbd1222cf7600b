"""The HR console pages through the Flask test client: login, CSRF, queue, case page, actions, walls."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from api.auth import HR_COOKIE
from qianli.models import EvidenceEntry, ResignationCase

PASSWORD = "correct horse battery"


def login(client, world, user):
    page = client.get("/hr/login")
    assert page.status_code == 200
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)
    return client.post("/hr/login", data={"csrf_token": token, "company_code": world.company.code,
                                          "username": user.username, "password": PASSWORD, "next": "/hr/"})


def csrf_of(html: str) -> str:
    return re.search(r'<meta name="csrf-token" content="([^"]+)"', html).group(1)


def test_pages_need_login(client):
    r = client.get("/hr/")
    assert r.status_code == 303 and r.headers["Location"].startswith("/hr/login")
    assert client.get("/hr").status_code in (301, 308)


def test_login_wrong_password_and_csrf(client, world):
    page = client.get("/hr/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)
    bad = client.post("/hr/login", data={"csrf_token": token, "company_code": world.company.code,
                                         "username": world.spec.username, "password": "wrong password!"})
    assert bad.status_code == 401 and "用户名或密码错误" in bad.get_data(as_text=True)
    assert client.get_cookie(HR_COOKIE) is None
    # A login post without the double-submit token (e.g. from another site) is refused.
    client.delete_cookie("qianli_hr_login", path="/hr/")
    forged = client.post("/hr/login", data={"csrf_token": token, "company_code": world.company.code,
                                            "username": world.spec.username, "password": PASSWORD})
    assert forged.status_code == 403 and client.get_cookie(HR_COOKIE) is None


def test_queue_case_page_and_approve_via_console(client, world, db_session):
    overdue, _ = world.case(arrived=datetime.now(timezone.utc) - timedelta(days=20), submit=False, name="王五")
    c, emp = world.case(name="赵六")
    r = login(client, world, world.spec)
    assert r.status_code == 303 and r.headers["Location"] == "/hr/"
    cookie = client.get_cookie(HR_COOKIE)
    assert cookie.http_only and cookie.same_site == "Strict"
    queue = client.get("/hr/")
    html = queue.get_data(as_text=True)
    assert queue.status_code == 200 and "离职案件" in html and "Content-Security-Policy" in queue.headers
    rows = re.findall(r'data-case-id="([0-9a-f]+)"', html)
    assert rows == [overdue.id, c.id]  # overdue first
    assert 'class="overdue"' in html
    filtered = client.get("/hr/?q=赵六").get_data(as_text=True)
    assert re.findall(r'data-case-id="([0-9a-f]+)"', filtered) == [c.id]

    page = client.get(f"/hr/cases/{c.id}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'id="approve-form"' in html and "校验通过" in html
    assert "提交已签名辞职信" in html  # timeline
    token = csrf_of(html)
    # Without the CSRF token nothing happens.
    r = client.post(f"/hr/cases/{c.id}/approve", data={"comment": "ok"})
    assert r.status_code == 403
    db_session.expire_all()
    assert db_session.get(ResignationCase, c.id).state == "submitted"
    r = client.post(f"/hr/cases/{c.id}/approve", data={"csrf_token": token, "comment": "交接已核对"})
    assert r.status_code == 303
    after = client.get(f"/hr/cases/{c.id}").get_data(as_text=True)
    assert "一级审核已通过" in after and 'data-state="first_approved"' in after
    assert 'id="approve-form"' not in after  # level 2 is the department head's
    db_session.expire_all()
    assert db_session.get(ResignationCase, c.id).state == "first_approved"


def test_refused_action_shows_reason_and_writes_nothing(client, world, db_session):
    c, _ = world.case()
    login(client, world, world.spec)
    token = csrf_of(client.get(f"/hr/cases/{c.id}").get_data(as_text=True))
    before = db_session.query(EvidenceEntry).filter_by(case_id=c.id).count()
    r = client.post(f"/hr/cases/{c.id}/return", data={"csrf_token": token, "reason": "  "})
    assert r.status_code == 422 and "请填写退回原因" in r.get_data(as_text=True)
    later = (c.requested_last_day + timedelta(days=5)).isoformat()
    r = client.post(f"/hr/cases/{c.id}/approve", data={"csrf_token": token, "agreed_last_day": later})
    assert r.status_code == 422
    assert db_session.query(EvidenceEntry).filter_by(case_id=c.id).count() == before
    r = client.post(f"/hr/cases/{c.id}/return", data={"csrf_token": token, "reason": "请补充交接清单"})
    assert r.status_code == 303
    db_session.expire_all()
    assert db_session.get(ResignationCase, c.id).state == "returned"


def test_console_respects_department_and_company(client, world, factory):
    mine, _ = world.case(department="研发部")
    theirs, _ = world.case(department="市场部")
    login(client, world, world.head)
    html = client.get("/hr/").get_data(as_text=True)
    assert mine.id in html
    assert theirs.id not in html
    assert client.get(f"/hr/cases/{theirs.id}").status_code == 404
    assert client.get(f"/hr/cases/{theirs.id}/letter.pdf").status_code == 404
    assert client.get(f"/hr/cases/{theirs.id}/dossier.zip").status_code == 404
    other = factory.company()
    stranger = factory.hr(other, "hr_manager", username="stranger")
    client.post("/hr/logout", data={"csrf_token": csrf_of(html)})
    assert client.get_cookie(HR_COOKIE) is None
    page = client.get("/hr/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)
    client.post("/hr/login", data={"csrf_token": token, "company_code": other.code, "username": stranger.username,
                                   "password": PASSWORD})
    assert client.get(f"/hr/cases/{mine.id}").status_code == 404
    assert mine.id not in client.get("/hr/").get_data(as_text=True)


def test_letter_pdf_is_streamed_when_present(client, world, db_session):
    from qianli.storage import store_document

    c, emp = world.case()
    login(client, world, world.spec)
    assert client.get(f"/hr/cases/{c.id}/letter.pdf").status_code == 404
    pdf = b"%PDF-1.7\n% test letter\n%%EOF\n"
    store_document(db_session, world.rt.store, company_id=world.company.id, case_id=c.id,
                   employee_id=emp.id, kind="letter_signed", filename="letter.pdf", content_type="application/pdf",
                   data=pdf, created_by="test")
    db_session.commit()
    r = client.get(f"/hr/cases/{c.id}/letter.pdf")
    assert r.status_code == 200 and r.mimetype == "application/pdf" and r.data == pdf
    assert 'id="letter-frame"' in client.get(f"/hr/cases/{c.id}").get_data(as_text=True)


def test_alerts_page_and_resolve(client, world, db_session):
    from qianli.services.alerts import raise_alert

    c, emp = world.case()
    a = raise_alert(db_session, company_id=world.company.id, kind="face_locked", message="人脸核验已锁定",
                    case_id=c.id, employee_id=emp.id)
    db_session.commit()
    login(client, world, world.spec)
    html = client.get("/hr/alerts").get_data(as_text=True)
    assert "人脸核验已锁定" in html and a.id in html
    r = client.post(f"/hr/alerts/{a.id}/resolve", data={"csrf_token": csrf_of(html)})
    assert r.status_code == 303
    assert a.id not in client.get("/hr/alerts").get_data(as_text=True)


def test_console_queue_refuses_extreme_dates(client, world):
    login(client, world, world.spec)
    for q in ("arrival_from=0001-01-01", "arrival_to=9999-12-31"):
        r = client.get(f"/hr/?{q}")
        assert r.status_code == 422 and "日期超出范围" in r.get_data(as_text=True), (q, r.status_code)
    assert client.get("/hr/?arrival_from=1900-01-01&arrival_to=2100-12-31").status_code == 200
