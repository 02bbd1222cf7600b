"""An endpoint whose every attempt keeps failing is disabled (Stripe/Svix style): after the whole retry
schedule of a delivery, once every attempt has failed for QIANLI_WEBHOOK_DISABLE_AFTER_S (5 days by
default), with an audit entry and one HR alert; a success restarts the count; HR re-enables it through
updateWebhookEndpoint. Deliveries go to a real HTTP receiver that answers 500; time moves with
time_machine."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
import time_machine
from sqlalchemy import select

from qianli.db import new_id, session_scope
from qianli.models import HrAlert, WebhookDelivery, WebhookEndpoint, WebhookEndpointEvent
from qianli.services import webhooks as svc
from qianli.settings import SettingsError, load_settings

T0 = datetime(2026, 6, 1, 2, 0, tzinfo=timezone.utc)
DAY = timedelta(days=1)


@pytest.fixture
def endpoint(runtime, client, factory, manager, receiver):
    runtime.settings = replace(runtime.settings, webhook_retry_schedule="1h,1d", webhook_disable_after_s=5 * 86400)
    with time_machine.travel(T0 - timedelta(minutes=1), tick=False):
        r = client.post("/api/v1/hr/webhooks/endpoints", headers=factory.hr_headers(manager),
                        json={"name": "OA 系统", "url": receiver.url, "event_types": ["case.approved"]})
    assert r.status_code == 201, r.json
    receiver.set_secrets(r.json["secret"])
    receiver.set_mode("error")
    return r.json


def _event(rt, company_id):
    with session_scope(rt.session_factory) as s:
        return [d.id for d in svc.fan_out(s, rt, event_id=new_id(), company_id=company_id, event_type="case.approved",
                                          data={"case_id": None, "n": new_id()})]


def _exhaust(rt, clock, delivery_id) -> list[str]:
    """Run every attempt of the delivery at its due time; the outcomes."""
    outcomes = []
    while True:
        out = svc.attempt_delivery(rt, delivery_id)
        outcomes.append(out.status)
        if out.status != "retrying":
            return outcomes
        with session_scope(rt.session_factory) as s:
            clock.move_to(s.get(WebhookDelivery, delivery_id).next_attempt_at)


def _endpoint(rt, endpoint_id) -> WebhookEndpoint:
    with session_scope(rt.session_factory) as s:
        ep = s.get(WebhookEndpoint, endpoint_id)
        s.expunge(ep)
        return ep


def _alerts(rt, company_id, kind):
    with session_scope(rt.session_factory) as s:
        rows = list(s.scalars(select(HrAlert).where(HrAlert.company_id == company_id, HrAlert.kind == kind)))
        for a in rows:
            s.expunge(a)
        return rows


def test_failing_for_five_days_disables_the_endpoint_with_audit_and_one_alert(runtime, client, factory, company,
                                                                               manager, receiver, endpoint):
    eid = endpoint["id"]
    with time_machine.travel(T0, tick=False) as clock:
        [first] = _event(runtime, company.id)
        assert _exhaust(runtime, clock, first) == ["retrying", "retrying", "failed"]  # T0, +1h, +1d1h
        ep = _endpoint(runtime, eid)
        assert ep.enabled and ep.failing_since == T0  # failing for 25 h only: still enabled
        assert len(_alerts(runtime, company.id, "webhook_failed")) == 1

        clock.move_to(T0 + 4 * DAY)
        [second] = _event(runtime, company.id)
        clock.move_to(T0 + 4 * DAY + timedelta(hours=12))
        [third] = _event(runtime, company.id)  # queued behind, still pending when the endpoint is disabled
        clock.move_to(T0 + 4 * DAY)
        assert _exhaust(runtime, clock, second) == ["retrying", "retrying", "failed"]  # last one at T0+5d1h

    ep = _endpoint(runtime, eid)
    assert not ep.enabled and ep.disabled_reason == "failing" and ep.disabled_by == "system"
    assert ep.disabled_at == T0 + 5 * DAY + timedelta(hours=1)
    # one alert about the endpoint, not one more about the delivery that tipped it over
    [alert] = _alerts(runtime, company.id, "webhook_endpoint_disabled")
    assert "OA 系统" in alert.message and "自动停用" in alert.message and alert.resolved_at is None
    assert alert.payload["endpoint_id"] == eid and alert.payload["failed_deliveries"] == 2
    assert len(_alerts(runtime, company.id, "webhook_failed")) == 1

    # the audit trail through the API: why, since when, how many
    r = client.get(f"/api/v1/hr/webhooks/endpoints/{eid}", headers=factory.hr_headers(manager))
    assert r.status_code == 200, r.json
    assert r.json["enabled"] is False and r.json["disabled_reason"] == "failing"
    top = r.json["history"][0]
    assert top["action"] == "auto_disabled" and top["actor"] == "system"
    assert top["detail"]["failed_deliveries"] == 2 and top["detail"]["last_status_code"] == 500
    assert top["detail"]["failing_since"].startswith("2026-06-01T02:00:00")
    assert top["detail"]["disable_after_s"] == 5 * 86400
    assert [h["action"] for h in r.json["history"]][-1] == "created"

    # no new deliveries; the one still pending is refused without another alert
    assert _event(runtime, company.id) == []
    with time_machine.travel(T0 + 5 * DAY + timedelta(hours=2), tick=False):
        assert svc.attempt_delivery(runtime, third).status == "failed"
    received = len(receiver.received)
    assert len(_alerts(runtime, company.id, "webhook_failed")) == 1
    assert len(_alerts(runtime, company.id, "webhook_endpoint_disabled")) == 1

    # HR fixes the receiver and re-enables the endpoint: deliveries resume, the alert is resolved
    receiver.set_mode("ok")
    r = client.patch(f"/api/v1/hr/webhooks/endpoints/{eid}", json={"enabled": True},
                     headers=factory.hr_headers(manager))
    assert r.status_code == 200, r.json
    assert r.json["enabled"] is True and r.json["disabled_reason"] is None and r.json["failing_since"] is None
    [alert] = _alerts(runtime, company.id, "webhook_endpoint_disabled")
    assert alert.resolved_at is not None and alert.resolved_by == f"hr:{manager.id}"
    history = client.get(f"/api/v1/hr/webhooks/endpoints/{eid}", headers=factory.hr_headers(manager)).json["history"]
    assert history[0]["action"] == "enabled" and history[0]["detail"]["was_disabled_reason"] == "failing"
    assert history[0]["detail"]["alerts_resolved"] == [alert.id]
    [fresh] = _event(runtime, company.id)
    assert svc.attempt_delivery(runtime, fresh).status == "succeeded"
    assert len(receiver.received) == received + 1 and receiver.received[-1].verified


def test_a_success_restarts_the_count(runtime, client, factory, company, manager, receiver, endpoint):
    with time_machine.travel(T0, tick=False) as clock:
        [first] = _event(runtime, company.id)
        assert svc.attempt_delivery(runtime, first).status == "retrying"
        assert _endpoint(runtime, endpoint["id"]).failing_since == T0
        clock.move_to(T0 + timedelta(hours=1))
        receiver.set_mode("ok")  # back for a moment
        assert svc.attempt_delivery(runtime, first).status == "succeeded"
        assert _endpoint(runtime, endpoint["id"]).failing_since is None
        receiver.set_mode("error")
        clock.move_to(T0 + 4 * DAY)
        [second] = _event(runtime, company.id)
        assert _exhaust(runtime, clock, second)[-1] == "failed"  # at T0+5d1h, but failing since T0+4d only
    ep = _endpoint(runtime, endpoint["id"])
    assert ep.enabled and ep.failing_since == T0 + 4 * DAY
    assert _alerts(runtime, company.id, "webhook_endpoint_disabled") == []


def test_zero_never_disables_and_manual_disabling_is_audited(runtime, client, factory, company, manager, receiver,
                                                             endpoint):
    runtime.settings = replace(runtime.settings, webhook_disable_after_s=0)
    with time_machine.travel(T0, tick=False) as clock:
        [first] = _event(runtime, company.id)
        _exhaust(runtime, clock, first)
        clock.move_to(T0 + 30 * DAY)
        [second] = _event(runtime, company.id)
        assert _exhaust(runtime, clock, second)[-1] == "failed"
    assert _endpoint(runtime, endpoint["id"]).enabled
    assert _alerts(runtime, company.id, "webhook_endpoint_disabled") == []

    r = client.patch(f"/api/v1/hr/webhooks/endpoints/{endpoint['id']}", json={"enabled": False, "name": "OA"},
                     headers=factory.hr_headers(manager))
    assert r.status_code == 200
    assert r.json["disabled_reason"] == "manual" and r.json["disabled_by"] == f"hr:{manager.id}"
    with session_scope(runtime.session_factory) as s:
        actions = [(e.action, e.actor) for e in s.scalars(select(WebhookEndpointEvent).where(
            WebhookEndpointEvent.endpoint_id == endpoint["id"]).order_by(WebhookEndpointEvent.id))]
    assert actions == [("created", f"hr:{manager.id}"), ("updated", f"hr:{manager.id}"),
                       ("disabled", f"hr:{manager.id}")]


def test_disable_after_setting_is_parsed_strictly(tmp_path):
    env = {"QIANLI_ENV": "test", "QIANLI_VAR_DIR": str(tmp_path)}
    assert load_settings(env).webhook_disable_after_s == 432000
    assert load_settings({**env, "QIANLI_WEBHOOK_DISABLE_AFTER_S": "0"}).webhook_disable_after_s == 0
    for bad in ("-1", "5d", "1.5"):
        with pytest.raises(SettingsError, match="QIANLI_WEBHOOK_DISABLE_AFTER_S"):
            load_settings({**env, "QIANLI_WEBHOOK_DISABLE_AFTER_S": bad})
