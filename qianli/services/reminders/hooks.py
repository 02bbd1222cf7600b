"""What requests do to a case's reminders: open the schedule and send the notice, notify the employee,
stop or pause on the signed letter, list what was sent."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, cast

from sqlalchemy import func, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from cases.evidence_kinds import EvidenceKind
from cases.reminders import (LETTER_STATES, is_overdue,
                             notification_message)
from qianli.db import utcnow
from qianli.models import (Employee, ReminderDelivery, ReminderSchedule,
                           ResignationCase)
from qianli.runtime import Runtime
from qianli.services.evidence import append_evidence
from qianli.services.reminders.common import ACTOR, _channels, reminder_policy
from qianli.services.reminders.queue import _enqueue_after_commit

__all__ = ["on_case_opened", "notify_employee", "stop_reminders", "on_letter_submitted", "list_case_reminders"]

log = logging.getLogger(__name__)


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
                    *, now: datetime | None = None, at: datetime | None = None) -> list[ReminderDelivery]:
    """Tell the employee about a decision (SMS + subscribe message after commit), recorded as evidence.

    Kinds: case_returned (reminders resume), agreed_last_day_proposed, withdrawal_consented,
    withdrawal_declined, and those of cases.reminders.NOTIFICATION_KINDS. Notifications use negative
    slots (-1, -2, ...) of the case. ``at``: send then (a later reminder; the sweep enqueues it when
    due, and a kind with NOTIFICATION_STATES is dropped at send time if the case has moved on).
    """
    notification_message(kind, name="", params=params)  # refuses an unknown kind before writing anything
    now = now or utcnow()
    pol = reminder_policy(rt.settings)
    send_at = pol.allowed(max(at, now) if at is not None else now)
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
