"""HTTP: wechatLogin, bindEmployee, unbindEmployee, sendSmsCode, verifySmsCode and the dev outbox."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from identity.sms import DevOutboxSmsGateway
from identity.sms_codes import SmsCodePolicy, SmsCodeService, sms_code_secret
from qianli.models import Employee, EvidenceEntry, WechatBindingEvent
from qianli.runtime import Runtime

PHONE = "13912345678"


def login(client, openid: str) -> dict:
    r = client.post("/api/v1/wechat/session", json={"code": f"dev-{openid}"})
    assert r.status_code == 200, r.json
    return r.json


def bearer(body: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {body['access_token']}"}


def outbox_codes(runtime, phone: str) -> list[str]:
    return [m.params["code"] for m in DevOutboxSmsGateway(runtime.redis).messages(phone=phone)]


@pytest.fixture
def company(factory):
    return factory.company(code="acme")


@pytest.fixture
def employee(factory, company):
    return factory.employee(company, employee_no="A001", phone=PHONE, name="王五")


def bind_body(code: str, **kw) -> dict:
    return {"company_code": "acme", "employee_no": "A001", "phone": PHONE, "sms_code": code, **kw}


def send_bind(client, headers, **kw):
    body = {"purpose": "bind", "company_code": "acme", "employee_no": "A001", "phone": PHONE, **kw}
    return client.post("/api/v1/sms/codes", json=body, headers=headers)


def test_first_login_binds_then_logs_in_as_employee(client, runtime, employee, db_session):
    pending = login(client, "oWang")
    assert pending["bound"] is False and pending["employee"] is None and "refresh_token" not in pending
    assert client.get("/api/v1/cases", headers=bearer(pending)).json["code"] == "employee_only"
    r = send_bind(client, bearer(pending), phone="+86 139 1234 5678")
    assert r.status_code == 202 and r.json == {"purpose": "bind", "phone_masked": "139****5678",
                                               "expires_in_s": 300, "resend_after_s": 60}
    [code] = outbox_codes(runtime, PHONE)
    r = client.post("/api/v1/wechat/binding", json=bind_body(code), headers=bearer(pending))
    assert r.status_code == 200, r.json
    assert r.json["employee"]["employee_no"] == "A001" and r.json["refresh_token"]
    assert client.get("/api/v1/cases", headers=bearer(r.json)).status_code == 200
    db_session.expire_all()
    assert db_session.get(Employee, employee.id).wechat_openid == "oWang"
    [event] = db_session.scalars(select(WechatBindingEvent)).all()
    assert (event.action, event.openid, event.employee_id, event.actor) == ("bind", "oWang", employee.id,
                                                                           "wechat:oWang")
    again = login(client, "oWang")
    assert again["bound"] is True and again["employee"]["id"] == employee.id


def test_wrong_details_get_the_same_answer_and_no_sms(client, runtime, employee, db_session):
    pending = login(client, "oMallory")
    for wrong in ({"phone": "13900000000"}, {"employee_no": "A999"}, {"company_code": "other"}):
        r = send_bind(client, bearer(pending), **wrong)
        assert r.status_code == 202 and set(r.json) == {"purpose", "phone_masked", "expires_in_s", "resend_after_s"}
        # the resend cooldown applies exactly as for a real send, so it reveals nothing either
        r = send_bind(client, bearer(pending), **wrong)
        assert (r.status_code, r.json["code"]) == (429, "sms_resend_cooldown")
        runtime.redis.delete(*runtime.redis.keys("qianli:sms:last:*"))
    assert DevOutboxSmsGateway(runtime.redis).messages() == []
    r = client.post("/api/v1/wechat/binding", json=bind_body("123456", phone="13900000000"), headers=bearer(pending))
    assert (r.status_code, r.json["code"]) == (422, "binding_failed")
    assert db_session.scalars(select(WechatBindingEvent)).all() == []


def test_bad_code_reuse_and_already_bound(client, runtime, factory, company, employee, db_session):
    pending = login(client, "oWang")
    send_bind(client, bearer(pending))
    [code] = outbox_codes(runtime, PHONE)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    r = client.post("/api/v1/wechat/binding", json=bind_body(wrong), headers=bearer(pending))
    assert (r.status_code, r.json["code"]) == (422, "binding_failed") and "details" not in r.json
    assert client.post("/api/v1/wechat/binding", json=bind_body(code), headers=bearer(pending)).status_code == 200
    r = client.post("/api/v1/wechat/binding", json=bind_body(code), headers=bearer(pending))
    assert (r.status_code, r.json["code"]) == (422, "binding_failed")  # used: the same answer
    # another WeChat user with a fresh code cannot take over the bound employee
    intruder = login(client, "oIntruder")
    runtime.redis.delete(*runtime.redis.keys("qianli:sms:last:*"))  # skip the resend cooldown
    send_bind(client, bearer(intruder))
    code2 = outbox_codes(runtime, PHONE)[0]
    r = client.post("/api/v1/wechat/binding", json=bind_body(code2), headers=bearer(intruder))
    assert (r.status_code, r.json["code"]) == (409, "employee_already_bound")
    # one openid per employee per company
    factory.employee(company, employee_no="A002", phone="13700000002")
    runtime.redis.delete(*runtime.redis.keys("qianli:sms:last:*"))
    send_bind(client, bearer(pending), employee_no="A002", phone="13700000002")
    code3 = outbox_codes(runtime, "13700000002")[0]
    r = client.post("/api/v1/wechat/binding", json=bind_body(code3, employee_no="A002", phone="13700000002"),
                    headers=bearer(pending))
    assert (r.status_code, r.json["code"]) == (409, "wechat_already_bound")


def test_bad_wechat_codes(client):
    r = client.post("/api/v1/wechat/session", json={"code": "not-dev"})
    assert (r.status_code, r.json["code"]) == (422, "wechat_code_invalid")
    assert client.post("/api/v1/wechat/session", json={"code": ""}).status_code == 422
    assert client.post("/api/v1/wechat/session", json={"code": "dev-x", "extra": 1}).status_code == 422
    r = client.post("/api/v1/wechat/session", data="code=dev-x", content_type="text/plain")
    assert r.status_code == 415


def _open_case(client, emp, factory) -> str:
    last_day = (date.today() + timedelta(days=45)).isoformat()
    r = client.post("/api/v1/cases", json={"reason_category": "family", "requested_last_day": last_day},
                    headers=factory.employee_headers(emp))
    assert r.status_code == 201, r.json
    return r.json["id"]


def test_sign_code_flow_records_evidence_without_the_code(client, runtime, factory, company, employee, db_session):
    employee.wechat_openid = "oWang"
    db_session.commit()
    case_id = _open_case(client, employee, factory)
    h = {**factory.employee_headers(employee), "User-Agent": "MicroMessenger/8.0.50 miniProgram"}
    r = client.post("/api/v1/sms/codes", json={"purpose": "sign", "case_id": case_id}, headers=h)
    assert r.status_code == 202 and r.json["phone_masked"] == "139****5678"
    [code] = outbox_codes(runtime, PHONE)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    verify = {"purpose": "sign", "case_id": case_id}
    r = client.post("/api/v1/sms/codes/verify", json={**verify, "code": wrong}, headers=h)
    assert (r.status_code, r.json["code"]) == (422, "sms_code_invalid")
    r = client.post("/api/v1/sms/codes/verify", json={**verify, "code": code}, headers=h)
    assert r.status_code == 200 and r.json == {"purpose": "sign", "verified": True}
    r = client.post("/api/v1/sms/codes/verify", json={**verify, "code": code}, headers=h)
    assert (r.status_code, r.json["code"]) == (422, "sms_code_used")
    entries = db_session.scalars(select(EvidenceEntry).where(EvidenceEntry.case_id == case_id)
                                 .order_by(EvidenceEntry.seq)).all()
    sms = [e for e in entries if e.action.startswith("sms_code_")]
    assert [e.action for e in sms] == ["sms_code_sent", "sms_code_verified"]
    assert sms[1].payload["user_agent"].startswith("MicroMessenger") and sms[1].payload["openid"] == "oWang"
    for e in entries:
        assert code not in str(e.payload) and PHONE not in str(e.payload)


def test_sign_code_for_another_employees_case_or_unbound_user(client, runtime, factory, company, employee):
    case_id = _open_case(client, employee, factory)
    other = factory.employee(company, employee_no="B001", phone="13600000001")
    r = client.post("/api/v1/sms/codes", json={"purpose": "sign", "case_id": case_id},
                    headers=factory.employee_headers(other))
    assert (r.status_code, r.json["code"]) == (404, "case_not_found")
    r = client.post("/api/v1/sms/codes", json={"purpose": "sign", "case_id": case_id},
                    headers=bearer(login(client, "oNobody")))
    assert (r.status_code, r.json["code"]) == (403, "employee_only")
    r = client.post("/api/v1/sms/codes", json={"purpose": "sign"}, headers=factory.employee_headers(employee))
    assert r.status_code == 422 and "case_id" in str(r.json["errors"])
    assert outbox_codes(runtime, "13600000001") == [] and outbox_codes(runtime, PHONE) == []


def test_hr_unbind_ends_sessions_and_is_evidence(client, runtime, factory, company, employee, db_session):
    pending = login(client, "oWang")
    send_bind(client, bearer(pending))
    bound = client.post("/api/v1/wechat/binding", json=bind_body(outbox_codes(runtime, PHONE)[0]),
                        headers=bearer(pending)).json
    case_id = _open_case(client, employee, factory)
    hr = factory.hr(company)
    url = f"/api/v1/hr/employees/{employee.id}/wechat-binding"
    r = client.delete(url, json={"reason": "员工更换微信号"}, headers=factory.hr_headers(hr))
    assert r.status_code == 200 and r.json["action"] == "unbind"
    r = client.post("/api/v1/auth/refresh", json={"refresh_token": bound["refresh_token"]})
    assert r.status_code == 401
    assert login(client, "oWang")["bound"] is False
    entry = db_session.scalars(select(EvidenceEntry).where(EvidenceEntry.case_id == case_id,
                                                           EvidenceEntry.action == "wechat_unbind")).one()
    assert entry.payload["openid"] == "oWang" and entry.payload["reason"] == "员工更换微信号"
    assert client.delete(url, json={"reason": "x"}, headers=factory.hr_headers(hr)).json["code"] == "employee_not_bound"
    other_company_hr = factory.hr(factory.company(code="other"))
    r = client.delete(url, json={"reason": "x"}, headers=factory.hr_headers(other_company_hr))
    assert r.status_code == 404
    r = client.delete(url, json={"reason": "x"}, headers=factory.hr_headers(factory.hr(company, "auditor")))
    assert r.status_code == 403


def test_per_ip_limit_over_http(client, runtime, employee):
    runtime.override(sms_codes=SmsCodeService(
        runtime.redis, DevOutboxSmsGateway(runtime.redis), sms_code_secret(runtime.settings),
        SmsCodePolicy(per_ip_hour=2)))
    pending = bearer(login(client, "oWang"))
    for phone in ("13900000001", "13900000002"):
        assert send_bind(client, pending, phone=phone).status_code == 202
    r = client.post("/api/v1/sms/codes", json={"purpose": "bind", "company_code": "acme", "employee_no": "A001",
                                               "phone": PHONE}, headers=pending)
    assert (r.status_code, r.json["code"]) == (429, "sms_ip_hourly_limit") and int(r.headers["Retry-After"]) > 3000
    r = client.post("/api/v1/sms/codes", json={"purpose": "bind", "company_code": "acme", "employee_no": "A001",
                                               "phone": PHONE}, headers=pending, environ_base={"REMOTE_ADDR": "10.9.9.9"})
    assert r.status_code == 202 and outbox_codes(runtime, PHONE)


def test_dev_outbox_endpoint_exists_only_in_development(client, runtime, employee, redis_client, monkeypatch):
    pending = bearer(login(client, "oWang"))
    send_bind(client, pending)
    r = client.get(f"/api/v1/dev/outbox?phone={PHONE}")
    assert r.status_code == 200 and r.json["development_only"] is True
    assert r.json["messages"][0]["params"]["code"] == outbox_codes(runtime, PHONE)[0]
    assert client.get("/api/v1/dev/outbox?limit=0").status_code == 422
    assert "/api/v1/dev/outbox" not in client.get("/openapi.json").json["paths"]

    from api.app import create_app

    # The tests' database role owns the tables: production's role check (tests/core/test_pg_roles.py) is skipped here.
    monkeypatch.setattr("qianli.migrate.check_app_role", lambda engine: None)
    prod = Runtime(replace(runtime.settings, env="production"))
    prod.override(engine=runtime.engine, session_factory=runtime.session_factory, redis=redis_client)
    prod_client = create_app(prod).test_client()
    assert prod_client.get("/api/v1/dev/outbox").status_code == 404


def test_qianli_outbox_command(runtime, employee, client):
    from click.testing import CliRunner

    from qianli.cli import cli

    send_bind(client, bearer(login(client, "oWang")))
    code = outbox_codes(runtime, PHONE)[0]
    result = CliRunner().invoke(cli, ["outbox", "--phone", PHONE])
    assert result.exit_code == 0, result.output
    assert PHONE in result.output and f"code={code}" in result.output


@pytest.mark.parametrize("remote", ["203.0.113.7", "10.0.0.8", "::ffff:198.51.100.2"])
def test_development_backends_answer_loopback_clients_only(client, runtime, employee, remote):
    """A development instance reachable from elsewhere must not hand out 'dev-<openid>' logins or SMS codes."""
    far = {"REMOTE_ADDR": remote}
    r = client.post("/api/v1/wechat/session", json={"code": "dev-oVictim"}, environ_base=far)
    assert (r.status_code, r.json["code"]) == (403, "dev_backend_loopback_only") and "access_token" not in r.json
    send_bind(client, bearer(login(client, "oWang")))  # a code is in the outbox
    r = client.get(f"/api/v1/dev/outbox?phone={PHONE}", environ_base=far)
    assert (r.status_code, r.json["code"]) == (403, "dev_backend_loopback_only") and "messages" not in r.json
    r = client.post("/pki/tsa", data=b"x", content_type="application/timestamp-query", environ_base=far)
    assert (r.status_code, r.json["code"]) == (403, "dev_backend_loopback_only")
    # the same requests from this machine (IPv4 and IPv6 loopback) are served
    for local in ("127.0.0.1", "::1"):
        assert client.post("/api/v1/wechat/session", json={"code": "dev-oWang"},
                           environ_base={"REMOTE_ADDR": local}).status_code == 200
        assert client.get(f"/api/v1/dev/outbox?phone={PHONE}", environ_base={"REMOTE_ADDR": local}).status_code == 200
