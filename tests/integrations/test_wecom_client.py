"""The WeCom client against the local emulation of its wire format, with a real Redis."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from qianli.integrations.wecom import (
    ApiWeComClient,
    DevWeComClient,
    WeComApiError,
    wecom_client_from_settings,
)
from qianli.settings import SettingsError, load_settings
from tests.integrations.wecom_emulator import WeComEmulator


@pytest.fixture
def wecom():
    with WeComEmulator() as server:
        server.add_member("zhangsan", "张三")
        server.add_member("lisi", "李四")
        yield server


@pytest.fixture
def client(wecom, redis_client) -> ApiWeComClient:
    return ApiWeComClient(wecom.url, wecom.corp_id, wecom.secret, wecom.agent_id, redis_client, timeout=3)


def test_token_is_fetched_once_and_shared_through_redis(wecom, client, redis_client):
    client.disable_member("zhangsan")
    client.send_text(["lisi"], "请完成交接事项")
    assert wecom.state.token_calls == 1
    # a second process (another client object on the same Redis) reuses the cached token
    other = ApiWeComClient(wecom.url, wecom.corp_id, wecom.secret, wecom.agent_id, redis_client, timeout=3)
    other.send_text(["lisi"], "第二条")
    assert wecom.state.token_calls == 1
    token_req = wecom.calls("/cgi-bin/gettoken")[0]
    assert token_req["method"] == "GET" and token_req["query"] == {"corpid": wecom.corp_id,
                                                                    "corpsecret": wecom.secret}
    # the secret travels only to gettoken, never with the calls that use the token
    assert all(wecom.secret not in str(r) for r in wecom.requests if r["path"] != "/cgi-bin/gettoken")
    # the token's Redis lifetime stays below WeCom's expires_in
    ttl = redis_client.ttl(client._token_key)
    assert 0 < ttl <= 7200 - 300


@pytest.mark.parametrize("expire", ["expired", "invalid"])
def test_expired_or_invalid_token_is_refreshed_once_and_the_call_repeated(wecom, client, redis_client, expire):
    client.disable_member("zhangsan")
    if expire == "expired":
        wecom.expire_tokens()  # 42001
    else:
        redis_client.set(client._token_key, "WWTOKEN-forged")  # 40014
    wecom.add_member("wangwu")
    client.disable_member("wangwu")
    assert wecom.member("wangwu")["enable"] == 0
    assert wecom.state.token_calls == 2
    updates = wecom.calls("/cgi-bin/user/update")
    assert len(updates) == 3  # first call, the rejected one, the repeat


def test_token_really_expires_by_time(wecom, client, redis_client):
    wecom.state.token_expires_in = 2  # margin: half of it, so cached 1 s
    client.disable_member("zhangsan")
    assert 0 < redis_client.pttl(client._token_key) <= 1000
    redis_client.delete(client._token_key)
    client.disable_member("lisi")
    assert wecom.state.token_calls == 2


def test_disable_member_sends_enable_0_and_is_idempotent(wecom, client):
    client.disable_member("zhangsan")
    client.disable_member("zhangsan")
    assert wecom.member("zhangsan")["enable"] == 0
    assert wecom.member("lisi")["enable"] == 1
    body = wecom.calls("/cgi-bin/user/update")[-1]["body"]
    assert body == {"userid": "zhangsan", "enable": 0}


def test_unknown_member_and_bad_userid_are_clear_errors(wecom, client):
    with pytest.raises(WeComApiError) as exc:
        client.disable_member("nobody")
    assert exc.value.errcode == 60111 and exc.value.is_unknown_member and not exc.value.is_retryable
    assert "/cgi-bin/user/update" in str(exc.value)
    before = len(wecom.requests)
    with pytest.raises(ValueError):
        client.disable_member("张三 ; drop")
    assert len(wecom.requests) == before  # refused locally


def test_send_text_reports_invalid_users_and_fails_when_all_invalid(wecom, client):
    out = client.send_text(["zhangsan", "ghost"], "您有一项离职交接任务待处理")
    assert out.msgid and out.invalid_users == ("ghost",)
    sent = wecom.state.messages[-1]
    assert sent["touser"] == ["zhangsan"] and sent["content"] == "您有一项离职交接任务待处理"
    assert wecom.calls("/cgi-bin/message/send")[-1]["body"]["agentid"] == wecom.agent_id
    with pytest.raises(WeComApiError) as exc:
        client.send_text(["ghost"], "x")
    assert exc.value.errcode == 81013
    with pytest.raises(ValueError):
        client.send_text([], "x")


def test_busy_rate_limit_and_transport_errors_are_retryable(wecom, client):
    wecom.fail_next("/cgi-bin/message/send", -1)
    with pytest.raises(WeComApiError) as exc:
        client.send_text(["lisi"], "x")
    assert exc.value.is_retryable and exc.value.errcode == -1
    wecom.fail_next("/cgi-bin/user/update", 45009)
    with pytest.raises(WeComApiError) as exc:
        client.disable_member("lisi")
    assert exc.value.is_retryable
    wecom.state.down = True
    with pytest.raises(WeComApiError) as exc:
        client.disable_member("lisi")
    assert exc.value.errcode == -2 and exc.value.is_retryable
    wecom.state.down = False
    client.disable_member("lisi")  # recovers
    assert wecom.member("lisi")["enable"] == 0


def test_wrong_credentials(wecom, redis_client):
    bad = ApiWeComClient(wecom.url, wecom.corp_id, "wrong-secret", wecom.agent_id, redis_client, timeout=3)
    with pytest.raises(WeComApiError) as exc:
        bad.disable_member("zhangsan")
    assert exc.value.errcode == 40001 and exc.value.is_credentials_error
    bad_corp = ApiWeComClient(wecom.url, "wwnotacorp", wecom.secret, wecom.agent_id, redis_client, timeout=3)
    with pytest.raises(WeComApiError) as exc:
        bad_corp.send_text(["zhangsan"], "x")
    assert exc.value.errcode == 40013


def test_nothing_listening_is_a_transport_error(redis_client):
    c = ApiWeComClient("http://127.0.0.1:9", "ww1", "s", 1, redis_client, timeout=1)
    with pytest.raises(WeComApiError) as exc:
        c.disable_member("zhangsan")
    assert exc.value.errcode == -2 and exc.value.is_retryable


def test_checkin_data_splits_periods_and_user_lists(wecom, client):
    t = datetime(2026, 3, 2, 1, 0, tzinfo=timezone.utc)  # 09:00 Beijing
    wecom.add_checkin("zhangsan", "上班打卡", t, scheduled=t)
    wecom.add_checkin("zhangsan", "下班打卡", t + timedelta(hours=9), exception_type="时间异常")
    wecom.add_checkin("zhangsan", "上班打卡", t + timedelta(days=45))
    wecom.add_checkin("lisi", "外出打卡", t + timedelta(days=1))
    users = ["zhangsan", "lisi"] + [f"user{i:03d}" for i in range(150)]
    records = client.get_checkin_data(users, t - timedelta(hours=1), t + timedelta(days=50))
    assert [(r.userid, r.checkin_type) for r in records] == [
        ("lisi", "外出打卡"), ("zhangsan", "上班打卡"), ("zhangsan", "下班打卡"), ("zhangsan", "上班打卡")]
    assert records[1].checkin_time == t and records[1].scheduled_time == t
    assert records[2].exception_type == "时间异常" and records[2].checkin_time.tzinfo is not None
    calls = wecom.calls("/cgi-bin/checkin/getcheckindata")
    assert len(calls) == 4  # two windows of <= 30 days x two batches of <= 100 users
    assert all(len(c["body"]["useridlist"]) <= 100 for c in calls)
    assert all(c["body"]["endtime"] - c["body"]["starttime"] <= 30 * 86400 for c in calls)
    only_office = client.get_checkin_data(["zhangsan", "lisi"], t - timedelta(hours=1), t + timedelta(days=2),
                                          data_type=1)
    assert {r.checkin_type for r in only_office} == {"上班打卡", "下班打卡"}
    with pytest.raises(ValueError):
        client.get_checkin_data(["zhangsan"], t, t - timedelta(days=1))


def test_settings_choose_the_backend(tmp_path, redis_client, caplog):
    env = {"QIANLI_ENV": "test", "QIANLI_VAR_DIR": str(tmp_path)}
    s = load_settings(env)
    assert s.wecom_backend == "off" and wecom_client_from_settings(s, redis_client) is None
    with caplog.at_level(logging.WARNING):
        dev = wecom_client_from_settings(replace(s, wecom_backend="dev"), redis_client)
    assert isinstance(dev, DevWeComClient) and "DEVELOPMENT" in caplog.text
    dev.disable_member("zhangsan")
    assert b"zhangsan" in redis_client.lindex(DevWeComClient.LOG_KEY, 0)
    with pytest.raises(SettingsError, match="QIANLI_WECOM_CORP_ID"):
        load_settings({**env, "QIANLI_WECOM_BACKEND": "api"})
    api = load_settings({**env, "QIANLI_WECOM_BACKEND": "api", "QIANLI_WECOM_CORP_ID": "ww1",
                         "QIANLI_WECOM_SECRET": "x", "QIANLI_WECOM_AGENT_ID": "1000002"})
    client = wecom_client_from_settings(api, redis_client)
    assert isinstance(client, ApiWeComClient) and client.base_url == "https://qyapi.weixin.qq.com"
    with pytest.raises(SettingsError, match="QIANLI_WECOM_AGENT_ID"):
        load_settings({**env, "QIANLI_WECOM_AGENT_ID": "ten"})


def test_runtime_exposes_wecom(runtime):
    assert runtime.wecom is None  # off by default
    runtime.override(wecom=DevWeComClient())
    assert isinstance(runtime.wecom, DevWeComClient)
