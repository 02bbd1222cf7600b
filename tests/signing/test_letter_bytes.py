"""The unsigned letter is a pure function of the case: the same bytes from every server process.

The SHA-256 shown by previewLetter is bound into the signing intent and recomputed by signLetter,
possibly in another process. A run-time ICC profile (LittleCMS stamps its creation time into the
header) made two gunicorn workers render different bytes, so a signing after a preview served by
the other worker failed with ``signing_intent_mismatch``."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import pytest
import requests
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from qianli.services import cases as case_svc
from signing.letter import SRGB_ICC_PATH, _srgb_icc
from tests.conftest import Factory
from tests.live_gunicorn import REPO, running_gunicorn, service_env
from tests.signing_support import grant_intent, signature_png

RENDER = """
import hashlib
from datetime import date
from signing.letter import LetterData, render_letter
pdf, _ = render_letter(LetterData(case_id="c-1", company_name="示例科技有限公司", employee_name="陈晓", employee_no="P001",
    department="研发部", position="工程师", reason_category="family", reason_text="家庭原因",
    requested_last_day=date(2026, 3, 1), earliest_lawful_last_day=date(2026, 2, 20),
    notice_arrival_date=date(2026, 1, 20), source="miniprogram", probation=False, letter_date=date(2026, 1, 20)))
print(hashlib.sha256(pdf).hexdigest())
"""


def test_the_icc_profile_is_a_shipped_file_with_a_fixed_header():
    from PIL import ImageCms

    data = SRGB_ICC_PATH.read_bytes()
    assert _srgb_icc() == data and data[36:40] == b"acsp" and data[16:20] == b"RGB "
    profile = ImageCms.getOpenProfile(io.BytesIO(data))
    assert profile.profile.creation_date == datetime(2026, 1, 1)
    # It is what scripts/make-srgb-icc.py makes (LittleCMS's sRGB with the fixed date), not a stale copy.
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        make = __import__("make-srgb-icc")
    finally:
        sys.path.pop(0)
    assert make.build() == data


def test_separate_interpreters_render_identical_bytes():
    shas = []
    for i in range(2):
        if i:
            time.sleep(1.1)  # a run-time profile carries its creation second
        out = subprocess.run([sys.executable, "-c", RENDER], cwd=REPO, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        shas.append(out.stdout.strip())
    assert len(shas[0]) == 64 and shas[0] == shas[1]


def _open_case(s, rt, factory, company, n):
    emp = factory.employee(company, name="陈晓", employee_no=f"P{n:03d}")
    arrived = datetime.now(timezone.utc) - timedelta(hours=3)
    c = case_svc.open_case(s, rt.settings, employee=emp, source="miniprogram", notice_arrived_at=arrived,
                           actor=f"employee:{emp.id}", reason_category="career_development", reason_text="个人发展",
                           requested_last_day=arrived.date() + timedelta(days=40))
    s.commit()
    return emp, c


def _sign_body(intent: str, key: str):
    boundary, body = encode_multipart({"intent_id": intent, "idempotency_key": key,
                                       "signature": FileStorage(io.BytesIO(signature_png()), "sig.png",
                                                                content_type="image/png")})
    return body, f"multipart/form-data; boundary={boundary}"


@pytest.mark.slow
def test_previews_from_every_gunicorn_worker_match_and_signing_elsewhere_succeeds(committed_runtime, tmp_path):
    from api.app import create_app
    from qianli.services.signing import preview_letter

    rt = committed_runtime
    s = rt.session_factory()
    factory = Factory(rt, s)
    company = factory.company(approval_chain=["hr_specialist"])
    emp1, case1 = _open_case(s, rt, factory, company, 1)
    emp2, case2 = _open_case(s, rt, factory, company, 2)
    _pdf, local_sha1 = preview_letter(s, employee_id=emp1.id, company_id=company.id, case_id=case1.id)
    h1, h2 = factory.employee_headers(emp1), factory.employee_headers(emp2)
    s.commit()  # SQLite transactions take the write lock up front: this session must not hold it while the app signs
    time.sleep(1.1)  # the workers render their first letter in a later second than this process did

    # gunicorn's own access log (with the worker pid): without config/gunicorn.conf.py, whose JSON logging replaces it
    with running_gunicorn(service_env(rt), tmp_path, workers=2, config=False) as server:
        url = f"{server.base_url}/api/v1/cases/{case1.id}/letter/preview"
        shas, pids = set(), set()
        for _ in range(30):
            r = requests.get(url, headers={**h1, "Connection": "close"}, timeout=60)
            assert r.status_code == 200 and r.headers["X-Letter-SHA256"] == hashlib.sha256(r.content).hexdigest()
            shas.add(r.headers["X-Letter-SHA256"])
            time.sleep(1.1)
            pids = {pid for pid, _m, path, status in server.access_lines() if path.endswith("/letter/preview")}
            if len(pids) >= 2:
                break
        assert len(pids) >= 2, f"previews were all served by one worker: {server.access_lines()}"
        assert shas == {local_sha1}, "the workers and this process rendered different letters"

        # Preview in a gunicorn worker, sign in this process.
        app = create_app(rt)
        intent = grant_intent(rt, emp1.id, case1.id, shas.pop())
        body, ctype = _sign_body(intent, "key-cross-0001")
        r = app.test_client().post(f"/api/v1/cases/{case1.id}/letter/signature", data=body, content_type=ctype,
                                   headers=h1)
        assert r.status_code == 201, r.json

        # Preview in this process, sign in a gunicorn worker.
        _pdf, sha2 = preview_letter(s, employee_id=emp2.id, company_id=company.id, case_id=case2.id)
        s.commit()
        intent = grant_intent(rt, emp2.id, case2.id, sha2)
        body, ctype = _sign_body(intent, "key-cross-0002")
        r = requests.post(f"{server.base_url}/api/v1/cases/{case2.id}/letter/signature", data=body,
                          headers={**h2, "Content-Type": ctype}, timeout=120)
        assert r.status_code == 201, (r.status_code, r.text[:500], server.tail())
        assert r.json()["letter_sha256"] == sha2
    s.close()
