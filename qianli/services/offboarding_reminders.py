"""Reminders to the owners of open offboarding tasks, and the escalation to HR when one is overdue.

The scheduler calls :func:`plan_task_reminders` on every round (``qianli scheduler``); on a working
day of the company's calendar, inside ``QIANLI_TASK_REMINDER_HOURS`` (Asia/Shanghai), it records
one :class:`~qianli.models.TaskReminder` row per (task, owner, day): the day a task is created,
and every working day from ``QIANLI_TASK_REMINDER_LEAD_DAYS`` working days before its due date
until it is done. A task past its due date is escalated once: an HR alert (``task_overdue``, via
the alerts service) and a message to HR (the company's HR specialists, else its managers). Rows
are committed first, then one RQ job per row is enqueued (``task-reminder-<id>``, queue
``reminders``, run by the ordinary ``qianli worker``); :func:`deliver_task_reminder` claims the
row (``pending`` -> ``sending``), sends it (WeCom text when WeCom is configured and the owner has a
WeCom userid, else SMS to the phone on file) and records the outcome, and every reminder sent or
failed is an evidence entry of the case. The database is the source of truth: rows whose job was
lost, or whose worker died mid-send, are enqueued again by the next round.

Kept apart from ``qianli.services.reminders`` (the letter reminders to the employee); it shares
only the queue and the retry policy.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cases.calendar import ChineseCalendar
from cases.clock import beijing_date, beijing_text
from cases.evidence_kinds import EvidenceKind
from cases.offboarding import DayKind, TaskStatus, due_date
from cases.reminders import QuietHours, content_digest
from qianli.db import run_in_transaction, utcnow
from qianli.integrations.wecom import WeComApiError
from qianli.models import Employee, HrUser, OffboardingTask, ResignationCase, TaskReminder
from qianli.runtime import Runtime
from qianli.services.alerts import raise_alert
from qianli.services.cases import company_calendar
from qianli.services.evidence import append_case_evidence
from qianli.services.offboarding import owner_label, task_recipients
from qianli.services.reminders.common import RetryableSendError
from qianli.services.reminders.hr_phones import hr_phone
from qianli.services.reminders.queue import QUEUE, retry_policy

__all__ = ["ACTOR", "SMS_TEMPLATE", "DELIVER_FUNC", "PlanResult", "plan_task_reminders", "deliver_task_reminder",
           "enqueue_task_reminders", "enqueue_case_reminders", "reminder_job_id", "task_message", "in_reminder_hours"]

log = logging.getLogger(__name__)

ACTOR = "system:task-reminders"
SMS_TEMPLATE = "task"  # identity's logical SMS template (QIANLI_SMS_TEMPLATE_TASK)
DELIVER_FUNC = "jobs.offboarding.deliver_task_reminder_job"
PLAN_FUNC = "jobs.offboarding.plan_case_reminders_job"
SEND_LEASE = timedelta(minutes=10)
LOST_AFTER = timedelta(minutes=2)
ESCALATION_ROLES = ("hr_specialist", "hr_manager")


def reminder_job_id(reminder_id: str) -> str:
    return f"task-reminder-{reminder_id}"


def in_reminder_hours(rt: Runtime, now: datetime) -> bool:
    window = QuietHours.parse(rt.settings.task_reminder_hours)  # the *allowed* window; None: any hour
    return window is None or window.contains(now)


@dataclass
class PlanResult:
    reminders: int = 0
    escalations: int = 0
    enqueued: int = 0
    recovered: int = 0
    skipped_companies: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _zh_date(d: date) -> str:
    return f"{d.month}月{d.day}日"


@dataclass(frozen=True)
class TaskMessage:
    text: str
    sms_params: dict[str, str]


def task_message(*, kind: str, recipient: str, employee: Employee, task: OffboardingTask, owner: str,
                 base_url: str) -> TaskMessage:
    """The zh-CN message: WeCom text and the SMS template's ordered parameters."""
    due = _zh_date(task.due_date)
    if kind == "escalation":
        text = (f"【签离】交接任务逾期：{employee.name}（{employee.employee_no}，{employee.department}）的"
                f"「{task.title}」应于{due}前完成，负责人：{owner}，仍未完成。请跟进：{base_url}/hr/cases/{task.case_id}/tasks")
    else:
        text = (f"【签离】交接任务提醒：{recipient}您好，{employee.name}（{employee.department}）离职，"
                f"「{task.title}」请于{due}前完成。请在 HR 控制台“我的任务”中办理：{base_url}/hr/tasks")
    return TaskMessage(text, {"name": recipient[:20], "employee": employee.name[:20], "task": task.title[:20],
                              "due": due + ("（已逾期）" if kind == "escalation" else "")})


# ---- planning (the scheduler) ------------------------------------------------------------------------

def _reminder_starts(calendar: ChineseCalendar, task: OffboardingTask, lead: int) -> date:
    return due_date(calendar, task.due_date, -lead, DayKind.WORKING).date if lead else task.due_date


def _add_reminder(session: Session, task: OffboardingTask, user: HrUser, day: date, kind: str) -> TaskReminder | None:
    exists = session.scalar(select(TaskReminder.id).where(
        TaskReminder.task_id == task.id, TaskReminder.recipient_id == user.id, TaskReminder.day == day,
        TaskReminder.kind == kind))
    if exists:
        return None
    row = TaskReminder(company_id=task.company_id, case_id=task.case_id, task_id=task.id, recipient_id=user.id,
                       day=day, kind=kind, status="pending")
    session.add(row)
    return row


def _escalate(session: Session, task: OffboardingTask, case: ResignationCase, employee: Employee, day: date,
              now: datetime) -> list[TaskReminder]:
    task.escalated_at = now
    owner = owner_label(session, task)
    alert = raise_alert(
        session, company_id=task.company_id, kind="task_overdue", case_id=task.case_id, employee_id=employee.id,
        actor=ACTOR, message=(f"{employee.name}（{employee.employee_no}）的交接任务「{task.title}」应于"
                              f"{task.due_date.isoformat()}前完成，已逾期（负责人：{owner}）"),
        payload={"task_id": task.id, "task_title": task.title, "due_date": task.due_date.isoformat(), "owner": owner})
    users = session.scalars(select(HrUser).where(HrUser.company_id == task.company_id, HrUser.active.is_(True),
                                                 HrUser.role.in_(ESCALATION_ROLES)).order_by(HrUser.username)).all()
    specialists = [u for u in users if u.role == "hr_specialist"]
    rows = [r for u in (specialists or users) if (r := _add_reminder(session, task, u, day, "escalation"))]
    session.flush()
    append_case_evidence(session, case.id, case.company_id, ACTOR, EvidenceKind.TASK_ESCALATED, {
        "task_id": task.id, "title": task.title, "due_date": task.due_date.isoformat(), "owner": owner,
        "day": day.isoformat(), "alert_id": alert.id, "notify": [r.recipient_id for r in rows]}, occurred_at=now)
    return rows


def _plan(session: Session, rt: Runtime, now: datetime, case_id: str | None, res: PlanResult) -> list[str]:
    day = beijing_date(now)
    lead = rt.settings.task_reminder_lead_days
    conds = [OffboardingTask.status == TaskStatus.OPEN.value]
    if case_id:
        conds.append(OffboardingTask.case_id == case_id)
    tasks = session.scalars(select(OffboardingTask).where(*conds)
                            .order_by(OffboardingTask.company_id, OffboardingTask.case_id, OffboardingTask.item_key)).all()
    new: list[TaskReminder] = []
    calendars: dict[str, ChineseCalendar | None] = {}
    users: dict[str, list[HrUser]] = {}
    for task in tasks:
        if task.company_id not in calendars:
            cal = company_calendar(session, task.company_id)
            calendars[task.company_id] = cal if cal.is_working_day(day) else None
            if calendars[task.company_id] is None:
                res.skipped_companies.append(task.company_id)
            users[task.company_id] = list(session.scalars(select(HrUser).where(
                HrUser.company_id == task.company_id, HrUser.active.is_(True)).order_by(HrUser.username)))
        calendar = calendars[task.company_id]
        if calendar is None:
            continue
        if beijing_date(task.created_at) == day or day >= _reminder_starts(calendar, task, lead):
            for user in task_recipients(session, task, users[task.company_id]):
                row = _add_reminder(session, task, user, day, "reminder")
                if row is not None:
                    new.append(row)
                    res.reminders += 1
        if task.due_date < day and task.escalated_at is None:
            case = session.get(ResignationCase, task.case_id)
            employee = session.get(Employee, task.employee_id)
            rows = _escalate(session, task, case, employee, day, now)
            new += rows
            res.escalations += 1
    session.flush()
    return [r.id for r in new]


def _lost(session: Session, rt: Runtime, now: datetime) -> list[str]:
    """Pending rows whose job Redis no longer has, and rows stuck in ``sending`` (the worker died)."""
    stuck = session.scalars(select(TaskReminder).where(TaskReminder.status == "sending",
                                                       TaskReminder.created_at < now - SEND_LEASE)).all()
    for r in stuck:
        r.status = "pending"
    pending = session.scalars(select(TaskReminder.id).where(TaskReminder.status == "pending",
                                                            TaskReminder.created_at < now - LOST_AFTER)).all()
    if not pending:
        return []
    with rt.redis.pipeline(transaction=False) as pipe:
        for rid in pending:
            pipe.hget(f"rq:job:{reminder_job_id(rid)}", "status")
        statuses = pipe.execute()
    return [rid for rid, st in zip(pending, statuses, strict=True) if st is None or st in (b"failed", b"stopped", b"canceled")]


def plan_task_reminders(rt: Runtime, now: datetime | None = None, *, case_id: str | None = None) -> PlanResult:
    """One round: record today's reminders and escalations, enqueue them after the commit, recover lost jobs.
    Outside the reminder hours nothing is planned (lost jobs are still recovered); a day is planned by its
    first round in the hours (``case_id``: that case's tasks, at any round)."""
    now = now or utcnow()
    res = PlanResult()
    lock = rt.redis.lock("qianli:offboarding:plan", timeout=120, blocking_timeout=10)
    if not lock.acquire(blocking=True):
        log.info("another task-reminder round is running; skipped")
        return res
    try:
        # A full round plans a day once (the rows are per day); later rounds of that day only recover.
        # A case's tasks created later that day are planned by the job start_offboarding enqueues.
        marker = f"qianli:offboarding:planned:{beijing_date(now).isoformat()}"
        plan = in_reminder_hours(rt, now) and (case_id is not None or not rt.redis.exists(marker))

        def unit(session: Session) -> tuple[list[str], list[str]]:
            res.reminders = res.escalations = 0
            res.skipped_companies = []
            new = _plan(session, rt, now, case_id, res) if plan else []
            lost = [] if case_id else _lost(session, rt, now)
            return new, lost

        new, lost = run_in_transaction(rt.session_factory, unit)
        if plan and case_id is None:
            rt.redis.set(marker, "1", ex=36 * 3600)
        res.recovered = len(lost)
        res.enqueued = enqueue_task_reminders(rt, new + lost)
    finally:
        with contextlib.suppress(Exception):
            lock.release()
    return res


def enqueue_task_reminders(rt: Runtime, reminder_ids: list[str]) -> int:
    """One job per reminder row (deterministic id); a Redis failure is logged (the next round recovers)."""
    from rq import Queue

    if not reminder_ids:
        return 0
    q = Queue(QUEUE, connection=rt.redis)
    n = 0
    try:
        for rid in reminder_ids:
            q.enqueue(DELIVER_FUNC, rid, job_id=reminder_job_id(rid), result_ttl=3600, failure_ttl=7 * 86400,
                      retry=retry_policy(rt.settings), description=f"task reminder {rid}")
            n += 1
    except Exception:  # noqa: BLE001 - the next round re-enqueues from the database
        log.exception("enqueueing task reminders failed; the next round will retry")
    return n


def enqueue_case_reminders(rt: Runtime, case_id: str) -> None:
    """After a case's tasks are committed: plan its first reminders at once (a job, not in the request)."""
    from rq import Queue

    try:
        Queue(QUEUE, connection=rt.redis).enqueue(PLAN_FUNC, case_id, job_id=f"task-plan-{case_id}",
                                                  result_ttl=600, failure_ttl=7 * 86400)
    except Exception:  # noqa: BLE001 - the scheduler's next round plans them anyway
        log.exception("enqueueing the first task reminders of case %s failed", case_id)


# ---- delivery (a worker) ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Claim:
    reminder_id: str
    kind: str
    day: date
    task_id: str
    case_id: str
    company_id: str
    recipient_id: str
    recipient_name: str
    channel: str | None
    address: str | None
    message: TaskMessage
    task_title: str
    phone: str | None


def _channel(rt: Runtime, user: HrUser) -> tuple[str | None, str | None]:
    """WeCom text when WeCom is configured and the owner has a WeCom userid, else SMS to their phone."""
    if user.wecom_userid and rt.wecom is not None:
        return "wecom", user.wecom_userid
    phone = hr_phone(rt, user)
    return ("sms", phone) if phone else (None, None)


def _claim(session: Session, rt: Runtime, reminder_id: str) -> _Claim | str:
    r = session.scalar(select(TaskReminder).where(TaskReminder.id == reminder_id).with_for_update())
    if r is None:
        return "missing"
    if r.status != "pending":
        return r.status
    task = session.get(OffboardingTask, r.task_id)
    user = session.get(HrUser, r.recipient_id)
    if (r.kind == "reminder" and task.status != TaskStatus.OPEN.value) or not user.active:
        r.status, r.error = "dropped", ("task no longer open" if user.active else "recipient deactivated")
        return "dropped"
    employee = session.get(Employee, task.employee_id)
    message = task_message(kind=r.kind, recipient=user.display_name, employee=employee, task=task,
                           owner=owner_label(session, task), base_url=rt.settings.public_base_url.rstrip("/"))
    channel, address = _channel(rt, user)
    if channel is None:
        r.status, r.error = "no_channel", "no WeCom userid or phone on file; shown in the console (my tasks, alerts)"
        return "no_channel"
    r.status, r.channel, r.attempts = "sending", channel, r.attempts + 1
    r.content_sha256 = content_digest(channel, SMS_TEMPLATE if channel == "sms" else "text",
                                      message.sms_params if channel == "sms" else {"text": message.text})
    return _Claim(r.id, r.kind, r.day, task.id, task.case_id, task.company_id, user.id, user.display_name, channel,
                  address, message, task.title, hr_phone(rt, user))


class WeComRecipientInvalid(Exception):
    """WeCom accepted the message but not for this userid (unknown or disabled member)."""


def _send(rt: Runtime, claim: _Claim, phone: str | None) -> tuple[str, str]:
    """Send; returns (channel used, provider message id). A WeCom message that cannot reach the member
    (unknown or disabled userid, errcode 81013) goes by SMS instead when a phone is on file."""
    if claim.channel == "wecom":
        wecom = rt.wecom
        try:
            if wecom is None:
                raise WeComRecipientInvalid("WeCom is no longer configured")
            result = wecom.send_text([claim.address], claim.message.text)
            if claim.address in result.invalid_users:
                raise WeComRecipientInvalid(f"WeCom did not deliver to userid {claim.address}")
            return "wecom", result.msgid
        except (WeComRecipientInvalid, WeComApiError) as exc:
            retryable = isinstance(exc, WeComApiError) and exc.is_retryable
            if retryable or not phone:
                raise
            log.warning("task reminder %s: WeCom could not deliver (%s); sending by SMS", claim.reminder_id, exc)
    return "sms", rt.sms_gateway.send(phone or claim.address, SMS_TEMPLATE, claim.message.sms_params).message_id


def deliver_task_reminder(rt: Runtime, reminder_id: str, *, final_attempt: bool = True) -> str:
    """Send one reminder row (a worker). Returns its status: sent, failed, dropped, no_channel, or the
    status it already had (a duplicate job does nothing). A provider error before the last attempt
    raises :class:`RetryableSendError` so rq retries; on the last one the failure is recorded."""
    claim = run_in_transaction(rt.session_factory, lambda s: _claim(s, rt, reminder_id))
    if isinstance(claim, str):
        return claim
    now = utcnow()
    channel = claim.channel
    try:
        channel, message_id = _send(rt, claim, claim.phone)
        error = None
    except Exception as exc:  # noqa: BLE001 - any provider failure is recorded or retried
        message_id, error = None, f"{type(exc).__name__}: {exc}"[:500]
    if error is not None and not final_attempt:
        def back(session: Session) -> None:
            r = session.get(TaskReminder, reminder_id)
            if r is not None and r.status == "sending":
                r.status, r.error = "pending", error
        run_in_transaction(rt.session_factory, back)
        raise RetryableSendError(error)

    def record(session: Session) -> str:
        r = session.scalar(select(TaskReminder).where(TaskReminder.id == reminder_id).with_for_update())
        payload = {"reminder_id": r.id, "task_id": claim.task_id, "title": claim.task_title, "kind": claim.kind,
                   "day": claim.day.isoformat(), "recipient_id": claim.recipient_id,
                   "recipient_name": claim.recipient_name, "channel": channel,
                   "content_sha256": r.content_sha256, "attempts": r.attempts,
                   "sent_at_local": beijing_text(now)}
        if error is None:
            r.status, r.provider_message_id, r.sent_at, r.error, r.channel = "sent", message_id, now, None, channel
            append_case_evidence(session, claim.case_id, claim.company_id, ACTOR, EvidenceKind.TASK_REMINDER_SENT,
                                 {**payload, "provider_message_id": message_id}, occurred_at=now)
        else:
            r.status, r.error = "failed", error
            append_case_evidence(session, claim.case_id, claim.company_id, ACTOR, EvidenceKind.TASK_REMINDER_FAILED,
                                 {**payload, "error": error}, occurred_at=now)
        return r.status

    return run_in_transaction(rt.session_factory, record)

