"""The API's conventions: error model, content types, size limit, health, auth, tenancy."""

from datetime import timedelta

import pytest

from qianli.db import utcnow
from qianli.models import EvidenceEntry, ResignationCase
from qianli.services.auth import Principal, issue_access_token


def count(db_session, model):
    return db_session.query(model).count()


def test_healthz_ok(client):
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json["database"] == "ok" and r.json["redis"] == "ok"


def test_healthz_503_when_redis_down(client, runtime):
    import redis

    runtime.override(redis=redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2))
    r = client.get("/healthz")
    assert r.status_code == 503 and r.json["redis"].startswith("down") and r.json["database"] == "ok"


def test_openapi_and_docs_served(client):
    spec = client.get("/openapi.json").json
    ops = {op["operationId"] for ops in spec["paths"].values() for op in ops.values() if isinstance(op, dict) and "operationId" in op}
    assert "previewNoticePeriod" in ops
    docs = client.get("/docs")
    assert docs.status_code == 200 and b"swagger" in docs.data.lower()
    with client.get("/docs-static/swagger-ui-bundle.js") as js:
        assert js.status_code == 200 and len(js.data) > 100_000


def test_preview_notice_period(client):
    r = client.get("/api/v1/notice/preview?arrival_date=2026-10-02&probation=false")
    assert r.status_code == 200, r.json
    body = r.json
    assert body["earliest_last_day"] == "2026-11-01"
    assert body["provisional"] is False
    # Letter due 3 working days after arrival during the National Day holiday 2026.
    assert body["letter_due_date"] > "2026-10-08"


@pytest.mark.parametrize("query,field", [("arrival_date=2026-13-01", "arrival_date"), ("arrival_date=yesterday", "arrival_date"),
                                         ("arrival_date=2026-10-02&probation=perhaps", "probation"),
                                         ("arrival_date=2026-10-02&colour=red", "colour"), ("", "arrival_date")])
def test_bad_query_is_422_with_field_errors(client, query, field):
    r = client.get(f"/api/v1/notice/preview?{query}")
    assert r.status_code == 422
    assert r.json["code"] == "validation_failed" and r.json["status"] == 422
    assert field in r.json["errors"]["query"]


def test_unknown_route_has_error_shape(client):
    r = client.get("/api/v1/nothing-here")
    assert r.status_code == 404 and r.json["code"] == "not_found" and "message" in r.json


def test_auth_required_and_bad_token(client):
    r = client.get("/api/v1/cases")
    assert r.status_code == 401 and r.json["code"] == "auth_required"
    r = client.get("/api/v1/cases", headers={"Authorization": "Bearer not-a-jwt"})
    assert r.status_code == 401 and r.json["code"] == "token_invalid"


def test_expired_token(client, factory, runtime):
    c = factory.company()
    e = factory.employee(c)
    token, _ = issue_access_token(runtime.settings, Principal("employee", e.id, c.id, "o"), ttl_s=-10)
    r = client.get("/api/v1/cases", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401 and r.json["code"] == "token_expired"


def form(**kw):
    body = {"reason_category": "career_development", "reason_text": "个人职业发展", "requested_last_day": "2026-12-31",
            "handover_items": [{"item": "代码仓库权限", "owner": "李四"}]}
    body.update(kw)
    return body


def test_submit_resignation_creates_case_and_evidence(client, factory, db_session):
    c = factory.company()
    e = factory.employee(c)
    r = client.post("/api/v1/cases", json=form(), headers=factory.employee_headers(e))
    assert r.status_code == 201, r.json
    case = db_session.get(ResignationCase, r.json["id"])
    assert case.state == "awaiting_letter" and case.source == "miniprogram"
    detail = client.get(f"/api/v1/cases/{case.id}", headers=factory.employee_headers(e)).json
    assert [t["action"] for t in detail["timeline"]][0] == "case_opened"
    assert detail["timeline"][0]["payload"]["reason_text"] == "个人职业发展"


def test_second_open_case_conflicts_and_writes_nothing(client, factory, db_session):
    c = factory.company()
    e = factory.employee(c)
    h = factory.employee_headers(e)
    assert client.post("/api/v1/cases", json=form(), headers=h).status_code == 201
    before = (count(db_session, ResignationCase), count(db_session, EvidenceEntry))
    r = client.post("/api/v1/cases", json=form(), headers=h)
    assert r.status_code == 409 and r.json["code"] == "case_already_open"
    assert (count(db_session, ResignationCase), count(db_session, EvidenceEntry)) == before


@pytest.mark.parametrize("body,code,status", [
    (form(reason_category="bored"), "validation_failed", 422),
    (form(requested_last_day="31/12/2026"), "validation_failed", 422),
    (form(unexpected="x"), "validation_failed", 422),
    (form(handover_items=[{"item": ""}]), "validation_failed", 422),
    (form(requested_last_day="2020-01-01"), "last_day_not_after_arrival", 422),
    (form(reason_text="很" * 5000), "validation_failed", 422),
])
def test_bad_forms_rejected_and_nothing_written(client, factory, db_session, body, code, status):
    c = factory.company()
    e = factory.employee(c)
    before = (count(db_session, ResignationCase), count(db_session, EvidenceEntry))
    r = client.post("/api/v1/cases", json=body, headers=factory.employee_headers(e))
    assert (r.status_code, r.json["code"]) == (status, code), r.json
    assert (count(db_session, ResignationCase), count(db_session, EvidenceEntry)) == before


def test_wrong_content_type_is_415(client, factory):
    c = factory.company()
    e = factory.employee(c)
    r = client.post("/api/v1/cases", data="reason=x", content_type="text/plain", headers=factory.employee_headers(e))
    assert r.status_code == 415 and r.json["code"] == "unsupported_media_type"


def test_malformed_json_is_400(client, factory):
    c = factory.company()
    e = factory.employee(c)
    r = client.post("/api/v1/cases", data="{not json", content_type="application/json", headers=factory.employee_headers(e))
    assert r.status_code == 400 and r.json["code"] == "malformed_json"


def test_nul_characters_are_refused_everywhere_before_the_database(client, factory, db_session):
    # PostgreSQL text cannot hold U+0000: found by the schemathesis run as a 500 on listCases.
    c = factory.company()
    e = factory.employee(c)
    hr = factory.hr(c, "hr_manager")
    requests = [
        ("query", lambda: client.get("/api/v1/hr/cases?q=%E5%BC%A0%00", headers=factory.hr_headers(hr))),
        ("path", lambda: client.get("/api/v1/hr/cases/abc%00def", headers=factory.hr_headers(hr))),
        ("json", lambda: client.post("/api/v1/cases", json={"reason_category": "other", "reason_text": "a\u0000b"},
                                     headers=factory.employee_headers(e))),
    ]
    for where, call in requests:
        r = call()
        assert r.status_code == 422 and r.json["code"] == "nul_character", (where, r.status_code, r.data[:200])
        assert r.json["details"] == {"location": where}
    # The HR console's login form: the same refusal, as the console's HTML error page.
    r = client.post("/hr/login", data={"company_code": c.code, "username": "x\x00", "password": "p"})
    assert r.status_code == 422 and r.mimetype == "text/html" and "空字符" in r.get_data(as_text=True)
    assert count(db_session, ResignationCase) == 0
    assert client.get("/api/v1/hr/cases?q=%E5%BC%A0", headers=factory.hr_headers(hr)).status_code == 200


def test_oversized_body_is_413(client, factory, runtime):
    c = factory.company()
    e = factory.employee(c)
    big = b"{" + b" " * (runtime.settings.max_request_bytes + 10) + b"}"
    r = client.post("/api/v1/cases", data=big, content_type="application/json", headers=factory.employee_headers(e))
    assert r.status_code == 413 and r.json["code"] == "payload_too_large"


def test_other_employee_and_other_company_cases_are_404(client, factory):
    c1, c2 = factory.company(), factory.company()
    a, b = factory.employee(c1), factory.employee(c1)
    x = factory.employee(c2)
    case_id = client.post("/api/v1/cases", json=form(), headers=factory.employee_headers(a)).json["id"]
    for who in (b, x):
        r = client.get(f"/api/v1/cases/{case_id}", headers=factory.employee_headers(who))
        assert r.status_code == 404 and r.json["code"] == "case_not_found"
        r = client.put(f"/api/v1/cases/{case_id}", json=form(), headers=factory.employee_headers(who))
        assert r.status_code == 404


def test_hr_token_cannot_use_employee_operations(client, factory):
    c = factory.company()
    hr = factory.hr(c)
    r = client.get("/api/v1/cases", headers=factory.hr_headers(hr))
    assert r.status_code == 403 and r.json["code"] == "employee_only"


def test_hr_login(client, factory):
    c = factory.company(code="acme")
    factory.hr(c, username="li", password="correct horse battery")
    ok = client.post("/api/v1/hr/session", json={"company_code": "acme", "username": "li", "password": "correct horse battery"})
    assert ok.status_code == 200 and ok.json["role"] == "hr_specialist" and ok.json["token_type"] == "Bearer"
    for body in ({"company_code": "acme", "username": "li", "password": "wrong"},
                 {"company_code": "other", "username": "li", "password": "correct horse battery"},
                 {"company_code": "acme", "username": "nobody", "password": "x"}):
        r = client.post("/api/v1/hr/session", json=body)
        assert r.status_code == 401 and r.json["code"] == "login_failed"


def test_refresh_rotation_and_reuse_detection(client, factory, db_session, runtime):
    from qianli.services.auth import issue_employee_session

    c = factory.company()
    e = factory.employee(c)
    pair = issue_employee_session(db_session, runtime.settings, e, openid="o1")
    db_session.commit()
    r1 = client.post("/api/v1/auth/refresh", json={"refresh_token": pair.refresh_token})
    assert r1.status_code == 200 and r1.json["refresh_token"] != pair.refresh_token
    # The spent token again: refused, and the whole family (including the new token) is revoked.
    r2 = client.post("/api/v1/auth/refresh", json={"refresh_token": pair.refresh_token})
    assert r2.status_code == 401 and r2.json["code"] == "refresh_token_reused"
    r3 = client.post("/api/v1/auth/refresh", json={"refresh_token": r1.json["refresh_token"]})
    assert r3.status_code == 401


def test_notice_in_future_refused(db_session, factory, runtime):
    from cases.errors import InvalidInput
    from qianli.services.cases import open_case

    c = factory.company()
    e = factory.employee(c)
    with pytest.raises(InvalidInput):
        open_case(db_session, runtime.settings, employee=e, source="instant_message",
                  notice_arrived_at=utcnow() + timedelta(days=1), actor="hr:x")


@pytest.mark.parametrize("arrival,after", [("2026-12-29", "2027-01-01"), ("2027-02-03", "2027-02-08"),
                                           ("2027-09-29", "2027-10-03")])
def test_preview_unpublished_year_from_the_law(client, arrival, after):
    """Issue 14's examples: no company override, 2027 unpublished: statutory days are never working days."""
    body = client.get(f"/api/v1/notice/preview?arrival_date={arrival}").json
    assert body["letter_due_date"] > after and body["letter_due_date"] != "2027-01-01"
    assert body["provisional"] is True and body["pending_years"] == [2027] and "暂定" in body["explanation"]


def test_preview_outside_the_law_range_is_a_provisional_weekday_guess(client):
    """Before 2008 (other versions of the 放假办法) and after 2099 nothing is bundled or computed: the
    answer is a Monday-Friday guess, provisional, and says why."""
    for day, due in (("1999-01-04", "1999-01-07"), ("2100-03-01", "2100-03-04")):
        body = client.get(f"/api/v1/notice/preview?arrival_date={day}").json
        assert body["provisional"] is True and body["letter_due_date"] == due, body
        assert "超出按法律推算法定节假日的范围" in body["explanation"]
    far = client.get("/api/v1/notice/preview?arrival_date=9999-12-31")  # refused by the input bounds
    assert far.status_code == 422 and far.json["code"] == "validation_failed"
