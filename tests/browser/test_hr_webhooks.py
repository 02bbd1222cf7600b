"""The webhook console pages in Debian's headless Chromium (Playwright): the HR manager creates an
endpoint and sees its secret once, sends a test message (delivered by an rq worker to a real receiver
that verifies the Standard Webhooks signature with that secret), reads the delivery log with the
attempt, and replays the delivery (same webhook-id, a second attempt marked as a manual replay); the
HR specialist sees the pages without the management forms."""

from __future__ import annotations

import re

import pytest

from tests.browser.live import login, serve
from tests.browser.test_hr_console import PASSWORD, browser  # noqa: F401 - the browser fixture
from tests.webhooks.receiver import WebhookReceiver

pytestmark = pytest.mark.browser


@pytest.fixture
def live(committed_runtime):
    from qianli.db import session_scope
    from qianli.models import Company
    from qianli.services.auth import create_hr_user

    rt = committed_runtime
    with session_scope(rt.session_factory) as s:
        company = Company(code="pwh", name="推送测试有限公司", policy={})
        s.add(company)
        s.flush()
        for username, name, role in (("mgr", "赵经理", "hr_manager"), ("spec", "李敏", "hr_specialist")):
            create_hr_user(s, company_id=company.id, username=username, display_name=name, password=PASSWORD,
                           role=role, department=None)
    with serve(rt) as base:
        yield base, rt


def _login(page, base, username):
    login(page, base, "pwh", username, PASSWORD)


def _work(rt) -> int:
    """Run the queued webhook jobs with an rq worker (burst), as `qianli worker` would."""
    from rq import Queue, SimpleWorker

    from qianli.services.webhooks import QUEUE

    q = Queue(QUEUE, connection=rt.redis)
    n = len(q)
    SimpleWorker([q], connection=rt.redis).work(burst=True)
    return n


def test_create_see_secret_once_test_log_and_replay(live, browser):  # noqa: F811
    base, rt = live
    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    page.on("dialog", lambda d: d.accept())
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    with WebhookReceiver() as receiver:
        _login(page, base, "mgr")
        page.click("nav >> text=事件推送")
        page.wait_for_url(f"{base}/hr/webhooks")
        assert "尚未配置推送地址" in page.inner_text("#webhook-endpoints")

        # create: name, URL, two events; the answer shows the secret, once
        form = page.locator("#webhook-create")
        form.locator("input[name=name]").fill("门禁系统")
        form.locator("input[name=url]").fill(receiver.url)
        form.locator("input[name=description]").fill("大门与楼层门禁")
        form.locator("input[value='employee.access_revoke']").check()
        form.locator("input[value='case.closed']").check()
        form.locator("button[type=submit]").click()
        page.wait_for_selector("#new-secret")
        secret = page.inner_text("#secret-value").strip()
        assert re.fullmatch(r"whsec_[A-Za-z0-9+/=]{40,}", secret), secret
        assert "仅显示这一次" in page.inner_text("#new-secret")
        receiver.set_secrets(secret)
        row = page.locator("#webhook-endpoints tr[data-endpoint-id]")
        assert row.count() == 1
        endpoint_id = row.get_attribute("data-endpoint-id")
        assert "回收权限" in row.inner_text() and "结案" in row.inner_text() and "启用" in row.inner_text()

        page.goto(f"{base}/hr/webhooks")  # shown once: not on the page any more, nowhere in it
        assert page.locator("#new-secret").count() == 0 and secret not in page.content()

        # send a test message: queued, delivered by the worker, verified by the receiver with the secret
        page.locator(f"tr[data-endpoint-id='{endpoint_id}'] button", has_text="发送测试").click()
        page.wait_for_url(f"**/hr/webhooks/deliveries?endpoint_id={endpoint_id}")
        assert "测试消息已排队发送" in page.content()
        assert _work(rt) == 1
        assert len(receiver.received) == 1 and receiver.received[0].verified, receiver.received
        webhook_id = receiver.received[0].headers["webhook-id"]
        assert receiver.received[0].json["type"] == "webhook.test"

        # the delivery log: delivered, with the attempt (status code 204, automatic)
        page.reload()
        delivery = page.locator("#webhook-deliveries tr[data-delivery-id]")
        assert delivery.count() == 1
        text = delivery.inner_text()
        assert "测试消息" in text and "已送达" in text and webhook_id in text and "门禁系统" in text
        delivery.locator("summary").click()
        attempts = delivery.locator("table.attempts tbody tr")
        assert attempts.count() == 1 and "204" in attempts.nth(0).inner_text() and "自动" in attempts.nth(0).inner_text()

        # replay: the same webhook-id again, a second attempt marked as a manual replay
        delivery.locator("button", has_text="重新推送").click()
        page.wait_for_url("**/hr/webhooks/deliveries")
        assert "已重新排队发送" in page.content()
        assert _work(rt) == 1
        assert len(receiver.received) == 2 and receiver.received[1].verified
        assert receiver.received[1].headers["webhook-id"] == webhook_id
        page.goto(f"{base}/hr/webhooks/deliveries?endpoint_id={endpoint_id}")
        delivery = page.locator("#webhook-deliveries tr[data-delivery-id]")
        delivery.locator("summary").click()
        attempts = delivery.locator("table.attempts tbody tr")
        assert attempts.count() == 2 and "手动重推" in attempts.nth(1).inner_text() and "204" in attempts.nth(1).inner_text()

        # filters: failed deliveries of this endpoint: none
        page.select_option("select[name=status]", "failed")
        page.click("form.filters button[type=submit]")
        page.wait_for_url("**status=failed**")
        assert "暂无推送记录" in page.inner_text("#webhook-deliveries")

        # the specialist reads the pages and may test, but not manage endpoints
        page.click("header .who button")
        page.wait_for_url("**/hr/login**")
        _login(page, base, "spec")
        page.goto(f"{base}/hr/webhooks")
        assert page.locator("#webhook-create").count() == 0
        spec_row = page.locator(f"tr[data-endpoint-id='{endpoint_id}']")
        assert spec_row.locator("button", has_text="发送测试").count() == 1
        assert spec_row.locator("button", has_text="轮换密钥").count() == 0
        assert spec_row.locator("button", has_text="删除").count() == 0
    assert errors == [], errors
    context.close()


def test_an_endpoint_that_keeps_failing_is_disabled_and_re_enabled(live, browser):  # noqa: F811
    """QIANLI_WEBHOOK_DISABLE_AFTER_S=1 and no retries: two test messages a second apart to a receiver that
    answers 500 disable the endpoint; the page says so with its history, the alerts page shows one alert;
    the manager fixes the receiver and re-enables it, which resolves that alert."""
    import time
    from dataclasses import replace

    base, rt = live
    rt.settings = replace(rt.settings, webhook_retry_schedule="none", webhook_disable_after_s=1)
    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    with WebhookReceiver() as receiver:
        receiver.set_mode("error")
        _login(page, base, "mgr")
        page.goto(f"{base}/hr/webhooks")
        form = page.locator("#webhook-create")
        form.locator("input[name=name]").fill("OA 系统")
        form.locator("input[name=url]").fill(receiver.url)
        form.locator("input[value='case.closed']").check()
        form.locator("button[type=submit]").click()
        page.wait_for_selector("#new-secret")
        endpoint_id = page.locator("#webhook-endpoints tr[data-endpoint-id]").get_attribute("data-endpoint-id")
        row = f"tr[data-endpoint-id='{endpoint_id}']"

        page.locator(f"{row} button", has_text="发送测试").click()
        page.wait_for_url("**/hr/webhooks/deliveries**")
        assert _work(rt) == 1
        page.goto(f"{base}/hr/webhooks")
        status = page.inner_text(f"{row} td.endpoint-status")
        assert "启用" in status and "起推送均失败" in status and "自动停用" in status  # the warning, not disabled yet

        time.sleep(1.2)
        page.locator(f"{row} button", has_text="发送测试").click()
        page.wait_for_url("**/hr/webhooks/deliveries**")
        assert _work(rt) == 1
        assert len(receiver.received) == 2 and all(not r.verified for r in receiver.received)
        page.goto(f"{base}/hr/webhooks")
        status = page.locator(f"{row} td.endpoint-status")
        assert status.locator(".auto-disabled").inner_text() == "已自动停用"
        status.locator("details.endpoint-history summary").click()
        history = status.locator("details.endpoint-history li")
        assert "持续失败，系统自动停用（system）" in history.nth(0).inner_text()
        assert "2 条事件推送失败" in history.nth(0).inner_text() and "HTTP 500" in history.nth(0).inner_text()
        assert "创建" in history.nth(history.count() - 1).inner_text()

        page.click("nav >> text=提醒")
        # the first failed message alerted as usual; the second, which disabled the endpoint, only once for that
        assert page.locator("#alerts tr[data-alert-id]", has_text="OA 系统").count() == 2
        assert page.locator("#alerts tr[data-alert-id]", has_text="已自动停用").count() == 1

        # fixed: the manager re-enables it; the alert is resolved, a test message goes through again
        receiver.set_mode("ok")
        page.goto(f"{base}/hr/webhooks")
        page.locator(f"{row} button", has_text="启用").click()
        page.wait_for_url(f"{base}/hr/webhooks")
        status = page.inner_text(f"{row} td.endpoint-status")
        assert "启用" in status and "自动停用" not in status.split("变更记录")[0]
        page.click("nav >> text=提醒")
        assert page.locator("#alerts tr[data-alert-id]", has_text="已自动停用").count() == 0
        assert page.locator("#alerts tr[data-alert-id]", has_text="OA 系统").count() == 1
    assert errors == [], errors
    context.close()
