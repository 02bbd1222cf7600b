"""Leaving without notice, end to end over HTTP: confirm the departure, serve the sealed return-to-work
notice (read receipt, postal evidence, reminders), the employee's answers (back / resign), the union
record and the art. 39(2) dismissal with its refusals, the notices checked by pdfsig and the verifier,
and the dossier (issue 16)."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import date, datetime, timedelta, timezone

import time_machine
from pypdf import PdfReader
from sqlalchemy import select

from qianli.models import EvidenceEntry, ReminderDelivery, ResignationCase
from signing.verify import verify_pdf
from tests.absconding.conftest import CLAUSE, after_deadline
from tests.signing_support import sign_case


def _actions(db_session, case_id) -> list[str]:
    db_session.expire_all()
    return [e.action for e in db_session.scalars(select(EvidenceEntry).where(EvidenceEntry.case_id == case_id)
                                                 .order_by(EvidenceEntry.seq))]


def _zh(d: date) -> str:
    return f"{d.year}年{d.month}月{d.day}日"


def _text(pdf: bytes) -> str:
    return "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages).replace("\n", "").replace(" ", "")


def _check_sealed(runtime, pdfsig_for, tmp_path, pdf: bytes, name: str) -> None:
    report = verify_pdf(pdf, trust_roots=[runtime.pki.root_pem])
    [seal] = [s for s in report.signatures if s.field_name == "company_seal"]
    assert report.ok and seal.pades_level == "B-LTA" and "电子印章" in seal.signer
    path = tmp_path / name
    path.write_bytes(pdf)
    sigs = [x for x in pdfsig_for(runtime.pki.root_pem).run(path) if x.get("Signature Type") == "ETSI.CAdES.detached"]
    assert [x["Signature Field Name"] for x in sigs] == ["company_seal"]
    assert sigs[0]["Signature Validation"] == "Signature is Valid."


def _import_attendance(world, runtime, db_session) -> None:
    """The employee's clock-ins as HR imported them: present up to the day before the absence, then none."""
    from qianli.cli.demo_absconding import _clock_csv
    from qianli.services.attendance import import_attendance
    from tests.absconding.conftest import last_working_days

    absent = world.absent_days()
    present = last_working_days(db_session, world.company.id, 5, before=absent[0] - timedelta(days=1))
    import_attendance(db_session, runtime, company_id=world.company.id, filename="wecom-daily.csv", coverage="file",
                      data=_clock_csv(world.emp.name, world.emp.employee_no, present, absent), actor="hr:test")
    db_session.commit()


def test_confirm_serve_read_post_and_come_back(world, client, runtime, db_session, tmp_path, pdfsig_for):
    _import_attendance(world, runtime, db_session)
    body = world.confirm()
    case_id = body["case_id"]
    assert body["state"] == "confirmed" and len(body["absent_days"]) == 3 and body["return_notice"] is None
    assert body["dismissal_blockers"][0] == "return_notice_not_served"
    case = db_session.get(ResignationCase, case_id)
    assert case.source == "hr_confirmation" and case.departure_type == "absconding"
    assert _actions(db_session, case_id) == ["departure_confirmed"]
    # one case at a time; a holiday is no absence; the employee sees nothing to answer yet
    r = client.post("/api/v1/hr/departures", headers=world.h(world.spec),
                    json={"employee_id": world.emp.id, "absent_days": body["absent_days"]})
    assert r.status_code == 409 and r.json["code"] == "case_already_open"
    assert client.post("/api/v1/cases", headers=world.eh, json={
        "reason_category": "family", "requested_last_day": (date.today() + timedelta(days=40)).isoformat()}
    ).json["code"] == "case_already_open"
    r = client.post(f"/api/v1/cases/{case_id}/return-notice/answer", headers=world.eh, json={"answer": "back"})
    assert r.status_code == 409 and r.json["code"] == "absence_answer_closed"
    assert client.get(f"/api/v1/cases/{case_id}/notices/return_to_work", headers=world.eh).status_code == 404
    # the notice goes to the phone on record: HR cannot swap it while the case is in progress
    r = client.put(f"/api/v1/hr/employees/{world.emp.id}/phone", headers=world.h(world.spec),
                    json={"phone": "13700001111", "reason": "员工换号"})
    assert r.status_code == 409 and r.json["code"] == "phone_change_case_open"

    served = world.serve(case_id)
    notice = served["return_notice"]
    deadline = date.fromisoformat(notice["deadline"])
    assert served["state"] == "notice_served" and notice["deadline_working_days"] == 3 and not notice["deadline_passed"]
    assert served["handbook_clause"] == CLAUSE
    r = client.post(f"/api/v1/hr/cases/{case_id}/return-notice", headers=world.h(world.spec))
    assert r.status_code == 409 and r.json["code"] == "return_notice_already_served"
    # SMS (and the subscribe message) now, reminders until the deadline, all queued as deliveries
    rows = db_session.scalars(select(ReminderDelivery).where(ReminderDelivery.case_id == case_id)).all()
    kinds = {(d.kind, d.channel) for d in rows}
    wechat = bool(runtime.settings.wechat_subscribe_template_id)  # the subscribe message when a template is set
    assert ("return_to_work_notice", "sms") in kinds and (("return_to_work_notice", "wechat") in kinds) == wechat
    reminders = [d for d in rows if d.kind == "return_notice_reminder"]
    assert reminders and all(d.params["deadline"] == deadline.isoformat() for d in rows)

    # the employee reads the sealed notice: one read receipt; HR reading adds none
    r = client.get(f"/api/v1/cases/{case_id}/notices/return_to_work", headers=world.eh)
    assert r.status_code == 200 and r.mimetype == "application/pdf"
    pdf = r.data
    text = _text(pdf)
    for needle in ("返岗通知书", CLAUSE["reference"], _zh(deadline), "第三十九条", world.emp.name,
                   *(_zh(date.fromisoformat(d)) for d in body["absent_days"])):
        assert needle.replace(" ", "") in text, needle
    _check_sealed(runtime, pdfsig_for, tmp_path, pdf, "return.pdf")
    assert client.get(f"/api/v1/cases/{case_id}/notices/return_to_work", headers=world.eh).data == pdf
    assert client.get(f"/api/v1/cases/{case_id}/notices/return_to_work", headers=world.h(world.head)).data == pdf
    assert _actions(db_session, case_id).count("notice_read") == 1
    other = world.f.employee(world.company, department="研发部")
    assert client.get(f"/api/v1/cases/{case_id}/notices/return_to_work",
                      headers=world.f.employee_headers(other)).status_code == 404
    assert client.get(f"/api/v1/cases/{case_id}/notices/return_to_work",
                      headers=world.h(world.other_head)).status_code == 404

    # postal delivery as 送达 evidence, then its delivered status
    sent = datetime.now(timezone.utc).replace(microsecond=0)
    r = client.post(f"/api/v1/hr/cases/{case_id}/postal-deliveries", headers=world.h(world.spec), json={
        "carrier": "EMS", "tracking_no": "1180000000001", "address": "上海市浦东新区世纪大道 100 号",
        "sent_at": sent.isoformat()})
    assert r.status_code == 201 and r.json["status"] == "sent", r.json
    pid = r.json["id"]
    r = client.patch(f"/api/v1/hr/cases/{case_id}/postal-deliveries/{pid}", headers=world.h(world.spec),
                     json={"status": "delivered", "status_at": sent.isoformat(), "note": "本人签收"})
    assert r.status_code == 200 and r.json["status"] == "delivered"
    r = client.patch(f"/api/v1/hr/cases/{case_id}/postal-deliveries/{pid}", headers=world.h(world.spec),
                     json={"status": "returned", "status_at": sent.isoformat()})
    assert r.status_code == 409 and r.json["code"] == "postal_status_final"
    assert client.post(f"/api/v1/hr/cases/{case_id}/postal-deliveries", headers=world.h(world.auditor), json={
        "carrier": "EMS", "tracking_no": "1180000000002", "address": "上海市浦东新区世纪大道 100 号",
        "sent_at": sent.isoformat()}).status_code == 403

    # "I'm back" before the deadline: the case ends, no dismissal, and the queued reminders are dropped
    mine = client.get(f"/api/v1/cases/{case_id}/absence", headers=world.eh).json
    assert mine["may_answer"] and mine["return_notice"]["read_at"] and "postal_deliveries" not in mine
    r = client.post(f"/api/v1/cases/{case_id}/return-notice/answer", headers=world.eh, json={"answer": "back"})
    assert r.status_code == 200 and r.json["outcome"] == "returned_to_work" and not r.json["late"], r.json
    r = client.post(f"/api/v1/hr/cases/{case_id}/dismissal", headers=world.h(world.manager), json={})
    assert r.status_code == 409 and r.json["code"] == "case_not_dismissible"
    from qianli.services.reminders import deliver

    outcome = deliver(runtime, case_id, reminders[0].slot, reminders[0].channel)
    assert outcome.status == "dropped"
    actions = _actions(db_session, case_id)
    assert actions[:2] == ["departure_confirmed", "case_serve_return_notice"]
    for a in ("notice_read", "postal_delivery_recorded", "postal_delivery_updated", "absence_answered",
              "case_return_to_work", "reminder_dropped"):
        assert a in actions, a
    assert "case_dismiss" not in actions

    # the dossier: the absconding view and the absence's facts (notices, service, answers)
    r = client.get(f"/api/v1/hr/cases/{case_id}/dossier", headers=world.h(world.manager))
    assert r.status_code == 200, r.get_data(as_text=True)[:300]
    zf = zipfile.ZipFile(io.BytesIO(r.data))
    view = json.loads(zf.read("evidence/absconding.json"))
    assert {"departure_confirmed", "notice_read", "postal_delivery_recorded", "absence_answered"} <= {
        e["action"] for e in view["entries"]}
    absence = json.loads(zf.read("case/absence.json"))
    assert absence["postal_deliveries"][0]["tracking_no"] == "1180000000001"
    assert absence["return_notice"]["read_at"] and absence["answers"][0]["answer"] == "back"
    records = absence["attendance"]["records"]
    assert [r["day"] for r in records if not r["present"]] == body["absent_days"]
    assert sum(r["present"] for r in records) == 5 and absence["attendance"]["imports"][0]["filename"] == "wecom-daily.csv"
    attendance_files = [n for n in zf.namelist() if n.startswith("documents/attendance_import/")]
    assert len(attendance_files) == 1 and "未打卡" in zf.read(attendance_files[0]).decode("utf-8")
    index = json.loads(zf.read("documents/index.json"))["documents"]
    [doc] = [d for d in index if d["kind"] == "return_to_work_notice"]
    assert doc["signature_report"]["ok"]


def test_resign_instead_becomes_a_resignation_the_employee_signs(world, client, runtime, db_session):
    case_id = world.confirm()["case_id"]
    world.serve(case_id)
    last = (date.today() + timedelta(days=45)).isoformat()
    r = client.post(f"/api/v1/cases/{case_id}/return-notice/answer", headers=world.eh, json={
        "answer": "resign", "text": "家里有事，决定辞职", "reason_category": "family", "requested_last_day": last})
    assert r.status_code == 200, r.json
    assert r.json["outcome"] == "converted_to_resignation"
    new_id = r.json["resignation_case_id"]
    assert r.json["resignation_case"]["state"] == "awaiting_letter" and r.json["resignation_case"]["id"] == new_id
    db_session.expire_all()
    new = db_session.get(ResignationCase, new_id)
    assert new.source == "miniprogram" and new.reason_category == "family" and new.requested_last_day.isoformat() == last
    assert new.departure_type == "resignation"
    opened = db_session.scalar(select(EvidenceEntry).where(EvidenceEntry.case_id == new_id,
                                                           EvidenceEntry.action == "case_opened"))
    assert opened.payload["converted_from_case_id"] == case_id and opened.actor == f"employee:{world.emp.id}"
    assert "resignation_opened_from_absence" in _actions(db_session, case_id)
    # the employee still signs the letter themselves: no intent without their own SMS + face factors
    r = client.get(f"/api/v1/cases/{new_id}/letter/preview", headers=world.eh)
    assert r.status_code == 200 and r.mimetype == "application/pdf"
    r = client.post(f"/api/v1/cases/{new_id}/letter/signature", headers=world.eh, data={
        "intent_id": "0" * 32, "idempotency_key": "absence-resign-1",
        "signature": (io.BytesIO(b"\x89PNG"), "s.png")}, content_type="multipart/form-data")
    assert r.status_code in (403, 404, 422) and r.json["code"] != "ok"
    out = sign_case(db_session, runtime, new, world.emp)
    db_session.commit()
    assert out.document.kind == "letter_signed"
    db_session.expire_all()
    assert db_session.get(ResignationCase, new_id).state == "submitted"
    # the absconding case is over: no dismissal, no second answer
    assert client.post(f"/api/v1/hr/cases/{case_id}/dismissal", headers=world.h(world.manager),
                       json={}).json["code"] == "case_not_dismissible"
    r = client.post(f"/api/v1/cases/{case_id}/return-notice/answer", headers=world.eh, json={"answer": "back"})
    assert r.status_code == 409 and r.json["code"] == "absence_answer_closed"


def test_no_notice_without_the_handbook_clause(runtime, db_session, factory, client):
    from tests.absconding.conftest import AbsenceWorld

    world = AbsenceWorld(runtime, db_session, factory, client, clause=False)
    case_id = world.confirm()["case_id"]
    r = client.post(f"/api/v1/hr/cases/{case_id}/return-notice", headers=world.h(world.spec))
    assert r.status_code == 409 and r.json["code"] == "handbook_clause_missing"
    assert _actions(db_session, case_id) == ["departure_confirmed"]
    r = client.patch("/api/v1/hr/company/policy", headers=world.h(world.manager),
                     json={"absconding_handbook_clause": {"reference": "第5条", "text": "短"}})
    assert r.status_code == 422
    r = client.patch("/api/v1/hr/company/policy", headers=world.h(world.manager),
                     json={"absconding_handbook_clause": CLAUSE, "return_notice_deadline_days": 5})
    assert r.status_code == 200 and r.json["absconding_handbook_clause"] == CLAUSE
    assert r.json["absconding_approval_chain"] == ["hr_manager", "dept_head"]
    assert client.patch("/api/v1/hr/company/policy", headers=world.h(world.spec),
                        json={"absconding_handbook_clause": CLAUSE}).status_code == 403
    served = world.serve(case_id)
    assert served["return_notice"]["deadline_working_days"] == 5


def test_dismissal_refusals_then_two_levels_and_the_sealed_notice(world, client, runtime, db_session, tmp_path,
                                                                pdfsig_for):
    case_id = world.confirm()["case_id"]
    url = f"/api/v1/hr/cases/{case_id}/dismissal"
    r = client.post(url, headers=world.h(world.manager), json={})
    assert r.status_code == 409 and r.json["code"] == "return_notice_not_served"
    deadline = date.fromisoformat(world.serve(case_id)["return_notice"]["deadline"])
    r = client.post(url, headers=world.h(world.manager), json={})
    assert r.status_code == 409 and r.json["code"] == "deadline_not_passed"
    assert r.json["details"]["blockers"] == ["deadline_not_passed", "union_notification_missing"]
    r = client.post(f"/api/v1/hr/cases/{case_id}/postal-deliveries", headers=world.h(world.spec), json={
        "carrier": "顺丰速运", "tracking_no": "SF1000000001", "address": "上海市浦东新区世纪大道 100 号",
        "sent_at": datetime.now(timezone.utc).isoformat()})
    assert r.status_code == 201

    with time_machine.travel(after_deadline(deadline), tick=True):
        world.relogin()
        r = client.post(url, headers=world.h(world.manager), json={})
        assert r.status_code == 409 and r.json["code"] == "union_notification_missing"
        assert r.json["details"]["blockers"] == ["union_notification_missing"]
        # without the handbook clause no art. 39(2) dismissal
        assert client.patch("/api/v1/hr/company/policy", headers=world.h(world.manager),
                            json={"absconding_handbook_clause": None}).status_code == 200
        world.union(case_id)
        r = client.post(url, headers=world.h(world.manager), json={})
        assert r.status_code == 409 and r.json["code"] == "handbook_clause_missing"
        assert client.patch("/api/v1/hr/company/policy", headers=world.h(world.manager),
                            json={"absconding_handbook_clause": CLAUSE}).status_code == 200
        # the chain: hr_manager first (not a specialist, not an auditor), then the department's head
        assert client.post(url, headers=world.h(world.spec), json={}).json["code"] == "wrong_approval_level"
        assert client.post(url, headers=world.h(world.auditor), json={}).status_code == 403
        r = client.post(url, headers=world.h(world.manager), json={"comment": "期限届满未返岗"})
        assert r.status_code == 200 and r.json["outcome"] == "dismissal_pending", r.json
        assert client.post(url, headers=world.h(world.manager), json={}).json["code"] == "same_approver"
        assert client.post(url, headers=world.h(world.other_head), json={}).status_code == 404
        r = client.post(url, headers=world.h(world.head), json={})
        assert r.status_code == 200 and r.json["outcome"] == "dismissed", r.json
        absence = r.json["absence"]
        termination = date.fromisoformat(absence["dismissal_notice"]["termination_date"])
        assert termination == deadline + timedelta(days=1)

        r = client.get(f"/api/v1/cases/{case_id}/notices/dismissal", headers=world.eh)
        assert r.status_code == 200
        pdf = r.data
        _check_sealed(runtime, pdfsig_for, tmp_path, pdf, "dismissal.pdf")  # verified at (travelled) now
    text = _text(pdf)
    for needle in ("解除劳动合同通知书", CLAUSE["reference"], _zh(termination), _zh(deadline), "第三十九条",
                   "第四十三条", "示例科技有限公司工会委员会", "SF1000000001"):
        assert needle.replace(" ", "") in text, needle
    actions = _actions(db_session, case_id)
    for a in ("union_notified", "case_approve_dismissal", "case_dismiss", "notice_read", "offboarding_started",
              "offboarding_after_dismissal"):
        assert a in actions, a
    # after the dismissal: the offboarding run counted from the termination date, the certificate issued
    from qianli.models import Document, OffboardingTask

    tasks = db_session.scalars(select(OffboardingTask).where(OffboardingTask.case_id == case_id)).all()
    assert tasks and {t.last_day for t in tasks} == {termination}
    certs = db_session.scalars(select(Document).where(Document.case_id == case_id,
                                                      Document.kind == "termination_certificate")).all()
    assert len(certs) == 1
    after = db_session.scalar(select(EvidenceEntry).where(EvidenceEntry.case_id == case_id,
                                                          EvidenceEntry.action == "offboarding_after_dismissal"))
    assert after.payload["certificate"]["document_id"] == certs[0].id and after.payload["offboarding_tasks"] == len(tasks)
    assert after.payload["access_revocation"]["status"] == "sent"
    dismiss = db_session.scalar(select(EvidenceEntry).where(EvidenceEntry.case_id == case_id,
                                                            EvidenceEntry.action == "case_dismiss"))
    assert dismiss.payload["level"] == 2 and dismiss.payload["handbook_clause"] == CLAUSE
    delivered = db_session.scalars(select(ReminderDelivery).where(ReminderDelivery.case_id == case_id,
                                                                  ReminderDelivery.kind == "dismissal_notice")).all()
    assert {d.channel for d in delivered} == ({"sms", "wechat"} if runtime.settings.wechat_subscribe_template_id
                                              else {"sms"})
    r = client.post(f"/api/v1/cases/{case_id}/return-notice/answer", headers=world.eh, json={"answer": "back"})
    assert r.status_code == 409 and r.json["code"] == "absence_answer_closed"


def test_late_answer_goes_to_hr_and_an_answer_resets_a_pending_dismissal(world, client, db_session):
    case_id = world.confirm()["case_id"]
    deadline = date.fromisoformat(world.serve(case_id)["return_notice"]["deadline"])
    world.union(case_id)
    with time_machine.travel(after_deadline(deadline), tick=True):
        world.relogin()
        r = client.post(f"/api/v1/hr/cases/{case_id}/dismissal", headers=world.h(world.manager), json={})
        assert r.json["outcome"] == "dismissal_pending"
        attachment = b"%PDF-1.4\n% sick note\n"
        r = client.post(f"/api/v1/cases/{case_id}/return-notice/answer", headers=world.eh, data={
            "answer": "back", "text": "生病住院，附病假条", "attachments": [(io.BytesIO(attachment), "note.pdf")]},
            content_type="multipart/form-data")
        assert r.status_code == 200 and r.json["outcome"] == "explanation_received" and r.json["late"], r.json
        detail = client.get(f"/api/v1/hr/cases/{case_id}/absence", headers=world.h(world.manager)).json
        assert detail["answers"][0]["attachments"][0]["content_type"] == "application/pdf"
        assert detail["dismissal_blockers"] == []
        # the second level cannot finish a round the answer interrupted: the first level starts again
        r = client.post(f"/api/v1/hr/cases/{case_id}/dismissal", headers=world.h(world.head), json={})
        assert r.status_code == 403 and r.json["code"] == "wrong_approval_level"
        r = client.post(f"/api/v1/hr/cases/{case_id}/departure-withdrawal", headers=world.h(world.spec),
                        json={"reason": "病假条属实，接受说明"})
        assert r.status_code == 200 and r.json["state"] == "withdrawn"
    bad = client.post(f"/api/v1/cases/{case_id}/return-notice/answer", headers=world.eh, data={
        "answer": "explanation", "text": "x", "attachments": [(io.BytesIO(b"GIF89a"), "x.gif")]},
        content_type="multipart/form-data")
    assert bad.status_code in (409, 415)
    assert "absence_answered" in _actions(db_session, case_id)
