"""Chat notices the employee can answer: a late record needs a screenshot and a reason; the employee
confirms or disputes ("我没有提出离职") without HR; a dispute stops reminders, shows in the console and
the dossier, and blocks approval unless the employee signs a letter themselves. Also: what the
employee's own timeline leaves out (HR addresses, browsers, failed-attempt face distances)."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import datetime, timedelta, timezone

from pypdf import PdfReader

from cases.states import CaseAction
from qianli.models import EvidenceEntry, HrAlert, ReminderDelivery, ReminderSchedule, ResignationCase
from qianli.services import cases as case_svc
from qianli.services.evidence import append_evidence
from tests.review.test_chat_evidence_and_tenancy import png_bytes, post_multipart
from tests.signing_support import sign_case

TEXT = "领导，我下个月不干了"



def _body(emp, days_ago: float, **kw):
    sent = (datetime.now(timezone(timedelta(hours=8))) - timedelta(days=days_ago)).replace(microsecond=0)
    body = {"employee_no": emp.employee_no, "text": TEXT, "sender_name": "小王", "platform": "wechat",
            "sent_at": sent.isoformat()}
    body.update(kw)
    return body


def _record(client, world, emp, days_ago: float = 2):
    r = client.post("/api/v1/hr/chat-evidence", json=_body(emp, days_ago), headers=world.h(world.spec))
    assert r.status_code == 201, r.json
    return r.json["id"]


def _counts(db_session):
    return db_session.query(ResignationCase).count(), db_session.query(EvidenceEntry).count()


def test_late_chat_notice_needs_screenshot_and_reason(client, world, db_session, factory):
    emp = factory.employee(world.company)
    before = _counts(db_session)
    r = client.post("/api/v1/hr/chat-evidence", json=_body(emp, 400), headers=world.h(world.spec))
    assert r.status_code == 422 and r.json["code"] == "chat_screenshot_required", r.json
    assert r.json["details"]["window_days"] == 30
    data = {k: v for k, v in _body(emp, 400).items()}
    data["screenshot"] = (io.BytesIO(png_bytes()), "shot.png", "image/png")
    r = post_multipart(client, "/api/v1/hr/chat-evidence", data, world.h(world.spec))
    assert r.status_code == 422 and r.json["code"] == "chat_late_reason_required", r.json
    data = {**_body(emp, 400), "late_reason": "   "}
    data["screenshot"] = (io.BytesIO(png_bytes()), "shot.png", "image/png")
    r = post_multipart(client, "/api/v1/hr/chat-evidence", data, world.h(world.spec))
    assert r.status_code == 422 and r.json["code"] == "chat_late_reason_required"
    db_session.expire_all()
    assert _counts(db_session) == before  # nothing half-written

    data = {**_body(emp, 400), "late_reason": "员工当时口头提出，HR 今天才在旧手机里找到这条消息"}
    data["screenshot"] = (io.BytesIO(png_bytes()), "shot.png", "image/png")
    r = post_multipart(client, "/api/v1/hr/chat-evidence", data, world.h(world.spec))
    assert r.status_code == 201, r.json
    chat = db_session.query(EvidenceEntry).filter_by(case_id=r.json["id"], action="chat_evidence_recorded").one()
    assert chat.payload["late"] is True and chat.payload["late_reason"].startswith("员工当时口头提出")
    assert chat.payload["screenshot_sha256"] and chat.payload["window_days"] == 30
    detail = client.get(f"/api/v1/hr/cases/{r.json['id']}", headers=world.h(world.spec)).json
    assert detail["chat_notice"]["late"] is True and detail["chat_notice"]["state"] == "pending"


def test_recent_chat_notice_without_screenshot_is_fine(client, world, db_session, factory):
    emp = factory.employee(world.company)
    case_id = _record(client, world, emp, days_ago=29)
    chat = db_session.query(EvidenceEntry).filter_by(case_id=case_id, action="chat_evidence_recorded").one()
    assert chat.payload["late"] is False and chat.payload["screenshot_sha256"] is None


def test_employee_sees_and_confirms_the_message(client, world, db_session, factory):
    emp = factory.employee(world.company)
    case_id = _record(client, world, emp)
    eh = factory.employee_headers(emp)
    mine = client.get(f"/api/v1/cases/{case_id}", headers=eh).json
    assert mine["chat_notice"]["text"] == TEXT and mine["chat_notice"]["state"] == "pending"
    r = client.post(f"/api/v1/cases/{case_id}/chat-notice/answer", json={"answer": "confirm"}, headers=eh)
    assert r.status_code == 200 and r.json["state"] == "confirmed", r.json
    r = client.post(f"/api/v1/cases/{case_id}/chat-notice/answer", json={"answer": "dispute"}, headers=eh)
    assert r.status_code == 409 and r.json["code"] == "chat_notice_already_answered"
    # Another employee cannot answer it; HR cannot answer for the employee.
    other = factory.employee(world.company)
    r = client.post(f"/api/v1/cases/{case_id}/chat-notice/answer", json={"answer": "confirm"},
                    headers=factory.employee_headers(other))
    assert r.status_code == 404
    r = client.post(f"/api/v1/cases/{case_id}/chat-notice/answer", json={"answer": "confirm"},
                    headers=world.h(world.spec))
    assert r.status_code in (401, 403)


def test_answer_on_a_case_the_employee_opened_is_refused(client, world, factory):
    c, emp = world.case(submit=False)
    r = client.post(f"/api/v1/cases/{c.id}/chat-notice/answer", json={"answer": "dispute"},
                    headers=factory.employee_headers(emp))
    assert r.status_code == 409 and r.json["code"] == "no_chat_notice"
    r = client.post(f"/api/v1/cases/{c.id}/chat-notice/answer", json={"answer": "maybe"},
                    headers=factory.employee_headers(emp))
    assert r.status_code == 422


def test_dispute_stops_reminders_alerts_hr_and_blocks_approval(client, world, db_session, factory, runtime):
    emp = factory.employee(world.company, department="研发部")
    case_id = _record(client, world, emp)
    db_session.expire_all()
    sched = db_session.query(ReminderSchedule).filter_by(case_id=case_id).one()
    assert sched.state == "active"
    # a reminder already waiting to be sent
    db_session.add(ReminderDelivery(company_id=world.company.id, case_id=case_id, slot=1, channel="sms",
                                    kind="letter_reminder", params={}, status="pending",
                                    scheduled_for=datetime.now(timezone.utc)))
    db_session.commit()

    eh = factory.employee_headers(emp)
    r = client.post(f"/api/v1/cases/{case_id}/chat-notice/answer",
                    json={"answer": "dispute", "comment": "那是在说别的项目"}, headers=eh)
    assert r.status_code == 200 and r.json["state"] == "disputed", r.json
    db_session.expire_all()
    sched = db_session.query(ReminderSchedule).filter_by(case_id=case_id).one()
    assert sched.state == "stopped" and sched.stop_reason == "notice_disputed"
    pending = db_session.query(ReminderDelivery).filter_by(case_id=case_id, slot=1).one()
    assert pending.status == "dropped" and pending.error_code == "notice_disputed"
    disputed = db_session.query(EvidenceEntry).filter_by(case_id=case_id, action="chat_notice_disputed").one()
    assert disputed.payload["statement"] == "我没有提出离职" and disputed.actor == f"employee:{emp.id}"
    alert = db_session.query(HrAlert).filter_by(case_id=case_id, kind="notice_disputed").one()
    assert "我没有提出离职" in alert.message

    detail = client.get(f"/api/v1/hr/cases/{case_id}", headers=world.h(world.spec)).json
    assert detail["chat_notice"]["state"] == "disputed" and detail["chat_notice"]["comment"] == "那是在说别的项目"

    # HR marks a letter as submitted without the employee's signature: approval is still refused.
    c = db_session.get(ResignationCase, case_id)
    case_svc.apply_action(db_session, c, CaseAction.SUBMIT_LETTER, actor=f"hr:{world.spec.id}")
    db_session.commit()
    detail = client.get(f"/api/v1/hr/cases/{case_id}", headers=world.h(world.spec)).json
    assert "approve" not in detail["allowed_actions"] and "return" in detail["allowed_actions"]
    r = client.post(f"/api/v1/hr/cases/{case_id}/approval", json={}, headers=world.h(world.spec))
    assert r.status_code == 409 and r.json["code"] == "chat_notice_disputed", r.json

    # The console shows the dispute prominently.
    from tests.review.test_console import login  # noqa: PLC0415 - console helper

    login(client, world, world.spec)
    html = client.get(f"/hr/cases/{case_id}").get_data(as_text=True)
    assert 'id="chat-notice-disputed"' in html and "我没有提出离职" in html


def test_disputed_case_with_the_employees_own_signed_letter_can_be_approved(client, world, db_session, factory,
                                                                            runtime):
    company = factory.company(approval_chain=["hr_specialist"])
    spec = factory.hr(company, "hr_specialist")
    emp = factory.employee(company)
    r = client.post("/api/v1/hr/chat-evidence", json=_body(emp, 1), headers=factory.hr_headers(spec))
    case_id = r.json["id"]
    eh = factory.employee_headers(emp)
    assert client.post(f"/api/v1/cases/{case_id}/chat-notice/answer", json={"answer": "dispute"},
                       headers=eh).status_code == 200
    c = db_session.get(ResignationCase, case_id)
    c.reason_category, c.requested_last_day = "other", c.earliest_lawful_last_day
    db_session.commit()
    sign_case(db_session, runtime, c, emp)  # the employee signs after all (SMS + face, as signLetter needs)
    db_session.commit()
    detail = client.get(f"/api/v1/hr/cases/{case_id}", headers=factory.hr_headers(spec)).json
    assert "approve" in detail["allowed_actions"]


def test_dossier_shows_the_dispute(runtime, db_session, client, world, factory):
    from qianli.services.dossier import build_dossier

    emp = factory.employee(world.company, name="王芳")
    case_id = _record(client, world, emp)
    client.post(f"/api/v1/cases/{case_id}/chat-notice/answer", json={"answer": "dispute"},
                headers=factory.employee_headers(emp))
    db_session.expire_all()
    # the runtime's own PKI and TSA (importing tests.dossier.pki_helpers fails after other test packages loaded)
    data = build_dossier(db_session, runtime, db_session.get(ResignationCase, case_id), actor="hr:1")
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        notice = json.loads(zf.read("case/chat-notice.json"))["chat_notice"]
        report = zf.read("report.pdf")
    assert notice["state"] == "disputed" and notice["text"] == TEXT
    first_page = PdfReader(io.BytesIO(report)).pages[0].extract_text()
    assert "员工否认提出离职" in first_page and "我没有提出离职" in first_page


def test_employee_timeline_hides_hr_addresses_and_failed_distances(client, world, db_session, factory):
    c, emp = world.case(submit=False)
    append_evidence(db_session, c, f"hr:{world.spec.id}", "face_unlocked",
                    {"reason": "员工换了手机", "ip": "10.1.2.3", "user_agent": "Mozilla/5.0 HRBrowser"})
    append_evidence(db_session, c, f"employee:{emp.id}", "face_verification_failed",
                    {"code": "face_mismatch", "distance": 0.71, "threshold": 0.5, "ip": "203.0.113.9",
                     "liveness": {"max_frame_distance": 0.2, "passed": True}, "consecutive_failures": 1})
    db_session.commit()
    mine = client.get(f"/api/v1/cases/{c.id}", headers=factory.employee_headers(emp)).json
    raw = json.dumps(mine["timeline"], ensure_ascii=False)
    for secret in ("10.1.2.3", "HRBrowser", "203.0.113.9", "0.71", "max_frame_distance", "user_agent"):
        assert secret not in raw, secret
    failed = [t for t in mine["timeline"] if t["action"] == "face_verification_failed"][0]
    assert failed["payload"]["code"] == "face_mismatch" and failed["payload"]["consecutive_failures"] == 1
    assert all(t["redacted"] for t in mine["timeline"])
    # HR and the dossier keep the full record.
    hr = client.get(f"/api/v1/hr/cases/{c.id}", headers=world.h(world.spec)).json
    assert "10.1.2.3" in json.dumps(hr["timeline"]) and "0.71" in json.dumps(hr["timeline"])
