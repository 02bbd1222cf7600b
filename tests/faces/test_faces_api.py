"""HTTP: consent, enrolFace, startLivenessChallenge, verifyFace, the lock, unlockFace, createSigningIntent."""

from __future__ import annotations

import hashlib
import io
import time

import pytest
from PIL import Image
from sqlalchemy import func, select

from identity.intent import consume_signing_intent
from identity.sms import DevOutboxSmsGateway
from qianli.models import BiometricConsent, EvidenceEntry, FaceEnrolment, FaceLockState, HrAlert
from qianli.services import faces as svc

from .conftest import PHONE, burst, image_bytes, photo, still_burst, two_faces

LETTER = hashlib.sha256(b"resignation letter pdf").hexdigest()


BOUNDARY = "qianli-test-boundary-7f3a"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"


def _files(name: str, blobs) -> bytes:
    """A multipart body built here (werkzeug's test builder leaves large temp files open)."""
    out = b""
    for i, blob in enumerate(blobs):
        out += (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"f{i}.jpg\"\r\n"
                f"Content-Type: image/jpeg\r\n\r\n").encode() + blob + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


class Api:
    def __init__(self, client, env):
        self.c, self.env = client, env

    def consent(self):
        return self.c.post("/api/v1/faces/consent", json={"text_version": svc.CONSENT_TEXT_VERSION, "agree": True},
                           headers=self.env.emp_h)

    def enrol(self, data, employee_id=None, headers=None, query="", confirm=True):
        """HR enrols a photo; with ``confirm`` the employee then confirms it (an employer-provided
        reference counts only after that, see tests/identity/test_identity_trust.py)."""
        eid = employee_id or self.env.emp.id
        r = self.c.put(f"/api/v1/hr/employees/{eid}/face{query}", data=_files("photo", [data]),
                       headers=headers or self.env.hr_h, content_type=MULTIPART)
        if confirm and r.status_code == 201 and employee_id is None:
            ok = self.c.post("/api/v1/faces/reference/confirmation", json={"version": r.json["version"], "accept": True},
                             headers=self.env.emp_h)
            assert ok.status_code == 200 and ok.json["needs_confirmation"] is False, ok.json
        return r

    def status(self):
        return self.c.get(f"/api/v1/hr/employees/{self.env.emp.id}/face", headers=self.env.hr_h)

    def challenge(self, case_id=None, headers=None):
        return self.c.post("/api/v1/faces/liveness/challenges", json={"case_id": case_id or self.env.case.id},
                           headers=headers or self.env.emp_h)

    def verify(self, nonce, frames, headers=None, field="frames"):
        return self.c.post(f"/api/v1/faces/liveness/challenges/{nonce}/verify", data=_files(field, frames),
                           headers=headers or self.env.emp_h, content_type=MULTIPART)

    def verify_for(self, name, seed=1):
        ch = self.challenge()
        assert ch.status_code == 201, ch.json
        actions = tuple(ch.json["actions"])
        return ch.json, self.verify(ch.json["nonce"], burst(name, actions, seed))

    def intent(self, case_id=None, sha=LETTER):
        return self.c.post("/api/v1/identity/signing-intents", json={"case_id": case_id or self.env.case.id,
                                                                    "letter_sha256": sha}, headers=self.env.emp_h)

    def evidence(self):
        s = self.env.s
        s.expire_all()
        return list(s.scalars(select(EvidenceEntry).where(EvidenceEntry.case_id == self.env.case.id)
                              .order_by(EvidenceEntry.seq)))


@pytest.fixture
def api(client, faces_env):
    return Api(client, faces_env)


@pytest.fixture
def enrolled(api):
    assert api.consent().status_code == 201
    r = api.enrol(photo("obama.jpg"))
    assert r.status_code == 201, r.json
    return api


def test_consent_text_and_consent(api):
    r = api.c.get("/api/v1/faces/consent", headers=api.env.emp_h)
    assert r.status_code == 200 and r.json["given"] is False and "人脸" in r.json["text"]
    assert api.c.post("/api/v1/faces/consent", json={"text_version": svc.CONSENT_TEXT_VERSION, "agree": False},
                      headers=api.env.emp_h).status_code == 422
    assert api.c.post("/api/v1/faces/consent", json={"text_version": "old", "agree": True},
                      headers=api.env.emp_h).json["code"] == "face_consent_text_outdated"
    r = api.consent()
    assert r.status_code == 201 and r.json["method"] == "employee_app"
    assert api.c.get("/api/v1/faces/consent", headers=api.env.emp_h).json["given"] is True
    assert api.consent().status_code == 201  # idempotent
    assert api.c.post("/api/v1/faces/consent", json={"text_version": svc.CONSENT_TEXT_VERSION, "agree": True},
                      headers=api.env.hr_h).json["code"] == "employee_only"
    assert [e.action for e in api.evidence()].count("face_consent_given") == 1


def test_enrol_refused_without_consent_then_attested(api):
    r = api.enrol(photo("obama.jpg"))
    assert r.status_code == 409 and r.json["code"] == "face_consent_missing"
    r = api.enrol(photo("obama.jpg"), query="?written_consent_attested=true&consent_reference=PAPER-7")
    assert r.status_code == 201 and r.json["enrolled"] and r.json["consent"]["method"] == "hr_attested_written"
    assert r.json["photo_kept_until"] is None and r.json["source"] == "hr_upload"


def test_enrol_roles_and_companies(api):
    auditor = api.env.factory.hr(api.env.company, "auditor")
    assert api.enrol(photo("obama.jpg"), headers=api.env.factory.hr_headers(auditor)).status_code == 403
    assert api.enrol(photo("obama.jpg"), headers=api.env.emp_h).status_code == 403
    other = api.env.factory.company()
    stranger = api.env.factory.employee(other)
    r = api.enrol(photo("obama.jpg"), employee_id=stranger.id, query="?written_consent_attested=true")
    assert r.status_code == 404
    assert api.c.get(f"/api/v1/hr/employees/{stranger.id}/face", headers=api.env.hr_h).status_code == 404


def _bad_enrol_inputs():
    png_alpha = image_bytes("RGBA", (80, 80), (1, 2, 3, 0), "PNG")
    bomb = io.BytesIO()
    Image.new("L", (8000, 6250)).save(bomb, "PNG")
    return [
        (b"%PDF-1.7 not an image", 422, "image_invalid"),
        (photo("obama.jpg")[:4000], 422, "image_invalid"),
        (png_alpha, 422, "image_alpha"),
        (bomb.getvalue(), 413, "image_too_large"),
        (image_bytes(), 422, "face_not_found"),
        (two_faces(), 422, "face_multiple"),
    ]


def test_bad_enrol_inputs_write_nothing(api):
    for data, status, code in _bad_enrol_inputs():
        r = api.enrol(data, query="?written_consent_attested=true")
        assert (r.status_code, r.json["code"]) == (status, code), (code, r.json)
    r = api.c.put(f"/api/v1/hr/employees/{api.env.emp.id}/face", data={}, headers=api.env.hr_h,
                  content_type="multipart/form-data")
    assert r.status_code == 422 and "photo" in str(r.json["errors"])
    r = api.c.put(f"/api/v1/hr/employees/{api.env.emp.id}/face", data=b"raw", headers=api.env.hr_h,
                  content_type="image/jpeg")
    assert r.status_code == 415
    r = api.c.put(f"/api/v1/hr/employees/{api.env.emp.id}/face",
                  data=b"x" * (api.env.rt.settings.max_request_bytes + 10), headers=api.env.hr_h,
                  content_type="multipart/form-data; boundary=qianli")
    assert r.status_code == 413 and r.json["code"] == "payload_too_large"
    s = api.env.s
    assert s.scalar(select(func.count()).select_from(BiometricConsent)) == 0
    assert s.scalar(select(func.count()).select_from(FaceEnrolment)) == 0
    assert not [e.action for e in api.evidence() if e.action.startswith("face_")]


def test_verify_then_signing_intent(enrolled):
    api = enrolled
    r = api.intent()
    assert r.status_code == 403 and r.json["code"] == "signing_factors_missing"
    assert sorted(r.json["details"]["missing"]) == ["face", "sms"]
    ch, r = api.verify_for("obama3.jpg")
    assert r.status_code == 200, r.json
    assert r.json["verified"] and r.json["distance"] < r.json["threshold"] == 0.5 and r.json["frames"] == 5
    assert r.json["actions"] == ch["actions"]
    ev = api.evidence()[-1]
    assert ev.action == "face_verified"
    p = ev.payload
    assert p["distance"] == pytest.approx(r.json["distance"], abs=1e-4) and p["threshold"] == 0.5
    assert p["challenge"]["actions"] == ch["actions"] and ch["nonce"] not in str(p)
    assert p["liveness"]["passed"] and p["liveness"]["frames"] == 5 and p["openid"] == "openid-obama"
    assert len(str(p)) < 3000  # no image data
    # the same nonce again (a replayed burst): refused
    r2 = api.verify(ch["nonce"], burst("obama3.jpg", tuple(ch["actions"])))
    assert r2.status_code == 422 and r2.json["code"] == "liveness_challenge_invalid"
    r = api.intent()
    assert r.status_code == 403 and r.json["details"]["missing"] == ["sms"]
    # the SMS half, through the real endpoints
    assert api.c.post("/api/v1/sms/codes", json={"purpose": "sign", "case_id": api.env.case.id},
                      headers=api.env.emp_h).status_code == 202
    code = DevOutboxSmsGateway(api.env.rt.redis).messages(phone=PHONE)[0].params["code"]
    assert api.c.post("/api/v1/sms/codes/verify", json={"purpose": "sign", "case_id": api.env.case.id, "code": code},
                      headers=api.env.emp_h).status_code == 200
    assert api.intent(sha="xyz").status_code == 422
    r = api.intent()
    assert r.status_code == 201, r.json
    assert api.evidence()[-1].action == "signing_intent_issued"
    spent = consume_signing_intent(api.env.rt.redis, r.json["intent_id"], employee_id=api.env.emp.id,
                                   case_id=api.env.case.id, letter_sha256=LETTER)
    assert spent["factors"]["face"]["evidence"]["distance"] < 0.5
    assert api.intent().status_code == 403  # factors were spent


def test_wrong_person_counts_and_still_photo_fails(enrolled):
    api = enrolled
    _, r = api.verify_for("biden.jpg")
    assert r.status_code == 403 and r.json["code"] == "face_mismatch" and r.json["details"]["remaining_attempts"] == 4
    last = api.evidence()[-1]
    assert last.action == "face_verification_failed" and last.payload["distance"] > 0.7
    ch = api.challenge().json
    r = api.verify(ch["nonce"], still_burst("obama.jpg"))
    assert r.status_code == 422 and r.json["code"] == "liveness_failed"
    assert r.json["details"] == {"reason": "action_not_detected", "remaining_attempts": 3}
    assert api.status().json["consecutive_failures"] == 2
    # a success resets the counter
    assert api.verify_for("obama.jpg")[1].status_code == 200
    assert api.status().json["consecutive_failures"] == 0


def test_five_failures_lock_and_hr_unlocks(enrolled):
    api = enrolled
    frame = burst("obama.jpg", ("blink", "open_mouth"))[0]
    for i in range(4):
        ch = api.challenge().json
        r = api.verify(ch["nonce"], [frame] * 3)
        assert r.status_code == 422 and r.json["details"] == {"reason": "frames_identical", "remaining_attempts": 4 - i}
    ch = api.challenge().json
    r = api.verify(ch["nonce"], [frame] * 3)
    assert r.status_code == 423 and r.json["code"] == "face_locked"
    st = api.status().json
    assert st["locked"] and st["consecutive_failures"] == 5
    alerts = api.c.get("/api/v1/hr/alerts", headers=api.env.hr_h).json
    items = alerts["items"] if isinstance(alerts, dict) else alerts
    assert [a["kind"] for a in items].count("face_locked") == 1
    # locked: no challenge, no verification, even with a good burst
    assert api.challenge().json["code"] == "face_locked"
    auditor = api.env.factory.hr(api.env.company, "auditor")
    url = f"/api/v1/hr/employees/{api.env.emp.id}/face/unlock"
    assert api.c.post(url, json={}, headers=api.env.factory.hr_headers(auditor)).status_code == 403
    assert api.c.post(url, json={}, headers=api.env.emp_h).status_code == 403
    r = api.c.post(url, json={"reason": "本人到场核实"}, headers=api.env.hr_h)
    assert r.status_code == 200 and not r.json["locked"] and r.json["consecutive_failures"] == 0
    assert api.c.post(url, json={}, headers=api.env.hr_h).json["code"] == "face_not_locked"
    assert "face_unlocked" in [e.action for e in api.evidence()]
    r = api.verify_for("obama.jpg")[1]
    assert r.status_code == 200, r.json


def test_lock_survives_redis(enrolled):
    api = enrolled
    s = api.env.s
    state = s.scalar(select(FaceLockState).where(FaceLockState.employee_id == api.env.emp.id))
    from qianli.db import utcnow
    state.locked_at, state.consecutive_failures = utcnow(), 5
    s.commit()
    api.env.rt.redis.flushdb()
    assert api.challenge().status_code == 423


def test_bad_bursts_are_refused_without_counting(enrolled):
    api = enrolled
    good = list(burst("obama.jpg", ("blink", "open_mouth")))
    settings = api.env.rt.settings
    alpha = image_bytes("RGBA", (80, 80), (1, 2, 3, 0), "PNG")
    cases = [
        (lambda f: f[:2] + [b"this is not an image"] + f[3:], 422, "image_invalid"),
        (lambda f: f[:1] + [f[1][:2500]] + f[2:], 422, "image_invalid"),
        (lambda f: f[:1] + [alpha] + f[2:], 422, "image_alpha"),
        (lambda f: f[:3] + [image_bytes()] + f[4:], 422, "face_not_found"),
        (lambda f: f[:1] + [two_faces()] + f[2:], 422, "face_multiple"),
        (lambda f: f[:1] + [b"\xff\xd8\xff" + b"0" * settings.liveness_max_frame_bytes] + f[2:], 413, "image_too_large"),
        (lambda f: f[:2], 422, "liveness_frame_count"),
        (lambda f: (f * 2)[: settings.liveness_max_frames + 1], 422, "liveness_frame_count"),
    ]
    for make, status, code in cases:
        ch = api.challenge().json
        r = api.verify(ch["nonce"], make(good))
        assert (r.status_code, r.json["code"]) == (status, code), (code, r.json)
    r = api.verify("not-a-nonce", good)
    assert r.status_code == 422 and r.json["code"] == "liveness_challenge_invalid"
    ch = api.challenge().json
    api.env.rt.redis.pexpire(f"qianli:liveness:{ch['nonce']}", 1)
    time.sleep(0.01)
    r = api.verify(ch["nonce"], good)
    assert r.status_code == 422 and r.json["code"] == "liveness_challenge_invalid"
    ch = api.challenge().json
    r = api.c.post(f"/api/v1/faces/liveness/challenges/{ch['nonce']}/verify", data={}, headers=api.env.emp_h,
                   content_type="multipart/form-data")
    assert r.status_code == 422 and "frames" in str(r.json["errors"])
    r = api.verify(ch["nonce"], good, field="photo")
    assert r.status_code == 422
    r = api.c.post(f"/api/v1/faces/liveness/challenges/{ch['nonce']}/verify", data=b"x", headers=api.env.emp_h,
                   content_type="text/plain")
    assert r.status_code == 415
    # another employee cannot use this employee's challenge
    other = api.env.factory.employee(api.env.company)
    ch = api.challenge().json
    r = api.verify(ch["nonce"], good, headers=api.env.factory.employee_headers(other))
    assert r.status_code == 422 and r.json["code"] == "liveness_challenge_invalid"
    # none of it counted or wrote evidence
    assert api.status().json["consecutive_failures"] == 0
    assert not {"face_verification_failed", "face_verified"} & {e.action for e in api.evidence()}


def test_challenge_and_intent_need_own_open_case_and_enrolment(api):
    r = api.challenge()
    assert r.status_code == 409 and r.json["code"] == "face_not_enrolled"
    api.consent()
    api.enrol(photo("obama.jpg"))
    other_company = api.env.factory.company()
    stranger = api.env.factory.employee(other_company)
    h = api.env.factory.employee_headers(stranger)
    assert api.challenge(headers=h).status_code == 404  # another company's case
    assert api.challenge(case_id="0" * 32).status_code == 404
    r = api.c.post("/api/v1/identity/signing-intents", json={"case_id": api.env.case.id, "letter_sha256": LETTER},
                   headers=h)
    assert r.status_code == 404
    assert api.c.post("/api/v1/faces/liveness/challenges", json={"case_id": api.env.case.id, "x": 1},
                      headers=api.env.emp_h).status_code == 422
    r = api.challenge()
    assert r.status_code == 201 and len(set(r.json["actions"])) == 2 and r.json["expires_in_s"] == 120


def test_withdraw_consent_over_http(enrolled):
    api = enrolled
    r = api.c.delete("/api/v1/faces/consent", headers=api.env.emp_h)
    assert r.status_code == 200 and r.json == {"withdrawn": True, "template_deleted": True}
    assert api.challenge().json["code"] == "face_not_enrolled"
    assert api.status().json["enrolled"] is False
    assert api.env.s.scalar(select(func.count()).select_from(HrAlert)) == 0


def test_certified_provider_setting_answers_503_without_counting(enrolled):
    from dataclasses import replace

    api = enrolled
    rt = api.env.rt
    rt.settings = replace(rt.settings, liveness_provider="tencent_faceid")
    rt.reset("liveness")
    try:
        ch = api.challenge().json
        r = api.verify(ch["nonce"], burst("obama.jpg", tuple(ch["actions"])))
        assert r.status_code == 503 and r.json["code"] == "liveness_provider_unavailable"
        assert r.json["details"] == {"provider": "tencent_faceid"}
    finally:
        rt.reset("liveness")
    assert api.status().json["consecutive_failures"] == 0


def test_a_distance_in_the_retake_band_asks_for_new_photos_without_counting(enrolled):
    """match <= QIANLI_FACE_THRESHOLD < retake <= QIANLI_FACE_RETAKE_THRESHOLD < mismatch."""
    from dataclasses import replace

    api = enrolled
    rt = api.env.rt
    _, ok = api.verify_for("obama3.jpg")
    assert ok.status_code == 200, ok.json
    d = ok.json["distance"]
    assert 0.2 < d < 0.5
    # the same person, with the accepting threshold moved just below their distance: the band
    rt.settings = replace(rt.settings, face_threshold=round(d - 0.1, 3), face_retake_threshold=round(d + 0.15, 3))
    _, r = api.verify_for("obama3.jpg")
    assert r.status_code == 422 and r.json["code"] == "face_retake", r.json
    assert "重新拍摄" in r.json["message"] and r.json["details"]["remaining_attempts"] == 5
    last = api.evidence()[-1]
    assert last.action == "face_verification_failed" and last.payload["code"] == "face_retake"
    assert last.payload["counted"] is False and last.payload["threshold"] < last.payload["distance"] \
        <= last.payload["retake_threshold"]
    assert api.status().json["consecutive_failures"] == 0  # not counted towards the lock
    # someone else is far beyond the band: a mismatch, counted
    _, r = api.verify_for("biden.jpg")
    assert r.status_code == 403 and r.json["code"] == "face_mismatch" and r.json["details"]["remaining_attempts"] == 4
    # no band (retake threshold = threshold): the same photos are a plain mismatch
    rt.settings = replace(rt.settings, face_retake_threshold=rt.settings.face_threshold)
    _, r = api.verify_for("obama3.jpg")
    assert r.status_code == 403 and r.json["code"] == "face_mismatch"


def test_face_decision_bands():
    from identity.faces import decide

    assert [decide(x, 0.5, 0.6) for x in (0.0, 0.5, 0.5001, 0.6, 0.6001, 1.2)] == [
        "match", "match", "retake", "retake", "mismatch", "mismatch"]
    assert decide(0.55, 0.5, 0.5) == "mismatch" and decide(0.55, 0.5) == "mismatch"
