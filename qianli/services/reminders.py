"""Reminders: chase the signed letter until it arrives, and log every attempt as evidence.

The database is the source of truth (``qianli.models.reminders``):

- ``on_case_opened`` creates the case's schedule and the slot-0 notice deliveries (pending);
  after commit the due ones are enqueued.
- ``sweep`` (the scheduler runs it every ``QIANLI_SWEEP_INTERVAL_S``) turns due schedule rows into
  pending delivery rows in bulk, advances the schedules, and enqueues one RQ job per delivery with
  the deterministic id ``reminder-{case}-{slot}-{channel}``. It also re-enqueues deliveries whose
  job Redis has lost (a flushed or restarted Redis) or whose worker died mid-send (lease expired),
  pauses/stops schedules whose case no longer awaits the letter, and sends the daily HR digests.
- ``deliver`` runs in a worker: re-reads the case (a letter submitted meanwhile: ``dropped``),
  claims the delivery row (``pending`` -> ``sending`` with a lease; a duplicate or retried job
  finds it claimed or finished and does nothing), sends through the channel, records ``sent`` /
  ``failed``, and appends every attempt to the case's evidence chain (actions ``reminder_*``).

Channels: the WeChat subscribe message (errcode 43101, no quota left, falls back to SMS) and
SMS (identity's gateways; the development outbox in development). The notice (slot 0) and
notifications go on both channels, later reminders on WeChat when the employee is bound and a
template is configured, else SMS.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time as _time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, Iterable, cast

from sqlalchemy import and_, bindparam, func, or_, select, text, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from cases.clock import beijing_date
from cases.evidence_kinds import EvidenceKind
from cases.reminders import (LETTER_STATES, Message, ReminderPolicy, content_digest, hr_digest_message, is_overdue,
                             letter_message, notification_message, schedule_decision)
from identity.sms import SmsGatewayError, mask_phone
from identity.wechat import WeChatApiError
from qianli.db import on_commit, session_scope, utcnow
from qianli.models import (Employee, HrAlert, HrDigest, HrUser, ReminderDelivery, ReminderSchedule,
                           ResignationCase)
from qianli.runtime import Runtime
from qianli.services.alerts import raise_alert
from qianli.services.employees import employee_phone
from qianli.services.evidence import append_case_evidence, append_evidence
from qianli.settings import Settings

__all__ = ["QUEUE", "ACTOR", "SMS_TEMPLATE", "reminder_policy", "job_id", "on_case_opened", "on_letter_submitted", "notify_employee", "stop_reminders",
           "sweep", "SweepResult", "deliver", "DeliveryOutcome", "send_hr_digests", "list_case_reminders",
           "set_hr_phone", "hr_phone", "RetryableSendError", "enqueue_deliveries"]

log = logging.getLogger(__name__)

QUEUE = "reminders"
ACTOR = "system:reminders"
SMS_TEMPLATE = "reminder"  # identity's logical SMS template (QIANLI_SMS_TEMPLATE_REMINDER)
DELIVER_FUNC = "jobs.reminders.deliver_reminder"
DIGEST_FUNC = "jobs.reminders.send_hr_digests_job"
SWEEP_BATCH = 5000
DIGEST_ROLES = ("hr_specialist", "hr_manager", "dept_head")


class RetryableSendError(Exception):
    """A provider error worth retrying (rq ``Retry`` re-runs the job)."""


def reminder_policy(settings: Settings) -> ReminderPolicy:
    return ReminderPolicy.from_settings(settings.reminder_interval_s, settings.quiet_hours)


def job_id(case_id: str, slot: int, channel: str) -> str:
    """Deterministic: ``reminder-{case}-{slot}-{channel}`` (notification slots as n1, n2...; rq ids allow
    only letters, digits, '-' and '_')."""
    return f"reminder-{case_id}-{slot if slot >= 0 else f'n{-slot}'}-{channel}"


def _wechat_ready(settings: Settings, openid: str | None) -> bool:
    return bool(openid and settings.wechat_subscribe_template_id)


def _channels(settings: Settings, openid: str | None, slot: int) -> list[str]:
    """Slot 0 (the notice) and notifications (slot < 0): SMS and WeChat; reminders: one channel."""
    wechat = _wechat_ready(settings, openid)
    if slot <= 0:
        return ["sms", "wechat"] if wechat else ["sms"]
    return ["wechat"] if wechat else ["sms"]


def _begin_write(session: Session) -> None:
    """SQLite: take the write lock first (like BEGIN IMMEDIATE). A transaction that reads and then
    writes while another process has written meanwhile fails at once with 'database is locked'
    (the busy timeout does not apply to a stale read snapshot); one that starts by writing waits."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("UPDATE reminder_schedules SET slot = slot WHERE 1 = 0"))


# ---- enqueueing ---------------------------------------------------------------------------------

def _retry(settings: Settings):
    from rq import Retry

    intervals = list(settings.reminder_retry_schedule())
    return Retry(max=len(intervals), interval=intervals) if intervals else None


# Creates rq jobs in bulk exactly as rq stores them (one hash per job from a template that rq itself
# built, plus the queue entry), one script call per 1,000 jobs: rq's own enqueue_many spends ~0.2 ms
# per job in Python, which would make a 100,000-case sweep take 20+ seconds.
_BULK_ENQUEUE_LUA = """
local nf = tonumber(ARGV[1])
local base = {}
for i = 2, 1 + 2 * nf do base[#base + 1] = ARGV[i] end
local i = 2 + 2 * nf
local n = 0
while i <= #ARGV do
  local id = ARGV[i]
  redis.call('HSET', 'rq:job:' .. id, 'data', ARGV[i + 1], 'description', ARGV[i + 2], unpack(base))
  redis.call('RPUSH', KEYS[1], id)
  i = i + 3
  n = n + 1
end
redis.call('SADD', KEYS[2], KEYS[1])
return n
"""


def _job_template(rt: Runtime, queue: Any) -> tuple[list[bytes], Any]:
    """The hash fields rq writes for a reminder job, built by rq itself, minus the per-job ones."""
    from rq.utils import utcformat

    s = rt.settings
    job = queue.create_job(DELIVER_FUNC, args=("template", 0, "sms"), job_id="reminder-template",
                           timeout=max(5, s.reminder_send_lease_s - 30), result_ttl=0, failure_ttl=7 * 86400,
                           retry=_retry(s), description="template")
    fields = job.to_dict()
    fields.update({"origin": queue.name, "enqueued_at": utcformat(utcnow().replace(tzinfo=None)), "status": "queued"})
    flat: list[bytes] = []
    for k, v in fields.items():
        if k in ("data", "description", "id"):
            continue
        v = getattr(v, "value", v)
        flat += [k.encode(), v if isinstance(v, bytes) else str(v).encode()]
    return flat, job.serializer


def enqueue_deliveries(rt: Runtime, items: Iterable[tuple[str, int, str]]) -> int:
    """One RQ job per (case, slot, channel) with its deterministic id, in batches of 1,000.

    A Redis failure is logged, not raised: the delivery rows stay pending and the next sweep
    enqueues them again (the database is the source of truth).
    """
    import zlib

    from rq import Queue

    items = list(items)
    if not items:
        return 0
    q = Queue(QUEUE, connection=rt.redis)
    n = 0
    try:
        base, serializer = _job_template(rt, q)
        script = rt.redis.register_script(_BULK_ENQUEUE_LUA)
        for i in range(0, len(items), 1000):
            argv: list[Any] = [len(base) // 2, *base]
            for c, sl, ch in items[i:i + 1000]:
                argv += [job_id(c, sl, ch), zlib.compress(serializer.dumps((DELIVER_FUNC, None, (c, sl, ch), {}))),
                         f"reminder {c} slot {sl} {ch}"]
            n += int(script(keys=[q.key, Queue.redis_queues_keys], args=argv))
    except Exception:  # noqa: BLE001 - Redis down: the sweep re-enqueues from the database
        log.exception("enqueueing %d reminder deliveries failed; the sweep will retry", len(items) - n)
    return n


def _enqueue_after_commit(session: Session, rt: Runtime, items: list[tuple[str, int, str]]) -> None:
    if items:
        on_commit(session, lambda: enqueue_deliveries(rt, items))


# ---- opening a case, notifications ------------------------------------------------------------

def on_case_opened(session: Session, rt: Runtime, case: ResignationCase, *, now: datetime | None = None) -> ReminderSchedule:
    """Create the case's schedule and the "letter due" notice (slot 0), sent after commit
    (or when quiet hours end: the sweep enqueues it then)."""
    now = now or utcnow()
    pol = reminder_policy(rt.settings)
    send_at = pol.first_send_at(now)
    employee = session.get(Employee, case.employee_id)
    sched = ReminderSchedule(company_id=case.company_id, case_id=case.id, state="active", slot=1,
                             next_due_at=pol.next_send_at(send_at), last_scheduled_at=send_at)
    session.add(sched)
    due_now = send_at <= now
    items = []
    for ch in _channels(rt.settings, employee.wechat_openid if employee else None, 0):
        session.add(ReminderDelivery(company_id=case.company_id, case_id=case.id, slot=0, channel=ch,
                                     kind="letter_due_notice", status="pending", scheduled_for=send_at,
                                     enqueued_at=now if due_now else None))
        items.append((case.id, 0, ch))
    session.flush()
    append_evidence(session, case, ACTOR, EvidenceKind.REMINDER_SCHEDULE_CREATED, {
        "letter_due_date": case.letter_due_date.isoformat(), "notice_scheduled_for": send_at,
        "interval_s": rt.settings.reminder_interval_s, "quiet_hours": rt.settings.quiet_hours,
        "channels": [i[2] for i in items]}, occurred_at=now)
    if due_now:
        _enqueue_after_commit(session, rt, items)
    return sched


def notify_employee(session: Session, rt: Runtime, case: ResignationCase, kind: str, params: dict[str, Any],
                    *, now: datetime | None = None) -> list[ReminderDelivery]:
    """Tell the employee about a decision (SMS + subscribe message after commit), recorded as evidence.

    Kinds: case_returned (reminders resume), agreed_last_day_proposed, withdrawal_consented,
    withdrawal_declined. Notifications use negative slots (-1, -2, ...) of the case.
    """
    notification_message(kind, name="", params=params)  # refuses an unknown kind before writing anything
    now = now or utcnow()
    pol = reminder_policy(rt.settings)
    send_at = pol.allowed(now)
    lowest = session.scalar(select(func.min(ReminderDelivery.slot)).where(ReminderDelivery.case_id == case.id))
    slot = min(-1, (lowest or 0) - 1)
    employee = session.get(Employee, case.employee_id)
    due_now = send_at <= now
    rows, items = [], []
    for ch in _channels(rt.settings, employee.wechat_openid if employee else None, slot):
        d = ReminderDelivery(company_id=case.company_id, case_id=case.id, slot=slot, channel=ch, kind=kind,
                             params={k: str(v) for k, v in params.items() if v is not None}, status="pending",
                             scheduled_for=send_at, enqueued_at=now if due_now else None)
        session.add(d)
        rows.append(d)
        items.append((case.id, slot, ch))
    if kind == "case_returned":  # the employee must sign again: reminders resume one interval from now
        sched = session.scalar(select(ReminderSchedule).where(ReminderSchedule.case_id == case.id))
        if sched is not None and sched.state != "stopped":
            sched.state, sched.stop_reason = "active", None
            sched.next_due_at = pol.next_send_at(send_at)
    session.flush()  # the send itself is recorded in the evidence chain by deliver()
    if due_now:
        _enqueue_after_commit(session, rt, items)
    return rows


def stop_reminders(session: Session, case: ResignationCase, *, reason: str, now: datetime | None = None) -> int:
    """Stop the case's reminders for good (e.g. the employee disputes the notice): the schedule is
    stopped and deliveries not yet sent are dropped. Returns how many deliveries were dropped."""
    now = now or utcnow()
    session.execute(update(ReminderSchedule)
                    .where(ReminderSchedule.case_id == case.id, ReminderSchedule.company_id == case.company_id)
                    .values(state="stopped", stop_reason=reason[:64], updated_at=now))
    dropped = cast(CursorResult, session.execute(
        update(ReminderDelivery).where(ReminderDelivery.case_id == case.id, ReminderDelivery.slot >= 0,
                                       ReminderDelivery.status == "pending")
        .values(status="dropped", error_code=reason[:64], finished_at=now)
        .execution_options(synchronize_session=False))).rowcount
    append_evidence(session, case, ACTOR, EvidenceKind.REMINDERS_STOPPED, {"reason": reason, "dropped_deliveries": int(dropped or 0)},
                    occurred_at=now)
    return int(dropped or 0)


def on_letter_submitted(session: Session, case: ResignationCase, *, now: datetime | None = None) -> None:
    """The signed letter arrived: pause the schedule at once (the sweep would only notice at the next
    due time; a reminder already queued is dropped at send time either way)."""
    now = now or utcnow()
    session.execute(update(ReminderSchedule)
                    .where(ReminderSchedule.case_id == case.id, ReminderSchedule.company_id == case.company_id,
                           ReminderSchedule.state == "active")
                    .values(state="paused", stop_reason="letter_submitted", updated_at=now))


# ---- the sweep ----------------------------------------------------------------------------------

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


_DEAD_JOB = (b"failed", b"stopped", b"canceled")


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
        with rt.redis.pipeline(transaction=False) as pipe:
            for r in rows:
                pipe.hget(f"rq:job:{job_id(r.case_id, r.slot, r.channel)}", "status")
            statuses = pipe.execute()
        # no job (lost with Redis, never enqueued) or a job rq gave up on (failed for a reason other than
        # the provider, e.g. the database was unreachable on every attempt): enqueue it again
        todo = [r for r, st in zip(rows, statuses, strict=True)
                if r.enqueued_at is None or st is None or st in _DEAD_JOB or r.status == "sending"]
        if not todo:
            return
        session.execute(update(ReminderDelivery).where(ReminderDelivery.id.in_([r.id for r in todo]))
                        .values(enqueued_at=now))
    res.recovered += len(todo)
    res.enqueued += enqueue_deliveries(rt, [(r.case_id, r.slot, r.channel) for r in todo])


# ---- delivery -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class DeliveryOutcome:
    status: str                    # sent / dropped / failed / skipped / retry / missing / fallback
    provider_message_id: str | None = None
    detail: str = ""


def _lease(settings: Settings) -> timedelta:
    return timedelta(seconds=settings.reminder_send_lease_s)


def _message(d: ReminderDelivery, case: ResignationCase, employee: Employee, now: datetime) -> Message:
    if d.slot >= 0:
        return letter_message(slot=d.slot, name=employee.name, letter_due_date=case.letter_due_date, now=now,
                              provisional=case.dates_provisional)
    return notification_message(d.kind, name=employee.name, params=d.params or {})


def _evidence(session: Session, case_id: str, action: EvidenceKind, payload: dict[str, Any], now: datetime) -> None:
    case = session.get(ResignationCase, case_id)
    append_evidence(session, case, ACTOR, action, payload, occurred_at=now)


# deliver()'s statements, built once (building them per call was a third of a delivery's CPU time).
_D = ReminderDelivery
_CLAIM = (update(_D).where(
    _D.case_id == bindparam("p_case"), _D.slot == bindparam("p_slot"), _D.channel == bindparam("p_channel"),
    or_(_D.status == "pending", and_(_D.status == "sending", _D.lease_until <= bindparam("p_now", type_=_D.lease_until.type))))
    .values(status="sending", lease_until=bindparam("p_lease", type_=_D.lease_until.type),
            started_at=bindparam("p_started", type_=_D.started_at.type), attempts=_D.attempts + 1)
    .execution_options(synchronize_session=False))
_DELIVERY = select(_D).where(_D.case_id == bindparam("p_case"), _D.slot == bindparam("p_slot"),
                             _D.channel == bindparam("p_channel"))
# lock the case row (PostgreSQL) so a submission commits either before this check or after the claim
_CASE_AND_EMPLOYEE = (select(ResignationCase, Employee).join(Employee, Employee.id == ResignationCase.employee_id)
                      .where(ResignationCase.id == bindparam("p_case")).with_for_update(of=ResignationCase))
_MARK_SENT = (update(_D).where(_D.id == bindparam("p_id")).values(
    status="sent", template=bindparam("p_template"), content_sha256=bindparam("p_digest"),
    provider=bindparam("p_provider"), provider_message_id=bindparam("p_msg_id"),
    finished_at=bindparam("p_done", type_=_D.finished_at.type), lease_until=None, error_code=None, error=None)
    .execution_options(synchronize_session=False))


def deliver(rt: Runtime, case_id: str, slot: int, channel: str, *, final_attempt: bool = True) -> DeliveryOutcome:
    """Send one delivery at most once. Raises :class:`RetryableSendError` when a provider error
    should be retried and this is not the final attempt."""
    s = rt.settings
    now = utcnow()
    key = {"p_case": case_id, "p_slot": slot, "p_channel": channel}
    # 1. claim the row (a write first: on SQLite it takes the lock), then check the case at send time
    with session_scope(rt.session_factory) as session:
        claimed = cast(CursorResult, session.execute(  # the first statement writes: on SQLite it takes the lock
            _CLAIM, {**key, "p_now": now, "p_lease": now + _lease(s), "p_started": now})).rowcount
        d = session.scalar(_DELIVERY, key)
        if d is None:
            return DeliveryOutcome("missing")
        if claimed != 1:
            if d.status == "sending":
                return DeliveryOutcome("skipped", None, "claimed by another worker")
            return DeliveryOutcome("skipped", d.provider_message_id, f"already {d.status}")
        case, employee = session.execute(_CASE_AND_EMPLOYEE, {"p_case": case_id}).one()
        if slot >= 0 and case.state not in LETTER_STATES:
            d.status, d.finished_at, d.error_code, d.lease_until = "dropped", now, f"case_{case.state}", None
            session.flush()
            append_evidence(session, case, ACTOR, EvidenceKind.REMINDER_DROPPED, {
                "slot": slot, "channel": channel, "kind": d.kind, "result": "dropped", "case_state": case.state,
                "scheduled_for": d.scheduled_for, "checked_at": now}, occurred_at=now)
            return DeliveryOutcome("dropped", None, case.state)
        msg = _message(d, case, employee, now)
        kind, attempt, scheduled_for, delivery_id = d.kind, d.attempts, d.scheduled_for, d.id
        company_id = case.company_id
        if kind == "letter_reminder":
            kind = msg.kind
        phone = employee_phone(rt, employee)
        openid = employee.wechat_openid
    # 2. send (outside any transaction)
    content: dict[str, Any]
    if channel == "wechat":
        template, content = s.wechat_subscribe_template_id, {"page": s.wechat_subscribe_page, "data": msg.wechat_data}
        to = f"openid:…{(openid or '')[-4:]}"
    else:
        template, content = SMS_TEMPLATE, msg.sms_params
        to = mask_phone(phone)
    digest = content_digest(channel, template, content)
    base = {"slot": slot, "channel": channel, "kind": kind, "template": template, "content_sha256": digest,
            "to": to, "attempt": attempt, "scheduled_for": scheduled_for, "started_at": now}
    if s.reminder_dev_send_delay_s > 0 and s.allows_dev_backends:
        _time.sleep(s.reminder_dev_send_delay_s)  # development/test hook: widen the crash window
    try:
        if channel == "wechat":
            if not openid:
                raise WeChatApiError(40003, "employee has no openid")
            provider, msg_id = "wechat", rt.wechat.send_subscribe_message(
                openid, template, s.wechat_subscribe_page, msg.wechat_data, s.wechat_miniprogram_state)
        else:
            sent = rt.sms_gateway.send(phone, SMS_TEMPLATE, msg.sms_params)
            provider, msg_id = sent.provider, sent.message_id
    except (SmsGatewayError, WeChatApiError) as exc:
        return _send_failed(rt, delivery_id, case_id, slot, channel, exc, base, final_attempt)
    # 3. record
    done = utcnow()
    with session_scope(rt.session_factory) as session:
        session.execute(_MARK_SENT, {"p_id": delivery_id, "p_template": template, "p_digest": digest,
                                     "p_provider": provider, "p_msg_id": msg_id, "p_done": done})
        append_case_evidence(session, case_id, company_id, ACTOR, EvidenceKind.REMINDER_SENT, {
            **base, "provider": provider, "provider_message_id": msg_id, "result": "sent", "finished_at": done},
            occurred_at=done)
    return DeliveryOutcome("sent", msg_id)


def _send_failed(rt: Runtime, delivery_id: str, case_id: str, slot: int, channel: str,
                 exc: SmsGatewayError | WeChatApiError,
                 base: dict[str, Any], final_attempt: bool) -> DeliveryOutcome:
    done = utcnow()
    if isinstance(exc, WeChatApiError):
        code, text, retryable = str(exc.errcode), exc.errmsg, exc.is_retryable
        fallback = exc.is_no_subscription
    else:
        code, text, retryable, fallback = exc.provider_code, exc.provider_message, exc.retryable, False
    with session_scope(rt.session_factory) as session:
        _begin_write(session)
        d = session.get(ReminderDelivery, delivery_id)
        d.template, d.content_sha256, d.error_code, d.error = base["template"], base["content_sha256"], code, text[:500]
        d.lease_until, d.finished_at = None, done
        payload = {**base, "result": "failed", "error_code": code, "error": text[:200], "finished_at": done}
        if fallback:  # 43101: no subscription quota left -> SMS for this slot
            d.status = "failed"
            have_sms = session.scalar(select(ReminderDelivery.id).where(
                ReminderDelivery.case_id == case_id, ReminderDelivery.slot == slot, ReminderDelivery.channel == "sms"))
            if not have_sms:
                session.add(ReminderDelivery(company_id=d.company_id, case_id=case_id, slot=slot, channel="sms",
                                             kind=d.kind, params=d.params, status="pending",
                                             scheduled_for=d.scheduled_for, enqueued_at=done))
                _enqueue_after_commit(session, rt, [(case_id, slot, "sms")])
            session.flush()
            _evidence(session, case_id, EvidenceKind.REMINDER_FALLBACK, {**payload, "fallback_channel": "sms"}, done)
            return DeliveryOutcome("fallback", None, code)
        if retryable and not final_attempt:
            d.status = "pending"
            _evidence(session, case_id, EvidenceKind.REMINDER_ATTEMPT_FAILED, {**payload, "will_retry": True}, done)
        else:
            d.status = "failed"
            _evidence(session, case_id, EvidenceKind.REMINDER_FAILED, payload, done)
            case = session.get(ResignationCase, case_id)
            emp = session.get(Employee, case.employee_id)
            raise_alert(session, company_id=case.company_id, kind="reminder_failed", case_id=case_id,
                        employee_id=case.employee_id, actor=ACTOR,
                        message=f"向{emp.name}发送的提醒（{channel}，第{slot}次）发送失败：{code}",
                        payload={"slot": slot, "channel": channel, "error_code": code})
    if retryable and not final_attempt:
        raise RetryableSendError(f"{channel} provider error {code}: {text}")
    return DeliveryOutcome("failed", None, code)


# ---- HR escalation ------------------------------------------------------------------------------

def _hr_aad(user: HrUser) -> str:
    return f"hr_users.phone:{user.company_id}:{user.username}"


def set_hr_phone(rt: Runtime, user: HrUser, phone: str | None) -> None:
    """An HR user's mobile number for daily digests (AES-256-GCM, bound to company + username)."""
    from identity.sms import normalize_cn_mobile

    user.phone_enc = rt.cipher.encrypt(normalize_cn_mobile(phone), _hr_aad(user)) if phone else None


def hr_phone(rt: Runtime, user: HrUser) -> str | None:
    return rt.cipher.decrypt(user.phone_enc, _hr_aad(user)) if user.phone_enc else None


def _overdue_cases(session: Session, company_id: str, today: date) -> list[tuple[ResignationCase, Employee]]:
    return list(session.execute(
        select(ResignationCase, Employee).join(Employee, Employee.id == ResignationCase.employee_id)
        .where(ResignationCase.company_id == company_id, ResignationCase.state.in_(sorted(LETTER_STATES)),
               ResignationCase.letter_due_date < today)
        .order_by(ResignationCase.letter_due_date)).all())


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
    from rq import Queue

    q = Queue(QUEUE, connection=rt.redis)
    try:
        for company_id in todo:
            q.enqueue(DIGEST_FUNC, company_id, today.isoformat(), job_id=f"reminder-digest-{company_id}-{today}",
                      result_ttl=0, failure_ttl=7 * 86400, retry=_retry(rt.settings))
            res.digests_enqueued += 1
    except Exception:  # noqa: BLE001 - next sweep tries again
        log.exception("enqueueing HR digests failed")


def send_hr_digests(rt: Runtime, company_id: str, day: date, *, now: datetime | None = None) -> dict[str, str]:
    """Each HR user of the company (not auditors; department heads for their department only) gets
    one digest of overdue letters for ``day``; the cases get an overdue alert (once) and a
    ``reminder_escalated`` evidence entry naming who was told."""
    now = now or utcnow()
    out: dict[str, str] = {}
    with session_scope(rt.session_factory) as session:
        _begin_write(session)
        overdue = _overdue_cases(session, company_id, day)
        if not overdue:
            return out
        alerted = set(session.scalars(select(HrAlert.case_id).where(
            HrAlert.company_id == company_id, HrAlert.kind == "letter_overdue",
            HrAlert.case_id.in_([c.id for c, _ in overdue]))))
        for case, emp in overdue:
            if case.id not in alerted:
                raise_alert(session, company_id=company_id, kind="letter_overdue", case_id=case.id,
                            employee_id=emp.id, actor=ACTOR,
                            message=(f"{emp.name}（{emp.employee_no}）的书面辞职信应于{case.letter_due_date.isoformat()}"
                                     + ("（暂定，节假日安排未公布）前提交，按暂定日期已逾期" if case.dates_provisional
                                        else "前提交，已逾期")),
                            payload={"letter_due_date": case.letter_due_date.isoformat(),
                                     "due_date_provisional": case.dates_provisional})
        users = session.scalars(select(HrUser).where(HrUser.company_id == company_id, HrUser.active.is_(True),
                                                     HrUser.role.in_(DIGEST_ROLES)).order_by(HrUser.username)).all()
        told: dict[str, list[str]] = {}
        for user in users:
            mine = [(c, e) for c, e in overdue if user.role != "dept_head" or (user.department and e.department == user.department)]
            if not mine:
                continue
            exists = session.scalar(select(HrDigest.id).where(HrDigest.hr_user_id == user.id, HrDigest.day == day))
            if exists:
                out[user.id] = "exists"
                continue
            msg = hr_digest_message(hr_name=user.display_name, day=day,
                                    cases=[(e.name, e.employee_no, c.letter_due_date, c.dates_provisional)
                                           for c, e in mine])
            digest = HrDigest(company_id=company_id, hr_user_id=user.id, day=day, case_ids=[c.id for c, _ in mine],
                              content_sha256=content_digest("sms", SMS_TEMPLATE, msg.sms_params))
            session.add(digest)
            session.flush()  # the unique (user, day) row is taken before anything is sent
            phone = hr_phone(rt, user)
            if phone is None:
                digest.status, digest.error = "no_channel", "no phone on file; shown as alerts in the console"
            else:
                try:
                    sent = rt.sms_gateway.send(phone, SMS_TEMPLATE, msg.sms_params)
                    digest.status, digest.provider_message_id, digest.sent_at = "sent", sent.message_id, utcnow()
                except SmsGatewayError as exc:
                    digest.status, digest.error = "failed", f"{exc.provider_code}: {exc.provider_message}"[:500]
            out[user.id] = digest.status
            for c, _ in mine:
                told.setdefault(c.id, []).append(f"{user.id}:{user.role}:{digest.status}")
        for case, _ in overdue:
            if case.id in told:
                append_evidence(session, case, ACTOR, EvidenceKind.REMINDER_ESCALATED, {
                    "day": day.isoformat(), "letter_due_date": case.letter_due_date.isoformat(),
                    "due_date_provisional": case.dates_provisional,
                    "hr_digests": told[case.id]}, occurred_at=now)
    return out


# ---- reading ------------------------------------------------------------------------------------

def list_case_reminders(session: Session, case: ResignationCase) -> dict[str, Any]:
    sched = session.scalar(select(ReminderSchedule).where(ReminderSchedule.case_id == case.id,
                                                          ReminderSchedule.company_id == case.company_id))
    rows = session.scalars(select(ReminderDelivery).where(ReminderDelivery.case_id == case.id,
                                                          ReminderDelivery.company_id == case.company_id)
                           .order_by(ReminderDelivery.scheduled_for, ReminderDelivery.slot.desc(),
                                     ReminderDelivery.channel)).all()
    return {
        "case_id": case.id, "letter_due_date": case.letter_due_date,
        "overdue": case.state in LETTER_STATES and is_overdue(case.letter_due_date, utcnow()),
        "due_date_provisional": case.dates_provisional,
        "schedule": None if sched is None else {"state": sched.state, "next_slot": sched.slot,
                                                "next_due_at": sched.next_due_at if sched.state == "active" else None,
                                                "stop_reason": sched.stop_reason},
        "deliveries": rows,
    }
