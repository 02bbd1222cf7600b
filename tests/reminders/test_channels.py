"""Channels against a WeChat wire server (the real HTTP client): subscribe messages, 43101 -> SMS,
provider errors retried by rq and, on the last attempt, recorded as failed with an HR alert."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import time_machine
from rq import Queue
from rq.registry import ScheduledJobRegistry
from rq.scheduler import RQScheduler
from sqlalchemy import select

from qianli.db import session_scope
from qianli.models import EvidenceEntry, HrAlert
from qianli.services.reminders import QUEUE, sweep
from tests.identity.wire_servers import WeChatWireServer


def _wechat(rworld, server, **kw):
    rworld.configure(wechat_backend="api", wechat_api_base_url=server.url, wechat_appid=server.state.appid,
                     wechat_appsecret=server.state.secret, wechat_subscribe_template_id="TPL-letter-due",
                     quiet_hours="", **kw)
    rworld.rt.reset("wechat")


def _actions(rt, case_id, prefix="reminder"):
    with session_scope(rt.session_factory) as s:
        return [(e.action, e.payload) for e in s.scalars(select(EvidenceEntry).where(EvidenceEntry.case_id == case_id)
                                                         .order_by(EvidenceEntry.seq)) if e.action.startswith(prefix)]


def test_subscribe_message_and_43101_fallback_to_sms(rworld):
    rt = rworld.rt
    with WeChatWireServer() as server:
        _wechat(rworld, server)
        case_id, _, phone = rworld.open_case(datetime.now(timezone.utc) - timedelta(minutes=5), openid="o-liLei")
        rworld.work()
        # the notice goes on both channels
        assert rworld.deliveries(case_id) == [(0, "sms", "sent"), (0, "wechat", "sent")]
        sent = server.state.sent[0]
        assert sent["touser"] == "o-liLei" and sent["template_id"] == "TPL-letter-due" and sent["page"] == "pages/resign/letter"
        assert len(rworld.outbox(phone)) == 1
        # a day later the reminder goes by subscribe message only; the employee has no quota left -> SMS
        server.state.no_quota.add("o-liLei")
        with time_machine.travel(datetime.now(timezone.utc) + timedelta(days=1, minutes=1), tick=False):
            sweep(rt)
            rworld.work()
        assert rworld.deliveries(case_id) == [(0, "sms", "sent"), (0, "wechat", "sent"), (1, "sms", "sent"),
                                              (1, "wechat", "failed")]
        assert len(rworld.outbox(phone)) == 2
        fb = [p for a, p in _actions(rt, case_id) if a == "reminder_fallback"]
        assert fb and fb[0]["error_code"] == "43101" and fb[0]["fallback_channel"] == "sms"


def test_provider_errors_retry_then_fail_with_an_alert(rworld):
    rt = rworld.rt
    with WeChatWireServer() as server:
        _wechat(rworld, server, reminder_retry_intervals="1")
        server.state.rate_limited = True  # every WeChat call answers 45011 (retryable)
        case_id, _, phone = rworld.open_case(datetime.now(timezone.utc) - timedelta(minutes=5), openid="o-hanMeimei")
        rworld.work()
        q = Queue(QUEUE, connection=rt.redis)
        assert ScheduledJobRegistry(queue=q).count == 1  # rq Retry scheduled the wechat delivery again
        assert ("reminder_attempt_failed", "45011") in [(a, p.get("error_code")) for a, p in _actions(rt, case_id)]
        time.sleep(1.2)
        scheduler = RQScheduler([q], connection=rt.redis)  # what the worker's scheduler does every second
        assert scheduler.acquire_locks()
        scheduler.enqueue_scheduled_jobs()
        scheduler.release_locks()
        rworld.work()
    assert rworld.deliveries(case_id) == [(0, "sms", "sent"), (0, "wechat", "failed")]
    failed = [p for a, p in _actions(rt, case_id) if a == "reminder_failed"]
    assert len(failed) == 1 and failed[0]["attempt"] == 2
    with session_scope(rt.session_factory) as s:
        alerts = s.scalars(select(HrAlert).where(HrAlert.case_id == case_id, HrAlert.kind == "reminder_failed")).all()
        assert len(alerts) == 1 and "wechat" in alerts[0].message
