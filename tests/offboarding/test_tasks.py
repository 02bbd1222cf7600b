"""Handover tasks: generated at final approval, owners and working-day due dates, completion with an
attachment into the evidence, "my tasks" per role and department, the employee's view, withdrawal."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import date

from sqlalchemy import select

from cases.offboarding import DEFAULT_TEMPLATE
from qianli.models import Document, EvidenceEntry, OffboardingTask, ResignationCase
from qianli.services.dossier import build_dossier, verify_dossier
from qianli.services.offboarding import start_offboarding

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def actions(db_session, case_id):
    db_session.expire_all()
    return [e.action for e in db_session.scalars(select(EvidenceEntry).where(EvidenceEntry.case_id == case_id)
                                                 .order_by(EvidenceEntry.seq))]


def approve(client, oworld, case_id):
    url = f"/api/v1/hr/cases/{case_id}/approval"
    assert client.post(url, json={}, headers=oworld.h(oworld.spec)).status_code == 200
    r = client.post(url, json={}, headers=oworld.h(oworld.head))
    assert r.status_code == 200 and r.json["state"] == "approved", r.json
    return r.json


def test_final_approval_generates_tasks_once(client, oworld, db_session):
    c, emp = oworld.case(signed=True)
    body = approve(client, oworld, c.id)
    tasks = oworld.tasks(c.id)
    assert set(tasks) == {i.key for i in DEFAULT_TEMPLATE} | {"employee:1"}
    last = date.fromisoformat(body["agreed_last_day"])
    assert tasks["handover_work"].due_date == last and tasks["handover_work"].owner_department == "研发部"
    assert tasks["transfer_file_social_insurance"].due_date == date.fromordinal(last.toordinal() + 15)
    mine = tasks["employee:1"]  # the employee's own item: the department head confirms it
    assert (mine.source, mine.title, mine.owner_role, mine.template_version) == ("employee", "代码仓库权限", "dept_head", 0)
    assert "李四" in mine.description
    assert actions(db_session, c.id).count("offboarding_started") == 1
    started = db_session.scalar(select(EvidenceEntry).where(EvidenceEntry.case_id == c.id,
                                                            EvidenceEntry.action == "offboarding_started"))
    assert started.payload["template_version"] == 0 and len(started.payload["tasks"]) == len(tasks)
    # Idempotent: calling it again returns the same tasks, records nothing new.
    case = db_session.get(ResignationCase, c.id)
    again = start_offboarding(db_session, oworld.rt, case, actor="system:test")
    db_session.commit()
    assert {t.id for t in again} == {t.id for t in tasks.values()}
    assert actions(db_session, c.id).count("offboarding_started") == 1
    # The board lists them, grouped, with owners.
    r = client.get(f"/api/v1/hr/cases/{c.id}/tasks", headers=oworld.h(oworld.spec))
    assert r.status_code == 200 and len(r.json["tasks"]) == len(tasks)
    assert [t["group"] for t in r.json["tasks"]][0] == "work_handover"
    assert {t["owner_label"] for t in r.json["tasks"]} >= {"部门负责人（研发部）", "IT", "人事", "财务", "行政"}
    # Department scoping as every case read.
    assert client.get(f"/api/v1/hr/cases/{c.id}/tasks", headers=oworld.h(oworld.other_head)).status_code == 404


def test_tasks_use_the_company_template_version_and_the_holiday_calendar(client, oworld, db_session):
    items = [{"key": "laptop", "group": "assets", "title": "收回电脑", "owner_role": "it", "offset": 1},
             {"key": "files", "group": "work_handover", "title": "资料归档", "owner_role": "dept_head", "offset": -3},
             {"key": "si", "group": "finance_social_insurance", "title": "社保转移", "owner_role": "hr", "offset": 15,
              "day_kind": "calendar"}]
    r = client.put("/api/v1/hr/offboarding-templates/resignation", json={"items": items},
                   headers=oworld.h(oworld.manager))
    assert r.status_code == 200
    c, _ = oworld.case(signed=True)
    case = db_session.get(ResignationCase, c.id)
    case.agreed_last_day = date(2026, 9, 30)  # before 国庆节 2026
    db_session.commit()
    start_offboarding(db_session, oworld.rt, case, actor="system:test")
    db_session.commit()
    tasks = oworld.tasks(c.id)
    assert tasks["laptop"].due_date == date(2026, 10, 8)  # the first working day after the holiday
    assert tasks["files"].due_date == date(2026, 9, 24)   # three working days before, across 中秋节
    assert tasks["si"].due_date == date(2026, 10, 15)
    assert {t.template_version for t in tasks.values()} == {1}


def test_owner_completes_with_attachment_into_the_evidence(client, oworld, db_session):
    c, _ = oworld.case(signed=True)
    approve(client, oworld, c.id)
    task = oworld.tasks(c.id)["return_equipment"]  # IT's
    url = f"/api/v1/hr/tasks/{task.id}/completion"
    # Not the owner: the department head (who sees the case) is refused, another department's head gets 404.
    r = client.post(url, json={"note": "x"}, headers=oworld.h(oworld.head))
    assert r.status_code == 403 and r.json["code"] == "task_not_owner"
    assert client.post(url, json={}, headers=oworld.h(oworld.other_head)).status_code == 404
    r = client.post(url, data={"note": "电脑已收回，资产编号 IT-0042", "attachment": (io.BytesIO(PNG), "receipt.png")},
                    content_type="multipart/form-data", headers=oworld.h(oworld.it))
    assert r.status_code == 200, r.json
    assert r.json["status"] == "done" and r.json["completed_by"] == f"hr:{oworld.it.id}"
    assert r.json["attachment"]["content_type"] == "image/png" and r.json["note"].startswith("电脑已收回")
    doc = db_session.get(Document, r.json["attachment"]["document_id"])
    assert doc.kind == "task_attachment" and doc.case_id == c.id
    e = db_session.scalar(select(EvidenceEntry).where(EvidenceEntry.case_id == c.id,
                                                      EvidenceEntry.action == "task_completed"))
    assert e.payload["task_id"] == task.id and e.payload["attachment"]["sha256"] == doc.sha256
    assert e.payload["on_behalf_of_owner"] is False
    # Once only.
    r = client.post(url, json={}, headers=oworld.h(oworld.it))
    assert r.status_code == 409 and r.json["code"] == "task_not_open"


def test_bad_attachment_and_hr_on_behalf(client, oworld, db_session):
    c, _ = oworld.case(signed=True)
    approve(client, oworld, c.id)
    task = oworld.tasks(c.id)["final_pay"]  # finance's; nobody holds the duty
    url = f"/api/v1/hr/tasks/{task.id}/completion"
    r = client.post(url, data={"attachment": (io.BytesIO(b"MZ\x90\x00 not a pdf"), "x.exe")},
                    content_type="multipart/form-data", headers=oworld.h(oworld.spec))
    assert r.status_code == 415 and r.json["code"] == "attachment_type"
    r = client.post(url, data={"note": "x", "other": (io.BytesIO(PNG), "p.png")}, content_type="multipart/form-data",
                    headers=oworld.h(oworld.spec))
    assert r.status_code == 422
    assert oworld.tasks(c.id)["final_pay"].status == "open"
    r = client.post(url, json={"note": "财务休假，由人事代为确认"}, headers=oworld.h(oworld.spec))
    assert r.status_code == 200 and r.json["completed_by_name"] == oworld.spec.display_name
    e = db_session.scalar(select(EvidenceEntry).where(EvidenceEntry.case_id == c.id,
                                                      EvidenceEntry.action == "task_completed"))
    assert e.payload["on_behalf_of_owner"] is True


def test_my_tasks_by_role_duty_and_department(client, oworld, db_session):
    c, _ = oworld.case(signed=True)
    approve(client, oworld, c.id)
    c2, _ = oworld.case(signed=True, department="市场部", name="王五")
    case2 = db_session.get(ResignationCase, c2.id)
    start_offboarding(db_session, oworld.rt, case2, actor="system:test")
    db_session.commit()

    def mine(user, **q):
        r = client.get("/api/v1/hr/tasks", query_string=q, headers=oworld.h(user))
        assert r.status_code == 200, r.json
        return {(t["employee"]["name"], t["key"]) for t in r.json["tasks"]}

    it = mine(oworld.it)
    assert it == {(n, k) for n in ("张三", "王五") for k in ("return_equipment", "close_accounts")}
    head = mine(oworld.head)  # 研发部 only
    assert {n for n, _ in head} == {"张三"} and ("张三", "employee:1") in head
    assert {n for n, _ in mine(oworld.other_head)} == {"王五"}
    assert {k for _, k in mine(oworld.spec)} == {"transfer_file_social_insurance"}
    assert mine(oworld.auditor) == set()
    # Done tasks leave the default list and show with status=done.
    task = oworld.tasks(c.id)["close_accounts"]
    assert client.post(f"/api/v1/hr/tasks/{task.id}/completion", json={}, headers=oworld.h(oworld.it)).status_code == 200
    assert ("张三", "close_accounts") not in mine(oworld.it)
    assert mine(oworld.it, status="done") == {("张三", "close_accounts")}
    assert client.get("/api/v1/hr/tasks", query_string={"status": "late"}, headers=oworld.h(oworld.it)).status_code == 422
    # Duties are managed on the account (HR managers).
    r = client.patch(f"/api/v1/hr/users/{oworld.auditor.id}", json={"task_roles": ["finance"]},
                     headers=oworld.h(oworld.manager))
    assert r.status_code == 200 and r.json["task_roles"] == ["finance"]
    assert {k for _, k in mine(oworld.auditor)} == {"final_pay", "stop_payroll"}
    r = client.patch(f"/api/v1/hr/users/{oworld.auditor.id}", json={"task_roles": ["ceo"]},
                     headers=oworld.h(oworld.manager))
    assert r.status_code == 422


def test_employee_follows_progress_without_internal_notes(client, oworld, db_session, factory):
    c, emp = oworld.case(signed=True)
    approve(client, oworld, c.id)
    task = oworld.tasks(c.id)["return_equipment"]
    client.post(f"/api/v1/hr/tasks/{task.id}/completion", json={"note": "内部备注：电脑有划痕"}, headers=oworld.h(oworld.it))
    r = client.get(f"/api/v1/cases/{c.id}/tasks", headers=factory.employee_headers(emp))
    assert r.status_code == 200
    rows = {t["title"]: t for t in r.json["tasks"]}
    assert rows["收回电脑等办公设备"]["status"] == "done" and rows["收回电脑等办公设备"]["completed_on"]
    assert rows["代码仓库权限"]["status"] == "open"
    assert "内部备注" not in r.text and "owner" not in r.text and "note" not in r.text
    # Nor does the employee's own timeline show the owners' notes.
    mine = client.get(f"/api/v1/cases/{c.id}", headers=factory.employee_headers(emp))
    assert mine.status_code == 200 and "task_completed" in mine.text and "内部备注" not in mine.text
    other = factory.employee(oworld.company, department="市场部")
    assert client.get(f"/api/v1/cases/{c.id}/tasks", headers=factory.employee_headers(other)).status_code == 404


def test_withdrawal_after_approval_cancels_tasks_visibly(client, oworld, db_session, factory):
    c, emp = oworld.case(signed=True)
    approve(client, oworld, c.id)
    done = oworld.tasks(c.id)["return_equipment"]
    client.post(f"/api/v1/hr/tasks/{done.id}/completion", json={}, headers=oworld.h(oworld.it))
    eh = factory.employee_headers(emp)
    r = client.post(f"/api/v1/cases/{c.id}/withdrawal", json={"reason": "公司挽留，决定留下"}, headers=eh)
    assert r.status_code == 200 and r.json["withdrawal"] == "requested", r.json
    d = client.get(f"/api/v1/hr/cases/{c.id}", headers=oworld.h(oworld.spec)).json
    assert "consent_withdrawal" in d["allowed_actions"]
    r = client.post(f"/api/v1/hr/cases/{c.id}/withdrawal-consent", json={"comment": "欢迎留下"},
                    headers=oworld.h(oworld.spec))
    assert r.status_code == 200 and r.json["state"] == "withdrawn", r.json
    tasks = oworld.tasks(c.id)
    assert tasks["return_equipment"].status == "done"
    cancelled = [t for t in tasks.values() if t.status == "cancelled"]
    assert len(cancelled) == len(tasks) - 1
    assert all(t.cancel_reason and "欢迎留下" in t.cancel_reason and t.cancelled_by == f"hr:{oworld.spec.id}"
               for t in cancelled)
    assert "tasks_cancelled" in actions(db_session, c.id)
    assert "access_revoke_cancelled" in actions(db_session, c.id)  # the revocation scheduled at approval too
    # Still listed (never deleted), for HR and for the employee.
    r = client.get(f"/api/v1/hr/cases/{c.id}/tasks", headers=oworld.h(oworld.spec))
    assert len(r.json["tasks"]) == len(tasks) and r.json["tasks"][0]["cancel_reason"]
    r = client.get(f"/api/v1/cases/{c.id}/tasks", headers=eh)
    assert {t["status"] for t in r.json["tasks"]} == {"done", "cancelled"}
    r = client.post(f"/api/v1/hr/tasks/{cancelled[0].id}/completion", json={}, headers=oworld.h(oworld.spec))
    assert r.status_code == 409 and r.json["code"] == "task_not_open"
    assert db_session.scalar(select(OffboardingTask).where(OffboardingTask.case_id == c.id)) is not None


def test_dossier_holds_the_offboarding_evidence_and_attachments(client, oworld, db_session):
    c, _ = oworld.case()
    case = db_session.get(ResignationCase, c.id)
    case.state = "approved"
    db_session.commit()
    start_offboarding(db_session, oworld.rt, case, actor="system:test")
    db_session.commit()
    task = oworld.tasks(c.id)["close_accounts"]
    r = client.post(f"/api/v1/hr/tasks/{task.id}/completion", data={"note": "账号已停用",
                    "attachment": (io.BytesIO(b"%PDF-1.4\n% screenshot of the disabled account\n"), "a.pdf")},
                    content_type="multipart/form-data", headers=oworld.h(oworld.it))
    assert r.status_code == 200, r.json
    data = build_dossier(db_session, oworld.rt, db_session.get(ResignationCase, c.id), actor="system:test")
    db_session.commit()
    assert verify_dossier(data).ok
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = zf.namelist()
        view = json.loads(zf.read("evidence/offboarding.json"))
    assert [e["action"] for e in view["entries"]] == ["offboarding_started", "task_completed"]
    assert any(n.startswith("documents/task_attachment/") for n in names)
