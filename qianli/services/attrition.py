"""The attendance early warning (离职预警): the red / amber / green list, the daily run, notifications
of new reds, false-alarm dismissals and the company's rules.

The rules and the assessment are pure (:mod:`cases.attendance`); this module loads the facts
(clock-in days, approved leave, coverage, the company's calendar) and keeps the episodes:

- :func:`evaluate` computes the list for any day (the HR console and ``listAttritionRisks`` ask for
  today: the days up to yesterday are judged). A department head sees their department only.
- :func:`run_daily` is the daily job (``jobs.attendance``): it pulls WeCom check-ins when WeCom is
  configured (:mod:`qianli.services.wecom_checkin`), evaluates, records each amber / red episode and notifies HR (hr_specialist,
  hr_manager) and the employee's department head of each *new* red, once per episode: by WeCom
  message when WeCom is configured and the user has a WeCom userid, else by SMS to the phone on
  file; an HR alert (``attrition_red``) shows it in the console either way. An employee with an
  open case (a resignation in progress, or an absconding case already confirmed) is listed but not
  notified.
- :func:`dismiss` marks an episode a false alarm (who, when, why); it does not alert again, a new
  episode does.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Callable

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from cases.attendance import (RISK_LABELS, AttritionRules, Assessment, Dismissal, RiskLevel, RuleError, assess,
                              dismissed, lookback_start, parse_rules, sort_key)
from cases.clock import SHANGHAI, beijing_today
from cases.errors import Conflict, InvalidInput, NotFound
from cases.states import ANY_OPEN_STATES
from identity.sms import SmsGatewayError
from qianli.db import session_scope, utcnow
from qianli.models import (AttendanceCoverage, AttendanceRecord, AttendanceRun, AttritionEpisode, Company, Employee,
                           HrUser, ResignationCase)
from qianli.runtime import Runtime
from qianli.services.alerts import raise_alert
from qianli.services.attendance import coverage_ranges, leave_days
from qianli.services.calendar import company_calendar
from qianli.services.reminders.hr_phones import hr_phone
from qianli.services.review import Reviewer, department_scope, get_hr_employee
from qianli.services.wecom_checkin import pull_checkins

__all__ = ["RiskItem", "RiskList", "company_rules", "set_rules", "evaluate", "run_daily", "dismiss", "NOTIFY_ROLES",
           "SMS_TEMPLATE", "ACTOR", "QUEUE", "DAILY_FUNC", "companies_due", "enqueue_due_runs"]

log = logging.getLogger(__name__)

ACTOR = "system:attrition"
NOTIFY_ROLES = ("hr_specialist", "hr_manager")
SMS_TEMPLATE = "reminder"  # identity's logical SMS template (QIANLI_SMS_TEMPLATE_REMINDER), as the HR digests
POLICY_KEY = "attrition_rules"
QUEUE = "attendance"
DAILY_FUNC = "jobs.attendance.attendance_daily_job"
RETRY_INTERVALS = (60, 600, 3600)  # seconds before rq retries a failed daily run (e.g. the database was down)


# ---- rules ---------------------------------------------------------------------------------------

def company_rules(company: Company) -> AttritionRules:
    """The company's rules (the defaults for anything it has not set)."""
    try:
        return parse_rules((company.policy or {}).get(POLICY_KEY) or {})
    except RuleError:  # stored before a bound changed: fall back to the defaults, loudly
        log.warning("company %s: stored attrition rules are invalid; using the defaults", company.id)
        return parse_rules({})


def set_rules(session: Session, company_id: str, changes: dict[str, Any], *, actor: str) -> AttritionRules:
    """Change some rules (the others keep their value); strict: 422 ``invalid_attrition_rules``."""
    company = session.get(Company, company_id)
    if company is None:
        raise NotFound("company_not_found", "找不到公司")
    try:
        rules = parse_rules(changes, base=company_rules(company))
    except RuleError as exc:
        raise InvalidInput("invalid_attrition_rules", "预警规则无效：" + "；".join(f"{k} {v}" for k, v in exc.errors.items()),
                           details={"errors": exc.errors}) from None
    policy = dict(company.policy or {})
    policy[POLICY_KEY] = rules.as_dict()
    policy[POLICY_KEY + "_updated"] = {"by": actor, "at": utcnow().isoformat()}
    company.policy = policy
    session.flush()
    return rules


# ---- the list ------------------------------------------------------------------------------------

@dataclass
class RiskItem:
    employee: Employee
    assessment: Assessment
    dismissal: AttritionEpisode | None = None
    episode_row: AttritionEpisode | None = None
    open_case_id: str | None = None

    @property
    def level(self) -> RiskLevel:
        """The level HR acts on: a dismissed episode is green."""
        return RiskLevel.GREEN if self.dismissal is not None else self.assessment.level

    def as_dict(self) -> dict[str, Any]:
        a, e = self.assessment, self.employee
        ep = self.episode_row
        return {
            "employee_id": e.id, "employee_no": e.employee_no, "name": e.name, "department": e.department,
            "level": self.level.value, "level_label": RISK_LABELS[self.level],
            "computed_level": a.level.value, "reasons": a.reasons,
            "kind": a.kind.value if a.kind else None, "episode": a.episode,
            "gap_days": list(a.gap_days), "consecutive_days": len(a.gap_days),
            "last_clock_in": a.last_clock_in, "recent_rate": a.recent_rate, "baseline_rate": a.baseline_rate,
            "notified_at": ep.notified_at if ep else None,
            "dismissed": None if self.dismissal is None else {
                "episode": self.dismissal.episode, "reason": self.dismissal.dismissal_reason,
                "by": self.dismissal.dismissed_by, "at": self.dismissal.dismissed_at},
            "open_case_id": self.open_case_id,
        }


@dataclass
class RiskList:
    through: date
    rules: AttritionRules
    items: list[RiskItem] = field(default_factory=list)
    untracked: int = 0

    def counts(self) -> dict[str, int]:
        out = {lv.value: 0 for lv in RiskLevel}
        for it in self.items:
            out[it.level.value] += 1
        out["dismissed"] = sum(1 for it in self.items if it.dismissal is not None)
        out["untracked"] = self.untracked
        return out


def _covered_fn(ranges: dict[str | None, list[tuple[date, date]]], employee_id: str) -> Callable[[date], bool]:
    mine = ranges.get(None, []) + ranges.get(employee_id, [])
    return lambda d: any(lo <= d <= hi for lo, hi in mine)


def evaluate(session: Session, company_id: str, *, through: date | None = None,
             reviewer: Reviewer | None = None, employee_ids: list[str] | None = None) -> RiskList:
    """Every tracked employee's assessment for the days up to ``through`` (default: yesterday in
    Beijing). Tracked: active, with at least one attendance record; the others are counted as
    ``untracked`` (nobody clocks in for them: no claim)."""
    company = session.get(Company, company_id)
    if company is None:
        raise NotFound("company_not_found", "找不到公司")
    through = through or beijing_today() - timedelta(days=1)
    rules = company_rules(company)
    cal = company_calendar(session, company_id)
    start = lookback_start(through, rules)

    q = select(Employee).where(Employee.company_id == company_id, Employee.active.is_(True))
    if reviewer is not None:
        q = q.where(department_scope(reviewer))
    if employee_ids is not None:
        q = q.where(Employee.id.in_(employee_ids))
    employees = list(session.scalars(q.order_by(Employee.employee_no)))
    tracked_ids = set(session.scalars(select(AttendanceRecord.employee_id).distinct().where(
        AttendanceRecord.company_id == company_id, AttendanceRecord.day <= through)))
    out = RiskList(through=through, rules=rules)
    tracked = [e for e in employees if e.id in tracked_ids]
    out.untracked = len(employees) - len(tracked)
    if not tracked:
        return out
    ids = [e.id for e in tracked]
    present: dict[str, set[date]] = defaultdict(set)
    rq = select(AttendanceRecord.employee_id, AttendanceRecord.day).where(
        AttendanceRecord.company_id == company_id, AttendanceRecord.present.is_(True),
        AttendanceRecord.day >= start, AttendanceRecord.day <= through)
    for emp_id, day in session.execute(rq):
        present[emp_id].add(day)
    leaves = leave_days(session, company_id, ids, start, through)
    ranges = coverage_ranges(session, company_id, start, through)
    episodes: dict[str, list[AttritionEpisode]] = defaultdict(list)
    for ep in session.scalars(select(AttritionEpisode).where(AttritionEpisode.company_id == company_id,
                                                             AttritionEpisode.last_seen_on >= start)):
        episodes[ep.employee_id].append(ep)
    open_cases = dict(session.execute(select(ResignationCase.employee_id, ResignationCase.id).where(
        ResignationCase.company_id == company_id, ResignationCase.state.in_([s.value for s in ANY_OPEN_STATES]))).all())

    for emp in tracked:
        a = assess(through=through, is_working_day=cal.is_working_day, clock_in_days=present.get(emp.id, ()),
                   leave_days=leaves.get(emp.id, ()), covered=_covered_fn(ranges, emp.id), rules=rules,
                   hire_date=emp.hire_date, start=start)
        mine = episodes.get(emp.id, [])
        dismissals = [Dismissal(ep.episode, ep.window_last) for ep in mine if ep.dismissed_at is not None]
        hit = dismissed(a, dismissals)
        row = next((ep for ep in mine if ep.episode == a.episode), None)
        dm_row = next((ep for ep in mine if hit is not None and ep.episode == hit.episode), None)
        out.items.append(RiskItem(emp, a, dm_row, row, open_cases.get(emp.id)))
    out.items.sort(key=lambda it: (sort_key(it.assessment) if it.dismissal is None else (3, 0), it.employee.employee_no))
    return out


# ---- the daily run -------------------------------------------------------------------------------

@dataclass
class _Notice:
    episode_id: str
    employee_id: str
    text: str
    recipients: list[tuple[str, str | None, str | None]]  # (hr user id, wecom userid, phone)


def _recipients(session: Session, rt: Runtime, company_id: str, department: str) -> list[tuple[str, str | None, str | None]]:
    users = session.scalars(select(HrUser).where(HrUser.company_id == company_id, HrUser.active.is_(True))
                            .order_by(HrUser.username)).all()
    out: list[tuple[str, str | None, str | None]] = []
    for u in users:
        if u.role in NOTIFY_ROLES or (u.role == "dept_head" and u.department and u.department == department):
            out.append((u.id, u.wecom_userid, hr_phone(rt, u)))
    return out


def _notice_text(emp: Employee, a: Assessment, company: Company) -> str:
    return (f"【离职预警】{emp.name}（工号 {emp.employee_no}，{emp.department or '未分部门'}）为红色预警："
            f"{a.reasons[0]}。请尽快核实员工状态（直接沟通、同事问询），并在签离后台处理。")


def _record_episodes(session: Session, rt: Runtime, company: Company, risks: RiskList, day: date) -> list[_Notice]:
    notices: list[_Notice] = []
    for it in risks.items:
        a = it.assessment
        if a.level == RiskLevel.GREEN or a.episode is None:
            continue
        ep = it.episode_row
        if ep is None:
            ep = AttritionEpisode(company_id=company.id, employee_id=it.employee.id, episode=a.episode,
                                  kind=a.kind.value if a.kind else "gap", level=a.level.value, first_seen_on=day,
                                  last_seen_on=day, reasons=a.reasons,
                                  window_last=a.drop_window[1] if a.drop_window else None)
            session.add(ep)
            session.flush()
            it.episode_row = ep
        else:
            ep.last_seen_on, ep.reasons = day, a.reasons
            if a.level == RiskLevel.RED:
                ep.level = RiskLevel.RED.value
            if a.drop_window:
                ep.window_last = a.drop_window[1]
        if (a.level == RiskLevel.RED and it.dismissal is None and ep.notified_at is None and it.open_case_id is None
                and risks.rules.notify_red):
            ep.notified_at = utcnow()  # claimed in this transaction: a second run does not notify again
            text = _notice_text(it.employee, a, company)
            raise_alert(session, company_id=company.id, kind="attrition_red", employee_id=it.employee.id,
                        message=text, payload={"episode": a.episode, "gap_days": [d.isoformat() for d in a.gap_days]},
                        actor=ACTOR)
            notices.append(_Notice(ep.id, it.employee.id, text,
                                   _recipients(session, rt, company.id, it.employee.department)))
    return notices


def _send(rt: Runtime, notice: _Notice) -> list[dict[str, Any]]:
    """Deliver one red to each recipient (WeCom when possible, else SMS); the outcome of each."""
    results: list[dict[str, Any]] = []
    wecom = rt.wecom
    for user_id, wecom_userid, phone in notice.recipients:
        entry: dict[str, Any] = {"hr_user_id": user_id, "at": utcnow().isoformat()}
        if wecom is not None and wecom_userid:
            try:
                res = wecom.send_text([wecom_userid], notice.text)
                ok = wecom_userid not in res.invalid_users
                entry.update(channel="wecom", status="sent" if ok else "failed", message_id=res.msgid,
                             **({} if ok else {"error": "invalid WeCom userid"}))
            except Exception as exc:  # noqa: BLE001 - SMS is the fallback, and the outcome is recorded
                entry.update(channel="wecom", status="failed", error=f"{type(exc).__name__}: {exc}"[:300])
            results.append(entry)
            if entry["status"] == "sent":
                continue
            entry = {"hr_user_id": user_id, "at": utcnow().isoformat()}
        if phone:
            try:
                sent = rt.sms_gateway.send(phone, SMS_TEMPLATE, {"name": "HR", "text": notice.text})
                entry.update(channel="sms", status="sent", message_id=sent.message_id)
            except SmsGatewayError as exc:
                entry.update(channel="sms", status="failed", error=f"{exc.provider_code}: {exc.provider_message}"[:300])
        else:
            entry.update(channel="console", status="no_channel", error="no WeCom userid or phone on file; HR alert only")
        results.append(entry)
    return results


def run_daily(rt: Runtime, company_id: str, day: date) -> dict[str, Any]:
    """The company's early-warning run for ``day`` (judging the days up to the day before): at most
    once per company and day. Returns a summary (also stored on the run)."""
    with session_scope(rt.session_factory) as session:
        if session.scalar(select(exists().where(AttendanceRun.company_id == company_id, AttendanceRun.day == day))):
            return {"status": "already_ran", "day": day.isoformat()}
        run = AttendanceRun(company_id=company_id, day=day)
        session.add(run)
        session.flush()
        run_id = run.id
    summary: dict[str, Any] = {"status": "done", "day": day.isoformat()}
    try:
        summary["wecom"] = pull_checkins(rt, company_id, day - timedelta(days=1))
    except Exception as exc:  # noqa: BLE001 - the list from what is already known still matters
        log.exception("WeCom check-in pull failed for company %s", company_id)
        summary["wecom"] = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"[:300]}
    try:
        with session_scope(rt.session_factory) as session:
            company = session.get(Company, company_id)
            if company is None:
                raise NotFound("company_not_found", "找不到公司")
            risks = evaluate(session, company_id, through=day - timedelta(days=1))
            notices = _record_episodes(session, rt, company, risks, day)
            summary["counts"] = risks.counts()
            summary["notified"] = len(notices)
    except Exception:
        # Nothing was recorded or sent: free the day so that rq's retry runs it again.
        with session_scope(rt.session_factory) as session:
            run = session.get(AttendanceRun, run_id)
            if run is not None:
                session.delete(run)
        raise
    outcomes = {n.episode_id: _send(rt, n) for n in notices}
    with session_scope(rt.session_factory) as session:
        for ep_id, results in outcomes.items():
            ep = session.get(AttritionEpisode, ep_id)
            if ep is not None:
                ep.notified = [*(ep.notified or []), *results]
        run = session.get(AttendanceRun, run_id)
        if run is not None:
            run.result, run.finished_at = summary, utcnow()
    return summary


def companies_due(session: Session, day: date, *, wecom: bool = False) -> list[str]:
    """Companies with attendance data (with ``wecom``: or employees with a WeCom userid) and no run for
    ``day`` yet."""
    with_data = set(session.scalars(select(AttendanceCoverage.company_id).distinct()))
    if wecom:
        with_data |= set(session.scalars(select(Employee.company_id).distinct().where(
            Employee.active.is_(True), Employee.wecom_userid.is_not(None))))
    done = set(session.scalars(select(AttendanceRun.company_id).where(AttendanceRun.day == day)))
    return sorted(with_data - done)


def enqueue_due_runs(rt: Runtime, now: datetime | None = None) -> int:
    """Called by the scheduler each round: from QIANLI_ATTRITION_RUN_HOUR (Beijing) on, one daily job per
    company that has not run today (deterministic job id: enqueueing twice is one job; a failed run is
    retried by rq after 1 minute, 10 minutes and 1 hour)."""
    from rq import Queue, Retry

    now = now or utcnow()
    local = now.astimezone(SHANGHAI)
    if local.hour < rt.settings.attrition_run_hour:
        return 0
    day = local.date()
    with session_scope(rt.session_factory) as session:
        todo = companies_due(session, day, wecom=rt.wecom is not None)
    q = Queue(QUEUE, connection=rt.redis)
    n = 0
    for company_id in todo:
        job_id = f"attendance-daily-{company_id}-{day.isoformat()}"
        if q.fetch_job(job_id) is not None:
            continue
        q.enqueue(DAILY_FUNC, company_id, day.isoformat(), job_id=job_id, result_ttl=86400, failure_ttl=7 * 86400,
                  retry=Retry(max=len(RETRY_INTERVALS), interval=list(RETRY_INTERVALS)))
        n += 1
    return n


# ---- dismissal -----------------------------------------------------------------------------------

def dismiss(session: Session, reviewer: Reviewer, employee_id: str, *, reason: str, episode: str | None = None,
            through: date | None = None) -> RiskItem:
    """Mark the employee's current amber / red episode (or the named one) a false alarm."""
    reason = (reason or "").strip()
    if not 2 <= len(reason) <= 500:
        raise InvalidInput("validation_failed", "请填写误报原因（2-500 字）", details={"reason": ["2-500 characters"]})
    emp = get_hr_employee(session, reviewer, employee_id)
    risks = evaluate(session, reviewer.company_id, through=through, employee_ids=[emp.id])
    item = risks.items[0] if risks.items else None
    if item is None or item.assessment.episode is None:
        raise Conflict("no_attrition_risk", "该员工当前没有预警，无需标记误报")
    if episode is not None and episode != item.assessment.episode:
        raise Conflict("attrition_episode_changed", "预警已变化，请刷新后再处理",
                       details={"current_episode": item.assessment.episode})
    if item.dismissal is not None:
        raise Conflict("attrition_already_dismissed", "该预警已被标记为误报",
                       details={"by": item.dismissal.dismissed_by, "reason": item.dismissal.dismissal_reason})
    a = item.assessment
    ep = item.episode_row
    today = beijing_today()
    if ep is None:
        ep = AttritionEpisode(company_id=emp.company_id, employee_id=emp.id, episode=a.episode,
                              kind=a.kind.value if a.kind else "gap", level=a.level.value, first_seen_on=today,
                              last_seen_on=today, reasons=a.reasons)
        session.add(ep)
    ep.window_last = a.drop_window[1] if a.drop_window else ep.window_last
    ep.dismissed_at, ep.dismissed_by, ep.dismissal_reason = utcnow(), reviewer.actor, reason
    session.flush()
    item.episode_row, item.dismissal = ep, ep
    return item

