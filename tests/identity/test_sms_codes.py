"""SMS codes against a real Redis: single use, expiry, replacement, cooldown, limits, concurrency."""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from cases.errors import DomainError, InvalidInput, RateLimited, ServiceUnavailable
from identity.sms import OUTBOX_REDIS_KEY, DevOutboxSmsGateway, TencentSmsGateway
from identity.sms_codes import SmsCodePolicy, SmsCodeService, sms_code_service_from_settings
from tests.identity.wire_servers import TencentSmsWireServer

PHONE = "13800138000"
SECRET = b"test-secret-for-sms-code-macs-32b"


class Clock:
    """A settable clock so hour/day windows are tested without sleeping."""

    def __init__(self) -> None:
        self.now = time.time()
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def outbox(redis_client, tmp_path) -> DevOutboxSmsGateway:
    return DevOutboxSmsGateway(redis_client, tmp_path / "outbox.jsonl")


def make_service(redis_client, outbox, clock, **policy) -> SmsCodeService:
    return SmsCodeService(redis_client, outbox, SECRET, SmsCodePolicy(**policy), clock=clock)


@pytest.fixture
def svc(redis_client, outbox, clock) -> SmsCodeService:
    return make_service(redis_client, outbox, clock)


def last_code(outbox: DevOutboxSmsGateway, phone: str = PHONE) -> str:
    return outbox.messages(phone=phone, limit=1)[0].params["code"]


def error_code(fn, *args, **kwargs) -> str:
    with pytest.raises(DomainError) as exc:
        fn(*args, **kwargs)
    return exc.value.code


def test_code_is_six_digits_single_use_and_phone_forms_are_one(svc, outbox, tmp_path):
    sent = svc.send("+86 138-0013-8000", "bind", ip="10.0.0.1")
    assert (sent.phone_masked, sent.purpose, sent.expires_in_s, sent.provider) == ("138****8000", "bind", 300, "dev")
    code = last_code(outbox)
    assert len(code) == 6 and code.isdigit()
    assert code in (tmp_path / "outbox.jsonl").read_text()
    ok = svc.verify("008613800138000", "bind", code)
    assert ok.purpose == "bind" and ok.phone_masked == "138****8000"
    assert error_code(svc.verify, PHONE, "bind", code) == "sms_code_used"


def test_codes_are_random(svc, outbox, clock):
    codes = set()
    for i in range(8):
        svc.send(f"1390000000{i}", "bind")
        codes.add(last_code(outbox, f"1390000000{i}"))
    assert len(codes) >= 7  # 8 draws from 10^6 collide with probability ~3e-5


def test_redis_holds_no_code_and_no_phone(svc, outbox, redis_client):
    svc.send(PHONE, "sign", ip="10.0.0.9")
    code = last_code(outbox)
    for key in redis_client.keys("*"):
        if key.decode() == OUTBOX_REDIS_KEY:
            continue
        assert PHONE.encode() not in key
        kind = redis_client.type(key).decode()
        if kind == "hash":
            dump = b"".join(k + v for k, v in redis_client.hgetall(key).items())
        elif kind == "string":
            dump = redis_client.get(key)
        else:
            assert kind == "zset", kind
            dump = b"".join(redis_client.zrange(key, 0, -1))
        assert code.encode() not in dump and PHONE.encode() not in dump


def test_expired_code_is_refused(svc, outbox, clock):
    svc.send(PHONE, "bind")
    code = last_code(outbox)
    clock.advance(299.5)
    assert error_code(svc.verify, PHONE, "bind", f"{(int(code) + 1) % 10**6:06d}") == "sms_code_invalid"
    clock.advance(1)
    assert error_code(svc.verify, PHONE, "bind", code) == "sms_code_expired"


def test_new_code_replaces_old_after_cooldown(svc, outbox, clock):
    svc.send(PHONE, "bind")
    old = last_code(outbox)
    with pytest.raises(RateLimited) as exc:
        svc.send(PHONE, "bind")
    assert exc.value.code == "sms_resend_cooldown" and 59 <= exc.value.details["retry_after_s"] <= 60
    svc.send(PHONE, "sign")  # the cooldown is per purpose: binding then signing needs no wait
    assert error_code(svc.send, PHONE, "sign") == "sms_resend_cooldown"
    clock.advance(60)
    svc.send(PHONE, "bind")
    new = last_code(outbox)
    if new != old:  # equal with probability 1e-6; then the old code *is* the new one
        assert error_code(svc.verify, PHONE, "bind", old) == "sms_code_invalid"
    assert svc.verify(PHONE, "bind", new).purpose == "bind"


def test_five_wrong_tries_kill_the_code(svc, outbox):
    svc.send(PHONE, "sign")
    code = last_code(outbox)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    left = []
    for _ in range(4):
        with pytest.raises(InvalidInput) as exc:
            svc.verify(PHONE, "sign", wrong)
        assert exc.value.code == "sms_code_invalid"
        left.append(exc.value.details["attempts_left"])
    assert left == [4, 3, 2, 1]
    assert error_code(svc.verify, PHONE, "sign", wrong) == "sms_code_attempts_exhausted"
    assert error_code(svc.verify, PHONE, "sign", code) == "sms_code_attempts_exhausted"


def test_wrong_purpose_missing_and_malformed(svc, outbox):
    svc.send(PHONE, "bind")
    code = last_code(outbox)
    # only the code of the asked purpose is ever compared: the bind code is no sign code
    assert error_code(svc.verify, PHONE, "sign", code) == "sms_code_not_found"
    assert error_code(svc.verify, "13900000000", "bind", code) == "sms_code_not_found"
    assert error_code(svc.verify, PHONE, "bind", "12345") == "sms_code_malformed"
    assert error_code(svc.verify, PHONE, "bind", "12345a") == "sms_code_malformed"
    assert error_code(svc.send, "12345", "bind") == "phone_invalid"
    assert error_code(svc.send, PHONE, "login") == "sms_purpose_invalid"
    # none of the refusals spent the code
    assert svc.verify(PHONE, "bind", code).purpose == "bind"


def test_per_phone_hourly_and_daily_limits(redis_client, outbox, clock):
    svc = make_service(redis_client, outbox, clock, resend_cooldown_s=1, per_phone_hour=3, per_phone_day=5)
    for _ in range(3):
        svc.send(PHONE, "bind")
        clock.advance(2)
    with pytest.raises(RateLimited) as exc:
        svc.send(PHONE, "bind")
    assert exc.value.code == "sms_phone_hourly_limit"
    assert 3600 - 6 <= exc.value.details["retry_after_s"] <= 3600
    clock.advance(3600)
    for _ in range(2):
        svc.send(PHONE, "bind")
        clock.advance(2)
    assert error_code(svc.send, PHONE, "bind") == "sms_phone_daily_limit"
    svc.send(PHONE, "sign")  # sign codes have a budget of their own
    clock.advance(86400 - 3600)
    svc.send(PHONE, "bind")


def test_per_ip_hourly_limit(redis_client, outbox, clock):
    svc = make_service(redis_client, outbox, clock, per_ip_hour=3)
    for i in range(3):
        svc.send(f"1370000000{i}", "bind", ip="203.0.113.7")
    assert error_code(svc.send, "13700000009", "bind", ip="203.0.113.7") == "sms_ip_hourly_limit"
    svc.send("13700000009", "bind", ip="203.0.113.8")  # another IP is not affected
    clock.advance(3601)
    svc.send("13700000008", "bind", ip="203.0.113.7")


def test_concurrent_verifications_succeed_exactly_once(svc, outbox):
    svc.send(PHONE, "sign")
    code = last_code(outbox)
    barrier = threading.Barrier(12)

    def attempt(_: int) -> str:
        barrier.wait()
        try:
            svc.verify(PHONE, "sign", code)
            return "ok"
        except DomainError as exc:
            return exc.code

    with ThreadPoolExecutor(12) as pool:
        results = list(pool.map(attempt, range(12)))
    assert results.count("ok") == 1
    assert set(results) == {"ok", "sms_code_used"}


def test_concurrent_wrong_tries_are_all_counted(svc, outbox):
    svc.send(PHONE, "sign")
    code = last_code(outbox)
    wrong = f"{(int(code) + 7) % 10**6:06d}"
    barrier = threading.Barrier(16)

    def attempt(_: int) -> str:
        barrier.wait()
        try:
            svc.verify(PHONE, "sign", wrong)
            return "ok"
        except DomainError as exc:
            return exc.code

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(attempt, range(16)))
    assert results.count("sms_code_invalid") == 4
    assert results.count("sms_code_attempts_exhausted") == 12


def test_concurrent_sends_issue_one_code(svc, outbox):
    barrier = threading.Barrier(10)

    def attempt(_: int) -> str:
        barrier.wait()
        try:
            svc.send(PHONE, "bind", ip="10.1.1.1")
            return "ok"
        except DomainError as exc:
            return exc.code

    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(attempt, range(10)))
    assert results.count("ok") == 1 and results.count("sms_resend_cooldown") == 9
    assert len(outbox.messages(phone=PHONE)) == 1


def test_gateway_failure_leaves_no_code_but_counts(redis_client, clock):
    with TencentSmsWireServer() as server:
        server.api_error = ("FailedOperation.InsufficientBalanceInSmsPackage", "no balance")
        gateway = TencentSmsGateway(secret_id="AKIDtest", secret_key="k", sdk_app_id="1400000000",
                                    sign_name="签离", templates={"code": "100001"}, endpoint=server.host,
                                    protocol="http")
        svc = SmsCodeService(redis_client, gateway, SECRET, SmsCodePolicy(per_phone_hour=2), clock=clock)
        for _ in range(2):
            with pytest.raises(ServiceUnavailable) as exc:
                svc.send(PHONE, "bind")
            assert exc.value.code == "sms_gateway_error"  # no cooldown: retry allowed at once
        assert error_code(svc.send, PHONE, "bind") == "sms_phone_hourly_limit"
        sent_code = server.requests[0]["body"]["TemplateParamSet"][0]
    assert error_code(svc.verify, PHONE, "bind", sent_code) == "sms_code_not_found"


def test_the_code_never_reaches_the_log(svc, outbox, caplog):
    caplog.set_level(logging.DEBUG)
    svc.send(PHONE, "sign", ip="10.0.0.1")
    code = last_code(outbox)
    with pytest.raises(InvalidInput):
        svc.verify(PHONE, "sign", f"{(int(code) + 1) % 10**6:06d}")
    svc.verify(PHONE, "sign", code)
    assert caplog.records and code not in caplog.text and PHONE not in caplog.text


def test_service_from_settings_uses_the_settings_limits(settings, redis_client):
    from dataclasses import replace

    svc = sms_code_service_from_settings(replace(settings, sms_per_ip_hour=1), redis_client)
    svc.send(PHONE, "bind", ip="198.51.100.1")
    assert error_code(svc.send, "13900000001", "bind", ip="198.51.100.1") == "sms_ip_hourly_limit"
    assert svc.policy.ttl_s == settings.sms_code_ttl_s
