"""HR managers set the notice policy and calendar overrides; the notice preview honours them."""

import pytest


def test_policy_roundtrip_and_roles(client, factory):
    c = factory.company(code="pol")
    mgr, spec = factory.hr(c, "hr_manager"), factory.hr(c, "hr_specialist")
    r = client.get("/api/v1/hr/company/policy", headers=factory.hr_headers(spec))
    assert r.status_code == 200 and r.json["letter_due_working_days"] == 3
    assert r.json["approval_chain"] == ["hr_specialist", "dept_head"]
    r = client.patch("/api/v1/hr/company/policy", json={"letter_due_working_days": 5}, headers=factory.hr_headers(spec))
    assert r.status_code == 403 and r.json["code"] == "role_forbidden"
    r = client.patch("/api/v1/hr/company/policy", json={"letter_due_working_days": 5, "approval_chain": ["hr_specialist"]},
                     headers=factory.hr_headers(mgr))
    assert r.status_code == 200 and r.json["letter_due_working_days"] == 5 and r.json["approval_chain"] == ["hr_specialist"]


@pytest.mark.parametrize("body", [{"letter_due_working_days": 0}, {"approval_chain": []},
                                  {"approval_chain": ["ceo"]}, {"holidays_extend_notice": "sometimes"}, {"x": 1}])
def test_bad_policy_rejected(client, factory, body):
    c = factory.company()
    mgr = factory.hr(c, "hr_manager")
    r = client.patch("/api/v1/hr/company/policy", json=body, headers=factory.hr_headers(mgr))
    assert r.status_code == 422 and r.json["code"] == "validation_failed"


def test_override_changes_letter_due_date(client, factory):
    c = factory.company(code="ovr")
    mgr = factory.hr(c, "hr_manager")
    base = client.get("/api/v1/notice/preview?arrival_date=2026-11-20&company_code=ovr").json
    # Friday 2026-11-20: 3 working days later is Wednesday 2026-11-25.
    assert base["letter_due_date"] == "2026-11-25"
    r = client.post("/api/v1/hr/company/holiday-overrides", json={"day": "2026-11-24", "kind": "holiday", "note": "司庆日"},
                    headers=factory.hr_headers(mgr))
    assert r.status_code == 201
    after = client.get("/api/v1/notice/preview?arrival_date=2026-11-20&company_code=ovr").json
    assert after["letter_due_date"] == "2026-11-26"
    # Other companies are unaffected.
    factory.company(code="other")
    assert client.get("/api/v1/notice/preview?arrival_date=2026-11-20&company_code=other").json["letter_due_date"] == "2026-11-25"
    dup = client.post("/api/v1/hr/company/holiday-overrides", json={"day": "2026-11-24", "kind": "workday"},
                      headers=factory.hr_headers(mgr))
    assert dup.status_code == 409 and dup.json["code"] == "override_exists"
    listed = client.get("/api/v1/hr/company/holiday-overrides?year=2026", headers=factory.hr_headers(mgr)).json
    assert [o["day"] for o in listed] == ["2026-11-24"]
    assert client.delete(f"/api/v1/hr/company/holiday-overrides/{listed[0]['id']}", headers=factory.hr_headers(mgr)).status_code == 204
    assert client.get("/api/v1/notice/preview?arrival_date=2026-11-20&company_code=ovr").json["letter_due_date"] == "2026-11-25"


def test_overrides_are_company_scoped(client, factory):
    a, b = factory.company(), factory.company()
    ma, mb = factory.hr(a, "hr_manager"), factory.hr(b, "hr_manager")
    oid = client.post("/api/v1/hr/company/holiday-overrides", json={"day": "2026-12-01", "kind": "holiday"},
                      headers=factory.hr_headers(ma)).json["id"]
    assert client.get("/api/v1/hr/company/holiday-overrides", headers=factory.hr_headers(mb)).json == []
    r = client.delete(f"/api/v1/hr/company/holiday-overrides/{oid}", headers=factory.hr_headers(mb))
    assert r.status_code == 404


def test_unknown_company_code_in_preview(client):
    r = client.get("/api/v1/notice/preview?arrival_date=2026-11-20&company_code=nope")
    assert r.status_code == 404 and r.json["code"] == "company_not_found"
