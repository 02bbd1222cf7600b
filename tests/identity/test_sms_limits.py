"""Issue 13, SMS limits that hold: each attack over HTTP with only the attacker's powers.

- behind the TLS proxy the per-IP limit is per client, not one bucket for everybody;
- strangers cannot spend a victim's phone budget with mismatched bind requests, nor the
  budget of sign codes with bind requests at all;
- per-openid and per-employee limits besides per-IP;
- a guess with the victim's live sign code at bindEmployee is an ordinary wrong guess and counts;
- sendSmsCode and bindEmployee answer identically (status, body, timing) for an unknown employee,
  a phone mismatch and (binding) a wrong code.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import replace
from datetime import date, timedelta

import pytest

from identity.sms import DevOutboxSmsGateway
from qianli.runtime import Runtime

PHONE = "13912345678"
PROXY = "10.0.0.2"


@pytest.fixture
def company(factory):
    return factory.company(code="acme")


@pytest.fixture
def employee(factory, company):
    return factory.employee(company, employee_no="A001", phone=PHONE, name="王五")


def client_with(runtime, **overrides):
    """A test client of an app built from the same database and Redis, with other settings."""
    from api.app import create_app

    rt = Runtime(replace(runtime.settings, **overrides))
    rt.override(engine=runtime.engine, session_factory=runtime.session_factory, redis=runtime.redis)
    app = create_app(rt)
    app.testing = True
    return app.test_client()


def login(client, openid: str, **kw) -> dict[str, str]:
    r = client.post("/api/v1/wechat/session", json={"code": f"dev-{openid}"}, **kw)
    assert r.status_code == 200, r.json
    return {"Authorization": f"Bearer {r.json['access_token']}"}


def send_bind(client, headers, *, ip: str | None = None, xff: str | None = None, **kw):
    body = {"purpose": "bind", "company_code": "acme", "employee_no": "A001", "phone": PHONE, **kw}
    extra = {"environ_base": {"REMOTE_ADDR": ip}} if ip else {}
    if xff:
        headers = {**headers, "X-Forwarded-For": xff}
    return client.post("/api/v1/sms/codes", json=body, headers=headers, **extra)


def bind(client, headers, code: str, **kw):
    body = {"company_code": "acme", "employee_no": "A001", "phone": PHONE, "sms_code": code, **kw}
    return client.post("/api/v1/wechat/binding", json=body, headers=headers)


def codes_to(runtime, phone: str = PHONE) -> list[str]:
    return [m.params["code"] for m in DevOutboxSmsGateway(runtime.redis).messages(phone=phone)]


def open_case(client, factory, emp) -> str:
    last_day = (date.today() + timedelta(days=45)).isoformat()
    r = client.post("/api/v1/cases", json={"reason_category": "family", "requested_last_day": last_day},
                    headers=factory.employee_headers(emp))
    assert r.status_code == 201, r.json
    return r.json["id"]


def test_behind_the_proxy_each_client_has_its_own_ip_budget(runtime, employee):
    client = client_with(runtime, trusted_proxies=1, sms_per_ip_hour=2)
    # Two clients behind one proxy: the first spends its budget, the second is unaffected.
    for i in range(2):
        r = send_bind(client, login(client, f"oA{i}"), ip=PROXY, xff="198.51.100.7", phone=f"1390000000{i}")
        assert r.status_code == 202
    r = send_bind(client, login(client, "oA9"), ip=PROXY, xff="198.51.100.7", phone="13900000009")
    assert (r.status_code, r.json["code"]) == (429, "sms_ip_hourly_limit")
    # a forged extra hop does not help: only the hop the proxy appended counts
    r = send_bind(client, login(client, "oA8"), ip=PROXY, xff="1.2.3.4, 198.51.100.7", phone="13900000008")
    assert (r.status_code, r.json["code"]) == (429, "sms_ip_hourly_limit")
    r = send_bind(client, login(client, "oB"), ip=PROXY, xff="203.0.113.9")
    assert r.status_code == 202 and codes_to(runtime)


def test_without_trusted_proxies_a_forged_forwarded_for_is_ignored(runtime, employee):
    client = client_with(runtime, trusted_proxies=0, sms_per_ip_hour=1)
    assert send_bind(client, login(client, "oA"), ip="198.51.100.1", xff="1.1.1.1").status_code == 202
    r = send_bind(client, login(client, "oB"), ip="198.51.100.1", xff="2.2.2.2", phone="13900000001")
    assert (r.status_code, r.json["code"]) == (429, "sms_ip_hourly_limit")


def test_mismatched_bind_requests_are_charged_to_the_requester_not_the_phone(client, runtime, employee):
    # A stranger floods the victim's phone with wrong details from many WeChat accounts and addresses.
    for i in range(30):
        r = send_bind(client, login(client, f"oMallory{i}"), ip=f"203.0.113.{i}", employee_no="A999")
        assert r.status_code == 202
    assert codes_to(runtime) == []
    # The victim still gets a bind code at once, and later a sign code.
    victim = login(client, "oWang")
    assert send_bind(client, victim).status_code == 202
    [code] = codes_to(runtime)
    assert bind(client, victim, code).status_code == 200


def test_per_openid_limit_follows_the_wechat_user_across_addresses(runtime, employee):
    client = client_with(runtime, sms_per_openid_hour=3)
    mallory = login(client, "oMallory")
    for i in range(3):
        assert send_bind(client, mallory, ip=f"203.0.113.{i}", phone=f"1370000000{i}").status_code == 202
    r = send_bind(client, mallory, ip="203.0.113.99", phone="13700000009")
    assert (r.status_code, r.json["code"]) == (429, "sms_openid_hourly_limit")
    assert r.json["details"]["retry_after_s"] > 3000


def test_sign_codes_have_their_own_budget(runtime, factory, company, employee, db_session):
    client = client_with(runtime, sms_per_phone_hour=2, sms_per_phone_day=2, sms_resend_cooldown_s=0)
    # Someone who knows the victim's company, number and phone spends the phone's whole bind budget...
    for i in range(4):
        assert send_bind(client, login(client, f"oKnows{i}"), ip=f"203.0.113.{i}").status_code == 202
    assert len(codes_to(runtime)) == 2  # quietly capped: the answer did not change
    # ...and the employee can still sign: sign codes are budgeted apart.
    employee.wechat_openid = "oWang"
    db_session.commit()
    case_id = open_case(client, factory, employee)
    r = client.post("/api/v1/sms/codes", json={"purpose": "sign", "case_id": case_id},
                    headers=factory.employee_headers(employee))
    assert r.status_code == 202 and len(codes_to(runtime)) == 3


def test_per_employee_limit_on_sign_codes(runtime, factory, company, employee, db_session):
    client = client_with(runtime, sms_per_employee_hour=2, sms_resend_cooldown_s=0)
    employee.wechat_openid = "oWang"
    db_session.commit()
    case_id = open_case(client, factory, employee)
    for i in range(2):
        r = client.post("/api/v1/sms/codes", json={"purpose": "sign", "case_id": case_id},
                        headers=factory.employee_headers(employee, openid=f"oDevice{i}"),
                        environ_base={"REMOTE_ADDR": f"198.51.100.{i}"})
        assert r.status_code == 202
    r = client.post("/api/v1/sms/codes", json={"purpose": "sign", "case_id": case_id},
                    headers=factory.employee_headers(employee, openid="oDevice9"),
                    environ_base={"REMOTE_ADDR": "198.51.100.9"})
    assert (r.status_code, r.json["code"]) == (429, "sms_employee_hourly_limit")


def test_a_live_sign_code_guessed_at_binding_is_a_wrong_guess_and_counts(runtime, factory, company, employee,
                                                                         db_session):
    client = client_with(runtime, bind_failures_per_openid_hour=3)
    employee.wechat_openid = "oWang"
    db_session.commit()
    case_id = open_case(client, factory, employee)
    r = client.post("/api/v1/sms/codes", json={"purpose": "sign", "case_id": case_id},
                    headers=factory.employee_headers(employee))
    [sign_code] = codes_to(runtime)
    mallory = login(client, "oMallory")
    wrong = f"{(int(sign_code) + 1) % 10**6:06d}"
    a, b = bind(client, mallory, sign_code), bind(client, mallory, wrong)
    assert (a.status_code, a.json) == (b.status_code, b.json)
    assert a.status_code == 422 and a.json["code"] == "binding_failed"
    bind(client, mallory, wrong)
    r = bind(client, mallory, sign_code)  # the 4th try: the requester's budget is spent
    assert (r.status_code, r.json["code"]) == (429, "bind_attempts_exhausted")
    # the employee's sign code is untouched by the stranger's guesses
    r = client.post("/api/v1/sms/codes/verify", json={"purpose": "sign", "case_id": case_id, "code": sign_code},
                    headers=factory.employee_headers(employee))
    assert r.status_code == 200


def test_the_failure_budget_stops_code_guessing_even_with_the_right_code(runtime, employee):
    client = client_with(runtime, bind_failures_per_openid_hour=2)
    mallory = login(client, "oMallory")
    send_bind(client, mallory)
    [code] = codes_to(runtime)
    for guess in ("000000", "000001"):
        assert bind(client, mallory, guess if guess != code else "999999").json["code"] == "binding_failed"
    r = bind(client, mallory, code)
    assert (r.status_code, r.json["code"]) == (429, "bind_attempts_exhausted")
    assert int(r.headers["Retry-After"]) > 3000
    assert bind(client, login(client, "oWang"), code).status_code == 200  # the real owner is not locked out


def _timed(fn, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.monotonic()
        fn()
        out.append(time.monotonic() - t)
    return out


def test_send_and_bind_answer_identically_for_unknown_mismatch_and_wrong_code(runtime, factory, company,
                                                                              employee):
    floor = 0.25
    client = client_with(runtime, bind_answer_floor_s=floor, bind_failures_per_openid_hour=1000,
                         sms_per_openid_hour=1000, sms_per_openid_day=1000, sms_per_ip_hour=1000,
                         sms_per_phone_hour=1000, sms_per_phone_day=1000, sms_resend_cooldown_s=0)
    h = login(client, "oProbe")
    cases = {"match": {}, "unknown employee": {"employee_no": "Z999"}, "phone mismatch": {"phone": "13700000000"}}
    sends = {name: send_bind(client, h, **kw) for name, kw in cases.items()}
    assert {r.status_code for r in sends.values()} == {202}
    assert sends["match"].get_data() == sends["unknown employee"].get_data()
    # the body differs only by the masked phone the caller typed in
    assert {**sends["phone mismatch"].json, "phone_masked": "139****5678"} == sends["match"].json
    [real_code] = codes_to(runtime)
    wrong = f"{(int(real_code) + 1) % 10**6:06d}"
    binds = {"wrong code": {}, "unknown employee": {"employee_no": "Z999"}, "phone mismatch": {"phone": "13700000000"}}
    answers = {name: bind(client, h, wrong, **kw) for name, kw in binds.items()}
    assert len({(r.status_code, r.get_data()) for r in answers.values()}) == 1
    assert answers["wrong code"].status_code == 422 and answers["wrong code"].json["code"] == "binding_failed"
    # timing: every such answer takes the floor, whatever matched
    timings = {name: _timed(lambda kw=kw: send_bind(client, h, **kw), 5) for name, kw in cases.items()}
    timings.update({f"bind {name}": _timed(lambda kw=kw: bind(client, h, wrong, **kw), 5)
                    for name, kw in binds.items()})
    medians = {name: statistics.median(t) for name, t in timings.items()}
    assert min(min(t) for t in timings.values()) >= floor, timings
    assert max(medians.values()) - min(medians.values()) < 0.08, medians
