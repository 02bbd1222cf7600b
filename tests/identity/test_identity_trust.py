"""No single employer account can sign in an employee's name (issue 13, item 1).

The attack, replayed over HTTP with only HR's powers: re-import the roster with HR's phone for the
employee, unbind their WeChat, bind HR's own WeChat with a code sent to that phone, enrol HR's face
with an attested paper consent, open a case and try to sign. Every signing step now answers 4xx,
and what HR did is in the employee's identity history, announced to the old phone and WeChat. Then
the pieces one by one: confirmation from the WeChat bound before, objection, the cooling period,
the employee's own face (self-enrolment with liveness, Tencent FaceID over its wire format), the
provenance of both factors in the signature's evidence and the dossier's 30-day flags.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from identity.sms import DevOutboxSmsGateway
from qianli.db import utcnow
from qianli.models import (Employee, EvidenceEntry, FaceEnrolment, HrAlert, IdentityChange, ResignationCase,
                           WechatBindingEvent)
from qianli.services import faces as face_svc
from tests.faces.conftest import burst, photo
from tests.signing_support import sign_case

OLD_PHONE = "13911112222"
HR_PHONE = "13788889999"
NID = "110105199003071239"



def make_test_pki():
    """tests/dossier/pki_helpers.make_pki, loaded by path (tests/ is not a package)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "dossier" / "pki_helpers.py"
    spec = importlib.util.spec_from_file_location("qianli_tests_pki_helpers", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.make_pki()

def login(client, openid: str) -> dict:
    r = client.post("/api/v1/wechat/session", json={"code": f"dev-{openid}"})
    assert r.status_code == 200, r.json
    return r.json


def bearer(body: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {body['access_token']}"}


def outbox(runtime, phone: str):
    return DevOutboxSmsGateway(runtime.redis).messages(phone=phone, limit=50)


def roster_csv(emp, phone: str) -> bytes:
    header = "工号,姓名,部门,入职日期,手机号"
    return f"{header}\r\n{emp.employee_no},{emp.name},{emp.department},2023-03-01,{phone}\r\n".encode()


def import_roster(client, hr_h, data: bytes):
    return client.post("/api/v1/hr/roster", data={"file": (io.BytesIO(data), "roster.csv", "text/csv")},
                       headers=hr_h, content_type="multipart/form-data")


BOUNDARY = "qianli-trust-boundary"


def multipart(name: str, blobs) -> tuple[bytes, str]:
    out = b""
    for i, blob in enumerate(blobs):
        out += (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"f{i}.jpg\"\r\n"
                f"Content-Type: image/jpeg\r\n\r\n").encode() + blob + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode(), f"multipart/form-data; boundary={BOUNDARY}"


@pytest.fixture
def world(runtime, db_session, factory):
    class W:
        pass

    w = W()
    w.rt, w.s, w.f = runtime, db_session, factory
    w.company = factory.company(code="trust-co")
    w.hr = factory.hr(w.company, "hr_specialist", username="mallory")
    w.hr_h = factory.hr_headers(w.hr)
    w.emp = factory.employee(w.company, employee_no="T100", name="周敏", phone=OLD_PHONE, openid="oZhouMin",
                             department="研发部")
    db_session.commit()
    return w


def test_the_issue_attack_over_http_fails_and_is_recorded(client, world, runtime, db_session):
    emp, hr_h = world.emp, world.hr_h
    # 1. HR re-imports the roster with HR's own phone for the employee.
    r = import_roster(client, hr_h, roster_csv(emp, HR_PHONE))
    assert r.status_code == 200 and r.json["updated"] == 1, r.json
    [change] = r.json["phone_changes"]
    assert change["employee_no"] == "T100" and change["usable_from"]
    # ... which is announced to the OLD phone, naming the new one (masked).
    [notice] = [m for m in outbox(runtime, OLD_PHONE) if m.template == "reminder"]
    assert "137****9999" in notice.params["text"] and "异议" in notice.params["text"]
    # 2. HR removes the employee's WeChat binding.
    r = client.delete(f"/api/v1/hr/employees/{emp.id}/wechat-binding", json={"reason": "换手机"}, headers=hr_h)
    assert r.status_code == 200, r.json
    # 3. HR binds its own WeChat with a code sent to HR's phone.
    mallory = login(client, "oMallory")
    r = client.post("/api/v1/sms/codes", json={"purpose": "bind", "company_code": "trust-co", "employee_no": "T100",
                                               "phone": HR_PHONE}, headers=bearer(mallory))
    assert r.status_code == 202
    code = [m.params["code"] for m in outbox(runtime, HR_PHONE) if m.template == "code"][0]
    r = client.post("/api/v1/wechat/binding", json={"company_code": "trust-co", "employee_no": "T100",
                                                    "phone": HR_PHONE, "sms_code": code}, headers=bearer(mallory))
    assert r.status_code == 200, r.json  # binding is allowed (a real employee may have lost their phone) ...
    as_emp = bearer(r.json)
    # ... but announced to the roster phone and the unbound WeChat, with a cooling period.
    assert any("绑定了新的微信" in m.params.get("text", "") for m in outbox(runtime, HR_PHONE))
    # 4. HR enrols its own face, attesting a paper consent.
    body, ctype = multipart("photo", [photo("biden.jpg")])
    r = client.put(f"/api/v1/hr/employees/{emp.id}/face?written_consent_attested=true", data=body, headers=hr_h,
                   content_type=ctype)
    assert r.status_code == 201 and r.json["provided_by_employer"] is True and r.json["employee_confirmed_at"] is None
    # 5. HR (as the employee) confirms its own photo: refused while the binding is in its cooling period.
    r = client.post("/api/v1/faces/reference/confirmation", json={"version": r.json["version"], "accept": True},
                    headers=as_emp)
    assert r.status_code == 409 and r.json["code"] == "identity_not_settled", r.json
    # 6. HR opens a case in the employee's name and tries to sign: every step is refused.
    r = client.post("/api/v1/cases", json={"reason_category": "other",
                                           "requested_last_day": (utcnow().date() + timedelta(days=40)).isoformat()},
                    headers=as_emp)
    assert r.status_code == 201
    case_id = r.json["id"]
    r = client.post("/api/v1/sms/codes", json={"purpose": "sign", "case_id": case_id}, headers=as_emp)
    assert r.status_code == 409 and r.json["code"] == "identity_not_settled", r.json
    assert {b["factor"] for b in r.json["details"]["blockers"]} == {"phone", "wechat"}
    assert not [m for m in outbox(runtime, HR_PHONE) if m.params.get("purpose") == "sign"]
    r = client.post("/api/v1/faces/liveness/challenges", json={"case_id": case_id}, headers=as_emp)
    assert r.status_code == 409 and r.json["code"] == "face_reference_unconfirmed"
    r = client.post("/api/v1/identity/signing-intents", json={"case_id": case_id, "letter_sha256": "a" * 64},
                    headers=as_emp)
    assert r.status_code == 409 and r.json["code"] == "identity_not_settled"
    assert {b["factor"] for b in r.json["details"]["blockers"]} == {"phone", "wechat", "face"}
    readiness = client.get("/api/v1/identity/signing-readiness", headers=as_emp).json
    assert readiness["ready"] is False
    # 7. HR cannot change the phone back and forth while that case is open either.
    r = client.put(f"/api/v1/hr/employees/{emp.id}/phone", json={"phone": "13600001111", "reason": "x"}, headers=hr_h)
    assert r.status_code == 409 and r.json["code"] == "phone_change_case_open"
    # The record an arbitrator sees: the identity history names HR for every step.
    hist = client.get(f"/api/v1/hr/employees/{emp.id}/identity-changes", headers=hr_h).json["items"]
    assert [(h["factor"], h["source"]) for h in reversed(hist)] == [("phone", "roster_import"), ("wechat", "rebind"),
                                                                    ("face", "hr_upload")]
    assert hist[-1]["actor"] == f"hr:{world.hr.id}" and hist[-1]["old_value"] == "139****2222"
    # 8. The real employee, from the WeChat bound before, sees both changes and objects.
    real = login(client, "oZhouMin")
    assert real["bound"] is False
    mine = client.get("/api/v1/identity/changes", headers=bearer(real)).json["items"]
    assert {(c["factor"], c["can_answer"]) for c in mine} == {("phone", True), ("wechat", True)}
    for c in mine:
        r = client.post(f"/api/v1/identity/changes/{c['id']}/answer", json={"answer": "object", "comment": "不是我"},
                        headers=bearer(real))
        assert r.status_code == 200 and r.json["status"] == "objected"
    db_session.expire_all()
    assert db_session.query(HrAlert).filter_by(kind="identity_objection", employee_id=emp.id).count() == 2
    # Even once the cooling period has passed, objected factors stay unusable.
    for ch in db_session.scalars(select(IdentityChange).where(IdentityChange.employee_id == emp.id)):
        if ch.usable_from:
            ch.usable_from = utcnow() - timedelta(days=1)
    db_session.commit()
    r = client.post("/api/v1/sms/codes", json={"purpose": "sign", "case_id": case_id}, headers=as_emp)
    assert r.status_code == 409 and {b["reason"] for b in r.json["details"]["blockers"]} == {"objected"}
    # The open case carries the objections in its chain.
    actions = [e.action for e in db_session.scalars(select(EvidenceEntry).where(EvidenceEntry.case_id == case_id))]
    assert actions.count("identity_change_objected") == 2


def test_only_the_previously_bound_wechat_may_answer(client, world, runtime, db_session):
    r = client.put(f"/api/v1/hr/employees/{world.emp.id}/phone", json={"phone": HR_PHONE, "reason": "员工换号"},
                   headers=world.hr_h)
    assert r.status_code == 200 and r.json["status"] == "pending", r.json
    change_id = r.json["id"]
    stranger = login(client, "oStranger")
    r = client.post(f"/api/v1/identity/changes/{change_id}/answer", json={"answer": "confirm"}, headers=bearer(stranger))
    assert r.status_code == 404
    assert client.get("/api/v1/identity/changes", headers=bearer(stranger)).json["items"] == []
    r = client.post(f"/api/v1/identity/changes/{change_id}/answer", json={"answer": "confirm"}, headers=world.hr_h)
    assert r.status_code == 403
    emp_h = world.f.employee_headers(world.emp, openid="oZhouMin")
    r = client.post(f"/api/v1/identity/changes/{change_id}/answer", json={"answer": "confirm"}, headers=emp_h)
    assert r.status_code == 200 and r.json["status"] == "confirmed"
    r = client.post(f"/api/v1/identity/changes/{change_id}/answer", json={"answer": "object"}, headers=emp_h)
    assert r.status_code == 409 and r.json["code"] == "identity_change_already_answered"
    assert client.get("/api/v1/identity/signing-readiness", headers=emp_h).json == {"ready": True, "blockers": []}
    r = client.put(f"/api/v1/hr/employees/{world.emp.id}/phone", json={"phone": HR_PHONE, "reason": "again"},
                   headers=world.hr_h)
    assert r.status_code == 409 and r.json["code"] == "phone_unchanged"


def test_cooling_period_without_objection_makes_the_phone_usable(client, world, db_session):
    r = client.put(f"/api/v1/hr/employees/{world.emp.id}/phone", json={"phone": HR_PHONE, "reason": "员工换号"},
                   headers=world.hr_h)
    emp_h = world.f.employee_headers(world.emp, openid="oZhouMin")
    [blocker] = client.get("/api/v1/identity/signing-readiness", headers=emp_h).json["blockers"]
    assert blocker["factor"] == "phone" and blocker["reason"] == "cooling"
    usable = blocker["usable_from"]
    delta = (datetime.fromisoformat(usable) - utcnow()).total_seconds()
    assert 7 * 86400 - 120 < delta <= 7 * 86400
    ch = db_session.get(IdentityChange, r.json["id"])
    ch.usable_from = utcnow() - timedelta(seconds=1)
    db_session.commit()
    assert client.get("/api/v1/identity/signing-readiness", headers=emp_h).json["ready"] is True


def test_roster_phone_change_is_a_bad_row_while_a_case_is_open(client, world, runtime, db_session):
    emp_h = world.f.employee_headers(world.emp)
    r = client.post("/api/v1/cases", json={"reason_category": "other", "requested_last_day":
                                           (utcnow().date() + timedelta(days=40)).isoformat()}, headers=emp_h)
    assert r.status_code == 201
    r = import_roster(client, world.hr_h, roster_csv(world.emp, HR_PHONE))
    assert r.status_code == 422 and r.json["details"]["errors"][0]["code"] == "phone_change_case_open", r.json
    db_session.expire_all()
    from qianli.services.employees import employee_phone

    assert employee_phone(runtime, db_session.get(Employee, world.emp.id)) == OLD_PHONE
    assert db_session.query(IdentityChange).count() == 0


def test_self_enrolment_with_liveness_counts_at_once(client, world, db_session):
    emp_h = world.f.employee_headers(world.emp)
    r = client.post("/api/v1/faces/enrolment/challenges", headers=emp_h)
    assert r.status_code == 409 and r.json["code"] == "face_consent_missing"
    client.post("/api/v1/faces/consent", json={"text_version": face_svc.CONSENT_TEXT_VERSION, "agree": True},
                headers=emp_h)
    ch = client.post("/api/v1/faces/enrolment/challenges", headers=emp_h)
    assert ch.status_code == 201, ch.json
    body, ctype = multipart("frames", burst("obama.jpg", tuple(ch.json["actions"])))
    r = client.post(f"/api/v1/faces/enrolment/challenges/{ch.json['nonce']}/enrol", data=body, headers=emp_h,
                    content_type=ctype)
    assert r.status_code == 201, r.json
    assert r.json["source"] == "self_capture" and r.json["needs_confirmation"] is False
    # the challenge is spent; a verification challenge nonce cannot be used for enrolment
    r = client.post(f"/api/v1/faces/enrolment/challenges/{ch.json['nonce']}/enrol", data=body, headers=emp_h,
                    content_type=ctype)
    assert r.status_code == 422 and r.json["code"] == "liveness_challenge_invalid"
    # the employee's own reference is used by the face check
    case = client.post("/api/v1/cases", json={"reason_category": "other", "requested_last_day":
                                              (utcnow().date() + timedelta(days=40)).isoformat()}, headers=emp_h).json
    vch = client.post("/api/v1/faces/liveness/challenges", json={"case_id": case["id"]}, headers=emp_h).json
    body, ctype = multipart("frames", burst("obama.jpg", tuple(vch["actions"]), seed=3))
    r = client.post(f"/api/v1/faces/liveness/challenges/{vch['nonce']}/verify", data=body, headers=emp_h,
                    content_type=ctype)
    assert r.status_code == 200 and r.json["verified"] is True, r.json
    hist = client.get(f"/api/v1/hr/employees/{world.emp.id}/identity-changes", headers=world.hr_h).json["items"]
    assert [(h["factor"], h["source"], h["status"]) for h in hist] == [("face", "self_capture", "cooled")]


def test_rejecting_the_employers_photo_deletes_it(client, world, db_session):
    emp_h = world.f.employee_headers(world.emp)
    body, ctype = multipart("photo", [photo("obama.jpg")])
    r = client.put(f"/api/v1/hr/employees/{world.emp.id}/face?written_consent_attested=true", data=body,
                   headers=world.hr_h, content_type=ctype)
    mine = client.get("/api/v1/faces/reference", headers=emp_h).json
    assert mine["provided_by_employer"] and mine["needs_confirmation"] and "用人单位提供" in mine["source_label"]
    r = client.post("/api/v1/faces/reference/confirmation", json={"version": mine["version"] + 1, "accept": True},
                    headers=emp_h)
    assert r.status_code == 409 and r.json["code"] == "face_reference_changed"
    r = client.post("/api/v1/faces/reference/confirmation", json={"version": mine["version"], "accept": False},
                    headers=emp_h)
    assert r.status_code == 200 and r.json["enrolled"] is False
    db_session.expire_all()
    assert db_session.query(FaceEnrolment).filter_by(employee_id=world.emp.id).count() == 0
    assert db_session.query(HrAlert).filter_by(kind="identity_objection", employee_id=world.emp.id).count() == 1


def test_signature_evidence_names_both_factors_and_the_dossier_flags_recent_changes(client, world, runtime,
                                                                                   db_session):
    from qianli.services.dossier import build_dossier

    emp = world.emp
    emp_h = world.f.employee_headers(emp, openid="oZhouMin")
    # the phone changed 10 days ago by HR, the employee confirmed it; HR provided the face, employee confirmed
    r = client.put(f"/api/v1/hr/employees/{emp.id}/phone", json={"phone": HR_PHONE, "reason": "员工换号"},
                   headers=world.hr_h)
    client.post(f"/api/v1/identity/changes/{r.json['id']}/answer", json={"answer": "confirm"}, headers=emp_h)
    body, ctype = multipart("photo", [photo("obama.jpg")])
    r = client.put(f"/api/v1/hr/employees/{emp.id}/face?written_consent_attested=true", data=body,
                   headers=world.hr_h, content_type=ctype)
    r = client.post("/api/v1/faces/reference/confirmation", json={"version": r.json["version"], "accept": True},
                    headers=emp_h)
    assert r.status_code == 200 and r.json["needs_confirmation"] is False
    case = client.post("/api/v1/cases", json={"reason_category": "other", "requested_last_day":
                                              (utcnow().date() + timedelta(days=40)).isoformat()}, headers=emp_h).json
    db_session.expire_all()
    c = db_session.get(ResignationCase, case["id"])
    sign_case(db_session, runtime, c, db_session.get(Employee, emp.id))
    db_session.commit()
    signed = db_session.scalar(select(EvidenceEntry).where(EvidenceEntry.case_id == c.id,
                                                           EvidenceEntry.action == "letter_signed"))
    prov = signed.payload["identity_provenance"]
    assert prov["phone"]["set_by"] == f"hr:{world.hr.id}" and prov["phone"]["source"] == "api"
    assert prov["phone"]["status"] == "confirmed" and prov["phone"]["masked"] == "137****9999"
    assert prov["face"]["provided_by_employer"] is True and prov["face"]["provenance"] == "provided by the employer"
    assert prov["face"]["employee_confirmed_at"] and prov["face"]["source"] == "hr_upload"
    assert prov["wechat"]["openid"].endswith("ZhouMin"[-6:]) and prov["wechat"]["after_hr_unbind"] is False
    assert {x["factor"] for x in prov["changes_within_30_days"]} == {"phone", "face"}

    services, _root = make_test_pki()
    data = build_dossier(db_session, runtime, c, actor="hr:1", services=services)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        ident = json.loads(zf.read("evidence/identity-provenance.json"))
        report = zf.read("report.pdf")
    assert len(ident["signatures"]) == 1 and ident["flags"]
    assert any("provided by the employer" in f["text"] for f in ident["flags"])
    assert any("手机号由 139****2222 改为 137****9999" in f["text"] for f in ident["flags"])
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(report)).pages)
    assert "签署前 30 天内的身份要素变更" in text and "provided by the employer" in text


def test_a_rebinding_after_hr_unbind_cools_and_the_old_wechat_may_confirm(client, world, runtime, db_session):
    emp = world.emp
    client.delete(f"/api/v1/hr/employees/{emp.id}/wechat-binding", json={"reason": "员工手机丢失"}, headers=world.hr_h)
    new = login(client, "oZhouMinNew")
    client.post("/api/v1/sms/codes", json={"purpose": "bind", "company_code": "trust-co", "employee_no": "T100",
                                           "phone": OLD_PHONE}, headers=bearer(new))
    code = [m.params["code"] for m in outbox(runtime, OLD_PHONE) if m.template == "code"][0]
    r = client.post("/api/v1/wechat/binding", json={"company_code": "trust-co", "employee_no": "T100",
                                                    "phone": OLD_PHONE, "sms_code": code}, headers=bearer(new))
    assert r.status_code == 200
    new_h = bearer(r.json)
    [blocker] = client.get("/api/v1/identity/signing-readiness", headers=new_h).json["blockers"]
    assert (blocker["factor"], blocker["reason"]) == ("wechat", "cooling")
    # the new WeChat cannot confirm its own binding; the old one can
    [ch] = client.get("/api/v1/identity/changes", headers=new_h).json["items"]
    assert ch["can_answer"] is False
    r = client.post(f"/api/v1/identity/changes/{ch['id']}/answer", json={"answer": "confirm"}, headers=new_h)
    assert r.status_code == 404
    old = login(client, "oZhouMin")
    r = client.post(f"/api/v1/identity/changes/{ch['id']}/answer", json={"answer": "confirm"}, headers=bearer(old))
    assert r.status_code == 200 and r.json["status"] == "confirmed"
    assert client.get("/api/v1/identity/signing-readiness", headers=new_h).json["ready"] is True
    db_session.expire_all()
    assert [e.action for e in db_session.scalars(select(WechatBindingEvent).where(
        WechatBindingEvent.employee_id == emp.id).order_by(WechatBindingEvent.id))] == ["unbind", "bind"]


# ---- Tencent Cloud FaceID over its wire format ---------------------------------------------------------

@pytest.fixture
def faceid(runtime):
    from tests.identity.wire_servers import TencentFaceIdWireServer

    with TencentFaceIdWireServer() as server:
        old = runtime.settings
        runtime.settings = replace(old, faceid_backend="tencent", faceid_tencent_endpoint=server.url,
                                   faceid_tencent_secret_id="AKIDfaceid", faceid_tencent_secret_key="faceid-secret-key",
                                   faceid_tencent_rule_id="1")
        runtime.reset("faceid")
        try:
            yield server
        finally:
            runtime.settings = old
            runtime.reset("faceid")


def test_faceid_certified_enrolment(client, world, runtime, db_session, faceid):
    from qianli.services.employees import set_personal_data

    emp = db_session.get(Employee, world.emp.id)
    set_personal_data(runtime, emp, national_id=NID)
    db_session.commit()
    emp_h = world.f.employee_headers(emp)
    client.post("/api/v1/faces/consent", json={"text_version": face_svc.CONSENT_TEXT_VERSION, "agree": True},
                headers=emp_h)
    r = client.post("/api/v1/faces/certified-enrolments", headers=emp_h)
    assert r.status_code == 201, r.json
    token = r.json["biz_token"]
    sent = faceid.requests[-1]
    assert sent["headers"]["x-tc-action"] == "DetectAuth" and sent["body"]["IdCard"] == NID
    assert sent["body"]["Name"] == "周敏" and sent["body"]["RuleId"] == "1"
    assert "faceid-secret-key" not in json.dumps(faceid.requests)  # signed with it, never sent
    # before the plugin finished
    r = client.post("/api/v1/faces/certified-enrolments/finish", json={"biz_token": token}, headers=emp_h)
    assert r.status_code == 409 and r.json["code"] == "faceid_not_finished"
    # another employee cannot use the token
    other = world.f.employee(world.company)
    r = client.post("/api/v1/faces/certified-enrolments/finish", json={"biz_token": token},
                    headers=world.f.employee_headers(other))
    assert r.status_code == 422 and r.json["code"] == "faceid_token_invalid"
    faceid.outcomes[token] = {"err_code": 0, "best_frame": photo("obama.jpg")}
    r = client.post("/api/v1/faces/certified-enrolments/finish", json={"biz_token": token}, headers=emp_h)
    assert r.status_code == 201, r.json
    assert r.json["source"] == "faceid_tencent" and r.json["needs_confirmation"] is False
    assert faceid.requests[-1]["headers"]["x-tc-action"] == "GetDetectInfoEnhanced"
    enr = db_session.scalar(select(FaceEnrolment).where(FaceEnrolment.employee_id == emp.id))
    db_session.refresh(enr)
    assert enr.provider_ref and enr.employee_confirmed_at is not None
    # single use
    r = client.post("/api/v1/faces/certified-enrolments/finish", json={"biz_token": token}, headers=emp_h)
    assert r.status_code == 422 and r.json["code"] == "faceid_token_invalid"


def test_faceid_failure_mismatch_and_provider_errors(client, world, runtime, db_session, faceid):
    from qianli.services.employees import set_personal_data

    emp = db_session.get(Employee, world.emp.id)
    set_personal_data(runtime, emp, national_id="")
    db_session.commit()
    emp_h = world.f.employee_headers(emp)
    client.post("/api/v1/faces/consent", json={"text_version": face_svc.CONSENT_TEXT_VERSION, "agree": True},
                headers=emp_h)
    r = client.post("/api/v1/faces/certified-enrolments", headers=emp_h)
    assert r.status_code == 409 and r.json["code"] == "national_id_missing"
    set_personal_data(runtime, emp, national_id=NID)
    db_session.commit()
    token = client.post("/api/v1/faces/certified-enrolments", headers=emp_h).json["biz_token"]
    faceid.outcomes[token] = {"err_code": 1001, "err_msg": "活体检测未通过"}
    r = client.post("/api/v1/faces/certified-enrolments/finish", json={"biz_token": token}, headers=emp_h)
    assert r.status_code == 422 and r.json["code"] == "faceid_failed"
    token = client.post("/api/v1/faces/certified-enrolments", headers=emp_h).json["biz_token"]
    faceid.outcomes[token] = {"err_code": 0, "id_card": "11010519491231002X", "best_frame": photo("obama.jpg")}
    r = client.post("/api/v1/faces/certified-enrolments/finish", json={"biz_token": token}, headers=emp_h)
    assert r.status_code == 409 and r.json["code"] == "faceid_identity_mismatch"
    faceid.api_error = ("InternalError", "boom")
    r = client.post("/api/v1/faces/certified-enrolments", headers=emp_h)
    assert r.status_code == 503 and r.json["code"] == "faceid_unavailable"
    assert db_session.query(FaceEnrolment).filter_by(employee_id=emp.id).count() == 0


def test_faceid_off_answers_503(client, world):
    emp_h = world.f.employee_headers(world.emp)
    client.post("/api/v1/faces/consent", json={"text_version": face_svc.CONSENT_TEXT_VERSION, "agree": True},
                headers=emp_h)
    r = client.post("/api/v1/faces/certified-enrolments", headers=emp_h)
    assert r.status_code == 503 and r.json["code"] == "faceid_not_configured"
    r = client.post("/api/v1/faces/certified-enrolments/finish", json={"biz_token": "BIZ123"}, headers=emp_h)
    assert r.status_code == 422 and r.json["code"] == "faceid_token_invalid"


def test_console_page_shows_the_history_and_changes_the_phone(client, world, runtime, db_session):
    import re

    page = client.get("/hr/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)
    r = client.post("/hr/login", data={"csrf_token": token, "company_code": world.company.code,
                                       "username": world.hr.username, "password": "correct horse battery",
                                       "next": "/hr/"})
    assert r.status_code == 303
    page = client.get(f"/hr/employees/{world.emp.id}/identity")
    assert page.status_code == 200 and 'id="signing-ready"' in page.get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)
    r = client.post(f"/hr/employees/{world.emp.id}/phone", data={"csrf_token": token, "phone": HR_PHONE,
                                                                 "reason": "员工换号"})
    assert r.status_code == 303
    html = client.get(f"/hr/employees/{world.emp.id}/identity").get_data(as_text=True)
    assert 'data-factor="phone" data-status="pending"' in html and "137****9999" in html
    assert 'id="signing-blockers"' in html
    assert any("137****9999" in m.params.get("text", "") for m in outbox(runtime, OLD_PHONE))
    # without the CSRF token nothing changes
    r = client.post(f"/hr/employees/{world.emp.id}/phone", data={"phone": "13600001111", "reason": "x"})
    assert r.status_code in (400, 403)
    db_session.expire_all()
    assert db_session.query(IdentityChange).filter_by(employee_id=world.emp.id).count() == 1


def test_cli_set_phone_is_an_identity_change(runtime, world, db_session):
    from click.testing import CliRunner

    from qianli.cli.hr import roster_group

    args = ["set-phone", "--company", "trust-co", "--employee-no", "T100", "--phone", HR_PHONE, "--reason", "工单 42",
            "--operator", "ops-li"]
    r = CliRunner().invoke(roster_group, args)
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["changed"] is True and out["old"] == "139****2222" and out["new"] == "137****9999"
    db_session.expire_all()
    ch = db_session.get(IdentityChange, out["change_id"])
    assert (ch.factor, ch.source, ch.actor, ch.reason) == ("phone", "cli", "cli:ops-li", "工单 42")
    assert any("137****9999" in m.params.get("text", "") for m in outbox(runtime, OLD_PHONE))
    r = CliRunner().invoke(roster_group, args)
    assert r.exit_code == 0 and json.loads(r.stdout)["changed"] is False
    r = CliRunner().invoke(roster_group, [*args[:5], "--phone", "123", *args[7:]])
    assert r.exit_code == 1 and json.loads(r.stdout)["code"] == "invalid_phone"
