"""SMS gateways: the real Tencent and Aliyun SDKs against local wire-format servers, and the dev outbox."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import pytest

from cases.errors import InvalidInput
from identity.sms import (
    AliyunSmsGateway,
    DevOutboxSmsGateway,
    SmsGatewayError,
    TencentSmsGateway,
    mask_phone,
    normalize_cn_mobile,
    sms_gateway_from_settings,
)
from tests.identity.wire_servers import AliyunSmsWireServer, TencentSmsWireServer

PHONE = "13800138000"
TEMPLATES = {"code": "1000001", "reminder": "1000002"}


@pytest.fixture
def tencent():
    with TencentSmsWireServer() as server:
        yield server, TencentSmsGateway(secret_id="AKIDexample", secret_key="tencent-secret-key",
                                        sdk_app_id="1400000001", sign_name="签离科技", templates=TEMPLATES,
                                        endpoint=server.host, protocol="http", timeout_s=3)


@pytest.fixture
def aliyun():
    with AliyunSmsWireServer() as server:
        yield server, AliyunSmsGateway(access_key_id="LTAIexample", access_key_secret="aliyun-secret",
                                       sign_name="签离科技", templates={"code": "SMS_1", "reminder": "SMS_2"},
                                       endpoint=server.host, protocol="http", timeout_s=3)


def test_phone_normalisation():
    for raw in ("13800138000", "+8613800138000", "0086 138 0013 8000", "86-138-0013-8000"):
        assert normalize_cn_mobile(raw) == PHONE
    for bad in ("12800138000", "1380013800", "+1 415 555 0100", "", "abc"):
        with pytest.raises(InvalidInput) as exc:
            normalize_cn_mobile(bad)
        assert exc.value.code == "phone_invalid"
    assert mask_phone(PHONE) == "138****8000"


def test_tencent_request_is_signed_and_positional(tencent):
    server, gw = tencent
    result = gw.send(PHONE, "code", {"code": "493021", "minutes": "5"})
    assert result.provider == "tencent" and result.message_id.startswith("2640:")
    req = server.requests[-1]
    assert req["headers"]["x-tc-action"] == "SendSms" and req["headers"]["x-tc-region"] == "ap-guangzhou"
    assert req["headers"]["authorization"].startswith("TC3-HMAC-SHA256 Credential=AKIDexample/")
    assert "tencent-secret-key" not in json.dumps(req)
    assert req["body"] == {"PhoneNumberSet": ["+8613800138000"], "SmsSdkAppId": "1400000001",
                           "SignName": "签离科技", "TemplateId": "1000001", "TemplateParamSet": ["493021", "5"]}


@pytest.mark.parametrize(("status", "retryable"), [
    (("LimitExceeded.PhoneNumberOneHourLimit", "单个手机号1小时内下发短信条数超过设定的上限"), True),
    (("FailedOperation.PhoneNumberInBlacklist", "手机号在免打扰名单库中"), False),
    (("InvalidParameterValue.TemplateParameterFormatError", "验证码模板参数格式错误"), False),
])
def test_tencent_per_number_errors(tencent, status, retryable):
    server, gw = tencent
    server.phone_status["+86" + PHONE] = status
    with pytest.raises(SmsGatewayError) as exc:
        gw.send(PHONE, "code", {"code": "1", "minutes": "5"})
    assert exc.value.code == "sms_gateway_error" and exc.value.provider_code == status[0]
    assert exc.value.retryable is retryable


def test_tencent_api_error_and_unreachable(tencent):
    server, gw = tencent
    server.api_error = ("AuthFailure.SecretIdNotFound", "The SecretId is not found")
    with pytest.raises(SmsGatewayError) as exc:
        gw.send(PHONE, "reminder", {"name": "张三"})
    assert exc.value.provider_code == "AuthFailure.SecretIdNotFound" and not exc.value.retryable
    dead = TencentSmsGateway(secret_id="a", secret_key="b", sdk_app_id="1", sign_name="s", templates=TEMPLATES,
                             endpoint="127.0.0.1:9", protocol="http", timeout_s=1)
    with pytest.raises(SmsGatewayError) as exc:
        dead.send(PHONE, "code", {"code": "1"})
    assert exc.value.retryable


def test_tencent_client_keeps_a_pool_of_connections_for_concurrent_sends():
    """Reminder batches send from many threads through one client: connections are kept alive and pooled
    (requests alone keeps 10 and closes the rest after each call)."""
    from concurrent.futures import ThreadPoolExecutor

    with TencentSmsWireServer() as server:
        handler = server._server.RequestHandlerClass  # noqa: SLF001 - HTTP/1.1 keep-alive, as Tencent's endpoint
        handler.protocol_version, handler.disable_nagle_algorithm = "HTTP/1.1", True
        accepted = []
        get_request = server._server.get_request  # noqa: SLF001

        def counting():
            conn = get_request()
            accepted.append(conn[1])
            return conn

        server._server.get_request = counting  # noqa: SLF001
        gw = TencentSmsGateway(secret_id="AKIDexample", secret_key="k", sdk_app_id="1400000001", sign_name="签离科技",
                               templates=TEMPLATES, endpoint=server.host, protocol="http", timeout_s=3, pool_size=16)
        with ThreadPoolExecutor(16) as pool:
            for _ in range(3):
                results = list(pool.map(lambda i: gw.send(f"1380013{i:04d}", "reminder", {"name": "张三"}), range(16)))
        assert len(results) == 16 and all(r.message_id.startswith("2640:") for r in results)
        assert len(server.requests) == 48
        assert len(accepted) <= 16  # 48 sends over at most 16 kept-alive connections


def test_tencent_client_still_goes_through_the_proxy_of_the_environment(monkeypatch):
    """The client reads HTTP(S)_PROXY itself when built (requests' own per-call lookup is switched off)."""
    with TencentSmsWireServer() as proxy:  # a forward proxy receives the absolute URL; the emulation answers it
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        gw = TencentSmsGateway(secret_id="AKIDexample", secret_key="k", sdk_app_id="1400000001", sign_name="签离科技",
                               templates=TEMPLATES, endpoint="sms.example.invalid", protocol="http", timeout_s=3)
        assert gw.send(PHONE, "reminder", {"name": "张三"}).message_id.startswith("2640:")
        assert proxy.requests[-1]["headers"]["host"] == "sms.example.invalid"


def test_aliyun_request_is_signed_and_named(aliyun):
    server, gw = aliyun
    result = gw.send(PHONE, "code", {"code": "493021", "minutes": "5"})
    assert result.provider == "aliyun" and result.message_id.startswith("9006")
    req = server.requests[-1]
    assert req["headers"]["x-acs-action"] == "SendSms" and req["headers"]["x-acs-version"] == "2017-05-25"
    assert req["headers"]["authorization"].startswith("ACS3-HMAC-SHA256 Credential=LTAIexample")
    assert "aliyun-secret" not in json.dumps(req)
    assert req["params"]["PhoneNumbers"] == PHONE and req["params"]["TemplateCode"] == "SMS_1"
    assert json.loads(req["params"]["TemplateParam"]) == {"code": "493021", "minutes": "5"}


def test_aliyun_errors(aliyun):
    server, gw = aliyun
    server.answer_code = ("isv.BUSINESS_LIMIT_CONTROL", "触发分钟级流控Permits:1")
    with pytest.raises(SmsGatewayError) as exc:
        gw.send(PHONE, "code", {"code": "1"})
    assert exc.value.provider_code == "isv.BUSINESS_LIMIT_CONTROL" and exc.value.retryable
    server.answer_code = ("isv.MOBILE_NUMBER_ILLEGAL", "非法手机号")
    with pytest.raises(SmsGatewayError) as exc:
        gw.send(PHONE, "code", {"code": "1"})
    assert not exc.value.retryable
    server.http_error = (403, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
    with pytest.raises(SmsGatewayError) as exc:
        gw.send(PHONE, "code", {"code": "1"})
    assert exc.value.provider_code == "InvalidAccessKeyId.NotFound" and not exc.value.retryable


def test_unconfigured_template_and_bad_params(tencent):
    _, gw = tencent
    with pytest.raises(SmsGatewayError) as exc:
        gw.send(PHONE, "marketing", {})
    assert exc.value.provider_code == "template_not_configured"
    with pytest.raises(InvalidInput):
        gw.send(PHONE, "code", {"code": 123456})  # type: ignore[dict-item]


def test_dev_outbox_is_shared_across_processes(redis_client, tmp_path, settings, caplog):
    path = tmp_path / "outbox.jsonl"
    gw = DevOutboxSmsGateway(redis_client, path)
    assert "DEVELOPMENT" in caplog.text
    gw.send(PHONE, "code", {"code": "111111"})
    url = redis_client.connection_pool.connection_kwargs
    child = (
        "import redis, sys; from pathlib import Path; from identity.sms import DevOutboxSmsGateway\n"
        f"r = redis.Redis(host={url['host']!r}, port={url['port']}, db={url['db']})\n"
        f"DevOutboxSmsGateway(r, Path({str(path)!r})).send('13900000000', 'reminder', {{'name': '李四'}})\n"
    )
    subprocess.run([sys.executable, "-c", child], check=True, cwd=str(__import__("pathlib").Path.cwd()))
    newest, older = gw.messages(limit=2)
    assert (newest.phone, newest.template, newest.params) == ("13900000000", "reminder", {"name": "李四"})
    assert (older.phone, older.params) == (PHONE, {"code": "111111"})
    assert [m.phone for m in gw.messages(phone=PHONE)] == [PHONE]
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert [x["phone"] for x in lines] == [PHONE, "13900000000"]
    assert isinstance(sms_gateway_from_settings(settings, redis_client), DevOutboxSmsGateway)
    tencent_settings = replace(settings, sms_backend="tencent", sms_tencent_sdk_app_id="1400", sms_sign_name="x")
    with pytest.raises(ValueError, match="QIANLI_SMS_TENCENT_SECRET_ID"):
        sms_gateway_from_settings(tencent_settings, redis_client)
    tencent_settings = replace(tencent_settings, sms_tencent_secret_id="id", sms_tencent_secret_key="key")
    assert isinstance(sms_gateway_from_settings(tencent_settings, redis_client), TencentSmsGateway)
    aliyun_settings = replace(settings, sms_backend="aliyun", sms_sign_name="x")
    with pytest.raises(ValueError, match="QIANLI_SMS_ALIYUN_ACCESS_KEY_ID"):
        sms_gateway_from_settings(aliyun_settings, redis_client)
    aliyun_settings = replace(aliyun_settings, sms_aliyun_access_key_id="id", sms_aliyun_access_key_secret="s")
    assert isinstance(sms_gateway_from_settings(aliyun_settings, redis_client), AliyunSmsGateway)
