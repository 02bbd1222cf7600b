"""The console pages of the early warning through the Flask test client: import with preview and
confirm, the risk list, dismissing a false alarm, the rules form."""

from __future__ import annotations

import io
import re
from datetime import timedelta

from sqlalchemy import func, select

from cases.clock import beijing_today
from qianli.models import AttendanceRecord, AttritionEpisode
from tests.attendance.support import csv_bytes, working_days

PASSWORD = "correct horse battery"


def login(client, company, user):
    page = client.get("/hr/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)
    r = client.post("/hr/login", data={"csrf_token": token, "company_code": company.code, "username": user.username,
                                       "password": PASSWORD, "next": "/hr/"})
    assert r.status_code == 303


def csrf_of(html: str) -> str:
    return re.search(r'<meta name="csrf-token" content="([^"]+)"', html).group(1)


def daily_file() -> tuple[bytes, list]:
    today = beijing_today()
    days = working_days(today - timedelta(days=60), today - timedelta(days=1))
    lines = ["上下班打卡_日报", "姓名,工号,部门,日期,上班打卡时间,下班打卡时间,打卡结果"]
    for d in days:
        lines.append(f"韩梅梅,A002,研发部,{d.isoformat()},08:55,18:00,正常")
        gone = d in days[-4:]
        lines.append(f"李雷,A001,研发部,{d.isoformat()},{'' if gone else '09:00'},{'' if gone else '18:00'},"
                     f"{'未打卡' if gone else '正常'}")
    return csv_bytes(lines, encoding="gbk"), days[-4:]


def test_import_preview_confirm_and_risk_list(client, db_session, factory, world):
    co, a, _ = world
    spec = factory.hr(co, "hr_specialist", username="spec")
    login(client, co, spec)
    page = client.get("/hr/attendance")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "导入考勤" in html and "离职预警" in html
    data, gone = daily_file()
    r = client.post("/hr/attendance/preview", data={"csrf_token": csrf_of(html), "kind": "auto", "coverage": "company",
                                                    "file": (io.BytesIO(data), "日报.csv")},
                    content_type="multipart/form-data")
    body = r.get_data(as_text=True)
    assert r.status_code == 200 and 'id="attendance-confirm"' in body and "打卡 09:00、18:00" in body
    token = re.search(r'name="token" value="([^"]+)"', body).group(1)
    assert db_session.scalar(select(func.count()).select_from(AttendanceRecord)) == 0  # preview writes nothing
    r = client.post("/hr/attendance/confirm", data={"csrf_token": csrf_of(body), "token": token})
    assert r.status_code == 303
    assert db_session.scalar(select(func.count()).select_from(AttendanceRecord)) > 0
    again = client.post("/hr/attendance/confirm", data={"csrf_token": csrf_of(body), "token": token})
    assert again.status_code == 422 and "预览已过期" in again.get_data(as_text=True)

    risks = client.get("/hr/attrition").get_data(as_text=True)
    assert f'data-employee-id="{a.id}" data-level="red"' in risks
    assert 'data-count="red">1<' in risks and "连续 4 个工作日" in risks
    r = client.post(f"/hr/attrition/{a.id}/dismiss", data={"csrf_token": csrf_of(risks), "reason": "外勤，已电话确认",
                                                           "episode": f"gap:{gone[0].isoformat()}"})
    assert r.status_code == 303
    after = client.get("/hr/attrition").get_data(as_text=True)
    assert f'data-employee-id="{a.id}" data-level="green"' in after and "已标记误报：外勤，已电话确认" in after
    ep = db_session.scalars(select(AttritionEpisode)).one()
    assert ep.dismissed_by == f"hr:{spec.id}"


def test_bad_file_preview_shows_errors(client, db_session, factory, world):
    co, *_ = world
    spec = factory.hr(co, "hr_specialist", username="spec")
    login(client, co, spec)
    html = client.get("/hr/attendance").get_data(as_text=True)
    bad = csv_bytes(["姓名,工号,日期,上班打卡时间", "李雷,A001,2025-10-09,9点"])
    r = client.post("/hr/attendance/preview", data={"csrf_token": csrf_of(html), "file": (io.BytesIO(bad), "x.csv")},
                    content_type="multipart/form-data")
    body = r.get_data(as_text=True)
    assert r.status_code == 422 and "文件有错误，未导入" in body and "无法识别的时间" in body
    assert 'id="attendance-confirm"' not in body


def test_auditor_cannot_import_or_dismiss(client, factory, world):
    co, a, _ = world
    aud = factory.hr(co, "auditor", username="aud")
    login(client, co, aud)
    html = client.get("/hr/attendance").get_data(as_text=True)
    assert 'id="attendance-form"' not in html
    r = client.post("/hr/attendance/preview", data={"csrf_token": csrf_of(html),
                                                    "file": (io.BytesIO(b"x"), "x.csv")},
                    content_type="multipart/form-data")
    assert r.status_code == 403
    r = client.post(f"/hr/attrition/{a.id}/dismiss", data={"csrf_token": csrf_of(html), "reason": "出差"})
    assert r.status_code == 403


def test_rules_form(client, db_session, factory, world):
    co, *_ = world
    mgr = factory.hr(co, "hr_manager", username="mgr")
    login(client, co, mgr)
    html = client.get("/hr/attrition/rules").get_data(as_text=True)
    assert 'name="red_consecutive_days" value="3"' in html
    form = {"csrf_token": csrf_of(html), "red_consecutive_days": "3", "amber_consecutive_days": "3",
            "drop_recent_days": "5", "drop_baseline_days": "20", "drop_percent": "50", "drop_enabled": "on",
            "notify_red": "on"}
    r = client.post("/hr/attrition/rules", data=form)
    assert r.status_code == 422 and "amber_consecutive_days" in r.get_data(as_text=True)
    r = client.post("/hr/attrition/rules", data={**form, "amber_consecutive_days": "1", "red_consecutive_days": "4"})
    assert r.status_code == 303
    html = client.get("/hr/attrition/rules").get_data(as_text=True)
    assert 'name="red_consecutive_days" value="4"' in html
    db_session.expire_all()


def test_home_page_panel(client, runtime, db_session, factory, world):
    from qianli.services.attendance import import_attendance

    co, a, _ = world
    spec = factory.hr(co, "hr_specialist", username="spec")
    login(client, co, spec)
    assert 'id="attrition-panel"' not in client.get("/hr/").get_data(as_text=True)  # no attendance data yet
    data, gone = daily_file()
    import_attendance(db_session, runtime, company_id=co.id, data=data)
    db_session.commit()
    home = client.get("/hr/").get_data(as_text=True)
    assert 'id="attrition-panel"' in home and f'data-employee-id="{a.id}"' in home and "连续 4 个工作日" in home
    head = factory.hr(co, "dept_head", username="other", department="市场部")
    client.post("/hr/logout", data={"csrf_token": csrf_of(home)})
    login(client, co, head)
    assert 'id="attrition-panel"' not in client.get("/hr/").get_data(as_text=True)  # another department
