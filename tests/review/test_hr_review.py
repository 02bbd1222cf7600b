"""HR review over HTTP: the queue, one case, two-level approval, return, art. 36 agreements, withdrawal."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from qianli.models import EvidenceEntry, HrAlert, ResignationCase
from cases.clock import SHANGHAI


def actions(db_session, case_id):
    return [e.action for e in db_session.query(EvidenceEntry).filter_by(case_id=case_id).order_by(EvidenceEntry.id)]


def entry(db_session, case_id, action):
    return (db_session.query(EvidenceEntry).filter_by(case_id=case_id, action=action)
            .order_by(EvidenceEntry.id.desc()).first())


def state(db_session, case_id):
    db_session.expire_all()
    return db_session.get(ResignationCase, case_id).state


# ---- the queue ------------------------------------------------------------------------------------

def test_list_cases_overdue_first_then_newest_and_paginated(client, world, db_session):
    now = datetime.now(timezone.utc)
    old_waiting, _ = world.case(arrived=now - timedelta(days=20), submit=False, name="王五")  # letter overdue
    submitted, _ = world.case(arrived=now - timedelta(days=10), name="赵六")
    fresh, _ = world.case(arrived=now - timedelta(hours=1), submit=False, name="钱七")  # not yet due
    r = client.get("/api/v1/hr/cases", headers=world.h(world.spec))
    assert r.status_code == 200, r.json
    body = r.json
    assert body["total"] == 3 and body["page"] == 1
    ids = [i["id"] for i in body["items"]]
    assert ids[0] == old_waiting.id and body["items"][0]["overdue"] is True
    assert set(ids[1:]) == {submitted.id, fresh.id}
    assert [i["overdue"] for i in body["items"][1:]] == [False, False]
    assert body["items"][0]["employee"]["name"] == "王五"

    page2 = client.get("/api/v1/hr/cases?page=2&page_size=2", headers=world.h(world.spec)).json
    page1 = client.get("/api/v1/hr/cases?page=1&page_size=2", headers=world.h(world.spec)).json
    assert page1["total"] == page2["total"] == 3
    assert [i["id"] for i in page1["items"]] + [i["id"] for i in page2["items"]] == ids

    only_overdue = client.get("/api/v1/hr/cases?overdue=true", headers=world.h(world.spec)).json
    assert [i["id"] for i in only_overdue["items"]] == [old_waiting.id]
    by_state = client.get("/api/v1/hr/cases?state=submitted&state=returned", headers=world.h(world.spec)).json
    assert [i["id"] for i in by_state["items"]] == [submitted.id]
    by_name = client.get("/api/v1/hr/cases?q=赵", headers=world.h(world.spec)).json
    assert [i["id"] for i in by_name["items"]] == [submitted.id]
    today = now.astimezone(SHANGHAI).date()
    by_arrival = client.get(f"/api/v1/hr/cases?arrival_from={today - timedelta(days=11)}&arrival_to={today - timedelta(days=9)}",
                            headers=world.h(world.spec)).json
    assert [i["id"] for i in by_arrival["items"]] == [submitted.id]
    created_today = client.get(f"/api/v1/hr/cases?created_from={today}&created_to={today}", headers=world.h(world.spec)).json
    assert created_today["total"] == 3
    created_yesterday = client.get(f"/api/v1/hr/cases?created_to={today - timedelta(days=1)}", headers=world.h(world.spec)).json
    assert created_yesterday["total"] == 0


def test_search_by_employee_number_and_like_wildcards_are_literal(client, world):
    c, emp = world.case()
    r = client.get(f"/api/v1/hr/cases?q={emp.employee_no}", headers=world.h(world.spec)).json
    assert [i["id"] for i in r["items"]] == [c.id]
    assert client.get("/api/v1/hr/cases?q=%25", headers=world.h(world.spec)).json["total"] == 0


def test_dept_head_sees_only_their_department(client, world):
    mine, _ = world.case(department="研发部")
    theirs, _ = world.case(department="市场部")
    r = client.get("/api/v1/hr/cases", headers=world.h(world.head)).json
    assert [i["id"] for i in r["items"]] == [mine.id]
    assert client.get(f"/api/v1/hr/cases/{theirs.id}", headers=world.h(world.head)).status_code == 404
    assert client.get("/api/v1/hr/cases?department=市场部", headers=world.h(world.spec)).json["items"][0]["id"] == theirs.id


@pytest.mark.parametrize("query", ["state=open", "page=0", "page_size=1000", "overdue=maybe", "colour=red"])
def test_bad_list_query_is_422(client, world, query):
    r = client.get(f"/api/v1/hr/cases?{query}", headers=world.h(world.spec))
    assert r.status_code == 422 and r.json["code"] == "validation_failed"


def test_employee_token_cannot_use_hr_operations(client, world, factory):
    c, emp = world.case()
    r = client.get("/api/v1/hr/cases", headers=factory.employee_headers(emp))
    assert r.status_code == 403 and r.json["code"] == "hr_only"


# ---- one case -------------------------------------------------------------------------------------

def test_get_case_has_timeline_chain_documents_and_actions(client, world):
    c, emp = world.case()
    r = client.get(f"/api/v1/hr/cases/{c.id}", headers=world.h(world.spec))
    assert r.status_code == 200, r.json
    d = r.json
    assert d["employee"]["employee_no"] == emp.employee_no and d["state"] == "submitted"
    assert [t["action"] for t in d["timeline"]] == ["case_opened", "case_submit_letter"]
    assert d["chain"]["ok"] is True and d["chain"]["entries"] == 2
    assert d["chain"]["head_digest"] == d["timeline"][-1]["digest"]
    assert d["documents"] == []
    assert d["approval"] == {"chain": ["hr_specialist", "dept_head"], "level": 1, "level_role": "hr_specialist",
                             "pending_last_day": None, "confirmed_last_day": None}
    assert set(d["allowed_actions"]) == {"approve", "return", "export_dossier"}
    # The department head's level is not yet reached; the auditor only reads.
    assert client.get(f"/api/v1/hr/cases/{c.id}", headers=world.h(world.head)).json["allowed_actions"] == ["export_dossier"]
    assert client.get(f"/api/v1/hr/cases/{c.id}", headers=world.h(world.auditor)).json["allowed_actions"] == ["export_dossier"]


# ---- approval -------------------------------------------------------------------------------------

def test_two_level_approval_roles(client, world, db_session):
    c, _ = world.case()
    url = f"/api/v1/hr/cases/{c.id}/approval"
    r = client.post(url, json={}, headers=world.h(world.head))  # level 1 belongs to the specialist
    assert r.status_code == 403 and r.json["code"] == "wrong_approval_level"
    r = client.post(url, json={}, headers=world.h(world.auditor))
    assert r.status_code == 403 and r.json["code"] == "role_forbidden"
    r = client.post(url, json={"comment": "交接清单已核对"}, headers=world.h(world.spec))
    assert r.status_code == 200, r.json
    assert r.json["state"] == "first_approved" and r.json["outcome"] == "first_approved"
    e = entry(db_session, c.id, "case_approve_first")
    assert e.actor == f"hr:{world.spec.id}" and e.payload["level"] == 1 and e.payload["comment"] == "交接清单已核对"
    assert e.payload["handover_confirmed"][0]["item"] == "代码仓库权限"
    # Level 2: not the specialist again, not another department's head.
    r = client.post(url, json={}, headers=world.h(world.spec))
    assert r.status_code == 403 and r.json["code"] == "wrong_approval_level"
    r = client.post(url, json={}, headers=world.h(world.other_head))
    assert r.status_code == 404
    assert state(db_session, c.id) == "first_approved"


def test_same_person_cannot_approve_both_levels(client, world, db_session):
    c, _ = world.case()
    url = f"/api/v1/hr/cases/{c.id}/approval"
    assert client.post(url, json={}, headers=world.h(world.manager)).status_code == 200
    r = client.post(url, json={}, headers=world.h(world.manager))
    assert r.status_code == 403 and r.json["code"] == "same_approver"
    assert state(db_session, c.id) == "first_approved"


def test_final_approval_countersigns(client, world, db_session):
    c, _ = world.case(signed=True)
    url = f"/api/v1/hr/cases/{c.id}/approval"
    assert client.post(url, json={}, headers=world.h(world.spec)).status_code == 200
    r = client.post(url, json={}, headers=world.h(world.head))
    assert r.status_code == 200, r.json
    assert r.json["state"] == "approved" and r.json["outcome"] == "approved"
    assert r.json["agreed_last_day"] == r.json["requested_last_day"]
    from qianli.storage import case_documents

    docs = case_documents(db_session, c.id, world.company.id, kind="letter_countersigned")
    assert len(docs) == 1
    from qianli.storage import read_document
    from signing.verify import verify_pdf

    report = verify_pdf(read_document(world.rt.store, docs[0]), trust_roots=[world.rt.pki.root])
    approvals = [s for s in report.signatures if s.kind == "signature"]
    assert report.ok and [s.field_name for s in approvals] == ["employee_signature", "company_seal"]
    assert all(s.valid and s.trusted and s.modifications_ok for s in approvals)
    assert approvals[1].pades_level == "B-LTA"
    assert entry(db_session, c.id, "letter_countersigned").payload["sha256"] == docs[0].sha256


def test_countersign_failure_records_no_approval(client, world, db_session, monkeypatch):
    from dataclasses import replace

    c, _ = world.case(signed=True)
    url = f"/api/v1/hr/cases/{c.id}/approval"
    assert client.post(url, json={}, headers=world.h(world.spec)).status_code == 200
    before = actions(db_session, c.id)
    good = world.rt.settings
    monkeypatch.setattr(world.rt, "settings", replace(good, tsa_url="http://127.0.0.1:9/tsa", tsa_timeout_s=2))
    r = client.post(url, json={}, headers=world.h(world.head))
    assert r.status_code == 503 and r.json["code"] == "countersign_failed", r.json
    assert state(db_session, c.id) == "first_approved" and actions(db_session, c.id) == before
    monkeypatch.setattr(world.rt, "settings", good)
    r = client.post(url, json={}, headers=world.h(world.head))
    assert r.status_code == 200 and r.json["state"] == "approved", r.json


def test_one_level_chain_goes_straight_to_final(client, world, db_session, factory):
    company = factory.company(approval_chain=["hr_specialist"])
    spec = factory.hr(company, "hr_specialist")
    c, _ = world.case(company=company, signed=True)
    d = client.get(f"/api/v1/hr/cases/{c.id}", headers=factory.hr_headers(spec)).json
    assert d["approval"]["chain"] == ["hr_specialist"] and "approve" in d["allowed_actions"]
    r = client.post(f"/api/v1/hr/cases/{c.id}/approval", json={}, headers=factory.hr_headers(spec))
    assert r.status_code == 200 and r.json["state"] == "approved", r.json
    assert "case_approve_final" in actions(db_session, c.id)


def test_approve_refuses_a_later_day_than_requested(client, world, db_session):
    c, _ = world.case()
    later = (c.requested_last_day + timedelta(days=1)).isoformat()
    r = client.post(f"/api/v1/hr/cases/{c.id}/approval", json={"agreed_last_day": later}, headers=world.h(world.spec))
    assert r.status_code == 422 and r.json["code"] == "agreed_last_day_after_requested"
    assert r.json["details"]["latest_allowed"] == c.requested_last_day.isoformat()
    assert state(db_session, c.id) == "submitted"


def test_earlier_day_is_a_mutual_agreement_the_employee_confirms(client, world, db_session, factory):
    c, emp = world.case()
    early = c.earliest_lawful_last_day - timedelta(days=10)
    url = f"/api/v1/hr/cases/{c.id}/approval"
    r = client.post(url, json={"agreed_last_day": early.isoformat()}, headers=world.h(world.spec))
    assert r.status_code == 200 and r.json["state"] == "first_approved", r.json
    proposal = entry(db_session, c.id, "review_last_day_proposed")
    assert proposal.payload["agreed_last_day"] == early.isoformat() and "第三十六条" in proposal.payload["legal_basis"]
    d = client.get(f"/api/v1/hr/cases/{c.id}", headers=world.h(world.head)).json
    assert d["approval"]["pending_last_day"] == early.isoformat()
    # The department head cannot finish while the employee has not agreed.
    r = client.post(url, json={}, headers=world.h(world.head))
    assert r.status_code == 409 and r.json["code"] == "agreement_pending"
    r = client.post(url, json={"agreed_last_day": early.isoformat()}, headers=world.h(world.head))
    assert r.status_code == 200 and r.json["outcome"] == "awaiting_employee_confirmation"
    assert state(db_session, c.id) == "first_approved"
    assert actions(db_session, c.id).count("review_last_day_proposed") == 1  # same day: not proposed twice

    eh = factory.employee_headers(emp)
    confirm = f"/api/v1/cases/{c.id}/agreed-last-day"
    r = client.post(confirm, json={"agreed_last_day": (early + timedelta(days=1)).isoformat()}, headers=eh)
    assert r.status_code == 409 and r.json["code"] == "agreement_changed"
    other = world.f.employee(world.company)
    r = client.post(confirm, json={"agreed_last_day": early.isoformat()}, headers=factory.employee_headers(other))
    assert r.status_code == 404
    # Accepting is a new agreement (art. 36): a click is not enough, the addendum must be signed.
    r = client.post(confirm, json={"agreed_last_day": early.isoformat()}, headers=eh)
    assert r.status_code == 409 and r.json["code"] == "agreement_signature_required", r.json
    assert "signAgreementAddendum" in r.json["details"]["operations"]
    from tests.signing_support import sign_addendum

    sign_addendum(db_session, world.rt, c, emp)
    db_session.commit()
    assert entry(db_session, c.id, "review_last_day_confirmed").actor == f"employee:{emp.id}"
    r = client.post(confirm, json={"agreed_last_day": early.isoformat()}, headers=eh)
    assert r.status_code == 409 and r.json["code"] == "no_pending_agreement"
    d = client.get(f"/api/v1/hr/cases/{c.id}", headers=world.h(world.head)).json
    assert d["approval"]["pending_last_day"] is None and d["approval"]["confirmed_last_day"] == early.isoformat()


def test_employee_may_decline_the_earlier_day(client, world, db_session, factory):
    c, emp = world.case()
    early = c.earliest_lawful_last_day - timedelta(days=3)
    client.post(f"/api/v1/hr/cases/{c.id}/approval", json={"agreed_last_day": early.isoformat()}, headers=world.h(world.spec))
    r = client.post(f"/api/v1/cases/{c.id}/agreed-last-day", json={"agreed_last_day": early.isoformat(), "accept": False},
                    headers=factory.employee_headers(emp))
    assert r.status_code == 200 and r.json["agreed_last_day"] is None
    d = client.get(f"/api/v1/hr/cases/{c.id}", headers=world.h(world.head)).json
    assert d["approval"]["pending_last_day"] is None and d["approval"]["confirmed_last_day"] is None
    assert "review_last_day_declined" in actions(db_session, c.id)


# ---- return -------------------------------------------------------------------------------------------

def test_return_requires_reason_and_sends_back(client, world, db_session, factory):
    c, emp = world.case()
    url = f"/api/v1/hr/cases/{c.id}/return"
    for body in ({}, {"reason": "   "}):
        r = client.post(url, json=body, headers=world.h(world.spec))
        assert r.status_code == 422
    assert state(db_session, c.id) == "submitted"
    r = client.post(url, json={"reason": "交接事项缺少客户资料移交"}, headers=world.h(world.spec))
    assert r.status_code == 200 and r.json["state"] == "returned", r.json
    e = entry(db_session, c.id, "case_return_for_revision")
    assert e.payload["reason"] == "交接事项缺少客户资料移交" and e.payload["from"] == "submitted"
    # The employee sees the reason in their timeline.
    mine = client.get(f"/api/v1/cases/{c.id}", headers=factory.employee_headers(emp)).json
    assert mine["state"] == "returned" and mine["timeline"][-1]["payload"]["reason"] == "交接事项缺少客户资料移交"
    r = client.post(url, json={"reason": "again"}, headers=world.h(world.spec))
    assert r.status_code == 409 and r.json["code"] == "case_not_under_review"


def test_return_resets_a_pending_agreement(client, world, db_session, factory):
    c, emp = world.case()
    early = c.earliest_lawful_last_day - timedelta(days=2)
    client.post(f"/api/v1/hr/cases/{c.id}/approval", json={"agreed_last_day": early.isoformat()}, headers=world.h(world.spec))
    assert client.post(f"/api/v1/hr/cases/{c.id}/return", json={"reason": "请补充交接"}, headers=world.h(world.head)).status_code == 200
    r = client.post(f"/api/v1/cases/{c.id}/agreed-last-day", json={"agreed_last_day": early.isoformat()},
                    headers=factory.employee_headers(emp))
    assert r.status_code == 409 and r.json["code"] == "no_pending_agreement"


# ---- withdrawal ---------------------------------------------------------------------------------------

def test_withdrawal_after_arrival_needs_hr_consent(client, world, db_session, factory):
    c, emp = world.case()
    eh = factory.employee_headers(emp)
    r = client.post(f"/api/v1/cases/{c.id}/withdrawal", json={"reason": "家里情况变了"}, headers=eh)
    assert r.status_code == 200 and r.json["withdrawal"] == "requested" and r.json["state"] == "submitted", r.json
    assert entry(db_session, c.id, "withdrawal_requested").payload["reason"] == "家里情况变了"
    alerts = client.get("/api/v1/hr/alerts", headers=world.h(world.spec)).json
    assert [a["case_id"] for a in alerts] == [c.id]
    # Asking again does not pile up requests.
    assert client.post(f"/api/v1/cases/{c.id}/withdrawal", json={}, headers=eh).json["withdrawal"] == "requested"
    assert actions(db_session, c.id).count("withdrawal_requested") == 1
    d = client.get(f"/api/v1/hr/cases/{c.id}", headers=world.h(world.spec)).json
    assert d["withdrawal_requested_at"] is not None and "consent_withdrawal" in d["allowed_actions"]

    r = client.post(f"/api/v1/hr/cases/{c.id}/withdrawal-consent", json={}, headers=world.h(world.head))
    assert r.status_code == 403
    r = client.post(f"/api/v1/hr/cases/{c.id}/withdrawal-consent", json={"comment": "同意撤回"}, headers=world.h(world.spec))
    assert r.status_code == 200 and r.json["state"] == "withdrawn", r.json
    e = entry(db_session, c.id, "case_withdraw")
    assert e.payload["employer_consent"] is True and e.payload["reason"] == "家里情况变了"
    r = client.post(f"/api/v1/cases/{c.id}/withdrawal", json={}, headers=eh)
    assert r.status_code == 409 and r.json["code"] == "case_not_open"


def test_hr_may_decline_withdrawal_and_needs_a_request(client, world, db_session, factory):
    c, emp = world.case()
    url = f"/api/v1/hr/cases/{c.id}/withdrawal-consent"
    r = client.post(url, json={}, headers=world.h(world.spec))
    assert r.status_code == 409 and r.json["code"] == "withdrawal_not_requested"
    client.post(f"/api/v1/cases/{c.id}/withdrawal", json={}, headers=factory.employee_headers(emp))
    r = client.post(url, json={"consent": False, "comment": "已进入交接"}, headers=world.h(world.spec))
    assert r.status_code == 200 and r.json["state"] == "submitted"
    assert entry(db_session, c.id, "withdrawal_declined").payload["comment"] == "已进入交接"
    assert client.post(url, json={}, headers=world.h(world.spec)).status_code == 409


def test_withdrawal_before_notice_arrived_is_free(world, db_session):
    from qianli.services.review import request_withdrawal

    c, emp = world.case(submit=False)
    case, outcome = request_withdrawal(db_session, employee_id=emp.id, company_id=world.company.id, case_id=c.id,
                                       actor=f"employee:{emp.id}", now=c.notice_arrived_at - timedelta(minutes=5))
    assert outcome == "withdrawn" and case.state == "withdrawn"
    assert entry(db_session, c.id, "case_withdraw").payload["before_notice_arrived"] is True


# ---- alerts -----------------------------------------------------------------------------------------

def test_alerts_list_and_resolve(client, world, db_session, factory):
    from qianli.services.alerts import raise_alert

    c, emp = world.case()
    a = raise_alert(db_session, company_id=world.company.id, kind="face_locked", message="人脸核验已锁定",
                    case_id=c.id, employee_id=emp.id)
    _, other_emp = world.case(department="市场部")
    b = raise_alert(db_session, company_id=world.company.id, kind="reminder_failed", message="短信发送失败",
                    employee_id=other_emp.id)
    db_session.commit()
    assert {x["id"] for x in client.get("/api/v1/hr/alerts", headers=world.h(world.spec)).json} == {a.id, b.id}
    assert [x["id"] for x in client.get("/api/v1/hr/alerts", headers=world.h(world.head)).json] == [a.id]
    r = client.post(f"/api/v1/hr/alerts/{a.id}/resolution", headers=world.h(world.head))
    assert r.status_code == 403
    r = client.post(f"/api/v1/hr/alerts/{a.id}/resolution", headers=world.h(world.spec))
    assert r.status_code == 200 and r.json["resolved_by"] == f"hr:{world.spec.id}"
    assert [x["id"] for x in client.get("/api/v1/hr/alerts", headers=world.h(world.spec)).json] == [b.id]
    db_session.expire_all()
    assert db_session.get(HrAlert, a.id).resolved_at is not None


# ---- cookie-authenticated API calls need the console's CSRF token -----------------------------------

def test_cookie_auth_post_needs_csrf(client, world, db_session):
    from api.auth import HR_COOKIE
    from api.csrf import csrf_token

    c, _ = world.case()
    token = world.h(world.spec)["Authorization"][7:]
    client.set_cookie(HR_COOKIE, token)
    assert client.get(f"/api/v1/hr/cases/{c.id}").status_code == 200
    r = client.post(f"/api/v1/hr/cases/{c.id}/approval", json={})
    assert r.status_code == 403 and r.json["code"] == "csrf_failed"
    r = client.post(f"/api/v1/hr/cases/{c.id}/approval", json={}, headers={"X-CSRF-Token": "0" * 64})
    assert r.status_code == 403
    with client.application.test_request_context():
        good = csrf_token(token)
    r = client.post(f"/api/v1/hr/cases/{c.id}/approval", json={}, headers={"X-CSRF-Token": good})
    assert r.status_code == 200 and state(db_session, c.id) == "first_approved"


def test_date_helpers():
    from cases.clock import beijing_today

    # 16:30 UTC on 2025-10-02 is already 3 October in Beijing.
    assert beijing_today(datetime(2025, 10, 2, 16, 30, tzinfo=timezone.utc)) == date(2025, 10, 3)


# ---- the employee hears about a return ------------------------------------------------------------

@pytest.fixture
def notifications(monkeypatch):
    """Record every call the review service makes into the reminders area's notify_employee (calling through)."""
    from qianli.services import review

    calls: list[tuple[str, str, dict]] = []
    real = review.notify_employee

    def recording(session, rt, case, kind, params):
        calls.append((case.id, kind, dict(params)))
        return real(session, rt, case, kind, params)

    monkeypatch.setattr(review, "notify_employee", recording)
    return calls


def test_return_and_proposals_notify_the_employee(client, world, notifications):
    c, _ = world.case()
    early = c.earliest_lawful_last_day - timedelta(days=1)
    client.post(f"/api/v1/hr/cases/{c.id}/approval", json={"agreed_last_day": early.isoformat()}, headers=world.h(world.spec))
    client.post(f"/api/v1/hr/cases/{c.id}/return", json={"reason": "请补充交接清单"}, headers=world.h(world.head))
    assert notifications == [(c.id, "agreed_last_day_proposed", {"agreed_last_day": early.isoformat()}),
                             (c.id, "case_returned", {"reason": "请补充交接清单"})]


def test_refused_return_notifies_nobody(client, world, notifications):
    c, _ = world.case()
    r = client.post(f"/api/v1/hr/cases/{c.id}/return", json={"reason": "x"}, headers=world.h(world.head))
    assert r.status_code == 403 and notifications == []
