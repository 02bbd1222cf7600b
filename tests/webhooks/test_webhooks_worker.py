"""Deliveries run by a real rq worker (in-process, burst) from real Redis: the first attempt is
enqueued after the event's transaction commits, a failed attempt schedules its retry with rq's
scheduler at the configured delay, and the retry succeeds once the receiver is back."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import time_machine
from rq import Queue, SimpleWorker
from rq.registry import ScheduledJobRegistry

from qianli.db import new_id, session_scope
from qianli.models import WebhookDelivery
from qianli.services import webhooks as svc
from tests.webhooks.receiver import WebhookReceiver


def _work(rt) -> None:
    SimpleWorker([Queue(svc.QUEUE, connection=rt.redis)], connection=rt.redis).work(
        burst=True, with_scheduler=True, logging_level="WARNING")


def test_worker_delivers_and_retries_on_schedule(runtime, factory):
    company = factory.company(code=f"wk{new_id()[:6]}")
    start = datetime.now(timezone.utc)
    with WebhookReceiver() as receiver, time_machine.travel(start, tick=True) as clock:
        with session_scope(runtime.session_factory) as s:
            created = svc.create_endpoint(s, runtime, company_id=company.id, name="OA", url=receiver.url,
                                          event_types=["case.closed"], actor="test")
        receiver.set_secrets(created.secret)
        receiver.set_mode("error")
        with session_scope(runtime.session_factory) as s:
            [d] = svc.fan_out(s, runtime, event_id=new_id(), company_id=company.id, event_type="case.closed",
                              data={"case_id": "c9"})
            did = d.id
            assert Queue(svc.QUEUE, connection=runtime.redis).count == 0  # nothing before the commit
        assert Queue(svc.QUEUE, connection=runtime.redis).count == 1
        _work(runtime)
        scheduled = ScheduledJobRegistry(svc.QUEUE, connection=runtime.redis)
        assert scheduled.get_job_ids() == [f"webhook-{did}-2"]
        receiver.set_mode("ok")
        _work(runtime)  # not due yet: stays scheduled
        assert len(receiver.received) == 1
        clock.shift(timedelta(seconds=6))
        _work(runtime)
    with session_scope(runtime.session_factory) as s:
        d = s.get(WebhookDelivery, did)
        assert d.status == "succeeded" and d.attempts == 2
    assert [r.verified for r in receiver.received] == [False, True]
    assert receiver.received[1].json["data"] == {"case_id": "c9"}
