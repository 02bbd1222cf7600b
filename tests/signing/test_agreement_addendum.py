"""The art. 36 agreement as a signed document: the employee signs the addendum with the same identity
checks as the letter, the company seals it, it is kept with the case and in the dossier (issue 14)."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from datetime import timedelta

from sqlalchemy import select

from identity.intent import issue_signing_intent
from qianli.models import EvidenceEntry, ResignationCase
from signing.verify import verify_pdf
from tests.review.conftest import ReviewWorld
from tests.signing_support import grant_intent, signature_png


def _entries(db_session, case_id, action):
    return db_session.scalars(select(EvidenceEntry).where(EvidenceEntry.case_id == case_id,
                                                          EvidenceEntry.action == action)).all()


def _sign(client, case_id, headers, intent, png=None):
    return client.post(f"/api/v1/cases/{case_id}/agreement/addendum/signature", headers=headers,
                       data={"intent_id": intent, "signature": (io.BytesIO(png or signature_png()), "sig.png")},
                       content_type="multipart/form-data")


def test_addendum_signed_sealed_and_in_the_dossier(client, runtime, db_session, factory, tmp_path, pdfsig_for):
    from pypdf import PdfReader

    world = ReviewWorld(runtime, db_session, factory)
    c, emp = world.case(signed=True)
    eh = factory.employee_headers(emp)
    preview_url = f"/api/v1/cases/{c.id}/agreement/addendum/preview"
    assert client.get(preview_url, headers=eh).json["code"] == "no_pending_agreement"
    early = c.earliest_lawful_last_day - timedelta(days=7)
    r = client.post(f"/api/v1/hr/cases/{c.id}/approval", json={"agreed_last_day": early.isoformat()},
                    headers=world.h(world.spec))
    assert r.status_code == 200, r.json

    r = client.get(preview_url, headers=eh)
    assert r.status_code == 200 and r.mimetype == "application/pdf"
    sha = r.headers["X-Letter-SHA256"]
    assert hashlib.sha256(r.data).hexdigest() == sha
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(r.data)).pages)
    for needle in (f"{early.year}年{early.month}月{early.day}日", c.id, world.company.name, emp.name, "第三十六条"):
        assert needle in text.replace("\n", ""), needle
    assert client.get(preview_url, headers=eh).headers["X-Letter-SHA256"] == sha  # deterministic

    # Same identity checks as the letter: no intent without both factors; an intent for another document fails.
    try:
        issue_signing_intent(runtime.redis, runtime.settings, employee_id=emp.id, case_id=c.id, letter_sha256=sha)
        raise AssertionError("intent issued without factors")
    except Exception as exc:  # noqa: BLE001
        assert getattr(exc, "code", None) == "signing_factors_missing"
    wrong = grant_intent(runtime, emp.id, c.id, "0" * 64)
    r = _sign(client, c.id, eh, wrong)
    assert r.status_code == 403 and r.json["code"] == "signing_intent_mismatch"
    r = _sign(client, c.id, eh, grant_intent(runtime, emp.id, c.id, sha), png=signature_png(blank=True))
    assert r.status_code == 422 and r.json["code"] == "signature_image_blank"
    assert not _entries(db_session, c.id, "agreement_addendum_signed")

    r = _sign(client, c.id, eh, grant_intent(runtime, emp.id, c.id, sha))
    assert r.status_code == 201, r.json
    body = r.json
    assert body["agreed_last_day"] == early.isoformat() and body["addendum_sha256"] == sha
    db_session.expire_all()
    assert db_session.get(ResignationCase, c.id).agreed_last_day == early
    [signed_ev] = _entries(db_session, c.id, "agreement_addendum_signed")
    assert signed_ev.actor == f"employee:{emp.id}" and signed_ev.payload["document_id"] == body["document_id"]
    assert set(signed_ev.payload["intent"]["factors"]) == {"sms", "face"}
    assert signed_ev.payload["parties"]["employee"]["employee_no"] == emp.employee_no
    [confirmed] = _entries(db_session, c.id, "review_last_day_confirmed")
    assert confirmed.payload["addendum_document_id"] == body["document_id"]
    # a second signature is refused: the agreement is no longer pending
    r = _sign(client, c.id, eh, grant_intent(runtime, emp.id, c.id, sha))
    assert r.status_code == 409 and r.json["code"] == "no_pending_agreement"

    # HR downloads the same document; both signatures are valid (pyHanko and poppler)
    r = client.get(f"/api/v1/cases/{c.id}/agreement/addendum", headers=world.h(world.head))
    assert r.status_code == 200 and r.headers["X-Document-SHA256"] == body["sha256"]
    pki_root = runtime.pki.root_pem
    report = verify_pdf(r.data, trust_roots=[pki_root])
    by_name = {s.field_name: s for s in report.signatures}
    assert report.ok and by_name["employee_signature"].pades_level == "B-LTA" == by_name["company_seal"].pades_level
    assert "电子印章" in by_name["company_seal"].signer
    path = tmp_path / "addendum.pdf"
    path.write_bytes(r.data)
    approvals = {x["Signature Field Name"]: x for x in pdfsig_for(pki_root).run(path)
                 if x.get("Signature Type") == "ETSI.CAdES.detached"}
    assert set(approvals) == {"employee_signature", "company_seal"}
    assert all(x["Signature Validation"] == "Signature is Valid." for x in approvals.values())
    other = factory.employee(world.company)
    assert client.get(f"/api/v1/cases/{c.id}/agreement/addendum",
                      headers=factory.employee_headers(other)).status_code == 404

    # final approval takes the agreed day without a new proposal
    r = client.post(f"/api/v1/hr/cases/{c.id}/approval", json={}, headers=world.h(world.head))
    assert r.status_code == 200 and r.json["state"] == "approved", r.json
    db_session.expire_all()
    assert db_session.get(ResignationCase, c.id).agreed_last_day == early

    # the dossier keeps it, with its signature report
    from qianli.services.dossier import build_dossier

    z = zipfile.ZipFile(io.BytesIO(build_dossier(db_session, runtime, db_session.get(ResignationCase, c.id),
                                                 actor="hr:test")))
    names = z.namelist()
    member = next(n for n in names if n.startswith("documents/agreement_addendum/"))
    assert hashlib.sha256(z.read(member)).hexdigest() == body["sha256"]
    index = json.loads(z.read("documents/index.json"))["documents"]
    item = next(i for i in index if i["kind"] == "agreement_addendum")
    assert item["signature_report"]["ok"] is True
