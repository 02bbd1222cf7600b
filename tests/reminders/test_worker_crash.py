"""A real ``qianli worker`` (rq) process killed with SIGKILL in the middle of a send, then a restart:
exactly one delivery for the slot."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select

from qianli.db import session_scope
from qianli.models import ReminderDelivery
from qianli.services.reminders import sweep

pytestmark = pytest.mark.slow

QIANLI = str(Path(sys.executable).with_name("qianli"))


def _worker(rt, **env):
    s = rt.settings
    full = {**os.environ, "QIANLI_ENV": "test", "QIANLI_VAR_DIR": str(s.var_dir), "DATABASE_URL": s.database_url,
            "REDIS_URL": s.redis_url, "QIANLI_QUIET_HOURS": "off", "QIANLI_LOG_LEVEL": "WARNING", **env}
    log = open(Path(s.var_dir) / "worker.log", "ab")  # noqa: SIM115 - closed by the caller via _stop
    # own process group: the worker forks rq's scheduler, which a SIGKILL of the worker leaves behind
    proc = subprocess.Popen([QIANLI, "worker"], env=full, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    proc.log = log
    return proc


def _stop(proc, sig=signal.SIGTERM):
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # whatever the worker left behind (its scheduler process)
    proc.log.close()


def _row(rt, case_id):
    with session_scope(rt.session_factory) as s:
        d = s.scalar(select(ReminderDelivery).where(ReminderDelivery.case_id == case_id, ReminderDelivery.slot == 0))
        return d.status, d.attempts


def _wait(pred, timeout=30.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.1)
    return False


def test_kill_9_mid_send_then_restart_sends_exactly_once(rworld):
    rt = rworld.rt
    rworld.configure(quiet_hours="", reminder_send_lease_s=3)
    case_id, _, phone = rworld.open_case(datetime.now(timezone.utc) - timedelta(minutes=1))  # notice job queued
    slow = _worker(rt, QIANLI_REMINDER_DEV_SEND_DELAY_S="30", QIANLI_REMINDER_SEND_LEASE_S="3")
    try:
        assert _wait(lambda: _row(rt, case_id)[0] == "sending")
        os.kill(slow.pid, signal.SIGKILL)  # in the middle of the send
        slow.wait(10)
    finally:
        _stop(slow, signal.SIGKILL)
    assert rworld.outbox(phone) == [] and _row(rt, case_id) == ("sending", 1)
    fresh = _worker(rt, QIANLI_REMINDER_SEND_LEASE_S="3")
    try:
        time.sleep(3.2)  # the dead worker's lease runs out
        assert sweep(rt).recovered == 1
        assert _wait(lambda: _row(rt, case_id)[0] == "sent")
        time.sleep(1.0)
        sweep(rt)  # nothing left to recover
        time.sleep(1.0)
    finally:
        _stop(fresh)
    assert len(rworld.outbox(phone)) == 1
    assert _row(rt, case_id) == ("sent", 2)


def test_kill_9_mid_batch_then_restart_sends_each_exactly_once(rworld):
    """A worker killed while a batch's sends are under way: every claimed delivery of the batch is sent
    again after the lease, once, and recorded once."""
    from rq import Queue

    from qianli.services.reminders import QUEUE

    rt = rworld.rt
    rworld.configure(quiet_hours="", reminder_send_lease_s=3, reminder_batch_size=4)
    opened = [rworld.open_case(datetime.now(timezone.utc) - timedelta(minutes=1), name=f"员工{i}") for i in range(4)]
    q = Queue(QUEUE, connection=rt.redis)  # drop the single notice jobs: the sweep enqueues one batch of 4
    for jid in q.job_ids:
        rt.redis.delete(f"rq:job:{jid}")
    q.empty()
    assert sweep(rt).recovered == 4
    assert [len(j.args[0]) for j in q.get_jobs()] == [4]
    ids = [c for c, _, _ in opened]
    slow = _worker(rt, QIANLI_REMINDER_DEV_SEND_DELAY_S="30", QIANLI_REMINDER_SEND_LEASE_S="3",
                   QIANLI_REMINDER_BATCH_SIZE="4")
    try:
        assert _wait(lambda: all(_row(rt, c)[0] == "sending" for c in ids))
        os.kill(slow.pid, signal.SIGKILL)  # in the middle of the batch's sends
        slow.wait(10)
    finally:
        _stop(slow, signal.SIGKILL)
    assert rworld.outbox() == [] and [_row(rt, c) for c in ids] == [("sending", 1)] * 4
    fresh = _worker(rt, QIANLI_REMINDER_SEND_LEASE_S="3", QIANLI_REMINDER_BATCH_SIZE="4")
    try:
        time.sleep(3.2)  # the dead worker's lease runs out
        assert sweep(rt).recovered == 4
        assert _wait(lambda: all(_row(rt, c)[0] == "sent" for c in ids))
        time.sleep(1.0)
        assert sweep(rt).recovered == 0  # nothing left to recover
        time.sleep(1.0)
    finally:
        _stop(fresh)
    for _c, _, phone in opened:
        assert len(rworld.outbox(phone)) == 1
    assert [_row(rt, c) for c in ids] == [("sent", 2)] * 4
