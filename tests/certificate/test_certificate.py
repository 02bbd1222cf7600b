"""The certificate of termination (art. 50): facts, refusals, seal (pdfsig + our verifier), delivery,
evidence, dossier, the last-day job."""

from __future__ import annotations

import io
import json
import subprocess
import zipfile
from datetime import date, timedelta

import pytest

from cases.clock import beijing_today
from qianli.models import Document, EvidenceEntry, HrAlert
from qianli.services import certificate as cert_svc
from signing.certificate import service_length
from signing.verify import verify_pdf

ADVERSE = ("严重", "违反", "违纪", "旷工", "擅自", "绩效", "考核", "不合格", "不胜任", "开除", "辞退", "过失", "处分",
           "薪资不满意", "薪酬")


def actions(s, case_id):
    s.expire_all()
    return [e.action for e in s.query(EvidenceEntry).filter_by(case_id=case_id).order_by(EvidenceEntry.seq)]


def pdf_text(tmp_path, data: bytes) -> str:
    p = tmp_path / "c.pdf"
    p.write_bytes(data)
    out = subprocess.run(["pdftotext", str(p), "-"], capture_output=True, text=True, check=True).stdout
    assert out.count("\f") == 1, "one page"
    return out.replace("\n", "")


def issue_url(c):
    return f"/api/v1/hr/cases/{c.id}/termination-certificate"


def get_url(c):
    return f"/api/v1/cases/{c.id}/termination-certificate"


@pytest.mark.parametrize("start,end,expected", [
    (date(2023, 3, 1), date(2026, 2, 28), (3, 0)),
    (date(2023, 3, 15), date(2024, 3, 14), (1, 0)),
    (date(2023, 3, 15), date(2024, 3, 13), (0, 11)),
    (date(2026, 11, 2), date(2026, 11, 20), (0, 0)),
    (date(2020, 1, 31), date(2026, 11, 30), (6, 10)),
])
def test_service_length_counts_both_days(start, end, expected):
    assert service_length(start, end) == expected


def test_issue_seals_b_lta_states_the_facts_and_nothing_adverse(client, end, db_session, tmp_path, pdfsig_for):
    c, emp = end.approved_case(last_day_offset=0, contract_term="2023年3月1日至2026年2月28日", position="高级工程师",
                               hire_date=date(2023, 3, 1))
    r = client.post(issue_url(c), json={}, headers=end.h(end.spec))
    assert r.status_code == 201, r.json
    info = r.json
    assert info["created"] is True and info["pades_level"] == "B-LTA"
    assert info["termination_date"] == beijing_today().isoformat() and info["issued_by"] == f"hr:{end.spec.id}"
    again = client.post(issue_url(c), json={}, headers=end.h(end.manager))
    assert again.status_code == 200 and again.json["document_id"] == info["document_id"] and not again.json["created"]

    # the employee downloads it in the mini-program; the download is evidence of delivery
    r = client.get(get_url(c), headers=end.f.employee_headers(emp))
    assert r.status_code == 200 and r.mimetype == "application/pdf"
    pdf = r.data
    assert r.headers["X-Document-SHA256"] == info["sha256"]
    acts = actions(db_session, c.id)
    assert acts.count("termination_certificate_issued") == 1 and acts[-1] == "termination_certificate_downloaded"
    issued = db_session.query(EvidenceEntry).filter_by(case_id=c.id, action="termination_certificate_issued").one()
    assert issued.payload["sha256"] == info["sha256"] and issued.payload["legal_basis"] == "劳动合同法第三十七条"
    assert issued.payload["facts"]["劳动合同期限"] == "2023年3月1日至2026年2月28日"

    # HR gets the same bytes; the employee's case shows it
    hr = client.get(get_url(c), headers=end.h(end.head))
    assert hr.status_code == 200 and hr.data == pdf
    mine = client.get(f"/api/v1/cases/{c.id}", headers=end.f.employee_headers(emp)).json
    assert mine["termination_certificate"]["document_id"] == info["document_id"]

    # the art. 24 facts, and nothing adverse (the reason the employee gave stays out)
    text = pdf_text(tmp_path, pdf).replace(" ", "")
    today = beijing_today()
    for fact in ("解除劳动合同证明", "2023年3月1日至2026年2月28日", "高级工程师", "研发部", "2023年3月1日",
                 f"{today.year}年{today.month}月{today.day}日", "第三十七条", emp.name, "示例科技有限公司"):
        assert fact in text, fact
    years, months = service_length(date(2023, 3, 1), today)
    assert f"{years}年" in text and "在本单位工作年限" in text
    for word in ADVERSE:
        assert word not in text, word
    assert "110105" in text and "11010519491231002X" not in text  # national id masked

    # sealed by the company, B-LTA: our verifier and poppler's pdfsig
    report = verify_pdf(pdf, trust_roots=[end.rt.pki.root_pem])
    sigs = [s for s in report.signatures if s.kind == "signature"]
    assert report.ok and [s.field_name for s in sigs] == ["company_seal"]
    assert sigs[0].valid and sigs[0].trusted and sigs[0].pades_level == "B-LTA" and "电子印章" in sigs[0].signer
    path = tmp_path / "sealed.pdf"
    path.write_bytes(pdf)
    seals = [x for x in pdfsig_for(end.rt.pki.root_pem).run(path) if x.get("Signature Field Name") == "company_seal"]
    assert seals and seals[0]["Signature Validation"] == "Signature is Valid."
    assert seals[0]["Certificate Validation"] == "Certificate is Trusted."


@pytest.mark.parametrize("missing", [
    ("contract_term",), ("position",), ("hire_date",), ("termination_date",),
    ("contract_term", "position", "hire_date"),
])
def test_missing_facts_are_named_and_nothing_is_written(client, end, db_session, missing):
    kw = {"contract_term": "" if "contract_term" in missing else "2023-03-01至2026-02-28",
          "position": "" if "position" in missing else "工程师",
          "hire_date": None if "hire_date" in missing else date(2023, 3, 1)}
    c, _emp = end.approved_case(**kw)
    if "termination_date" in missing:
        c.agreed_last_day = c.requested_last_day = None
        db_session.commit()
    before = actions(db_session, c.id)
    r = client.post(issue_url(c), json={}, headers=end.h(end.spec))
    assert r.status_code == 422, r.json
    assert r.json["code"] == "certificate_facts_missing"
    assert set(r.json["errors"]["facts"]) == set(missing)
    assert r.json["details"]["missing"] == [m for m in cert_svc.FACT_LABELS if m in missing]
    for m in missing:
        assert cert_svc.FACT_LABELS[m] in r.json["message"]
    assert actions(db_session, c.id) == before
    assert db_session.query(Document).filter_by(case_id=c.id, kind="termination_certificate").count() == 0
    assert client.get(get_url(c), headers=end.h(end.spec)).json["code"] == "certificate_not_issued"


def test_refused_before_the_last_day_and_before_final_approval(client, end, db_session):
    c, _ = end.approved_case(last_day_offset=3)
    r = client.post(issue_url(c), json={}, headers=end.h(end.spec))
    assert r.status_code == 409 and r.json["code"] == "certificate_before_last_day", r.json
    c2, _ = end.approved_case()
    c2.state = "submitted"
    db_session.commit()
    r = client.post(issue_url(c2), json={}, headers=end.h(end.spec))
    assert r.status_code == 409 and r.json["code"] == "certificate_not_issuable"


def test_who_may_issue_and_read(client, end, db_session, factory):
    c, emp = end.approved_case()
    assert client.post(issue_url(c), json={}, headers=end.h(end.head)).status_code == 403
    assert client.post(issue_url(c), json={}, headers=end.h(end.auditor)).status_code == 403
    assert client.post(issue_url(c), json={}, headers=end.f.employee_headers(emp)).status_code == 403
    assert client.post(issue_url(c), json={}, headers=end.h(end.spec)).status_code == 201
    other = factory.employee(end.company, name="王五")
    assert client.get(get_url(c), headers=factory.employee_headers(other)).status_code == 404
    assert client.get(get_url(c), headers=end.h(end.other_head)).status_code == 404
    assert client.get(get_url(c), headers=end.h(end.auditor)).status_code == 200
    other_co = factory.company()
    stranger = factory.hr(other_co, "hr_manager")
    assert client.post(issue_url(c), json={}, headers=factory.hr_headers(stranger)).status_code == 404


def test_reissue_keeps_the_first_and_needs_a_reason(client, end, db_session):
    c, emp = end.approved_case(position="工程师")
    first = client.post(issue_url(c), json={}, headers=end.h(end.spec)).json
    r = client.post(issue_url(c), json={"reissue": True}, headers=end.h(end.spec))
    assert r.status_code == 422 and r.json["code"] == "reissue_reason_required"
    emp.position = "高级工程师"
    db_session.commit()
    r = client.post(issue_url(c), json={"reissue": True, "reason": "更正职位"}, headers=end.h(end.spec))
    assert r.status_code == 201 and r.json["reissue_of"] == first["document_id"]
    assert db_session.query(Document).filter_by(case_id=c.id, kind="termination_certificate").count() == 2
    latest = client.get(get_url(c), headers=end.h(end.spec))
    assert latest.headers["X-Document-SHA256"] == r.json["sha256"]


def test_in_the_dossier_and_the_evidence(client, end, db_session):
    c, _ = end.approved_case()
    info = client.post(issue_url(c), json={}, headers=end.h(end.spec)).json
    r = client.get(f"/api/v1/hr/cases/{c.id}/dossier", headers=end.h(end.spec))
    assert r.status_code == 200, r.data[:300]
    z = zipfile.ZipFile(io.BytesIO(r.data))
    index = json.loads(z.read("documents/index.json"))["documents"]
    item = next(d for d in index if d["kind"] == "termination_certificate")
    assert item["sha256"] == info["sha256"] and item["signature_report"]["ok"] is True
    assert z.read(item["member"])[:5] == b"%PDF-"
    case_view = json.loads(z.read("evidence/case.json"))["entries"]
    assert any(e["action"] == "termination_certificate_issued" for e in case_view)
    detail = client.get(f"/api/v1/hr/cases/{c.id}", headers=end.h(end.spec)).json
    assert any(d["kind"] == "termination_certificate" for d in detail["documents"])


def test_the_last_day_job_issues_or_alerts_once(end, db_session, redis_client):
    due, _ = end.approved_case(last_day_offset=0)
    later, _ = end.approved_case(last_day_offset=2)
    unknown, emp = end.approved_case(last_day_offset=-1, contract_term="")
    ids = cert_svc.due_certificate_cases(db_session)
    assert due.id in ids and unknown.id in ids and later.id not in ids
    assert cert_svc.issue_due_certificates(end.rt) == 2
    assert cert_svc.issue_due_certificates(end.rt) == 0  # queued jobs are not doubled
    from rq import Queue

    q = Queue("reminders", connection=redis_client)
    assert {f"certificate-{due.id}", f"certificate-{unknown.id}"} <= set(q.job_ids)

    out = cert_svc.issue_certificate_job_body(end.rt, due.id)
    assert out["status"] == "issued"
    db_session.expire_all()
    doc = cert_svc.latest_certificate(db_session, due)
    assert doc is not None and doc.created_by == "system"

    out = cert_svc.issue_certificate_job_body(end.rt, unknown.id)
    assert out == {"status": "facts_missing", "code": "certificate_facts_missing", "missing": ["contract_term"]}
    alert = db_session.query(HrAlert).filter_by(case_id=unknown.id, kind="certificate_facts_missing").one()
    assert "劳动合同期限" in alert.message
    assert unknown.id not in cert_svc.due_certificate_cases(db_session)  # HR was told; no re-alerting
    # HR completes the roster and issues: the alert is resolved with it
    emp.contract_term = "无固定期限"
    db_session.commit()
    out = cert_svc.issue_certificate_job_body(end.rt, unknown.id)
    assert out["status"] == "issued"
    db_session.expire_all()
    assert db_session.get(HrAlert, alert.id).resolved_at is not None
    assert cert_svc.due_certificate_cases(db_session, today=beijing_today() + timedelta(days=5)) == [later.id]


def test_employee_is_notified(end, db_session, client):
    from qianli.models import ReminderDelivery

    c, _ = end.approved_case()
    client.post(issue_url(c), json={}, headers=end.h(end.spec))
    rows = db_session.query(ReminderDelivery).filter_by(case_id=c.id, kind="termination_certificate_issued").all()
    assert rows and {r.channel for r in rows} >= {"sms"}


def test_dismissal_states_the_article_only_when_asked_and_never_an_evaluation(client, end, db_session, tmp_path):
    c, emp = end.approved_case()
    c.departure_type = "absconding"
    db_session.commit()
    r = client.post(issue_url(c), json={}, headers=end.h(end.spec))
    assert r.status_code == 201, r.json
    text = pdf_text(tmp_path, client.get(get_url(c), headers=end.h(end.spec)).data).replace(" ", "")
    assert "第三十九条" not in text and "劳动合同期限" in text
    entry = db_session.query(EvidenceEntry).filter_by(case_id=c.id, action="termination_certificate_issued").one()
    assert entry.payload["legal_basis"] == "劳动合同法第三十九条第二项" and entry.payload["ground_stated"] is False
    r = client.post(issue_url(c), json={"reissue": True, "reason": "员工要求载明解除依据", "state_ground": True},
                    headers=end.h(end.spec))
    assert r.status_code == 201, r.json
    text = pdf_text(tmp_path, client.get(get_url(c), headers=end.h(end.spec)).data).replace(" ", "")
    assert "第三十九条第二项" in text and "应劳动者要求载明" in text
    for word in ADVERSE:
        assert word not in text, word
