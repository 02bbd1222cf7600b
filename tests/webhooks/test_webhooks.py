"""Outbound webhooks end to end: endpoints through the API, deliveries to a real HTTP receiver that
verifies Standard Webhooks signatures with the ``standardwebhooks`` library, retries on the
configured schedule (a receiver down for an hour, moved through time), deduplication by webhook-id,
replay protection, secret rotation, the SSRF guard and the delivery log."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
import requests
import time_machine
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook

from cases.errors import InvalidInput
from qianli.db import new_id, session_scope
from qianli.models import HrAlert, WebhookAttempt, WebhookDelivery
from qianli.services import webhooks as svc
from qianli.settings import SettingsError, load_settings
from tests.webhooks.receiver import WebhookReceiver

T0 = datetime(2026, 6, 1, 2, 0, tzinfo=timezone.utc)


def _create(client, factory, manager, url, events=("case.approved",), **extra):
    r = client.post("/api/v1/hr/webhooks/endpoints", headers=factory.hr_headers(manager),
                    json={"name": extra.pop("name", "门禁系统"), "url": url, "event_types": list(events), **extra})
    assert r.status_code == 201, r.json
    return r.json


def _event(rt, company_id, event_type="case.approved", data=None):
    with session_scope(rt.session_factory) as s:
        out = svc.fan_out(s, rt, event_id=new_id(), company_id=company_id, event_type=event_type,
                          data=data or {"case_id": "c1", "employee": {"employee_no": "E1"}})
        return [d.id for d in out]


def _attempts(rt, delivery_id):
    with session_scope(rt.session_factory) as s:
        return [(a.attempt, a.ok, a.status_code, a.error, a.next_retry_at) for a in s.scalars(
            select(WebhookAttempt).where(WebhookAttempt.delivery_id == delivery_id).order_by(WebhookAttempt.attempt))]


def _delivery(rt, delivery_id) -> WebhookDelivery:
    with session_scope(rt.session_factory) as s:
        d = s.get(WebhookDelivery, delivery_id)
        s.expunge(d)
        return d


# ---- endpoints through the API -----------------------------------------------------------------

def test_endpoint_lifecycle_through_the_api(client, factory, company, manager, receiver):
    ep = _create(client, factory, manager, receiver.url, events=["case.approved", "employee.access_revoke"],
                 description="大门与楼层门禁")
    assert ep["secret"].startswith("whsec_") and len(ep["secret"]) > 40
    Webhook(ep["secret"])  # a valid Standard Webhooks secret
    listed = client.get("/api/v1/hr/webhooks/endpoints", headers=factory.hr_headers(manager)).json
    assert [e["id"] for e in listed] == [ep["id"]] and "secret" not in listed[0]
    assert ep["secret"] not in json.dumps(listed)
    h = factory.hr_headers(manager)
    r = client.patch(f"/api/v1/hr/webhooks/endpoints/{ep['id']}", json={"enabled": False, "name": "门禁"}, headers=h)
    assert r.status_code == 200 and r.json["enabled"] is False and r.json["name"] == "门禁"
    rotated = client.post(f"/api/v1/hr/webhooks/endpoints/{ep['id']}/rotate-secret", headers=h).json
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != ep["secret"]
    assert rotated["previous_secret_valid_until"] is not None
    assert client.delete(f"/api/v1/hr/webhooks/endpoints/{ep['id']}", headers=h).status_code == 204
    assert client.get(f"/api/v1/hr/webhooks/endpoints/{ep['id']}", headers=h).status_code == 404
    types = client.get("/api/v1/hr/webhooks/event-types", headers=h).json
    assert {t["type"] for t in types} == {"case.approved", "employee.access_revoke", "employee.payroll_stop",
                                          "case.closed"}


@pytest.mark.parametrize("body,code", [
    ({"url": "ftp://127.0.0.1/x"}, "webhook_url_invalid"),
    ({"url": "http://user:pw@127.0.0.1/x"}, "webhook_url_invalid"),
    ({"url": "not a url"}, "webhook_url_invalid"),
    ({"event_types": ["employee.fired"]}, "validation_failed"),
    ({"event_types": []}, "validation_failed"),
    ({"name": ""}, "validation_failed"),
])
def test_bad_endpoints_are_refused(client, factory, manager, body, code):
    payload = {"name": "OA", "url": "http://127.0.0.1:9/hook", "event_types": ["case.approved"], **body}
    r = client.post("/api/v1/hr/webhooks/endpoints", json=payload, headers=factory.hr_headers(manager))
    assert r.status_code == 422 and r.json["code"] == code


def test_only_managers_manage_endpoints(client, factory, company, manager):
    spec = factory.hr(company, "hr_specialist")
    r = client.post("/api/v1/hr/webhooks/endpoints", headers=factory.hr_headers(spec),
                    json={"name": "OA", "url": "http://127.0.0.1:9/h", "event_types": ["case.approved"]})
    assert r.status_code == 403
    ep = _create(client, factory, manager, "http://127.0.0.1:9/h", name="OA")
    assert client.get("/api/v1/hr/webhooks/endpoints", headers=factory.hr_headers(spec)).status_code == 200
    assert client.post(f"/api/v1/hr/webhooks/endpoints/{ep['id']}/rotate-secret",
                       headers=factory.hr_headers(spec)).status_code == 403
    other = factory.company(code=f"o{new_id()[:6]}")
    foreign = factory.hr(other, "hr_manager")
    assert client.get(f"/api/v1/hr/webhooks/endpoints/{ep['id']}", headers=factory.hr_headers(foreign)).status_code == 404
    assert client.get("/api/v1/hr/webhooks/endpoints", headers=factory.hr_headers(foreign)).json == []


# ---- signed deliveries -----------------------------------------------------------------------------

def test_delivery_is_signed_and_verified_by_a_real_receiver(runtime, client, factory, company, manager, receiver):
    ep = _create(client, factory, manager, receiver.url)
    receiver.set_secrets(ep["secret"])
    _create(client, factory, manager, receiver.url, events=["case.closed"], name="薪资系统")  # not subscribed
    [did] = _event(runtime, company.id, data={"case_id": "c1", "last_day": "2026-06-30"})
    out = svc.attempt_delivery(runtime, did)
    assert out.status == "succeeded" and out.status_code == 204
    [got] = receiver.received
    assert got.verified and not got.duplicate
    assert got.json["type"] == "case.approved" and got.json["data"] == {"case_id": "c1", "last_day": "2026-06-30"}
    assert got.headers["webhook-id"] == _delivery(runtime, did).msg_id
    assert got.headers["content-type"] == "application/json"
    [(n, ok, code, err, nxt)] = _attempts(runtime, did)
    assert (n, ok, code, err, nxt) == (1, True, 204, None, None)
    assert svc.attempt_delivery(runtime, did).status == "skipped"  # done: never sent twice
    # the delivery log through the API
    page = client.get("/api/v1/hr/webhooks/deliveries", headers=factory.hr_headers(manager)).json
    assert page["total"] == 1
    item = page["items"][0]
    assert item["status"] == "succeeded" and item["endpoint_name"] == "门禁系统" and item["attempts"] == 1
    assert item["attempt_log"][0]["status_code"] == 204 and item["attempt_log"][0]["latency_ms"] >= 0
    assert item["payload"]["data"]["last_day"] == "2026-06-30"


def test_a_wrong_secret_is_rejected_by_the_receiver(runtime, client, factory, company, manager, receiver):
    _create(client, factory, manager, receiver.url)
    receiver.set_secrets("whsec_" + "A" * 43 + "=")
    [did] = _event(runtime, company.id)
    out = svc.attempt_delivery(runtime, did)
    assert out.status == "retrying" and out.status_code == 400
    assert receiver.received[0].error == "No matching signature found"


def test_receiver_down_for_an_hour_then_back(runtime, client, factory, company, manager):
    """5s, 5m, 30m, 2h...: down from T0 to T0+1h, the retry at ~T0+2h35m succeeds."""
    receiver = WebhookReceiver().start()
    url = receiver.url
    ep = _create(client, factory, manager, url)
    receiver.set_secrets(ep["secret"])
    receiver.stop()
    with time_machine.travel(T0, tick=False) as clock:
        [did] = _event(runtime, company.id)
        seen: list[datetime] = []
        for _ in range(4):  # T0, +5s, +5m, +30m: refused
            out = svc.attempt_delivery(runtime, did)
            assert out.status == "retrying" and "ConnectionError" in out.error
            nxt = _delivery(runtime, did).next_attempt_at
            seen.append(nxt)
            # not due yet: an early job does nothing
            clock.move_to(nxt - timedelta(seconds=1))
            assert svc.attempt_delivery(runtime, did).status == "skipped"
            clock.move_to(nxt)
        gaps = [round((b - a).total_seconds()) for a, b in zip([T0, *seen[:-1]], seen, strict=True)]
        assert gaps == [5, 300, 1800, 7200]
        receiver.start()  # back after an hour (same port)
        try:
            assert svc.attempt_delivery(runtime, did).status == "succeeded"
        finally:
            receiver.stop()
    assert [a[1] for a in _attempts(runtime, did)] == [False, False, False, False, True]
    assert [r.verified for r in receiver.received] == [True]  # verified with its timestamp, hours after the event
    assert _delivery(runtime, did).status == "succeeded"


def test_retried_delivery_received_twice_is_deduplicated_by_id(runtime, client, factory, company, manager, receiver):
    ep = _create(client, factory, manager, receiver.url)
    receiver.set_secrets(ep["secret"])
    receiver.set_mode("ack_lost")  # processes it, but the answer is a 500
    with time_machine.travel(T0, tick=True) as clock:
        [did] = _event(runtime, company.id)
        assert svc.attempt_delivery(runtime, did).status == "retrying"
        receiver.set_mode("ok")
        clock.shift(timedelta(seconds=6))
        assert svc.attempt_delivery(runtime, did).status == "succeeded"
    first, second = receiver.received
    assert first.verified and second.verified
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert first.body == second.body  # identical body, fresh timestamp and signature
    assert int(second.headers["webhook-timestamp"]) > int(first.headers["webhook-timestamp"])
    assert not first.duplicate and second.duplicate
    assert len(receiver.processed) == 1


def test_replayed_capture_is_rejected_by_the_verifying_receiver(runtime, client, factory, company, manager, receiver):
    ep = _create(client, factory, manager, receiver.url)
    receiver.set_secrets(ep["secret"])
    with time_machine.travel(T0, tick=True) as clock:
        [did] = _event(runtime, company.id)
        assert svc.attempt_delivery(runtime, did).status == "succeeded"
        captured = receiver.received[0]
        clock.shift(timedelta(minutes=10))
        # an attacker re-sends the captured request verbatim ten minutes later
        r = requests.post(receiver.url, data=captured.body, headers=captured.headers, timeout=5)
    assert r.status_code == 400
    assert receiver.received[-1].error == "Message timestamp too old"
    # and a tampered body with a fresh timestamp does not verify either
    headers = dict(captured.headers, **{"webhook-timestamp": str(int(datetime.now(timezone.utc).timestamp()))})
    assert requests.post(receiver.url, data=captured.body, headers=headers, timeout=5).status_code == 400


def test_rotation_signs_with_both_secrets_during_the_grace(runtime, client, factory, company, manager, receiver):
    ep = _create(client, factory, manager, receiver.url)
    old = ep["secret"]
    new = client.post(f"/api/v1/hr/webhooks/endpoints/{ep['id']}/rotate-secret",
                      headers=factory.hr_headers(manager)).json["secret"]
    receiver.set_secrets(old)  # a receiver not yet switched still verifies
    [did] = _event(runtime, company.id)
    assert svc.attempt_delivery(runtime, did).status == "succeeded"
    got = receiver.received[-1]
    assert got.headers["webhook-signature"].count("v1,") == 2
    Webhook(new).verify(got.body, got.headers)  # so does one that switched
    # after the grace only the new secret signs
    with time_machine.travel(datetime.now(timezone.utc) + timedelta(seconds=runtime.settings.webhook_secret_grace_s + 5)):
        [did2] = _event(runtime, company.id)
        out = svc.attempt_delivery(runtime, did2)
    assert out.status == "retrying" and receiver.received[-1].headers["webhook-signature"].count("v1,") == 1
    receiver.set_secrets(new)


def test_exhausted_retries_fail_the_delivery_and_alert_hr(runtime, client, factory, company, manager, receiver):
    runtime.settings = replace(runtime.settings, webhook_retry_schedule="1s,2s")
    ep = _create(client, factory, manager, receiver.url)
    receiver.set_secrets(ep["secret"])
    receiver.set_mode("error")
    with time_machine.travel(T0, tick=False) as clock:
        [did] = _event(runtime, company.id)
        assert svc.attempt_delivery(runtime, did).status == "retrying"
        clock.shift(timedelta(seconds=1))
        assert svc.attempt_delivery(runtime, did).status == "retrying"
        clock.shift(timedelta(seconds=2))
        out = svc.attempt_delivery(runtime, did)
    assert out.status == "failed" and out.status_code == 500
    d = _delivery(runtime, did)
    assert d.status == "failed" and d.attempts == 3 and d.next_attempt_at is None
    with session_scope(runtime.session_factory) as s:
        alert = s.scalar(select(HrAlert).where(HrAlert.company_id == company.id, HrAlert.kind == "webhook_failed"))
        assert alert is not None and "门禁系统" in alert.message
    # HR fixes the receiver and replays the failed delivery: same webhook-id, trigger "replay"
    receiver.set_mode("ok")
    r = client.post(f"/api/v1/hr/webhooks/deliveries/{did}/replay", headers=factory.hr_headers(manager))
    assert r.status_code == 202 and r.json["webhook_id"] == d.msg_id
    from rq import Queue
    job_ids = Queue(svc.QUEUE, connection=runtime.redis).job_ids
    assert any(j.startswith(f"webhook-replay-{did}") for j in job_ids)
    out = svc.attempt_delivery(runtime, did, manual=True, actor=f"hr:{manager.id}")
    assert out.status == "succeeded"
    assert _attempts(runtime, did)[-1][:3] == (4, True, 204)
    assert receiver.received[-1].headers["webhook-id"] == d.msg_id


def test_redirects_are_not_followed(runtime, client, factory, company, manager, receiver):
    ep = _create(client, factory, manager, receiver.url)
    receiver.set_secrets(ep["secret"])
    receiver.set_mode("redirect")
    [did] = _event(runtime, company.id)
    out = svc.attempt_delivery(runtime, did)
    assert out.status == "retrying" and out.status_code == 302 and "redirect" in out.error
    assert len(receiver.received) == 1


def test_disabled_endpoints_get_no_new_events(runtime, client, factory, company, manager, receiver):
    ep = _create(client, factory, manager, receiver.url)
    client.patch(f"/api/v1/hr/webhooks/endpoints/{ep['id']}", json={"enabled": False},
                 headers=factory.hr_headers(manager))
    assert _event(runtime, company.id) == []


def test_test_message_and_first_attempt_enqueued_after_commit(runtime, client, factory, company, manager, receiver):
    from rq import Queue

    ep = _create(client, factory, manager, receiver.url)
    receiver.set_secrets(ep["secret"])
    spec = factory.hr(company, "hr_specialist")
    r = client.post(f"/api/v1/hr/webhooks/endpoints/{ep['id']}/test", headers=factory.hr_headers(spec))
    assert r.status_code == 202 and r.json["event_type"] == "webhook.test" and r.json["status"] == "pending"
    q = Queue(svc.QUEUE, connection=runtime.redis)
    assert f"webhook-{r.json['id']}-1" in q.job_ids
    assert svc.attempt_delivery(runtime, r.json["id"]).status == "succeeded"
    assert receiver.received[0].json["type"] == "webhook.test"


def test_sweep_requeues_lost_jobs(runtime, client, factory, company, manager, receiver):
    from rq import Queue

    _create(client, factory, manager, receiver.url)
    [did] = _event(runtime, company.id)
    q = Queue(svc.QUEUE, connection=runtime.redis)
    q.empty()
    runtime.redis.delete(f"rq:job:webhook-{did}-1")
    with time_machine.travel(datetime.now(timezone.utc) + timedelta(minutes=2)):
        assert svc.sweep(runtime).requeued == 1
        assert svc.sweep(runtime).requeued == 0  # queued now: not twice
    assert f"webhook-{did}-1" in q.job_ids


# ---- the SSRF guard -------------------------------------------------------------------------------------

@pytest.mark.parametrize("url", ["http://127.0.0.1/h", "https://localhost/h", "https://10.1.2.3/h",
                                 "https://169.254.169.254/latest/meta-data", "https://[::1]/h", "https://192.168.1.5/h"])
def test_production_refuses_internal_addresses(tmp_path, settings, url):
    prod = replace(settings, env="production")
    with pytest.raises(InvalidInput) as exc:
        svc.check_url(prod, url)
    assert exc.value.code == "webhook_url_forbidden"
    allowed = replace(prod, webhook_allow_private=True)
    assert svc.check_url(allowed, url) == url
    with pytest.raises(InvalidInput):
        svc.check_url(allowed, "https://0.0.0.0/h")  # never: "this host"


def test_production_requires_https_and_development_allows_loopback(settings):
    prod = replace(settings, env="production")
    with pytest.raises(InvalidInput) as exc:
        svc.check_url(prod, "http://1.1.1.1/h")
    assert exc.value.code == "webhook_url_forbidden"
    assert svc.check_url(prod, "https://1.1.1.1/h") == "https://1.1.1.1/h"
    assert svc.check_url(settings, "http://127.0.0.1:8080/h") == "http://127.0.0.1:8080/h"
    with pytest.raises(InvalidInput):
        svc.check_url(settings, "http://10.0.0.8/h")  # test env: loopback only


def test_retry_schedule_setting_is_parsed_strictly(tmp_path):
    env = {"QIANLI_ENV": "test", "QIANLI_VAR_DIR": str(tmp_path)}
    assert load_settings(env).webhook_retry_delays() == (5, 300, 1800, 7200, 18000, 36000, 36000)
    assert load_settings({**env, "QIANLI_WEBHOOK_RETRY_SCHEDULE": "10, 1m,1h ,1d"}).webhook_retry_delays() == (
        10, 60, 3600, 86400)
    assert load_settings({**env, "QIANLI_WEBHOOK_RETRY_SCHEDULE": "none"}).webhook_retry_delays() == ()
    for bad in ("5x", "-5s", "5s,,5m", "1.5h", "8d"):
        with pytest.raises(SettingsError, match="QIANLI_WEBHOOK_RETRY_SCHEDULE"):
            load_settings({**env, "QIANLI_WEBHOOK_RETRY_SCHEDULE": bad})


def test_published_events_fan_out_in_the_publishers_transaction(runtime, client, factory, company, manager, receiver):
    from qianli.models import OutboxEvent
    from qianli.services import events

    ep = _create(client, factory, manager, receiver.url, events=["case.closed"])
    receiver.set_secrets(ep["secret"])
    with session_scope(runtime.session_factory) as s:
        ev = events.publish(s, company_id=company.id, event_type="case.closed", data={"case_id": "c7"})
        [d] = s.scalars(select(WebhookDelivery).where(WebhookDelivery.event_id == ev.id)).all()
        assert ev.dispatched_at is not None
        did = d.id
    assert svc.attempt_delivery(runtime, did).status == "succeeded"
    got = receiver.received[0].json
    assert got["type"] == "case.closed" and got["data"] == {"case_id": "c7", "event_id": ev.id}
    # an event left undispatched (published where no hook ran) is dispatched by the sweep, once
    with session_scope(runtime.session_factory) as s:
        hooks = list(events.publish_hooks)
        events.publish_hooks.clear()
        try:
            ev2 = events.publish(s, company_id=company.id, event_type="case.closed", data={"case_id": "c8"})
        finally:
            events.publish_hooks.extend(hooks)
    assert svc.sweep(runtime).dispatched == 1
    assert svc.sweep(runtime).dispatched == 0
    with session_scope(runtime.session_factory) as s:
        assert s.get(OutboxEvent, ev2.id).dispatched_at is not None
        assert len(s.scalars(select(WebhookDelivery).where(WebhookDelivery.event_id == ev2.id)).all()) == 1
