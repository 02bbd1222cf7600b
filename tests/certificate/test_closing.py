"""closeCase: refused before the last day or without the certificate; closing deactivates the employee,
ends their sessions, deletes the face data (verifiably), publishes case.closed, keeps the dossier whole."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import timedelta

from cases.clock import beijing_today
from qianli.db import utcnow
from qianli.models import (BiometricConsent, Employee, EvidenceEntry, FaceEnrolment, FaceReferencePhoto, OutboxEvent,
                           RefreshToken, ResignationCase)


def close_url(c):
    return f"/api/v1/hr/cases/{c.id}/closure"


def issue(client, end, c):
    r = client.post(f"/api/v1/hr/cases/{c.id}/termination-certificate", json={}, headers=end.h(end.spec))
    assert r.status_code == 201, r.json
    return r.json


def enrol_face(s, emp):
    consent = BiometricConsent(company_id=emp.company_id, employee_id=emp.id, method="employee_app",
                               text_version="v1", text_sha256="0" * 64, actor=f"employee:{emp.id}")
    s.add(consent)
    s.flush()
    enrolment = FaceEnrolment(company_id=emp.company_id, employee_id=emp.id, template_enc="v1:k:AAAA", key_id="k",
                              source="self_capture", photo_sha256="a" * 64, consent_id=consent.id,
                              consent_given_at=utcnow(), consent_text_version="v1", enrolled_by=f"employee:{emp.id}")
    s.add(enrolment)
    s.flush()
    s.add(FaceReferencePhoto(company_id=emp.company_id, employee_id=emp.id, enrolment_id=enrolment.id,
                             photo_enc=b"encrypted", content_type="image/jpeg", sha256="b" * 64,
                             delete_after=utcnow() + timedelta(days=30)))
    s.commit()
    return consent


def test_close_refused_on_the_last_day_before_final_approval_and_without_certificate(client, end, db_session):
    c, _ = end.approved_case(last_day_offset=0)  # today is the last day: the certificate yes, closing not yet
    r = client.post(close_url(c), json={}, headers=end.h(end.spec))
    assert r.status_code == 409 and r.json["code"] == "case_last_day_not_passed", r.json
    assert r.json["details"]["closable_from"] == (beijing_today() + timedelta(days=1)).isoformat()

    past, _ = end.approved_case(last_day_offset=-1)
    r = client.post(close_url(past), json={}, headers=end.h(end.spec))
    assert r.status_code == 409 and r.json["code"] == "certificate_not_issued", r.json

    pending, _ = end.approved_case(last_day_offset=-1)
    pending.state = "first_approved"
    db_session.commit()
    r = client.post(close_url(pending), json={}, headers=end.h(end.spec))
    assert r.status_code == 409 and r.json["code"] == "case_not_closable"
    for cid in (c.id, past.id, pending.id):
        db_session.expire_all()
        assert db_session.get(ResignationCase, cid).state != "closed"

    issue(client, end, past)
    assert client.post(close_url(past), json={}, headers=end.h(end.head)).status_code == 403
    assert client.post(close_url(past), json={}, headers=end.h(end.auditor)).status_code == 403
    assert client.post(close_url(past), json={}, headers=end.h(end.spec)).status_code == 200
    r = client.post(close_url(past), json={}, headers=end.h(end.spec))
    assert r.status_code == 409 and r.json["code"] == "case_already_closed"


def test_close_deactivates_ends_sessions_deletes_face_data_and_publishes(client, end, db_session, runtime):
    from qianli.services.auth import issue_employee_session

    c, emp = end.approved_case(last_day_offset=-2)
    consent = enrol_face(db_session, emp)
    pair = issue_employee_session(db_session, runtime.settings, emp, openid="openid-close")
    db_session.commit()
    headers = end.f.employee_headers(emp)
    assert client.get(f"/api/v1/cases/{c.id}", headers=headers).status_code == 200
    cert = issue(client, end, c)

    r = client.post(close_url(c), json={"comment": "交接已完成"}, headers=end.h(end.manager))
    assert r.status_code == 200, r.json
    body = r.json
    assert body["state"] == "closed" and body["employee_deactivated"] is True and body["open_tasks"] == []
    assert body["refresh_tokens_revoked"] == 1 and body["certificate"]["sha256"] == cert["sha256"]
    assert body["face_data_deleted"] == {"templates": 1, "reference_photos": 1,
                                         "remaining": {"face_enrolments": 0, "face_reference_photos": 0}}

    db_session.expire_all()
    assert db_session.get(Employee, emp.id).active is False
    assert db_session.query(FaceEnrolment).filter_by(employee_id=emp.id).count() == 0
    assert db_session.query(FaceReferencePhoto).filter_by(employee_id=emp.id).count() == 0
    assert db_session.get(BiometricConsent, consent.id) is not None  # the consent stays as a record
    assert db_session.query(RefreshToken).filter_by(employee_id=emp.id, revoked_at=None).count() == 0
    # sessions end at once: the access token is refused, the refresh token too
    r = client.get(f"/api/v1/cases/{c.id}", headers=headers)
    assert r.status_code == 401 and r.json["code"] == "session_revoked"
    r = client.post("/api/v1/auth/refresh", json={"refresh_token": pair.refresh_token})
    assert r.status_code == 401

    entries = {e.action: e for e in db_session.query(EvidenceEntry).filter_by(case_id=c.id)}
    deleted = entries["face_data_deleted"].payload
    assert deleted["remaining"] == {"face_enrolments": 0, "face_reference_photos": 0}
    assert deleted["templates"][0]["photo_sha256"] == "a" * 64 and deleted["reference_photos"][0]["sha256"] == "b" * 64
    assert entries["employee_deactivated"].payload["refresh_tokens_revoked"] == 1
    closing = entries["case_close"].payload
    assert closing["to"] == "closed" and closing["open_tasks"] == [] and closing["comment"] == "交接已完成"
    assert closing["certificate"]["document_id"] == cert["document_id"]

    events = db_session.query(OutboxEvent).filter_by(case_id=c.id, event_type="case.closed").all()
    assert len(events) == 1 and events[0].id == body["event_id"]
    assert events[0].data["employee_id"] == emp.id and events[0].data["certificate_sha256"] == cert["sha256"]
    assert events[0].data["alumni"] == "retention_scheduled"  # no alumni consent: the retention schedule

    # HR still has everything: the certificate and the dossier, with the deletion recorded
    assert client.get(f"/api/v1/cases/{c.id}/termination-certificate", headers=end.h(end.spec)).status_code == 200
    z = zipfile.ZipFile(io.BytesIO(client.get(f"/api/v1/hr/cases/{c.id}/dossier", headers=end.h(end.spec)).data))
    identity = json.loads(z.read("evidence/identity.json"))["entries"]
    assert any(e["action"] == "face_data_deleted" for e in identity)
    approvals = json.loads(z.read("evidence/approvals.json"))["entries"]
    assert any(e["action"] == "case_close" for e in approvals)
    assert any(d["kind"] == "termination_certificate" for d in json.loads(z.read("documents/index.json"))["documents"])


def test_console_close_action(client, end, db_session):
    from tests.review.test_console import csrf_of, login

    c, _ = end.approved_case(last_day_offset=-1)
    login(client, end, end.spec)
    html = client.get(f"/hr/cases/{c.id}").get_data(as_text=True)
    assert 'id="close-blocked"' in html and 'id="close-form"' not in html  # no certificate yet
    issue(client, end, c)
    html = client.get(f"/hr/cases/{c.id}").get_data(as_text=True)
    assert 'id="close-form"' in html
    r = client.post(f"/hr/cases/{c.id}/close", data={"csrf_token": csrf_of(html), "comment": "结案"})
    assert r.status_code == 303
    html = client.get(f"/hr/cases/{c.id}").get_data(as_text=True)
    assert 'id="closed-record"' in html and "案件已结案" in html


def test_open_handover_tasks_hold_back_neither_certificate_nor_closing_and_are_listed(client, end, db_session):
    from qianli.services.offboarding import open_tasks, start_offboarding

    c, _ = end.approved_case(last_day_offset=-1)
    tasks = start_offboarding(db_session, end.rt, c, actor=f"hr:{end.spec.id}")
    db_session.commit()
    assert tasks and len(open_tasks(db_session, c.id)) == len(tasks)
    issue(client, end, c)  # the certificate is never conditional on the handover
    r = client.post(close_url(c), json={}, headers=end.h(end.spec))
    assert r.status_code == 200, r.json
    listed = r.json["open_tasks"]
    assert sorted(t["id"] for t in listed) == sorted(t.id for t in open_tasks(db_session, c.id))
    assert all(t["title"] and t["status"] == "open" for t in listed)
    closing = db_session.query(EvidenceEntry).filter_by(case_id=c.id, action="case_close").one().payload
    assert closing["open_task_count"] == len(listed) and [t["id"] for t in closing["open_tasks"]] == \
        [t["id"] for t in listed]


def test_a_dismissal_gets_its_certificate_on_the_day_and_closes(client, end, db_session):
    from qianli.services import certificate as cert_svc

    c, emp = end.approved_case(last_day_offset=-1)
    c.state, c.departure_type = "dismissed", "absconding"  # art. 39(2): agreed_last_day is the termination date
    db_session.commit()
    assert c.id in cert_svc.due_certificate_cases(db_session)
    assert cert_svc.issue_certificate_job_body(end.rt, c.id)["status"] == "issued"
    issued = db_session.query(EvidenceEntry).filter_by(case_id=c.id, action="termination_certificate_issued").one()
    assert issued.payload["departure_type"] == "absconding" and issued.payload["ground_stated"] is False
    r = client.post(close_url(c), json={}, headers=end.h(end.spec))
    assert r.status_code == 200 and r.json["state"] == "closed", r.json
