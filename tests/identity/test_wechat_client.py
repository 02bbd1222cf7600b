"""The WeChat client against a local server speaking the documented wire format, with a real Redis."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest

from cases.errors import InvalidInput, RateLimited, ServiceUnavailable
from identity.wechat import (
    ApiWeChatClient,
    DevWeChatClient,
    WeChatApiError,
    WeChatSession,
    wechat_client_from_settings,
)
from tests.identity.wire_servers import WeChatWireServer


@pytest.fixture
def wx():
    with WeChatWireServer() as server:
        yield server


@pytest.fixture
def client(wx, redis_client) -> ApiWeChatClient:
    return ApiWeChatClient(wx.url, wx.state.appid, wx.state.secret, redis_client, timeout=3)


def test_code2session_returns_openid_and_never_the_session_key(wx, client):
    code = wx.add_login("oEmployee001", unionid="uUnion001")
    session = client.code2session(code)
    assert session == WeChatSession(openid="oEmployee001", unionid="uUnion001")
    assert not any("session" in f for f in WeChatSession.__dataclass_fields__)
    req = wx.requests[-1]
    assert req["query"]["js_code"] == [code] and req["query"]["grant_type"] == ["authorization_code"]
    assert client.code2session(wx.add_login("oNoUnion")).unionid is None


def test_bad_and_reused_codes(wx, client):
    code = wx.add_login("oEmployee002")
    client.code2session(code)
    for bad, errcode in ((code, 40163), ("not-a-real-code", 40029)):
        with pytest.raises(WeChatApiError) as exc:
            client.code2session(bad)
        assert exc.value.errcode == errcode and exc.value.is_bad_code and not exc.value.is_retryable
        domain = exc.value.to_domain_error()
        assert isinstance(domain, InvalidInput) and domain.code == "wechat_code_invalid"
    with pytest.raises(WeChatApiError) as exc:
        client.code2session("")
    assert exc.value.errcode == 40029
    assert len(wx.requests) == 3  # the empty code never left the process


def test_busy_then_success(wx, client):
    code = wx.add_login("oEmployee003")
    wx.state.busy_codes.add(code)
    with pytest.raises(WeChatApiError) as exc:
        client.code2session(code)
    assert exc.value.errcode == -1 and exc.value.is_retryable
    assert isinstance(exc.value.to_domain_error(), ServiceUnavailable)
    assert client.code2session(code).openid == "oEmployee003"


def test_rate_limit(wx, client):
    wx.state.rate_limited = True
    with pytest.raises(WeChatApiError) as exc:
        client.code2session(wx.add_login("oX"))
    assert exc.value.errcode == 45011 and exc.value.is_retryable
    domain = exc.value.to_domain_error()
    assert isinstance(domain, RateLimited) and domain.details["retry_after_s"] > 0


def test_unreachable_server_is_retryable(redis_client):
    dead = ApiWeChatClient("http://127.0.0.1:9", "wxapp", "secret", redis_client, timeout=1)
    with pytest.raises(WeChatApiError) as exc:
        dead.code2session("0123456789abcdef")
    assert exc.value.errcode == -2 and exc.value.is_retryable


def test_token_is_cached_in_redis_and_shared(wx, client, redis_client):
    token = client.stable_access_token()
    other_worker = ApiWeChatClient(wx.url, wx.state.appid, wx.state.secret, redis_client)
    assert other_worker.stable_access_token() == token == client.stable_access_token()
    assert wx.state.token_calls == 1
    ttl = redis_client.ttl(f"qianli:wechat:{wx.state.appid}:access_token")
    assert 7200 - 300 - 5 <= ttl <= 7200 - 300
    assert wx.state.secret not in str(redis_client.keys("*"))


def test_concurrent_workers_do_not_stampede(wx, redis_client):
    wx.state.token_delay_s = 0.2
    barrier = threading.Barrier(8)

    def worker(_: int) -> str:
        c = ApiWeChatClient(wx.url, wx.state.appid, wx.state.secret, redis_client, timeout=3)
        barrier.wait()
        return c.stable_access_token()

    with ThreadPoolExecutor(8) as pool:
        tokens = set(pool.map(worker, range(8)))
    assert len(tokens) == 1 and wx.state.token_calls == 1


def test_subscribe_message_and_token_refresh_on_40001(wx, client):
    msgid = client.send_subscribe_message("oEmployee004", "TPL-reminder", "pages/resign/letter",
                                          {"thing1": "离职申请待签署", "time2": "2026-11-23 10:00"}, "trial")
    assert msgid
    sent = wx.state.sent[-1]
    assert sent["data"] == {"thing1": {"value": "离职申请待签署"}, "time2": {"value": "2026-11-23 10:00"}}
    assert (sent["touser"], sent["page"], sent["miniprogram_state"]) == ("oEmployee004", "pages/resign/letter",
                                                                         "trial")
    wx.expire_all_tokens()  # WeChat now answers 40001 for the cached token
    assert client.send_subscribe_message("oEmployee004", "TPL-reminder", "p", {"thing1": "x"})
    assert wx.state.token_calls == 2 and wx.state.forced_refreshes == 1
    assert len(wx.state.sent) == 2


def test_no_subscription_quota_is_permanent(wx, client):
    wx.state.no_quota.add("oNoQuota")
    with pytest.raises(WeChatApiError) as exc:
        client.send_subscribe_message("oNoQuota", "TPL", "p", {"thing1": "x"})
    assert exc.value.errcode == 43101 and exc.value.is_no_subscription and not exc.value.is_retryable


def test_dev_client(redis_client, settings, caplog):
    dev = DevWeChatClient(redis_client)
    assert "DEVELOPMENT" in caplog.text
    assert dev.code2session("dev-oAlice") == WeChatSession(openid="oAlice")
    for bad in ("oAlice", "dev-", "x" * 200):
        with pytest.raises(WeChatApiError) as exc:
            dev.code2session(bad)
        assert exc.value.is_bad_code
    assert dev.send_subscribe_message("oAlice", "TPL", "p", {"thing1": "x"})
    assert redis_client.llen(DevWeChatClient.SENT_KEY) == 1
    assert isinstance(wechat_client_from_settings(settings, redis_client), DevWeChatClient)
    api = wechat_client_from_settings(replace(settings, wechat_backend="api", wechat_appid="wx1",
                                              wechat_appsecret="s"), redis_client)
    assert isinstance(api, ApiWeChatClient) and api.base_url == settings.wechat_api_base_url
