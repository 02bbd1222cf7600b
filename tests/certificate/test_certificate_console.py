"""The certificate card of the HR console: missing facts shown, issue by form (CSRF), view and download."""

from __future__ import annotations

import re

from tests.review.test_console import csrf_of, login


def test_console_shows_missing_facts_then_issues_and_serves_the_pdf(client, end, db_session):
    c, emp = end.approved_case(position="")
    assert login(client, end, end.spec).status_code == 303
    html = client.get(f"/hr/cases/{c.id}").get_data(as_text=True)
    assert 'id="certificate-missing"' in html and "工作岗位" in html
    assert re.search(r'id="certificate-button"[^>]*disabled', html)
    emp.position = "测试工程师"
    db_session.commit()
    html = client.get(f"/hr/cases/{c.id}").get_data(as_text=True)
    assert 'id="certificate-missing"' not in html and not re.search(r'id="certificate-button"[^>]*disabled', html)
    token = csrf_of(html)
    assert client.post(f"/hr/cases/{c.id}/certificate", data={}).status_code == 403  # no CSRF token
    r = client.post(f"/hr/cases/{c.id}/certificate", data={"csrf_token": token})
    assert r.status_code == 303, r.get_data(as_text=True)[:500]
    html = client.get(f"/hr/cases/{c.id}").get_data(as_text=True)
    assert 'id="certificate-issued"' in html and "解除劳动合同证明已出具" in html
    pdf = client.get(f"/hr/cases/{c.id}/certificate.pdf")
    assert pdf.status_code == 200 and pdf.data[:5] == b"%PDF-"
    dl = client.get(f"/hr/cases/{c.id}/certificate.pdf?download=1")
    assert "attachment" in dl.headers["Content-Disposition"]


def test_console_auditor_sees_but_cannot_issue(client, end, db_session):
    c, _ = end.approved_case()
    login(client, end, end.auditor)
    html = client.get(f"/hr/cases/{c.id}").get_data(as_text=True)
    assert 'id="certificate"' in html and 'id="certificate-form"' not in html
    r = client.post(f"/hr/cases/{c.id}/certificate", data={"csrf_token": csrf_of(html)})
    assert r.status_code == 403
