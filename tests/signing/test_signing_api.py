"""previewLetter, signLetter, getSignedLetter, verifyDocument and the PKI endpoints over HTTP."""

from __future__ import annotations

import hashlib
import io
from datetime import datetime, timedelta, timezone

import pytest
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import core, tsp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from sqlalchemy import func, select
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from qianli.models import Document, EvidenceEntry, SigningRequest
from qianli.services import cases as case_svc
from qianli.services.reminders import on_case_opened
from signing.pki import load_pki
from tests.signing_support import grant_intent, signature_png


@pytest.fixture
def open_case(runtime, db_session, factory):
    company = factory.company(approval_chain=["hr_specialist"])
    emp = factory.employee(company, name="陈晓", employee_no="P001")
    arrived = datetime.now(timezone.utc) - timedelta(hours=3)
    c = case_svc.open_case(db_session, runtime.settings, employee=emp, source="miniprogram", notice_arrived_at=arrived,
                           actor=f"employee:{emp.id}", reason_category="career_development", reason_text="个人发展",
                           requested_last_day=arrived.date() + timedelta(days=40),
                           handover_items=[{"item": "代码仓库权限", "owner": "李四", "deadline": None}])
    db_session.commit()
    return company, emp, c


def preview(client, factory, emp, case):
    r = client.get(f"/api/v1/cases/{case.id}/letter/preview", headers=factory.employee_headers(emp))
    assert r.status_code == 200 and r.mimetype == "application/pdf", r.data[:300]
    assert r.headers["X-Letter-SHA256"] == hashlib.sha256(r.data).hexdigest()
    return r.headers["X-Letter-SHA256"]


def sign(client, factory, emp, case, intent, key="key-00000001", png=None, **extra):
    data = {"intent_id": intent, "idempotency_key": key, **extra}
    if png is not False:
        data["signature"] = FileStorage(io.BytesIO(png or signature_png()), "sig.png", content_type="image/png")
    # Encoded in memory: werkzeug's test client spools big bodies to a temp file it never closes.
    boundary, body = encode_multipart(data)
    return client.post(f"/api/v1/cases/{case.id}/letter/signature", data=body,
                       content_type=f"multipart/form-data; boundary={boundary}", headers=factory.employee_headers(emp))


def counts(db_session, case_id):
    db_session.expire_all()
    docs = db_session.scalar(select(func.count()).select_from(Document).where(Document.case_id == case_id))
    reqs = db_session.scalar(select(func.count()).select_from(SigningRequest).where(SigningRequest.case_id == case_id))
    return docs, reqs


def test_preview_sign_retry_download_verify(client, factory, runtime, db_session, open_case):
    company, emp, case = open_case
    on_case_opened(db_session, runtime, case)  # the reminder schedule, as the API opens it
    db_session.commit()
    reminders = f"/api/v1/cases/{case.id}/reminders"
    assert client.get(reminders, headers=factory.employee_headers(emp)).json["schedule"]["state"] == "active"
    sha = preview(client, factory, emp, case)
    assert preview(client, factory, emp, case) == sha  # deterministic
    intent = grant_intent(runtime, emp.id, case.id, sha)
    r = sign(client, factory, emp, case, intent)
    assert r.status_code == 201, r.json
    body = r.json
    assert body["letter_sha256"] == sha and body["pades_level"] == "B-LTA" and body["case_state"] == "submitted"
    assert body["replayed"] is False
    schedule = client.get(reminders, headers=factory.employee_headers(emp)).json["schedule"]
    assert schedule["state"] == "paused" and schedule["stop_reason"] == "letter_submitted"
    assert schedule["next_due_at"] is None  # reminders stop at once, not at the next sweep
    # A retry (lost response) with the same key: the same result, nothing new.
    again = sign(client, factory, emp, case, intent)
    assert again.status_code == 200 and again.json["replayed"] is True
    assert again.json["document_id"] == body["document_id"] and again.json["sha256"] == body["sha256"]
    assert counts(db_session, case.id) == (1, 1)
    # The signed letter; its hash is the recorded one.
    got = client.get(f"/api/v1/cases/{case.id}/letter", headers=factory.employee_headers(emp))
    assert got.status_code == 200 and hashlib.sha256(got.data).hexdigest() == body["sha256"]
    hr = factory.hr(company, "auditor")
    assert client.get(f"/api/v1/cases/{case.id}/letter", headers=factory.hr_headers(hr)).data == got.data
    # Evidence: the signing, with the intent's factors and the event certificate, and the state change.
    actions = [e.action for e in db_session.scalars(select(EvidenceEntry).where(EvidenceEntry.case_id == case.id)
                                                     .order_by(EvidenceEntry.seq))]
    assert actions[-2:] == ["letter_signed", "case_submit_letter"]
    entry = db_session.scalars(select(EvidenceEntry).where(EvidenceEntry.case_id == case.id,
                                                           EvidenceEntry.action == "letter_signed")).one()
    assert entry.payload["sha256"] == body["sha256"] and set(entry.payload["intent"]["factors"]) == {"sms", "face"}
    assert "BEGIN CERTIFICATE" in entry.payload["event_cert_pem"] and intent not in str(entry.payload)
    # verifyDocument on the signed letter, on a non-PDF and on an unsigned PDF.
    v = client.post("/api/v1/documents/verification", data={"file": (io.BytesIO(got.data), "l.pdf")},
                    content_type="multipart/form-data", headers=factory.hr_headers(hr))
    assert v.status_code == 200 and v.json["ok"] is True
    sig = [s for s in v.json["signatures"] if s["kind"] == "signature"][0]
    assert sig["pades_level"] == "B-LTA" and sig["trusted"] and "陈晓" in sig["signer"]
    bad = client.post("/api/v1/documents/verification", data={"file": (io.BytesIO(b"GIF89a nope"), "x.gif")},
                      content_type="multipart/form-data", headers=factory.employee_headers(emp))
    assert bad.status_code == 422 and bad.json["code"] == "pdf_invalid"
    tampered = bytearray(got.data)
    i = len(got.data) // 5  # inside the first revision, which every signature covers
    tampered[i] = (tampered[i] + 1) % 256
    t = client.post("/api/v1/documents/verification", data={"file": (io.BytesIO(bytes(tampered)), "t.pdf")},
                    content_type="multipart/form-data", headers=factory.employee_headers(emp))
    assert t.status_code in (200, 422) and (t.status_code == 422 or t.json["ok"] is False)
    # Once submitted the letter cannot be signed again.
    r2 = sign(client, factory, emp, case, intent, key="key-00000002")
    assert r2.status_code == 409 and r2.json["code"] == "letter_not_signable"


def test_bad_signing_requests_write_nothing(client, factory, runtime, db_session, open_case):
    _, emp, case = open_case
    sha = preview(client, factory, emp, case)
    cases = [
        (dict(intent="missing-intent"), 403, "signing_intent_invalid"),
        (dict(intent=None, png=b"\x89PNG\r\n\x1a\n" + b"\0" * 50), 422, "signature_image_invalid"),
        (dict(intent=None, png=b"GIF89a" + b"\0" * 50), 422, "signature_image_invalid"),
        (dict(intent=None, png=signature_png(blank=True)), 422, "signature_image_blank"),
        (dict(intent=None, png=b"\x89PNG\r\n\x1a\n" + b"\0" * (runtime.settings.signature_png_max_bytes + 10)), 413,
         "signature_image_too_large"),
        (dict(intent=None, png=False), 422, "file_missing"),
        (dict(intent=None, key="short"), 422, "validation_failed"),
        (dict(intent=None, extra={"unknown": "x"}), 422, "validation_failed"),
    ]
    intent = grant_intent(runtime, emp.id, case.id, sha)
    for spec, status, code in cases:
        r = sign(client, factory, emp, case, spec["intent"] or intent, key=spec.get("key", "key-bad-00001"),
                 png=spec.get("png"), **spec.get("extra", {}))
        assert (r.status_code, r.json["code"]) == (status, code), (spec, r.json)
    assert counts(db_session, case.id) == (0, 0)
    # The intent survived all of that (never spent by a refused request) and is bound to this letter only.
    other = factory.employee(factory.company(), employee_no="X9")
    r = sign(client, factory, other, case, intent)
    assert r.status_code == 404
    db_session.expire_all()
    case_row = case_svc.get_case(db_session, case.id, case.company_id)
    case_row.reason_text = "个人发展（修改后）"  # the letter changes after the preview
    db_session.commit()
    r = sign(client, factory, emp, case, intent)
    assert r.status_code == 403 and r.json["code"] == "signing_intent_mismatch"
    assert counts(db_session, case.id) == (0, 0) and case_svc.get_case(db_session, case.id, case.company_id).state == "awaiting_letter"


def test_tsa_failure_leaves_nothing_signed_and_keeps_the_intent(client, factory, runtime, db_session, open_case, monkeypatch):
    from dataclasses import replace

    _, emp, case = open_case
    sha = preview(client, factory, emp, case)
    intent = grant_intent(runtime, emp.id, case.id, sha)
    good = runtime.settings
    monkeypatch.setattr(runtime, "settings", replace(good, tsa_url="http://127.0.0.1:9/tsa", tsa_timeout_s=2))
    r = sign(client, factory, emp, case, intent)
    assert r.status_code == 503 and r.json["code"] == "signing_failed"
    assert counts(db_session, case.id) == (0, 0)
    assert case_svc.get_case(db_session, case.id, case.company_id).state == "awaiting_letter"
    monkeypatch.setattr(runtime, "settings", good)
    r = sign(client, factory, emp, case, intent)  # the same intent still works once the TSA is back
    assert r.status_code == 201, r.json


def test_pki_endpoints_speak_the_wire_formats(client, runtime):
    pki = load_pki(runtime.settings)
    root = client.get("/pki/root.cer")
    assert root.status_code == 200 and x509.load_der_x509_certificate(root.data) == pki.root
    for which, issuer in (("root", pki.root), ("ca", pki.ca)):
        r = client.get(f"/pki/crl/{which}.crl")
        crl = x509.load_der_x509_crl(r.data)
        assert r.mimetype == "application/pkix-crl" and crl.is_signature_valid(issuer.public_key())
    cred = pki.issue_event_credential(name="测试", employee_no="T1", company="测试")
    req = ocsp.OCSPRequestBuilder().add_certificate(cred.cert, pki.ca, hashes.SHA1()).build()
    r = client.post("/pki/ocsp", data=req.public_bytes(serialization.Encoding.DER),
                    content_type="application/ocsp-request")
    resp = ocsp.load_der_ocsp_response(r.data)
    assert resp.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    assert resp.certificate_status == ocsp.OCSPCertStatus.GOOD and resp.serial_number == cred.cert.serial_number
    assert asn1_ocsp.OCSPResponse.load(r.data)["response_status"].native == "successful"
    # With a nonce (what pyHanko's and OpenSSL's clients send): echoed back in the signed response.
    nonce = bytes(range(16))
    req_n = (ocsp.OCSPRequestBuilder().add_certificate(cred.cert, pki.ca, hashes.SHA1())
             .add_extension(x509.OCSPNonce(nonce), critical=False).build())
    r = client.post("/pki/ocsp", data=req_n.public_bytes(serialization.Encoding.DER),
                    content_type="application/ocsp-request")
    resp = ocsp.load_der_ocsp_response(r.data)
    assert r.status_code == 200 and resp.certificate_status == ocsp.OCSPCertStatus.GOOD
    assert resp.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == nonce
    junk = client.post("/pki/ocsp", data=b"junk", content_type="application/ocsp-request")
    assert ocsp.load_der_ocsp_response(junk.data).response_status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    pki.revoke(cred.cert.serial_number)
    r = client.post("/pki/ocsp", data=req.public_bytes(serialization.Encoding.DER), content_type="application/ocsp-request")
    assert ocsp.load_der_ocsp_response(r.data).certificate_status == ocsp.OCSPCertStatus.REVOKED
    revoked = x509.load_der_x509_crl(client.get("/pki/crl/ca.crl").data)
    assert revoked.get_revoked_certificate_by_serial_number(cred.cert.serial_number) is not None
    # The development TSA: a granted RFC 3161 token over our digest.
    digest = hashlib.sha256(b"hello").digest()
    q = tsp.TimeStampReq({"version": 1, "message_imprint": {"hash_algorithm": {"algorithm": "sha256"},
                                                            "hashed_message": digest}, "nonce": 42, "cert_req": True})
    r = client.post("/pki/tsa", data=q.dump(), content_type="application/timestamp-query")
    resp = tsp.TimeStampResp.load(r.data)
    assert resp["status"]["status"].native == "granted"
    info = resp["time_stamp_token"]["content"]["encap_content_info"]["content"].parsed
    assert info["message_imprint"]["hashed_message"].native == digest and info["nonce"].native == 42
    bad = client.post("/pki/tsa", data=b"junk", content_type="application/timestamp-query")
    # asn1crypto's TimeStampResp wrongly requires the token, so read the status of the rejection generically.
    status = tsp.PKIStatusInfo.load(core.Sequence.load(bad.data)[0].dump())
    assert status["status"].native == "rejection" and status["fail_info"].native == {"bad_request"}
    assert client.post("/pki/tsa", data=q.dump(), content_type="text/plain").status_code == 422
