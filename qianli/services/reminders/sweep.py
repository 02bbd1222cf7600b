"""The sweep (the scheduler runs it every QIANLI_SWEEP_INTERVAL_S): due schedules become pending
deliveries in bulk and are enqueued; lost or stuck deliveries are recovered; the day's HR digests are enqueued."""

from __future__ import annotations

import contextlib
import logging
import os
import time as _time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from cases.clock import beijing_date
from cases.reminders import (LETTER_STATES, ReminderPolicy, schedule_decision)
from qianli.db import session_scope, utcnow
from qianli.models import (Employee, HrDigest, ReminderDelivery, ReminderSchedule,
                           ResignationCase)
from qianli.runtime import Runtime
from qianli.services.reminders.common import SWEEP_BATCH, _begin_write, reminder_policy
from qianli.services.reminders.queue import enqueue_deliveries, enqueue_digests, jobs_alive

__all__ = ["SweepResult", "sweep"]

log = logging.getLogger(__name__)


@dataclass
class SweepResult:
    scheduled: int = 0        # new delivery rows from due schedules
    enqueued: int = 0         # jobs put on the queue (new + recovered)
    recovered: int = 0        # deliveries re-enqueued (lost job or dead worker)
    paused: int = 0
    stopped: int = 0
    digests_enqueued: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def sweep(rt: Runtime, now: datetime | None = None, *, batch: int = SWEEP_BATCH, digests: bool = True) -> SweepResult:
    """Find due reminders in bulk, record them, enqueue them; recover lost jobs; HR digests.

    Safe to run concurrently (a Redis lock lets one sweep run at a time; a second one returns
    at once) and to repeat (everything it does is keyed by the database).
    """
    t0 = _time.perf_counter()
    now = now or utcnow()
    res = SweepResult()
    lock = rt.redis.lock("qianli:reminders:sweep", timeout=max(60, rt.settings.sweep_interval_s * 5),
                         blocking_timeout=0)
    if not lock.acquire(blocking=False):
        log.info("another sweep is running; skipped")
        return res
    try:
        _sweep_schedules(rt, now, res, batch)
        _recover(rt, now, res)
        if digests:
            _enqueue_digests(rt, now, res)
    finally:
        with contextlib.suppress(Exception):  # an expired lock is harmless here
            lock.release()
    res.seconds = _time.perf_counter() - t0
    return res


# Bulk statements of the sweep as plain DBAPI executemany with tuples: SQLAlchemy's per-value
# processing would cost more than the database work itself at 100,000 rows.
_DELIVERY_COLS = ("id", "company_id", "case_id", "slot", "channel", "kind", "params", "status", "attempts",
                  "scheduled_for", "enqueued_at", "created_at")
_INSERT_DELIVERY = (f"INSERT INTO reminder_deliveries ({', '.join(_DELIVERY_COLS)}) "
                    f"VALUES ({', '.join(['{p}'] * len(_DELIVERY_COLS))})")
_ADVANCE_SCHEDULE = ("UPDATE reminder_schedules SET slot = {p}, next_due_at = {p}, last_scheduled_at = {p}, "
                     "updated_at = {p} WHERE id = {p}")


def _new_ids(n: int) -> list[str]:
    """``n`` random 128-bit hex ids (like qianli.db.new_id) from one read of the system's randomness."""
    raw = os.urandom(16 * n).hex()
    return [raw[i:i + 32] for i in range(0, 32 * n, 32)]


def _time_binder(session: Session) -> Any:
    """What UTCDateTime binds for an instant: a UTC string on SQLite (each distinct instant
    formatted once), the aware datetime itself for psycopg."""
    if session.get_bind().dialect.name != "sqlite":
        return lambda t: t
    formatted: dict[datetime, str] = {}

    def fmt(t: datetime) -> str:
        out = formatted.get(t)
        if out is None:
            out = formatted[t] = t.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
        return out

    return fmt


def _bulk(session: Session, sql: str, rows: list[tuple[Any, ...]]) -> None:
    """executemany of tuples already in the driver's form (see _time_binder)."""
    conn = session.connection()
    conn.exec_driver_sql(sql.replace("{p}", "?" if conn.dialect.name == "sqlite" else "%s"), rows)


def _sweep_schedules(rt: Runtime, now: datetime, res: SweepResult, batch: int) -> None:
    s = rt.settings
    pol = reminder_policy(s)
    wechat_ok = bool(s.wechat_subscribe_template_id)
    # Redis works on one batch while the database works on the next one.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="reminder-enqueue") as pool:
        pending: Future[int] | None = None
        try:
            while True:
                items, more = _sweep_batch(rt, now, res, batch, pol, wechat_ok)
                if pending is not None:
                    res.enqueued += pending.result()
                    pending = None
                if items:
                    pending = pool.submit(enqueue_deliveries, rt, items)
                if not more:
                    break
        finally:
            if pending is not None:
                res.enqueued += pending.result()


def _sweep_batch(rt: Runtime, now: datetime, res: SweepResult, batch: int, pol: ReminderPolicy,
                 wechat_ok: bool) -> tuple[list[tuple[str, int, str]], bool]:
    """One batch of due schedules, committed: (the deliveries to enqueue, whether there may be more)."""
    with session_scope(rt.session_factory) as session:
        _begin_write(session)
        rows = session.execute(
            select(ReminderSchedule.id, ReminderSchedule.case_id, ReminderSchedule.company_id,
                   ReminderSchedule.slot, ReminderSchedule.next_due_at, ResignationCase.state,
                   Employee.wechat_openid)
            .join(ResignationCase, ResignationCase.id == ReminderSchedule.case_id)
            .join(Employee, Employee.id == ResignationCase.employee_id)
            .where(ReminderSchedule.state == "active", ReminderSchedule.next_due_at <= now)
            .order_by(ReminderSchedule.next_due_at).limit(batch)).all()
        if not rows:
            return [], False
        sched_updates, deliveries, items, pauses, stops = [], [], [], [], []
        ids = iter(_new_ids(2 * len(rows)))
        bind_t = _time_binder(session)
        now_b = bind_t(now)
        for sid, case_id, company_id, slot, due_at, state, openid in rows:
            decision = schedule_decision(state)
            if decision.action == "pause":
                pauses.append(sid)
                continue
            if decision.action == "stop":
                stops.append((sid, decision.reason))
                continue
            # A sweep that ran late (scheduler down) sends one reminder now, not a burst.
            nxt = pol.next_send_at(due_at)
            while nxt <= now:
                nxt = pol.next_send_at(nxt)
            channels = (["wechat"] if (wechat_ok and openid) else ["sms"]) if slot > 0 else \
                (["sms", "wechat"] if (wechat_ok and openid) else ["sms"])
            due_b = bind_t(due_at)
            for ch in channels:
                deliveries.append((next(ids), company_id, case_id, slot, ch, "letter_reminder", "{}", "pending", 0,
                                   due_b, now_b, now_b))
                items.append((case_id, slot, ch))
            sched_updates.append((slot + 1, bind_t(nxt), due_b, now_b, sid))
        if deliveries:
            _bulk(session, _INSERT_DELIVERY, deliveries)
        if sched_updates:
            _bulk(session, _ADVANCE_SCHEDULE, sched_updates)
        if pauses:
            session.execute(update(ReminderSchedule).where(ReminderSchedule.id.in_(pauses))
                            .values(state="paused", stop_reason="letter_submitted", updated_at=now))
        for sid, reason in stops:
            session.execute(update(ReminderSchedule).where(ReminderSchedule.id == sid)
                            .values(state="stopped", stop_reason=reason, updated_at=now))
        res.scheduled += len(deliveries)
        res.paused += len(pauses)
        res.stopped += len(stops)
    return items, len(rows) >= batch


def _recover(rt: Runtime, now: datetime, res: SweepResult) -> None:
    """Deliveries that should be running but are not: never enqueued (quiet hours, Redis down),
    enqueued but their job is gone from Redis, or claimed by a worker that died (lease expired)."""
    with session_scope(rt.session_factory) as session:
        _begin_write(session)
        # rows this very sweep enqueued (enqueued_at == now) are not looked at again
        rows = session.execute(
            select(ReminderDelivery.id, ReminderDelivery.case_id, ReminderDelivery.slot, ReminderDelivery.channel,
                   ReminderDelivery.status, ReminderDelivery.enqueued_at)
            .where(or_(and_(ReminderDelivery.status == "pending", ReminderDelivery.scheduled_for <= now,
                            or_(ReminderDelivery.enqueued_at.is_(None), ReminderDelivery.enqueued_at < now)),
                       and_(ReminderDelivery.status == "sending", ReminderDelivery.lease_until < now)))).all()
        if not rows:
            return
        alive = jobs_alive(rt, [(r.case_id, r.slot, r.channel) for r in rows])
        # no job (lost with Redis, never enqueued) or a job rq gave up on (failed for a reason other than
        # the provider, e.g. the database was unreachable on every attempt): enqueue it again
        todo = [r for r, ok in zip(rows, alive, strict=True) if r.enqueued_at is None or not ok or r.status == "sending"]
        if not todo:
            return
        session.execute(update(ReminderDelivery).where(ReminderDelivery.id.in_([r.id for r in todo]))
                        .values(enqueued_at=now))
    res.recovered += len(todo)
    res.enqueued += enqueue_deliveries(rt, [(r.case_id, r.slot, r.channel) for r in todo])


def _enqueue_digests(rt: Runtime, now: datetime, res: SweepResult) -> None:
    """Once a day (outside quiet hours), one job per company with overdue letters."""
    pol = reminder_policy(rt.settings)
    if pol.quiet is not None and pol.quiet.contains(now):
        return
    today = beijing_date(now)
    with session_scope(rt.session_factory) as session:
        companies = session.scalars(
            select(ResignationCase.company_id).distinct()
            .where(ResignationCase.state.in_(sorted(LETTER_STATES)), ResignationCase.letter_due_date < today)).all()
        if not companies:
            return
        done = set(session.scalars(select(HrDigest.company_id).distinct().where(HrDigest.day == today,
                                                                                HrDigest.company_id.in_(companies))))
    todo = [c for c in companies if c not in done]
    if not todo:
        return
    res.digests_enqueued += enqueue_digests(rt, todo, today)
