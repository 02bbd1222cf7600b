"""Access revocation end to end: final approval publishes case.approved and schedules the revocation
for 23:59 Asia/Shanghai of the last day; the sweep sends employee.access_revoke and
employee.payroll_stop then; receivers confirm through the callback (idempotent), the WeCom member is
disabled through the WeCom API (the local emulation), unconfirmed systems raise an HR alert after
the deadline; HR revokes at once; a withdrawn case's revocation is cancelled. Real HTTP receivers
verify every delivery's Standard Webhooks signature."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import time_machine
from sqlalchemy import select

from cases.states import CaseAction
from qianli.db import session_scope
from qianli.integrations.wecom import ApiWeComClient
from qianli.models import EvidenceEntry, HrAlert, WebhookDelivery
from qianli.services import revocation as rev_svc
from qianli.services import webhooks as wh
from qianli.services.cases import apply_action
from tests.integrations.wecom_emulator import WeComEmulator
from tests.review.conftest import ReviewWorld
from tests.webhooks.receiver import WebhookReceiver


@pytest.fixture
def world(runtime, db_session, factory):
    return ReviewWorld(runtime, db_session, factory)


def _endpoint(rt, company_id, name, url, events):
    with session_scope(rt.session_factory) as s:
        return wh.create_endpoint(s, rt, company_id=company_id, name=name, url=url, event_types=events,
                                  actor="test").secret


def _deliver_all(rt, company_id, event_type=None):
    with session_scope(rt.session_factory) as s:
        q = select(WebhookDelivery.id).where(WebhookDelivery.company_id == company_id,
                                             WebhookDelivery.status == "pending")
        if event_type:
            q = q.where(WebhookDelivery.event_type == event_type)
        ids = list(s.scalars(q))
    return [wh.attempt_delivery(rt, i).status for i in ids]


def _actions(db_session, case_id):
    db_session.expire_all()
    return [e.action for e in db_session.scalars(select(EvidenceEntry).where(EvidenceEntry.case_id == case_id)
                                                 .order_by(EvidenceEntry.seq))]


def _alerts(db_session, company_id, kind):
    db_session.expire_all()
    return list(db_session.scalars(select(HrAlert).where(HrAlert.company_id == company_id, HrAlert.kind == kind)))


def test_final_approval_schedules_revocation_at_2359_and_receivers_confirm(client, world, runtime, db_session):
    door, payroll = WebhookReceiver(path="/door").start(), WebhookReceiver(path="/payroll").start()
    try:
        door.set_secrets(_endpoint(runtime, world.company.id, "门禁", door.url,
                                   ["case.approved", "employee.access_revoke"]))
        payroll.set_secrets(_endpoint(runtime, world.company.id, "OA", payroll.url,
                                      ["employee.access_revoke", "employee.payroll_stop"]))
        c, emp = world.case(signed=True)
        url = f"/api/v1/hr/cases/{c.id}/approval"
        assert client.post(url, json={}, headers=world.h(world.spec)).status_code == 200
        r = client.post(url, json={}, headers=world.h(world.head))
        assert r.status_code == 200 and r.json["state"] == "approved"
        last_day = datetime.fromisoformat(r.json["agreed_last_day"]).date()
        # case.approved went to the door system only, signed
        assert _deliver_all(runtime, world.company.id) == ["succeeded"]
        [approved] = door.received
        assert approved.verified and approved.json["type"] == "case.approved"
        assert approved.json["data"]["last_day"] == last_day.isoformat()
        assert approved.json["data"]["employee"]["employee_no"] == emp.employee_no
        # scheduled for 23:59 Beijing of the last day
        status = client.get(f"/api/v1/hr/cases/{c.id}/access-revocation", headers=world.h(world.auditor)).json
        rev = status["revocation"]
        assert rev["status"] == "scheduled" and rev["mode"] == "scheduled" and rev["last_day"] == last_day.isoformat()
        due = datetime.fromisoformat(rev["due_at"])
        assert due == datetime(last_day.year, last_day.month, last_day.day, 15, 59, tzinfo=timezone.utc)
        assert status["confirmations"] == [] and status["all_confirmed"] is False
        assert "access_revoke_scheduled" in _actions(db_session, c.id)
        # a minute before: nothing; at 23:59 the sweep sends it (once)
        with time_machine.travel(due - timedelta(minutes=1), tick=False):
            assert rev_svc.sweep(runtime).sent == 0
        with time_machine.travel(due + timedelta(seconds=30), tick=True) as clock:
            assert rev_svc.sweep(runtime).sent == 1
            assert rev_svc.sweep(runtime).sent == 0
            assert sorted(_deliver_all(runtime, world.company.id)) == ["succeeded"] * 3
            revoke_door = [x for x in door.received if x.json["type"] == "employee.access_revoke"]
            revoke_oa = [x for x in payroll.received if x.json["type"] == "employee.access_revoke"]
            stop = [x for x in payroll.received if x.json["type"] == "employee.payroll_stop"]
            assert len(revoke_door) == len(revoke_oa) == len(stop) == 1 and all(
                x.verified for x in revoke_door + revoke_oa + stop)
            assert stop[0].json["data"]["pay_through"] == last_day.isoformat()
            conf_door = revoke_door[0].json["data"]["confirmation"]
            conf_oa = revoke_oa[0].json["data"]["confirmation"]
            assert conf_door["system"] == "门禁" and conf_oa["system"] == "OA"
            assert conf_door["url"].endswith("/api/v1/access-revocations/confirm")
            assert conf_door["token"] != conf_oa["token"]
            # the door system confirms (and reports the VPN behind it); again: idempotent
            body = {"token": conf_door["token"], "detail": "门禁卡已注销",
                    "systems": [{"system": "VPN", "detail": "账号已停用"}]}
            r1 = client.post("/api/v1/access-revocations/confirm", json=body)
            assert r1.status_code == 200 and r1.json["status"] == "confirmed" and r1.json["changed"] is True
            r2 = client.post("/api/v1/access-revocations/confirm", json=body)
            assert r2.status_code == 200 and r2.json["changed"] is False
            assert r2.json["confirmed_at"] == r1.json["confirmed_at"]
            status = client.get(f"/api/v1/hr/cases/{c.id}/access-revocation", headers=world.h(world.spec)).json
            by_system = {x["system"]: x for x in status["confirmations"]}
            assert by_system["门禁"]["status"] == "confirmed" and by_system["VPN"]["expected"] is False
            assert by_system["OA"]["status"] == "pending" and status["all_confirmed"] is False
            # HR never sees the tokens in the delivery log
            log = client.get("/api/v1/hr/webhooks/deliveries?event_type=employee.access_revoke",
                             headers=world.h(world.manager)).json
            assert all(i["payload"]["data"]["confirmation"]["token"] == "***" for i in log["items"])
            assert conf_door["token"] not in str(log)
            # OA never confirms: after the deadline HR is alerted, once
            assert rev_svc.sweep(runtime).alerted == 0
            clock.shift(timedelta(seconds=runtime.settings.revocation_confirm_deadline_s + 5))
            assert rev_svc.sweep(runtime).alerted == 1
            assert rev_svc.sweep(runtime).alerted == 0
        [alert] = _alerts(db_session, world.company.id, "revocation_unconfirmed")
        assert "OA" in alert.message and alert.case_id == c.id
        acts = _actions(db_session, c.id)
        for kind in ("access_revoke_sent", "payroll_stop_sent", "access_revoke_confirmed", "webhook_delivered",
                     "hr_alert_raised"):
            assert kind in acts, kind
        # the OA system confirms late: recorded; the dossier view lists it all
        client.post("/api/v1/access-revocations/confirm", json={"token": conf_oa["token"]})
        status = client.get(f"/api/v1/hr/cases/{c.id}/access-revocation", headers=world.h(world.spec)).json
        assert status["all_confirmed"] is True
    finally:
        door.stop()
        payroll.stop()


def test_revoke_now_disables_the_wecom_member(client, world, runtime, db_session):
    with WeComEmulator() as wecom:
        wecom.add_member("zhangsan")
        runtime.override(wecom=ApiWeComClient(wecom.url, wecom.corp_id, wecom.secret, wecom.agent_id, runtime.redis,
                                              timeout=3))
        try:
            c, emp = world.case()
            emp.wecom_userid = "zhangsan"
            db_session.commit()
            url = f"/api/v1/hr/cases/{c.id}/access-revocation/revoke-now"
            assert client.post(url, json={"reason": "x"}, headers=world.h(world.head)).status_code == 403
            assert client.post(url, json={"reason": "  "}, headers=world.h(world.spec)).status_code == 422
            r = client.post(url, json={"reason": "违反保密规定，立即停权"}, headers=world.h(world.spec))
            assert r.status_code == 200, r.json
            assert r.json["revocation"]["status"] == "sent" and r.json["revocation"]["mode"] == "immediate"
            [wc] = [x for x in r.json["confirmations"] if x["system"] == "wecom"]
            assert wc["status"] == "pending"
            again = client.post(url, json={"reason": "再次"}, headers=world.h(world.spec))
            assert again.status_code == 409 and again.json["code"] == "access_already_revoked"
            # the job (queued after the commit) disables the member
            from rq import Queue
            assert any(j.startswith("wecom-disable-") for j in Queue(wh.QUEUE, connection=runtime.redis).job_ids)
            with session_scope(runtime.session_factory) as s:
                conf_id = rev_svc.case_access_status(s, s.get(type(c), c.id))["confirmations"][0].id
            assert rev_svc.run_wecom_disable(runtime, conf_id) == "confirmed"
            assert wecom.member("zhangsan")["enable"] == 0
            assert wecom.calls("/cgi-bin/user/update")[-1]["body"] == {"userid": "zhangsan", "enable": 0}
            status = client.get(f"/api/v1/hr/cases/{c.id}/access-revocation", headers=world.h(world.spec)).json
            assert status["confirmations"][0]["status"] == "confirmed"
            assert status["confirmations"][0]["confirmed_via"] == "wecom_api" and status["all_confirmed"] is True
            assert rev_svc.run_wecom_disable(runtime, conf_id) == "skipped"  # done already
            assert "access_revoke_confirmed" in _actions(db_session, c.id)
        finally:
            runtime.reset("wecom")


def test_wecom_errors_retry_then_fail_visibly(client, world, runtime, db_session):
    with WeComEmulator() as wecom:
        runtime.override(wecom=ApiWeComClient(wecom.url, wecom.corp_id, wecom.secret, wecom.agent_id, runtime.redis,
                                              timeout=3))
        try:
            c, emp = world.case()
            emp.wecom_userid = "left-already"  # not a member: 60111
            db_session.commit()
            with session_scope(runtime.session_factory) as s:
                rev_svc.revoke_access_now(s, runtime, s.get(type(c), c.id), actor="hr:test", reason="立即")
            with session_scope(runtime.session_factory) as s:
                conf_id = rev_svc.case_access_status(s, s.get(type(c), c.id))["confirmations"][0].id
            wecom.fail_next("/cgi-bin/user/update", -1)  # busy: retried later
            assert rev_svc.run_wecom_disable(runtime, conf_id, 1) == "retrying"
            assert rev_svc.run_wecom_disable(runtime, conf_id, 2) == "failed"  # unknown member: not retried
            [alert] = _alerts(db_session, world.company.id, "wecom_failed")
            assert "60111" in alert.message
            assert "access_revoke_failed" in _actions(db_session, c.id)
        finally:
            runtime.reset("wecom")


def test_confirmation_tokens_are_checked(client, world, runtime, db_session):
    with WebhookReceiver() as door:
        door.set_secrets(_endpoint(runtime, world.company.id, "门禁", door.url, ["employee.access_revoke"]))
        c, _ = world.case()
        with session_scope(runtime.session_factory) as s:
            rev_svc.revoke_access_now(s, runtime, s.get(type(c), c.id), actor="hr:test", reason="立即")
        assert _deliver_all(runtime, world.company.id) == ["succeeded"]
        token = door.received[0].json["data"]["confirmation"]["token"]
    conf_id, _, mac = token.partition(".")
    for bad in (f"{conf_id}.{'A' * len(mac)}", "nonsense", f"{'0' * 32}.{mac}", token + "x", token[:-1] + "é",
                f"{conf_id}é.{mac}"):
        r = client.post("/api/v1/access-revocations/confirm", json={"token": bad})
        assert r.status_code == 401 and r.json["code"] == "confirmation_token_invalid"
    r = client.post("/api/v1/access-revocations/confirm", json={"token": token, "result": "failed",
                                                               "detail": "门禁系统离线"})
    assert r.status_code == 200 and r.json["status"] == "failed"
    [alert] = _alerts(db_session, world.company.id, "revocation_unconfirmed")
    assert "门禁系统离线" in alert.message
    assert client.post("/api/v1/access-revocations/confirm", json={"token": token}).json["status"] == "confirmed"
    r = client.post("/api/v1/access-revocations/confirm", json={"token": token, "result": "failed"})
    assert r.status_code == 409 and r.json["code"] == "revocation_already_confirmed"
    r = client.post("/api/v1/access-revocations/confirm", json={"token": token, "result": "maybe"})
    assert r.status_code == 422


def test_withdrawn_case_cancels_the_scheduled_revocation(world, runtime, db_session):
    c, emp = world.case()
    with session_scope(runtime.session_factory) as s:
        rev = rev_svc.schedule_access_revoke(s, s.get(type(c), c.id), actor="hr:test")
        due = rev.due_at
    with session_scope(runtime.session_factory) as s:
        apply_action(s, s.get(type(c), c.id), CaseAction.WITHDRAW, actor=f"employee:{emp.id}")
    with time_machine.travel(due + timedelta(minutes=1), tick=False):
        res = rev_svc.sweep(runtime)
    assert (res.sent, res.cancelled) == (0, 1)
    acts = _actions(db_session, c.id)
    assert "access_revoke_cancelled" in acts and "access_revoke_sent" not in acts


def test_revoke_time_is_2359_beijing():
    from datetime import date

    assert rev_svc.revoke_time(date(2026, 6, 30)) == datetime(2026, 6, 30, 15, 59, tzinfo=timezone.utc)
