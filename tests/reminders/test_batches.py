"""Batched deliveries: one rq job carries QIANLI_REMINDER_BATCH_SIZE deliveries and sends them
concurrently; still exactly one send per (case, slot, channel), every send recorded as evidence,
jobs the sweep can see, provider errors retried one by one."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

from rq import Queue
from rq.registry import ScheduledJobRegistry
from sqlalchemy import event, select

from identity.sms import DevOutboxSmsGateway, SmsGatewayError, SmsSendResult
from qianli.db import session_scope
from qianli.models import EvidenceEntry, ReminderDelivery, ResignationCase
from qianli.services import cases as case_svc
from cases.states import CaseAction
from qianli.services.evidence import verify_case_chain
from qianli.services.reminders import QUEUE, deliver_batch, enqueue_deliveries, sweep
from qianli.services.reminders.queue import jobs_alive


class SlowGateway(DevOutboxSmsGateway):
    """The development outbox, answering after ``delay`` seconds, counting calls in flight."""

    def __init__(self, redis, delay: float, fail_phones: frozenset[str] = frozenset()):
        super().__init__(redis)
        self.delay, self.fail_phones = delay, fail_phones
        self.in_flight = self.max_in_flight = self.calls = 0
        self._lock = threading.Lock()

    def send(self, phone: str, template: str, params: dict[str, str]) -> SmsSendResult:
        with self._lock:
            self.calls += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            time.sleep(self.delay)
            if phone in self.fail_phones:
                raise SmsGatewayError("dev", "LimitExceeded.PhoneNumberThirtySecondLimit", "too often", retryable=True)
            return super().send(phone, template, params)
        finally:
            with self._lock:
                self.in_flight -= 1


def _cases(rworld, n):
    """n cases whose notice (slot 0, SMS) is due, their single-delivery jobs dropped from Redis."""
    out = [rworld.open_case(datetime.now(timezone.utc) - timedelta(minutes=5), name=f"员工{i}") for i in range(n)]
    q = Queue(QUEUE, connection=rworld.rt.redis)
    for jid in q.job_ids:
        rworld.rt.redis.delete(f"rq:job:{jid}")
    q.empty()
    return out


def _statuses(rt, case_ids):
    with session_scope(rt.session_factory) as s:
        return {(d.case_id, d.slot, d.channel): (d.status, d.attempts)
                for d in s.scalars(select(ReminderDelivery).where(ReminderDelivery.case_id.in_(case_ids)))}


def test_the_sweep_enqueues_batches_that_are_sent_once_each(rworld):
    rt = rworld.rt
    rworld.configure(quiet_hours="", reminder_batch_size=3)
    cases = _cases(rworld, 7)
    ids = [c for c, _, _ in cases]
    res = sweep(rt)
    assert res.recovered == 7 and res.enqueued == 7
    q = Queue(QUEUE, connection=rt.redis)
    jobs = q.get_jobs()
    assert sorted(len(j.args[0]) if j.func_name.endswith("deliver_reminders") else 1 for j in jobs) == [1, 3, 3]
    assert all(jobs_alive(rt, [(c, 0, "sms") for c in ids]))
    assert sweep(rt).recovered == 0  # every delivery is carried by a live job, its own or its batch's
    enqueue_deliveries(rt, [(c, 0, "sms") for c in ids])  # the same deliveries enqueued twice
    rworld.work()
    assert _statuses(rt, ids) == {(c, 0, "sms"): ("sent", 1) for c in ids}
    for _c, _, phone in cases:
        assert len(rworld.outbox(phone)) == 1
    with session_scope(rt.session_factory) as s:
        for c in ids:
            sent = s.scalars(select(EvidenceEntry).where(EvidenceEntry.case_id == c,
                                                         EvidenceEntry.action == "reminder_sent")).all()
            assert len(sent) == 1 and sent[0].payload["channel"] == "sms"
            assert verify_case_chain(s, c, rworld.company_id).ok
    assert not any(jobs_alive(rt, [(c, 0, "sms") for c in ids]))  # finished batch jobs are gone (result_ttl 0)
    assert sweep(rt).recovered == 0


def test_a_batch_sends_concurrently(rworld):
    rt = rworld.rt
    rworld.configure(quiet_hours="", reminder_send_concurrency=8)
    gw = SlowGateway(rt.redis, delay=0.3)
    rt.override(sms_gateway=gw)
    cases = _cases(rworld, 8)
    t0 = time.monotonic()
    out = deliver_batch(rt, [(c, 0, "sms") for c, _, _ in cases])
    elapsed = time.monotonic() - t0
    assert [o.status for o in out] == ["sent"] * 8
    assert gw.calls == 8 and 2 <= gw.max_in_flight <= 8
    assert elapsed < 8 * 0.3  # one after the other would take 2.4 s
    # the same batch again: every row is already sent, nothing goes out
    again = deliver_batch(rt, [(c, 0, "sms") for c, _, _ in cases])
    assert [(o.status, o.detail) for o in again] == [("skipped", "already sent")] * 8 and gw.calls == 8


def test_a_provider_error_in_a_batch_is_retried_on_its_own(rworld):
    rt = rworld.rt
    rworld.configure(quiet_hours="", reminder_retry_intervals="60")
    cases = _cases(rworld, 3)
    bad = cases[1][2]
    rt.override(sms_gateway=SlowGateway(rt.redis, delay=0.0, fail_phones=frozenset({bad})))
    sweep(rt)
    rworld.work()
    ids = [c for c, _, _ in cases]
    st = _statuses(rt, ids)
    assert st[(ids[0], 0, "sms")] == ("sent", 1) and st[(ids[2], 0, "sms")] == ("sent", 1)
    assert st[(ids[1], 0, "sms")] == ("pending", 1)  # will be retried
    q = Queue(QUEUE, connection=rt.redis)
    scheduled = ScheduledJobRegistry(queue=q).get_job_ids()
    assert scheduled == [f"reminder-{ids[1]}-0-sms"]  # its own job, the retry interval away
    assert jobs_alive(rt, [(ids[1], 0, "sms")]) == [True]
    with session_scope(rt.session_factory) as s:
        acts = [e.action for e in s.scalars(select(EvidenceEntry).where(EvidenceEntry.case_id == ids[1]))]
    assert "reminder_attempt_failed" in acts and "reminder_sent" not in acts


def _statements(rt, fn):
    """(fn's result, the SQL statements it ran)."""
    seen: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    event.listen(rt.engine, "before_cursor_execute", count)
    try:
        return fn(), seen
    finally:
        event.remove(rt.engine, "before_cursor_execute", count)


def test_a_batch_runs_the_same_statements_for_3_or_12_deliveries(rworld):
    """The database work of a batch is per batch, not per delivery: claim, case check, record and the
    hash-chained evidence entries each take a fixed number of statements."""
    rt = rworld.rt
    rworld.configure(quiet_hours="")
    cases = _cases(rworld, 15)
    small, n_small = _statements(rt, lambda: deliver_batch(rt, [(c, 0, "sms") for c, _, _ in cases[:3]]))
    large, n_large = _statements(rt, lambda: deliver_batch(rt, [(c, 0, "sms") for c, _, _ in cases[3:]]))
    assert [o.status for o in small + large] == ["sent"] * 15
    assert len(n_small) == len(n_large) <= 12, n_large
    with session_scope(rt.session_factory) as s:
        for c, _, _ in cases:
            assert verify_case_chain(s, c, rworld.company_id).ok


def test_a_batch_with_both_channels_and_a_submitted_letter_keeps_every_chain(rworld):
    """Two deliveries of one case in one batch are chained in order; a case whose letter arrived
    after the sweep is dropped with its evidence; a delivery listed twice is sent once."""
    rt = rworld.rt
    rworld.configure(quiet_hours="", wechat_subscribe_template_id="TPL-letter-due")
    opened = [rworld.open_case(datetime.now(timezone.utc) - timedelta(minutes=5), name=f"员工{i}", openid=f"o-{i}")
              for i in range(3)]
    q = Queue(QUEUE, connection=rt.redis)
    for jid in q.job_ids:
        rt.redis.delete(f"rq:job:{jid}")
    q.empty()
    ids = [c for c, _, _ in opened]
    with session_scope(rt.session_factory) as s:
        case_svc.apply_action(s, s.get(ResignationCase, ids[1]), CaseAction.SUBMIT_LETTER, actor="employee:x")
    items = [(c, 0, ch) for c in ids for ch in ("wechat", "sms")] + [(ids[0], 0, "sms")]
    out = deliver_batch(rt, items)
    assert [o.status for o in out] == ["sent", "sent", "dropped", "dropped", "sent", "sent", "skipped"]
    assert _statuses(rt, ids) == {(ids[0], 0, "sms"): ("sent", 1), (ids[0], 0, "wechat"): ("sent", 1),
                                  (ids[1], 0, "sms"): ("dropped", 1), (ids[1], 0, "wechat"): ("dropped", 1),
                                  (ids[2], 0, "sms"): ("sent", 1), (ids[2], 0, "wechat"): ("sent", 1)}
    assert len(rworld.outbox(opened[0][2])) == 1 and rworld.outbox(opened[1][2]) == []
    with session_scope(rt.session_factory) as s:
        for c in ids:
            assert verify_case_chain(s, c, rworld.company_id).ok
            entries = s.scalars(select(EvidenceEntry).where(EvidenceEntry.case_id == c)
                                .order_by(EvidenceEntry.id)).all()
            assert [e.seq for e in entries] == list(range(1, len(entries) + 1))  # stored order is chain order
            tail = [(e.action, e.payload["channel"]) for e in entries if e.action in ("reminder_sent", "reminder_dropped")]
            want = "reminder_dropped" if c == ids[1] else "reminder_sent"
            assert sorted(tail) == [(want, "sms"), (want, "wechat")]
            if c != ids[1]:
                assert {e.payload["attempt"] for e in entries if e.action == "reminder_sent"} == {1}
