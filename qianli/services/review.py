"""HR's side of a case: the queue, one case in full, the review chain, withdrawal, chat evidence.

The law shapes every operation here:

* **No veto** (Labor Contract Law art. 37): a lawful notice ends the contract without the
  employer's approval. "Approve" therefore means *confirming* the agreed last day and the
  handover, in the levels the company's ``approval_chain`` names (default HR specialist, then
  department head). HR may not push the last day past what the employee asked for.
* **An earlier last day is a new agreement** (art. 36): if HR proposes a day before the earliest
  lawful last day, it is recorded as a proposal the employee must confirm (``confirm_agreed_last_day``);
  the case cannot reach final approval until they do.
* **Withdrawal** needs the employer's consent once the notice has arrived (Civil Code art. 141:
  a withdrawal must reach the other side no later than the notice itself). A case opens when the
  notice arrives, so in practice an employee can only *request* withdrawal
  (``request_withdrawal``); HR's consent (``decide_withdrawal``) withdraws the case.

Who did what is recorded in the case's evidence chain (via ``apply_action`` payloads and
``append_evidence``); pending proposals and withdrawal requests are read back from the chain,
which is the single record of them. Services never commit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import and_, false, func, or_, select
from sqlalchemy.orm import Session

from cases import approval
from cases.approval import ApprovalStatus
from cases.clock import SHANGHAI, beijing_day_start, beijing_today
from cases.errors import (Conflict, Forbidden, InvalidInput, NotFound, PayloadTooLarge, UnsupportedMediaType)
from cases.evidence import verify_chain
from cases.evidence_kinds import EvidenceKind
from cases.notice import provisional_note
from cases.states import OPEN_STATES, CaseAction, CaseState
from qianli.db import keep, utcnow
from qianli.models import CaseTally, Company, Employee, EvidenceEntry, HrAlert, HrUser, ResignationCase
from qianli.runtime import Runtime
from qianli.services.alerts import open_alerts, raise_alert, resolve_alert
from qianli.services.cases import apply_action, company_policy, get_employee_case, open_case
from qianli.services.evidence import append_evidence, case_evidence, to_record
from qianli.services.reminders import notify_employee, on_case_opened
from qianli.services.revocation import cancel_access_revoke, publish_case_approved, schedule_access_revoke
from qianli.services.signing import countersign_case
from qianli.storage import case_documents, sha256_hex, store_document

__all__ = ["HR_WRITERS", "CHAT_PLATFORMS", "SCREENSHOT_TYPES", "MAX_SCREENSHOT_BYTES", "MAX_CHAT_TEXT",
           "CaseQuery", "CasePage", "ApprovalStatus", "Reviewer", "get_reviewer", "is_overdue",
           "list_cases", "sees_employee", "department_scope", "get_hr_employee", "get_hr_case", "case_detail",
           "approval_status", "hr_allowed_actions", "approve_case",
           "return_case", "confirm_agreed_last_day", "request_withdrawal", "decide_withdrawal",
           "pending_withdrawal", "pending_agreement", "record_chat_evidence", "list_alerts", "resolve_hr_alert",
           "notify_employee_safely", "chat_notice", "respond_to_chat_notice", "DISPUTE_STATEMENT", "withdrawable"]

log = logging.getLogger(__name__)

HR_WRITERS = ("hr_specialist", "hr_manager")
"""Roles that may record chat evidence, decide withdrawals and resolve alerts."""
CHAT_PLATFORMS = ("wechat", "wecom", "dingtalk", "other")
SCREENSHOT_TYPES = {"image/png": (b"\x89PNG\r\n\x1a\n", "png"), "image/jpeg": (b"\xff\xd8\xff", "jpg")}
MAX_SCREENSHOT_BYTES = 5 * 1024 * 1024
MAX_CHAT_TEXT = 5000
MAX_COMMENT = 1000

_S = CaseState
REVIEW_STATES = (_S.SUBMITTED.value, _S.FIRST_APPROVED.value)

EV_LAST_DAY_PROPOSED = EvidenceKind.REVIEW_LAST_DAY_PROPOSED
EV_LAST_DAY_CONFIRMED = EvidenceKind.REVIEW_LAST_DAY_CONFIRMED
EV_LAST_DAY_DECLINED = EvidenceKind.REVIEW_LAST_DAY_DECLINED
EV_WITHDRAWAL_REQUESTED = EvidenceKind.WITHDRAWAL_REQUESTED
EV_WITHDRAWAL_DECLINED = EvidenceKind.WITHDRAWAL_DECLINED
EV_CHAT = EvidenceKind.CHAT_EVIDENCE_RECORDED
EV_CHAT_CONFIRMED = EvidenceKind.CHAT_NOTICE_CONFIRMED
EV_CHAT_DISPUTED = EvidenceKind.CHAT_NOTICE_DISPUTED
DISPUTE_STATEMENT = "我没有提出离职"


# ---- who is reviewing ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Reviewer:
    """An HR user as the review rules see them (loaded fresh: a deactivated user can't act)."""

    id: str
    company_id: str
    role: str
    department: str | None
    display_name: str

    @property
    def actor(self) -> str:
        return f"hr:{self.id}"


def get_reviewer(session: Session, hr_user_id: str, company_id: str) -> Reviewer:
    user = session.get(HrUser, hr_user_id)  # already in the identity map: resolve_principal loaded it
    if user is None or user.company_id != company_id or not user.active:
        raise Forbidden("hr_user_inactive", "HR account not found or deactivated")
    return Reviewer(user.id, user.company_id, user.role, user.department, user.display_name)


# ---- scoping: the one rule --------------------------------------------------------------------------
# An HR user sees the employees (and their cases) of their own company; a department head only those
# of their own department (none without a department). Every HR operation on a case goes through
# get_hr_case, on an employee through get_hr_employee, on lists through department_scope: the same rule
# answers 404 everywhere (getCase, exportDossier, getSignedLetter, listReminders, the actions, ...).

def sees_employee(reviewer: Reviewer, employee: Employee) -> bool:
    return employee.company_id == reviewer.company_id and (
        reviewer.role != "dept_head" or (bool(reviewer.department) and employee.department == reviewer.department))


def department_scope(reviewer: Reviewer):
    """The same rule as a SQL condition on Employee (the query must join or select Employee)."""
    if reviewer.role != "dept_head":
        return Employee.company_id == reviewer.company_id
    return and_(Employee.company_id == reviewer.company_id,
                Employee.department == reviewer.department if reviewer.department else false())


def get_hr_employee(session: Session, reviewer: Reviewer, employee_id: str) -> Employee:
    """An employee this reviewer may see; anything else (other company, other department) is 404."""
    employee = session.scalar(select(Employee).where(Employee.id == employee_id,
                                                     Employee.company_id == reviewer.company_id))
    if employee is None or not sees_employee(reviewer, employee):
        raise NotFound("employee_not_found", "找不到该员工")
    return employee


def get_hr_case(session: Session, reviewer: Reviewer, case_id: str, *, for_update: bool = False) -> ResignationCase:
    """A case this reviewer may see; anything else (other company, other department) is 404."""
    if for_update:
        case = session.scalar(select(ResignationCase).where(
            ResignationCase.id == case_id, ResignationCase.company_id == reviewer.company_id)
            .with_for_update().execution_options(populate_existing=True))
        if case is None:
            raise NotFound("case_not_found", "找不到该离职申请")
    else:
        # the case, its employee (the scope check) and the company (its approval chain) in one round trip;
        # kept for the request, so _employee and approval_status find them in the identity map
        row = session.execute(
            select(ResignationCase, Employee, Company)
            .join(Employee, Employee.id == ResignationCase.employee_id)
            .join(Company, Company.id == ResignationCase.company_id)
            .where(ResignationCase.id == case_id, ResignationCase.company_id == reviewer.company_id)).first()
        if row is None:
            raise NotFound("case_not_found", "找不到该离职申请")
        case = row[0]
        keep(session, row[1], row[2])
    if not sees_employee(reviewer, _employee(session, case)):
        raise NotFound("case_not_found", "找不到该离职申请")
    return case


def _lock_employee_case(session: Session, case_id: str, employee_id: str, company_id: str) -> ResignationCase:
    case = get_employee_case(session, case_id, employee_id=employee_id, company_id=company_id)
    return session.scalar(select(ResignationCase).where(ResignationCase.id == case.id).with_for_update()
                          .execution_options(populate_existing=True))


def _employee(session: Session, case: ResignationCase) -> Employee:
    employee = session.get(Employee, case.employee_id)
    keep(session, employee)
    return employee


# ---- the queue -----------------------------------------------------------------------------------

def is_overdue(case: ResignationCase, today: date | None = None) -> bool:
    """The signed letter is late: due date passed (Beijing date), still waiting for the first letter."""
    today = today or beijing_today()
    return (case.state == _S.AWAITING_LETTER.value and case.letter_submitted_at is None
            and case.letter_due_date < today)


@dataclass
class CaseQuery:
    states: list[str] = field(default_factory=list)
    overdue: bool | None = None
    department: str | None = None
    created_from: date | None = None
    created_to: date | None = None
    arrival_from: date | None = None
    arrival_to: date | None = None
    search: str | None = None
    departure_types: list[str] = field(default_factory=list)
    page: int = 1
    page_size: int = 20


@dataclass
class CasePage:
    items: list[Any]
    """(ResignationCase, Employee, overdue) tuples; with ``summaries=True`` one dict per case (``CASE_SUMMARY_FIELDS``,
    ``dates_note``, ``updated_at``, ``overdue`` and ``employee``: a dict of ``EMPLOYEE_SUMMARY_FIELDS``)."""
    total: int
    page: int
    page_size: int


CASE_SUMMARY_FIELDS = ("id", "state", "source", "departure_type", "notice_arrived_at", "arrival_date", "probation",
                       "reason_category", "reason_text", "requested_last_day", "earliest_lawful_last_day",
                       "agreed_last_day", "handover_items", "letter_due_date", "dates_provisional",
                       "letter_submitted_at", "created_at", "updated_at")
EMPLOYEE_SUMMARY_FIELDS = ("id", "employee_no", "name", "department", "position", "hire_date", "probation_end")
_SUMMARY_COLUMNS = ([getattr(ResignationCase, k) for k in CASE_SUMMARY_FIELDS]
                    + [getattr(Employee, k).label(f"employee_{k}") for k in EMPLOYEE_SUMMARY_FIELDS])
_N_CASE = len(CASE_SUMMARY_FIELDS)


def _summary(row: Any, today: date) -> dict[str, Any]:
    """One queue row as the API shows it, without loading ORM objects (the columns it needs only)."""
    body = dict(zip(CASE_SUMMARY_FIELDS, row[:_N_CASE], strict=True))
    body["employee"] = dict(zip(EMPLOYEE_SUMMARY_FIELDS, row[_N_CASE:], strict=True))
    body["dates_note"] = provisional_note(body["letter_due_date"]) if body["dates_provisional"] else None
    body["overdue"] = (body["state"] == _S.AWAITING_LETTER.value and body["letter_submitted_at"] is None
                       and body["letter_due_date"] < today)
    return body


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _tally_total(reviewer: Reviewer, q: CaseQuery):
    """The number of cases matching ``q`` (its overdue flag aside) as a sum over ``case_tallies``, or None when a
    filter the tallies do not keep (dates, search) is set. Exact: triggers keep the tallies (qianli.models.tallies)."""
    if q.created_from or q.created_to or q.arrival_from or q.arrival_to or (q.search and q.search.strip()):
        return None
    conds = [CaseTally.company_id == reviewer.company_id]
    if reviewer.role == "dept_head":
        conds.append(CaseTally.department == reviewer.department if reviewer.department else false())
    if q.department:
        conds.append(CaseTally.department == q.department)
    if q.states:
        conds.append(CaseTally.state.in_(q.states))
    if q.departure_types:
        conds.append(CaseTally.departure_type.in_(q.departure_types))
    return select(func.coalesce(func.sum(CaseTally.n), 0)).where(*conds).scalar_subquery()


def list_cases(session: Session, reviewer: Reviewer, q: CaseQuery, *, now: datetime | None = None,
               summaries: bool = False) -> CasePage:
    """The company's cases, overdue first, then newest; a department head sees their department only.

    Two ordered, index-backed reads instead of one sort of the whole company: the overdue cases
    (few; partial index ``ix_cases_awaiting_letter``) newest first, then the others newest first
    (``ix_cases_company_created`` scanned backwards), the page cut across both. Employees are
    joined only where the filter or the scope reads them (a case's employee is always of the
    case's company). The total is a sum over the stored ``case_tallies`` where the filters allow
    (company, state, departure type, department: ``_tally_total``), else a count; the overdue part
    is counted from the partial index. ``summaries``: the page as dicts of the columns the API
    shows (no ORM objects)."""
    today = beijing_today(now)
    overdue_expr = and_(ResignationCase.state == _S.AWAITING_LETTER.value,
                        ResignationCase.letter_submitted_at.is_(None), ResignationCase.letter_due_date < today)
    conds = [ResignationCase.company_id == reviewer.company_id]
    employee_conds = [department_scope(reviewer)] if reviewer.role == "dept_head" else []
    if q.states:
        conds.append(ResignationCase.state.in_(q.states))
    if q.departure_types:
        conds.append(ResignationCase.departure_type.in_(q.departure_types))
    if q.department:
        employee_conds.append(Employee.department == q.department)
    if q.created_from:
        conds.append(ResignationCase.created_at >= beijing_day_start(q.created_from))
    if q.created_to:
        conds.append(ResignationCase.created_at < beijing_day_start(q.created_to + timedelta(days=1)))
    if q.arrival_from:
        conds.append(ResignationCase.arrival_date >= q.arrival_from)
    if q.arrival_to:
        conds.append(ResignationCase.arrival_date <= q.arrival_to)
    if q.search and q.search.strip():
        pattern = _like(q.search.strip())
        employee_conds.append(or_(Employee.name.like(pattern, escape="\\"),
                                  Employee.employee_no.like(pattern, escape="\\")))

    if employee_conds:  # a case's employee is of the case's company: lets PostgreSQL start from the employees
        employee_conds.append(Employee.company_id == reviewer.company_id)

    def counting(*extra):
        stmt = select(func.count()).select_from(ResignationCase).where(*conds, *extra)
        if employee_conds:
            stmt = stmt.join(Employee, Employee.id == ResignationCase.employee_id).where(*employee_conds)
        return stmt

    def count(*extra) -> int:
        return int(session.scalar(counting(*extra)) or 0)

    def rows(extra, offset: int, limit: int) -> list[Any]:
        if limit <= 0:
            return []
        newest = (ResignationCase.created_at.desc(), ResignationCase.id.desc())
        stmt = (select(*_SUMMARY_COLUMNS) if summaries else select(ResignationCase, Employee)).join(
            Employee, Employee.id == ResignationCase.employee_id)
        if employee_conds:
            # department / search / a department head's scope: pick the page's ids from the indexes alone (the
            # awaiting-letter partial index carries employee_id, the department index the employee id), then
            # read those rows; joining full rows first made PostgreSQL read every matching case (4 ms, 50,000)
            page_ids = (select(ResignationCase.id).join(Employee, Employee.id == ResignationCase.employee_id)
                        .where(*conds, *extra, *employee_conds).order_by(*newest).offset(offset).limit(limit))
            stmt = stmt.where(ResignationCase.id.in_(page_ids)).order_by(*newest)
        else:
            stmt = stmt.where(*conds, *extra, department_scope(reviewer)).order_by(*newest).offset(offset).limit(limit)
        return list(session.execute(stmt).all())

    tallied = _tally_total(reviewer, q)  # the stored count (case_tallies) when the filters allow it, else None

    def totals(overdue_too: bool) -> tuple[int, int]:
        """(all cases matching, the overdue ones among them) in one round trip, each on its own index."""
        parts = [tallied if tallied is not None else counting().scalar_subquery()]
        if overdue_too:
            parts.append(counting(overdue_expr).scalar_subquery())
        got = session.execute(select(*parts)).one()
        return int(got[0] or 0), int(got[1] or 0) if overdue_too else 0

    offset, size = (q.page - 1) * q.page_size, q.page_size
    if q.overdue is True:
        total, page = count(overdue_expr), rows([overdue_expr], offset, size)
    elif q.overdue is False:
        if tallied is None:
            total = count(~overdue_expr)
        else:
            n_all, n_overdue = totals(True)
            total = n_all - n_overdue
        page = rows([~overdue_expr], offset, size)
    else:
        total, n_overdue = totals(True)
        page = rows([overdue_expr], offset, size) if offset < n_overdue else []
        page += rows([~overdue_expr], max(0, offset - n_overdue), size - len(page))
    if summaries:
        return CasePage([_summary(r, today) for r in page], total, q.page, q.page_size)
    return CasePage([(c, e, is_overdue(c, today)) for c, e in page], total, q.page, q.page_size)


# ---- approval chain -----------------------------------------------------------------------------

# case_detail reads a case's chain once and answers every "latest entry of these kinds" question
# from it (approval level, agreement, withdrawal, chat notice) instead of one query each; only
# inside that read-only call (session.info[_CHAIN_MEMO], removed when it returns).
_CHAIN_MEMO = "qianli.review.chain_memo"


def _latest(session: Session, case: ResignationCase, actions: tuple[str, ...]) -> EvidenceEntry | None:
    memo = session.info.get(_CHAIN_MEMO)
    if memo is not None and memo[0] == case.id:
        return next((e for e in reversed(memo[1]) if e.action in actions), None)
    return session.scalar(select(EvidenceEntry).where(
        EvidenceEntry.case_id == case.id, EvidenceEntry.company_id == case.company_id,
        EvidenceEntry.action.in_(actions)).order_by(EvidenceEntry.id.desc()).limit(1))


_ROUND_RESET = ("case_submit_letter", "case_return_for_revision", "case_withdraw", "case_approve_final")


def pending_agreement(session: Session, case: ResignationCase) -> tuple[str, date | None]:
    """('pending'|'confirmed'|'declined'|'none', day) for the earlier-last-day agreement of this round."""
    e = _latest(session, case, (EV_LAST_DAY_PROPOSED, EV_LAST_DAY_CONFIRMED, EV_LAST_DAY_DECLINED, *_ROUND_RESET))
    if e is None or e.action in _ROUND_RESET:
        return "none", None
    day = date.fromisoformat(e.payload["agreed_last_day"])
    outcome = {EV_LAST_DAY_PROPOSED.value: "pending", EV_LAST_DAY_CONFIRMED.value: "confirmed"}
    return outcome.get(e.action, "declined"), day


def pending_withdrawal(session: Session, case: ResignationCase) -> EvidenceEntry | None:
    """The employee's open withdrawal request, if any."""
    e = _latest(session, case, (EV_WITHDRAWAL_REQUESTED, EV_WITHDRAWAL_DECLINED, "case_withdraw"))
    return e if e is not None and e.action == EV_WITHDRAWAL_REQUESTED else None


def approval_status(session: Session, rt: Runtime, case: ResignationCase) -> ApprovalStatus:
    company = session.get(Company, case.company_id)
    keep(session, company)
    chain = company_policy(company, rt.settings).approval_chain
    first = None
    if case.state == _S.FIRST_APPROVED.value:
        e = _latest(session, case, (EvidenceKind.CASE_APPROVE_FIRST,))
        first = e.actor if e is not None else None
    agreement, day = pending_agreement(session, case)
    return approval.approval_status(case.state, chain, first_approver=first, agreement=agreement, agreement_day=day)


def _refusal_reason(reviewer: Reviewer, status: ApprovalStatus, employee: Employee) -> str | None:
    return approval.refusal_reason(status, role=reviewer.role, actor=reviewer.actor, department=reviewer.department,
                                   employee_department=employee.department)


def _check_level(reviewer: Reviewer, status: ApprovalStatus, employee: Employee) -> None:
    approval.check_may_decide(status, role=reviewer.role, actor=reviewer.actor, department=reviewer.department,
                              employee_department=employee.department)


def hr_allowed_actions(session: Session, rt: Runtime, case: ResignationCase, reviewer: Reviewer) -> list[str]:
    """What the console may offer this HR user on this case now."""
    actions = ["export_dossier"]
    employee = _employee(session, case)
    status = approval_status(session, rt, case)
    if _refusal_reason(reviewer, status, employee) is None:
        notice = chat_notice(session, case)
        if notice is None or notice["state"] != "disputed" or _employee_signed_letter(session, case):
            actions.append("approve")
        actions.append("return")
    if reviewer.role in HR_WRITERS and withdrawable(case) and pending_withdrawal(session, case) is not None:
        actions += ["consent_withdrawal", "decline_withdrawal"]
    return actions


def notify_employee_safely(session: Session, rt: Runtime, case: ResignationCase, kind: str,
                           params: dict[str, Any]) -> None:
    """Tell the employee (SMS + subscribe message); the reminders area sends it after the commit."""
    notify_employee(session, rt, case, kind, params)


def _handover_snapshot(case: ResignationCase) -> list[dict[str, Any]]:
    return [dict(i) for i in (case.handover_items or [])]


def approve_case(session: Session, rt: Runtime, reviewer: Reviewer, case_id: str, *,
                 agreed_last_day: date | None = None, comment: str = "") -> tuple[ResignationCase, str]:
    """Confirm the case at the current level. Returns the case and the outcome:
    ``first_approved``, ``approved`` or ``awaiting_employee_confirmation`` (an earlier last day
    was proposed at the final level and the employee must confirm it first)."""
    if len(comment) > MAX_COMMENT:
        raise InvalidInput("comment_too_long", f"审核意见不能超过 {MAX_COMMENT} 个字")
    case = get_hr_case(session, reviewer, case_id, for_update=True)
    employee = _employee(session, case)
    status = approval_status(session, rt, case)
    _check_level(reviewer, status, employee)
    _check_not_disputed(session, case)
    decision = approval.decide_approval(
        status, arrival_date=case.arrival_date, earliest_lawful_last_day=case.earliest_lawful_last_day,
        requested_last_day=case.requested_last_day, current_last_day=case.agreed_last_day,
        agreed_last_day=agreed_last_day)
    if decision.propose is not None:  # an earlier day than the law's needs the employee's agreement (art. 36)
        append_evidence(session, case, reviewer.actor, EV_LAST_DAY_PROPOSED, {
            "agreed_last_day": decision.propose.isoformat(), "legal_basis": approval.ARTICLE_36,
            "earliest_lawful_last_day": case.earliest_lawful_last_day.isoformat(), "proposed_by": reviewer.display_name})
        notify_employee_safely(session, rt, case, "agreed_last_day_proposed",
                               {"agreed_last_day": decision.propose.isoformat()})
    if decision.transition is None:
        return case, decision.outcome
    if decision.last_day is not None:
        case.agreed_last_day = decision.last_day
    base = {"level": status.level + 1, "levels": len(status.chain), "level_role": status.level_role,
            "approver_role": reviewer.role, "approver_name": reviewer.display_name, "comment": comment,
            "earliest_lawful_last_day": case.earliest_lawful_last_day.isoformat(),
            "requested_last_day": case.requested_last_day.isoformat() if case.requested_last_day else None,
            "handover_confirmed": _handover_snapshot(case),
            "agreed_last_day": decision.transition_last_day.isoformat() if decision.transition_last_day else None}
    if decision.outcome == "first_approved":
        apply_action(session, case, CaseAction.APPROVE_FIRST, actor=reviewer.actor, payload=base)
        return case, decision.outcome
    apply_action(session, case, CaseAction.APPROVE_FINAL, actor=reviewer.actor,
                 payload={**base, "mutual_agreement": decision.mutual_agreement})
    _countersign(session, rt, case, reviewer)
    from qianli.services.offboarding import start_offboarding

    start_offboarding(session, rt, case, actor=reviewer.actor)
    # The company's systems hear of it (outbox), and access ends at 23:59 of the last day.
    publish_case_approved(session, case, approved_by=reviewer.actor)
    schedule_access_revoke(session, case, actor=reviewer.actor)
    return case, "approved"


def _check_not_disputed(session: Session, case: ResignationCase) -> None:
    notice = chat_notice(session, case)
    if notice is not None and notice["state"] == "disputed" and not _employee_signed_letter(session, case):
        raise Conflict("chat_notice_disputed", "员工否认提出离职，须有员工本人签署的辞职信才能审核通过",
                       details={"disputed_at": notice["answered_at"].isoformat() if notice["answered_at"] else None})


def _countersign(session: Session, rt: Runtime, case: ResignationCase, reviewer: Reviewer) -> None:
    """The company's countersignature on the employee's signed letter; if it fails the approval fails too."""
    countersign_case(session, rt, case, actor=reviewer.actor)


def return_case(session: Session, rt: Runtime, reviewer: Reviewer, case_id: str, *, reason: str) -> ResignationCase:
    """Send the case back to the employee for revision (they must sign again); they are notified."""
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("reason_required", "请填写退回原因")
    if len(reason) > MAX_COMMENT:
        raise InvalidInput("reason_too_long", f"退回原因不能超过 {MAX_COMMENT} 个字")
    case = get_hr_case(session, reviewer, case_id, for_update=True)
    status = approval_status(session, rt, case)
    _check_level(reviewer, status, _employee(session, case))
    apply_action(session, case, CaseAction.RETURN_FOR_REVISION, actor=reviewer.actor, payload={
        "reason": reason, "level": status.level + 1, "level_role": status.level_role,
        "approver_role": reviewer.role, "approver_name": reviewer.display_name})
    notify_employee_safely(session, rt, case, "case_returned", {"reason": reason})
    return case


def confirm_agreed_last_day(session: Session, *, employee_id: str, company_id: str, case_id: str, actor: str,
                            agreed_last_day: date, accept: bool) -> ResignationCase:
    """The employee confirms (or declines) HR's earlier last day; naming the day guards against a stale page."""
    case = _lock_employee_case(session, case_id, employee_id, company_id)
    if case.state not in REVIEW_STATES:
        raise Conflict("no_pending_agreement", "没有待确认的最后工作日")
    state, day = pending_agreement(session, case)
    if state != "pending":
        raise Conflict("no_pending_agreement", "没有待确认的最后工作日")
    if day != agreed_last_day:
        raise Conflict("agreement_changed", "待确认的最后工作日已变更，请刷新后重试",
                       details={"agreed_last_day": day.isoformat()})
    if accept:
        # An earlier last day is a new agreement (art. 36): it is accepted only by signing the addendum.
        raise Conflict("agreement_signature_required",
                       "提前的最后工作日须签署《关于提前解除劳动合同日期的协议》：请核验身份后在小程序内签署",
                       details={"agreed_last_day": day.isoformat(),
                                "operations": ["previewAgreementAddendum", "createSigningIntent",
                                               "signAgreementAddendum"]})
    else:
        append_evidence(session, case, actor, EV_LAST_DAY_DECLINED, {"agreed_last_day": day.isoformat()})
    session.flush()
    return case


# ---- withdrawal ----------------------------------------------------------------------------------

def withdrawable(case: ResignationCase, today: date | None = None) -> bool:
    """Whether a withdrawal may still be asked for: an open case, or an approved one until its last day
    (the employer may agree that the employee stays; the handover tasks are then cancelled)."""
    if case.state in {s.value for s in OPEN_STATES}:
        return True
    last_day = case.agreed_last_day or case.requested_last_day or case.earliest_lawful_last_day
    return case.state == _S.APPROVED.value and (today or beijing_today()) <= last_day


def request_withdrawal(session: Session, *, employee_id: str, company_id: str, case_id: str, actor: str,
                       reason: str = "", now: datetime | None = None) -> tuple[ResignationCase, str]:
    """Before the notice arrived the employee withdraws freely; afterwards this records a request for
    HR's consent (state unchanged). Returns the case and ``withdrawn`` or ``requested``."""
    if len(reason) > MAX_COMMENT:
        raise InvalidInput("reason_too_long", f"撤回原因不能超过 {MAX_COMMENT} 个字")
    now = now or utcnow()
    case = _lock_employee_case(session, case_id, employee_id, company_id)
    if not withdrawable(case):
        raise Conflict("case_not_open", "该离职申请已结束，不能撤回", details={"state": case.state})
    if now < case.notice_arrived_at:
        apply_action(session, case, CaseAction.WITHDRAW, actor=actor,
                     payload={"reason": reason, "before_notice_arrived": True})
        return case, "withdrawn"
    if pending_withdrawal(session, case) is not None:
        return case, "requested"
    append_evidence(session, case, actor, EV_WITHDRAWAL_REQUESTED, {
        "reason": reason, "notice_arrived_at": case.notice_arrived_at,
        "note": "通知已送达用人单位，撤回需经用人单位同意"})
    raise_alert(session, company_id=company_id, kind="other", case_id=case.id, employee_id=case.employee_id,
                message="员工申请撤回离职申请，请确认是否同意", payload={"withdrawal_requested": True}, actor="system")
    return case, "requested"


def decide_withdrawal(session: Session, rt: Runtime, reviewer: Reviewer, case_id: str, *, consent: bool,
                      comment: str = "") -> ResignationCase:
    """HR consents (the case is withdrawn) or declines (the resignation stands); both are recorded."""
    if reviewer.role not in HR_WRITERS:
        raise Forbidden("role_forbidden", "requires role: hr_specialist, hr_manager", details={"role": reviewer.role})
    if len(comment) > MAX_COMMENT:
        raise InvalidInput("comment_too_long", f"意见不能超过 {MAX_COMMENT} 个字")
    case = get_hr_case(session, reviewer, case_id, for_update=True)
    request = pending_withdrawal(session, case)
    if request is None or not withdrawable(case):
        raise Conflict("withdrawal_not_requested", "员工没有待处理的撤回申请")
    decision = {"request_seq": request.seq, "decided_by": reviewer.display_name, "comment": comment}
    if consent:
        apply_action(session, case, CaseAction.WITHDRAW, actor=reviewer.actor,
                     payload={**decision, "employer_consent": True, "reason": request.payload.get("reason", "")})
        from qianli.services.offboarding import cancel_offboarding

        reason = f"员工撤回离职申请，{reviewer.display_name}同意撤回" + (f"：{comment}" if comment else "")
        cancel_offboarding(session, case, actor=reviewer.actor, reason=reason)
        cancel_access_revoke(session, case, actor=reviewer.actor, reason=reason)  # the employee stays
        notify_employee_safely(session, rt, case, "withdrawal_consented", {"comment": comment})
    else:
        append_evidence(session, case, reviewer.actor, EV_WITHDRAWAL_DECLINED, decision)
        notify_employee_safely(session, rt, case, "withdrawal_declined", {"comment": comment})
    return case


# ---- the seed case: chat evidence -----------------------------------------------------------------

@dataclass(frozen=True)
class Screenshot:
    data: bytes
    content_type: str
    filename: str


def _check_screenshot(shot: Screenshot) -> str:
    if len(shot.data) > MAX_SCREENSHOT_BYTES:
        raise PayloadTooLarge("screenshot_too_large", f"截图不能超过 {MAX_SCREENSHOT_BYTES // (1024 * 1024)} MB")
    for ctype, (magic, _ext) in SCREENSHOT_TYPES.items():
        if shot.data.startswith(magic):
            return ctype
    raise UnsupportedMediaType("screenshot_type", "截图须为 PNG 或 JPEG 图片", details={"accepted": list(SCREENSHOT_TYPES)})


def record_chat_evidence(session: Session, rt: Runtime, reviewer: Reviewer, *, text: str, sender_name: str,
                         platform: str, sent_at: datetime, employee_id: str | None = None,
                         employee_no: str | None = None, requested_last_day: date | None = None,
                         screenshot: Screenshot | None = None, late_reason: str = "") -> ResignationCase:
    """Record the instant message in which the employee resigned: it opens the case, notice arriving
    when the message was sent (Civil Code art. 137); the employee is invited at once.

    A message sent longer ago than ``QIANLI_CHAT_NOTICE_WINDOW_DAYS`` needs a screenshot and HR's
    reason for recording it late. Whatever its age, the employee sees the message in the
    mini-program and may confirm or dispute it (:func:`respond_to_chat_notice`)."""
    if reviewer.role not in HR_WRITERS:
        raise Forbidden("role_forbidden", "requires role: hr_specialist, hr_manager", details={"role": reviewer.role})
    if sent_at.tzinfo is None or sent_at.utcoffset() is None:
        raise InvalidInput("sent_at_naive", "发送时间须带时区（例如 +08:00）")
    sent_at = sent_at.astimezone(timezone.utc)
    if sent_at > utcnow():
        raise InvalidInput("sent_at_in_future", "发送时间不能晚于当前时间")
    text = (text or "").strip()
    if not text or len(text) > MAX_CHAT_TEXT:
        raise InvalidInput("chat_text_invalid", f"消息内容须为 1 到 {MAX_CHAT_TEXT} 个字")
    if platform not in CHAT_PLATFORMS:
        raise InvalidInput("chat_platform_invalid", "未知的聊天平台", details={"allowed": list(CHAT_PLATFORMS)})
    late_reason = (late_reason or "").strip()
    if len(late_reason) > MAX_COMMENT:
        raise InvalidInput("late_reason_too_long", f"补录原因不能超过 {MAX_COMMENT} 个字")
    window = timedelta(days=rt.settings.chat_notice_window_days)
    late = utcnow() - sent_at > window
    if late and screenshot is None:
        raise InvalidInput("chat_screenshot_required",
                           f"消息发送时间早于 {rt.settings.chat_notice_window_days} 天前，须上传聊天截图",
                           details={"window_days": rt.settings.chat_notice_window_days})
    if late and not late_reason:
        raise InvalidInput("chat_late_reason_required",
                           f"消息发送时间早于 {rt.settings.chat_notice_window_days} 天前，须说明补录原因（late_reason）",
                           details={"window_days": rt.settings.chat_notice_window_days})
    if bool(employee_id) == bool(employee_no):
        raise InvalidInput("employee_ref_required", "请提供员工 ID 或工号（二选一）")
    cond = Employee.id == employee_id if employee_id else Employee.employee_no == employee_no
    employee = session.scalar(select(Employee).where(cond, Employee.company_id == reviewer.company_id))
    if employee is None or not employee.active or not sees_employee(reviewer, employee):
        raise NotFound("employee_not_found", "找不到该员工")
    ctype = _check_screenshot(screenshot) if screenshot is not None else None
    case = open_case(session, rt.settings, employee=employee, source="instant_message", notice_arrived_at=sent_at,
                     actor=reviewer.actor, requested_last_day=requested_last_day,
                     extra_evidence={"recorded_by": reviewer.display_name, "platform": platform})
    doc = None
    if screenshot is not None:
        ext = SCREENSHOT_TYPES[ctype][1]
        doc = store_document(session, rt.store, company_id=case.company_id, case_id=case.id,
                             employee_id=employee.id, kind="chat_screenshot",
                             filename=f"chat-{sent_at.astimezone(SHANGHAI):%Y%m%d-%H%M%S}.{ext}",
                             content_type=ctype, data=screenshot.data, created_by=reviewer.actor,
                             meta={"original_filename": screenshot.filename[:200], "platform": platform})
    append_evidence(session, case, reviewer.actor, EV_CHAT, {
        "platform": platform, "text": text, "sender_name": sender_name, "sent_at": sent_at,
        "sent_at_local": sent_at.astimezone(SHANGHAI).isoformat(), "employee_no": employee.employee_no,
        "screenshot_sha256": sha256_hex(screenshot.data) if screenshot is not None else None,
        "screenshot_document_id": doc.id if doc is not None else None, "recorded_by": reviewer.display_name,
        "late": late, "late_reason": late_reason, "window_days": rt.settings.chat_notice_window_days,
        "recorded_at": utcnow()})

    on_case_opened(session, rt, case)
    return case


def chat_notice(session: Session, case: ResignationCase) -> dict[str, Any] | None:
    """The recorded chat message of an ``instant_message`` case and the employee's answer, read from
    the chain: state ``pending``, ``confirmed`` or ``disputed``. None for other cases."""
    if case.source != "instant_message":
        return None
    recorded = _latest(session, case, (EV_CHAT,))
    if recorded is None:
        return None
    answer = _latest(session, case, (EV_CHAT_CONFIRMED, EV_CHAT_DISPUTED))
    p = recorded.payload or {}
    out = {"text": p.get("text", ""), "platform": p.get("platform", ""), "sender_name": p.get("sender_name", ""),
           "sent_at": p.get("sent_at"), "recorded_at": recorded.occurred_at, "recorded_by": p.get("recorded_by", ""),
           "late": bool(p.get("late")), "late_reason": p.get("late_reason", ""),
           "screenshot_sha256": p.get("screenshot_sha256"), "state": "pending", "answered_at": None, "comment": ""}
    if answer is not None:
        out.update(state="confirmed" if answer.action == EV_CHAT_CONFIRMED else "disputed",
                   answered_at=answer.occurred_at, comment=(answer.payload or {}).get("comment", ""))
    return out


def _employee_signed_letter(session: Session, case: ResignationCase) -> bool:
    """Whether the employee signed a letter on this case themselves (signing needs their SMS and face)."""
    entry = _latest(session, case, ("letter_signed",))
    return entry is not None and entry.actor == f"employee:{case.employee_id}"


def respond_to_chat_notice(session: Session, rt: Runtime, *, employee_id: str, company_id: str, case_id: str,
                           actor: str, answer: str, comment: str = "", meta: dict[str, Any] | None = None
                           ) -> dict[str, Any]:
    """The employee confirms or disputes ("我没有提出离职") the chat message HR recorded as their notice.

    No HR consent is involved. A dispute stops the reminders at once, raises an HR alert and blocks
    approval until the employee signs a letter themselves. One answer per case."""
    if answer not in ("confirm", "dispute"):
        raise InvalidInput("chat_notice_answer_invalid", "请选择确认或否认")
    comment = (comment or "").strip()
    if len(comment) > MAX_COMMENT:
        raise InvalidInput("comment_too_long", f"说明不能超过 {MAX_COMMENT} 个字")
    case = _lock_employee_case(session, case_id, employee_id, company_id)
    notice = chat_notice(session, case)
    if notice is None:
        raise Conflict("no_chat_notice", "该离职申请不是由聊天记录登记的")
    if notice["state"] != "pending":
        raise Conflict("chat_notice_already_answered", "您已答复过该聊天记录",
                       details={"state": notice["state"]})
    extra = dict(meta or {})
    if answer == "confirm":
        append_evidence(session, case, actor, EV_CHAT_CONFIRMED, {"comment": comment, **extra})
        return chat_notice(session, case)
    append_evidence(session, case, actor, EV_CHAT_DISPUTED, {
        "statement": DISPUTE_STATEMENT, "comment": comment, "case_state": case.state, **extra})
    from qianli.services.reminders import stop_reminders

    stop_reminders(session, case, reason="notice_disputed")
    emp = _employee(session, case)
    raise_alert(session, company_id=company_id, kind="notice_disputed", case_id=case.id, employee_id=emp.id,
                message=f"员工 {emp.name}（{emp.employee_no}）否认提出离职：{DISPUTE_STATEMENT}",
                payload={"comment": comment}, actor="system")
    return chat_notice(session, case)


# ---- one case in full -------------------------------------------------------------------------------

def case_detail(session: Session, rt: Runtime, reviewer: Reviewer, case_id: str) -> dict[str, Any]:
    case = get_hr_case(session, reviewer, case_id)
    employee = _employee(session, case)
    timeline = case_evidence(session, case.id, case.company_id)
    session.info[_CHAIN_MEMO] = (case.id, timeline)
    try:
        return _case_detail(session, rt, reviewer, case, employee, timeline)
    finally:
        session.info.pop(_CHAIN_MEMO, None)


def _case_detail(session: Session, rt: Runtime, reviewer: Reviewer, case: ResignationCase, employee: Employee,
                 timeline: list[EvidenceEntry]) -> dict[str, Any]:
    status = approval_status(session, rt, case)
    chain = verify_chain((to_record(e) for e in timeline), expected_case_id=case.id)
    withdrawal = pending_withdrawal(session, case)
    return {
        "case": case, "employee": employee, "overdue": is_overdue(case),
        "timeline": timeline,
        "chain": {"ok": chain.ok, "entries": chain.entries, "first_broken_seq": chain.first_broken_seq,
                  "reason": chain.reason, "head_digest": chain.head_digest},
        "documents": case_documents(session, case.id, case.company_id),
        "approval": {"chain": list(status.chain), "level": None if status.level is None else status.level + 1,
                     "level_role": status.level_role,
                     "pending_last_day": status.pending_last_day, "confirmed_last_day": status.confirmed_last_day},
        "withdrawal_requested_at": withdrawal.occurred_at if withdrawal is not None else None,
        "allowed_actions": hr_allowed_actions(session, rt, case, reviewer),
        "chat_notice": chat_notice(session, case),
    }


# ---- alerts -------------------------------------------------------------------------------------------

def list_alerts(session: Session, reviewer: Reviewer, *, limit: int = 100) -> list[HrAlert]:
    alerts = open_alerts(session, reviewer.company_id, limit=limit)
    if reviewer.role != "dept_head":
        return alerts
    ids = {a.employee_id for a in alerts if a.employee_id}
    seen = {e.id for e in session.scalars(select(Employee).where(Employee.id.in_(ids), department_scope(reviewer)))} \
        if ids else set()
    return [a for a in alerts if a.employee_id in seen]


def resolve_hr_alert(session: Session, reviewer: Reviewer, alert_id: str) -> HrAlert:
    if reviewer.role not in HR_WRITERS:
        raise Forbidden("role_forbidden", "requires role: hr_specialist, hr_manager", details={"role": reviewer.role})
    return resolve_alert(session, reviewer.company_id, alert_id, actor=reviewer.actor)
