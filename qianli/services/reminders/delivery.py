"""One delivery, in a worker: claim it, re-check the case, send through WeChat or SMS, record the
outcome and the evidence; provider errors worth retrying raise RetryableSendError (rq Retry)."""

from __future__ import annotations

import logging
import threading
import time as _time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, cast

from sqlalchemy import Table, and_, bindparam, or_, select, tuple_, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from cases.evidence_kinds import EvidenceKind
from cases.reminders import (LETTER_STATES, Message, content_digest, letter_message, notification_due,
                             notification_message)
from identity.sms import SmsGatewayError, mask_phone
from identity.wechat import WeChatApiError
from qianli.db import run_in_transaction, session_scope, utcnow
from qianli.models import (Employee, ReminderDelivery, ResignationCase)
from qianli.runtime import Runtime
from qianli.services.alerts import raise_alert
from qianli.services.employees import decrypt_phone, employee_phone
from qianli.services.evidence import NewEntry, append_case_evidence, append_case_evidence_many, append_evidence
from qianli.settings import Settings
from qianli.services.reminders.common import ACTOR, SMS_TEMPLATE, RetryableSendError, _begin_write
from qianli.services.reminders.queue import _enqueue_after_commit

__all__ = ["DeliveryOutcome", "deliver", "deliver_batch"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeliveryOutcome:
    status: str                    # sent / dropped / failed / skipped / retry / missing / fallback
    provider_message_id: str | None = None
    detail: str = ""


def _lease(settings: Settings) -> timedelta:
    return timedelta(seconds=settings.reminder_send_lease_s)


def _message(d: Any, case: Any, name: str, now: datetime) -> Message:
    """``d``: a ReminderDelivery or a row with its columns; ``case``: a ResignationCase or a row with
    ``letter_due_date`` and ``dates_provisional``."""
    if d.slot >= 0:
        return letter_message(slot=d.slot, name=name, letter_due_date=case.letter_due_date, now=now,
                              provisional=case.dates_provisional)
    return notification_message(d.kind, name=name, params=d.params or {})


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
_T = cast(Table, ReminderDelivery.__table__)
_MARK_SENT_MANY = _T.update().where(_T.c.id == bindparam("p_id")).values(
    status="sent", template=bindparam("p_template"), content_sha256=bindparam("p_digest"),
    provider=bindparam("p_provider"), provider_message_id=bindparam("p_msg_id"),
    finished_at=bindparam("p_done", type_=_D.finished_at.type), lease_until=None, error_code=None, error=None)


@dataclass
class _Send:
    """A claimed delivery, ready to send: everything the send and its record need."""

    delivery_id: str
    case_id: str
    company_id: str
    slot: int
    channel: str
    template: str
    content: dict[str, Any]
    phone: str
    openid: str | None
    msg: Message
    base: dict[str, Any]


def _claim(session: Session, rt: Runtime, case_id: str, slot: int, channel: str, now: datetime) -> DeliveryOutcome | _Send:
    """Claim the row (a write first: on SQLite it takes the lock), then check the case at send time.
    Returns the outcome when there is nothing to send (missing, skipped, dropped)."""
    s = rt.settings
    key = {"p_case": case_id, "p_slot": slot, "p_channel": channel}
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
    if (case.state not in LETTER_STATES) if slot >= 0 else not notification_due(d.kind, case.state, d.params, now):
        d.status, d.finished_at, d.error_code, d.lease_until = "dropped", now, f"case_{case.state}", None
        session.flush()
        append_evidence(session, case, ACTOR, EvidenceKind.REMINDER_DROPPED, {
            "slot": slot, "channel": channel, "kind": d.kind, "result": "dropped", "case_state": case.state,
            "scheduled_for": d.scheduled_for, "checked_at": now}, occurred_at=now)
        return DeliveryOutcome("dropped", None, case.state)
    return _prepare(rt, d, case, case.company_id, employee.name, employee_phone(rt, employee), employee.wechat_openid,
                    d.attempts, now)


def _prepare(rt: Runtime, d: Any, case: Any, company_id: str, name: str, phone: str, openid: str | None,
             attempt: int, now: datetime) -> _Send:
    """A claimed delivery's message, recipient and evidence fields (``d`` and ``case`` as in :func:`_message`)."""
    s = rt.settings
    msg = _message(d, case, name, now)
    kind = msg.kind if d.kind == "letter_reminder" else d.kind
    content: dict[str, Any]
    if d.channel == "wechat":
        template, content = s.wechat_subscribe_template_id, {"page": s.wechat_subscribe_page, "data": msg.wechat_data}
        to = f"openid:…{(openid or '')[-4:]}"
    else:
        template, content = SMS_TEMPLATE, msg.sms_params
        to = mask_phone(phone)
    digest = content_digest(d.channel, template, content)
    base = {"slot": d.slot, "channel": d.channel, "kind": kind, "template": template, "content_sha256": digest,
            "to": to, "attempt": attempt, "scheduled_for": d.scheduled_for, "started_at": now}
    return _Send(d.id, d.case_id, company_id, d.slot, d.channel, template, content, phone, openid, msg, base)


def _send(rt: Runtime, x: _Send) -> tuple[str, str]:
    """The provider call, outside any transaction: (provider, message id) or a provider error."""
    s = rt.settings
    if s.reminder_dev_send_delay_s > 0 and s.allows_dev_backends:
        _time.sleep(s.reminder_dev_send_delay_s)  # development/test hook: widen the crash window
    if x.channel == "wechat":
        if not x.openid:
            raise WeChatApiError(40003, "employee has no openid")
        return "wechat", rt.wechat.send_subscribe_message(
            x.openid, x.template, s.wechat_subscribe_page, x.msg.wechat_data, s.wechat_miniprogram_state)
    sent = rt.sms_gateway.send(x.phone, SMS_TEMPLATE, x.msg.sms_params)
    return sent.provider, sent.message_id


def _record_sent(session: Session, x: _Send, provider: str, msg_id: str, done: datetime) -> None:
    session.execute(_MARK_SENT, {"p_id": x.delivery_id, "p_template": x.template, "p_digest": x.base["content_sha256"],
                                 "p_provider": provider, "p_msg_id": msg_id, "p_done": done})
    append_case_evidence(session, x.case_id, x.company_id, ACTOR, EvidenceKind.REMINDER_SENT, {
        **x.base, "provider": provider, "provider_message_id": msg_id, "result": "sent", "finished_at": done},
        occurred_at=done)


def deliver(rt: Runtime, case_id: str, slot: int, channel: str, *, final_attempt: bool = True) -> DeliveryOutcome:
    """Send one delivery at most once. Raises :class:`RetryableSendError` when a provider error
    should be retried and this is not the final attempt."""
    now = utcnow()
    # 1. claim the row and check the case
    with session_scope(rt.session_factory) as session:
        x = _claim(session, rt, case_id, slot, channel, now)
    if isinstance(x, DeliveryOutcome):
        return x
    # 2. send (outside any transaction)
    try:
        provider, msg_id = _send(rt, x)
    except (SmsGatewayError, WeChatApiError) as exc:
        return _send_failed(rt, x.delivery_id, case_id, slot, channel, exc, x.base, final_attempt)
    # 3. record (re-run if SQLite stays locked: a send left unrecorded would be sent again after the lease)
    done = utcnow()
    run_in_transaction(rt.session_factory, lambda session: _record_sent(session, x, provider, msg_id, done))
    return DeliveryOutcome("sent", msg_id)


_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _pool(size: int) -> ThreadPoolExecutor:
    """One thread pool per worker process for the concurrent sends of a batch."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None or _POOL._max_workers != size:  # noqa: SLF001 - resized only when the setting changes
            _POOL = ThreadPoolExecutor(max_workers=size, thread_name_prefix="reminder-send")
        return _POOL


# _claim_batch()'s reads, built once: column rows, no ORM objects (loading them was a third of a batch's CPU)
_BATCH_ROWS = (select(_D.id, _D.case_id, _D.slot, _D.channel, _D.kind, _D.params, _D.status, _D.lease_until,
                      _D.attempts, _D.scheduled_for, _D.provider_message_id)
               # case_id IN (...) too: SQLite scans the whole index for a row-value IN list alone
               .where(_D.case_id.in_(bindparam("p_cases", expanding=True)),
                      tuple_(_D.case_id, _D.slot, _D.channel).in_(bindparam("p_keys", expanding=True)))
               .order_by(_D.case_id, _D.slot, _D.channel).with_for_update())
_BATCH_PEOPLE = (select(ResignationCase.id, ResignationCase.company_id, ResignationCase.state,
                        ResignationCase.letter_due_date, ResignationCase.dates_provisional,
                        Employee.company_id.label("employee_company_id"), Employee.employee_no, Employee.name,
                        Employee.phone_enc, Employee.wechat_openid)
                 .join(Employee, Employee.id == ResignationCase.employee_id)
                 .where(ResignationCase.id.in_(bindparam("p_cases", expanding=True))).order_by(ResignationCase.id)
                 .with_for_update(of=ResignationCase))


def _claim_batch(session: Session, rt: Runtime, items: list[tuple[str, int, str]],
                 now: datetime) -> dict[tuple[str, int, str], DeliveryOutcome | _Send]:
    """:func:`_claim` for a whole batch in a few statements: lock the delivery rows (PostgreSQL; in key
    order, as the single claims did), claim those that are pending or whose lease ran out with one
    UPDATE, lock their cases (in id order) and check each case at send time. Deliveries dropped
    because the case moved on are recorded here, their evidence entries written together."""
    s = rt.settings
    keys = sorted(set(items))
    rows = {(d.case_id, d.slot, d.channel): d for d in session.execute(
        _BATCH_ROWS, {"p_cases": sorted({k[0] for k in keys}), "p_keys": keys})}
    out: dict[tuple[str, int, str], DeliveryOutcome | _Send] = {}
    todo: list[Any] = []
    for k in keys:
        d = rows.get(k)
        if d is None:
            out[k] = DeliveryOutcome("missing")
        elif d.status == "pending" or (d.status == "sending" and d.lease_until is not None and d.lease_until <= now):
            todo.append(d)
        elif d.status == "sending":
            out[k] = DeliveryOutcome("skipped", None, "claimed by another worker")
        else:
            out[k] = DeliveryOutcome("skipped", d.provider_message_id, f"already {d.status}")
    if not todo:
        return out
    claimed = cast(CursorResult, session.execute(
        update(_D).where(_D.id.in_([d.id for d in todo]))
        .values(status="sending", lease_until=now + _lease(s), started_at=now, attempts=_D.attempts + 1)
        .execution_options(synchronize_session=False))).rowcount
    if claimed != len(todo):  # the rows are locked (PostgreSQL) or the database is (SQLite): cannot happen
        raise RuntimeError(f"claimed {claimed} of {len(todo)} reminder deliveries")
    people = {p.id: p for p in session.execute(_BATCH_PEOPLE, {"p_cases": sorted({d.case_id for d in todo})})}
    dropped: list[NewEntry] = []
    for d in todo:
        k = (d.case_id, d.slot, d.channel)
        p = people[d.case_id]
        if (p.state not in LETTER_STATES) if d.slot >= 0 else not notification_due(d.kind, p.state, d.params, now):
            session.execute(update(_D).where(_D.id == d.id).values(
                status="dropped", finished_at=now, error_code=f"case_{p.state}", lease_until=None)
                .execution_options(synchronize_session=False))
            dropped.append(NewEntry(p.id, p.company_id, EvidenceKind.REMINDER_DROPPED, {
                "slot": d.slot, "channel": d.channel, "kind": d.kind, "result": "dropped", "case_state": p.state,
                "scheduled_for": d.scheduled_for, "checked_at": now}, now))
            out[k] = DeliveryOutcome("dropped", None, p.state)
            continue
        phone = decrypt_phone(rt, p.employee_company_id, p.employee_no, p.phone_enc)
        out[k] = _prepare(rt, d, p, p.company_id, p.name, phone, p.wechat_openid, d.attempts + 1, now)
    append_case_evidence_many(session, ACTOR, dropped)
    return out


def _record_batch(session: Session, sent: list[tuple[_Send, str, str]], done: datetime) -> None:
    """:func:`_record_sent` for many sends: one executemany UPDATE, the evidence entries together."""
    session.connection().execute(_MARK_SENT_MANY, [
        {"p_id": x.delivery_id, "p_template": x.template, "p_digest": x.base["content_sha256"],
         "p_provider": provider, "p_msg_id": msg_id, "p_done": done} for x, provider, msg_id in sent])
    append_case_evidence_many(session, ACTOR, [NewEntry(x.case_id, x.company_id, EvidenceKind.REMINDER_SENT, {
        **x.base, "provider": provider, "provider_message_id": msg_id, "result": "sent", "finished_at": done}, done)
        for x, provider, msg_id in sent])


def deliver_batch(rt: Runtime, items: list[tuple[str, int, str]], *,
                  on_retry: Callable[[tuple[str, int, str]], None] | None = None) -> list[DeliveryOutcome]:
    """Send a batch of deliveries, each at most once, the provider calls concurrently
    (``QIANLI_REMINDER_SEND_CONCURRENCY`` threads).

    The same steps as :func:`deliver`, in two transactions for the whole batch and a few statements
    each: one claims every row (the same claim and lease as a single delivery, see
    :func:`_claim_batch`) and checks each case, the sends run concurrently outside any transaction,
    one records every successful send with its evidence entry. A provider error is handled per
    delivery as in :func:`deliver` (its own transaction); one worth retrying is handed to
    ``on_retry`` (the job schedules that delivery again on its own) unless retries are exhausted or
    none configured. A crash anywhere leaves claimed rows ``sending`` with their lease: the sweep
    re-sends them after it, exactly as for a single delivery. Outcomes are in the order of ``items``;
    a delivery listed twice is sent once (the second is ``skipped``).
    """
    s = rt.settings
    final_attempt = on_retry is None or not s.reminder_retry_schedule()
    now = utcnow()
    keys = [(c, int(sl), ch) for c, sl, ch in items]
    claimed = run_in_transaction(rt.session_factory, lambda session: _claim_batch(session, rt, keys, now))
    sends = {k: x for k, x in claimed.items() if isinstance(x, _Send)}
    results: dict[tuple[str, int, str], tuple[str, str] | BaseException] = {}
    if sends:
        pool = _pool(max(1, s.reminder_send_concurrency))  # threads start as needed, up to this many
        futures = {k: pool.submit(_send, rt, x) for k, x in sends.items()}
        for k, f in futures.items():
            try:
                results[k] = f.result()
            except BaseException as exc:  # noqa: BLE001 - sorted below: provider errors, anything else re-raised
                results[k] = exc
    done = utcnow()
    ok = [(sends[k], *r) for k, r in sorted(results.items()) if isinstance(r, tuple)]
    if ok:
        # re-run if SQLite stays locked: a send left unrecorded would be sent again after the lease
        run_in_transaction(rt.session_factory, lambda session: _record_batch(session, ok, done))
    out: list[DeliveryOutcome] = []
    unexpected: BaseException | None = None
    seen: set[tuple[str, int, str]] = set()
    for k in keys:
        if k in seen:
            out.append(DeliveryOutcome("skipped", None, "listed twice in the batch"))
            continue
        seen.add(k)
        x = claimed[k]
        if isinstance(x, DeliveryOutcome):
            out.append(x)
            continue
        r = results[k]
        if isinstance(r, tuple):
            out.append(DeliveryOutcome("sent", r[1]))
        elif isinstance(r, (SmsGatewayError, WeChatApiError)):
            try:
                out.append(_send_failed(rt, x.delivery_id, x.case_id, x.slot, x.channel, r, x.base, final_attempt))
            except RetryableSendError:
                assert on_retry is not None
                on_retry(k)
                out.append(DeliveryOutcome("retry", None, str(r)))
        else:  # not a provider answer: left 'sending', the sweep sends it again after the lease
            log.error("reminder send of %s slot %s %s raised %s", x.case_id, x.slot, x.channel, type(r).__name__)
            out.append(DeliveryOutcome("error", None, type(r).__name__))
            unexpected = unexpected or r
    if unexpected is not None:
        raise unexpected
    return out


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
