"""The HR console's webhook pages through the Flask test client: create (secret shown once), rotate,
test message, the delivery log with replay; roles."""

from __future__ import annotations

import re

from qianli.db import new_id
from qianli.services import webhooks as svc
from tests.webhooks.receiver import WebhookReceiver

PASSWORD = "correct horse battery"


def login(client, company, user):
    page = client.get("/hr/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)
    r = client.post("/hr/login", data={"csrf_token": token, "company_code": company.code, "username": user.username,
                                       "password": PASSWORD, "next": "/hr/"})
    assert r.status_code == 303


def csrf_of(html: str) -> str:
    return re.search(r'<meta name="csrf-token" content="([^"]+)"', html).group(1)


def test_console_endpoints_and_deliveries(client, factory, runtime):
    company = factory.company(code=f"whc{new_id()[:6]}")
    manager = factory.hr(company, "hr_manager")
    login(client, company, manager)
    page = client.get("/hr/webhooks")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "事件推送" in html and "尚未配置推送地址" in html
    with WebhookReceiver() as receiver:
        r = client.post("/hr/webhooks", data={"csrf_token": csrf_of(html), "name": "门禁", "url": receiver.url,
                                              "event_types": ["employee.access_revoke", "case.closed"]})
        html = r.get_data(as_text=True)
        assert r.status_code == 201
        secret = re.search(r'<pre id="secret-value">(whsec_[^<]+)</pre>', html).group(1)
        endpoint_id = re.search(r'data-endpoint-id="([0-9a-f]+)"', html).group(1)
        receiver.set_secrets(secret)
        again = client.get("/hr/webhooks").get_data(as_text=True)
        assert secret not in again and "回收权限" in again  # shown once
        # a test message through the normal delivery path, then the log shows it
        r = client.post(f"/hr/webhooks/{endpoint_id}", data={"csrf_token": csrf_of(again), "action": "test"})
        assert r.status_code == 303
        [(d, _, _)], _ = svc.list_deliveries(runtime.session_factory(), company.id)
        assert svc.attempt_delivery(runtime, d.id).status == "succeeded"
        assert receiver.received[0].verified
        log = client.get(f"/hr/webhooks/deliveries?endpoint_id={endpoint_id}").get_data(as_text=True)
        assert d.msg_id in log and "已送达" in log and "测试消息" in log
        r = client.post(f"/hr/webhooks/deliveries/{d.id}/replay", data={"csrf_token": csrf_of(log)})
        assert r.status_code == 303
        # rotation shows the new secret once
        r = client.post(f"/hr/webhooks/{endpoint_id}", data={"csrf_token": csrf_of(log), "action": "rotate"})
        new_secret = re.search(r'<pre id="secret-value">(whsec_[^<]+)</pre>', r.get_data(as_text=True)).group(1)
        assert new_secret != secret
        # a bad URL is refused with the reason, nothing created
        r = client.post("/hr/webhooks", data={"csrf_token": csrf_of(log), "name": "OA", "url": "ftp://x/y",
                                              "event_types": ["case.closed"]})
        assert r.status_code == 422 and "http" in r.get_data(as_text=True)
        assert len(svc.list_endpoints(runtime.session_factory(), company.id)) == 1


def test_console_roles(client, factory):
    company = factory.company(code=f"whr{new_id()[:6]}")
    spec = factory.hr(company, "hr_specialist")
    head = factory.hr(company, "dept_head", department="研发部")
    login(client, company, spec)
    html = client.get("/hr/webhooks").get_data(as_text=True)
    assert "新增推送地址" not in html
    r = client.post("/hr/webhooks", data={"csrf_token": csrf_of(html), "name": "OA", "url": "http://127.0.0.1:9/h",
                                          "event_types": ["case.closed"]})
    assert r.status_code == 403
    client.delete_cookie("qianli_hr", path="/")
    login(client, company, head)
    assert client.get("/hr/webhooks").status_code == 403
    assert client.get("/hr/webhooks/deliveries").status_code == 403


def test_console_case_access_page_and_revoke_now(client, factory, runtime):
    from tests.review.conftest import ReviewWorld

    world = ReviewWorld(runtime, runtime.session_factory(), factory)
    c, _ = world.case()
    login(client, world.company, world.spec)
    page = client.get(f"/hr/cases/{c.id}/access")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "尚未安排权限回收" in html and 'id="revoke-now"' in html
    assert f"/hr/cases/{c.id}/access" in client.get(f"/hr/cases/{c.id}").get_data(as_text=True)
    r = client.post(f"/hr/cases/{c.id}/access/revoke-now", data={"csrf_token": csrf_of(html), "reason": ""})
    assert r.status_code == 422
    r = client.post(f"/hr/cases/{c.id}/access/revoke-now", data={"csrf_token": csrf_of(html), "reason": "立即停权"})
    assert r.status_code == 303
    html = client.get(f"/hr/cases/{c.id}/access").get_data(as_text=True)
    assert "已通知各系统" in html and "HR 立即回收" in html and 'id="revoke-now"' not in html
