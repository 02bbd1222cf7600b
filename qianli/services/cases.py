"""Use cases around a resignation case: notice preview, opening a case, reading it, moving it.

Notice arrives when the request enters the system the employer designated (Civil Code art. 137):
for the mini-program that is when the form is stored; for an instant message HR records, the
time the message was sent. Probation is judged on the arrival date.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cases.calendar import ChineseCalendar
from cases.clock import beijing_date
from cases.evidence_kinds import EvidenceKind, transition_kind
from cases.errors import Conflict, InvalidInput, NotFound
from cases.notice import NoticeComputation, compute_notice
from cases.states import ANY_OPEN_STATES, CaseAction, CaseState, next_state
from qianli import config_cache
from qianli.db import utcnow
from qianli.models import CASE_SOURCES, REASON_CATEGORIES, Company, Employee, ResignationCase
from qianli.services.evidence import append_evidence
from qianli.settings import Settings

__all__ = ["CompanyPolicy", "company_policy", "company_calendar", "preview_notice", "open_case",
           "get_employee", "get_case", "get_employee_case", "employee_cases", "apply_action", "update_case_form",
           "MAX_HANDOVER_ITEMS", "MAX_REASON_CHARS"]

MAX_HANDOVER_ITEMS = 50
MAX_REASON_CHARS = 2000


@dataclass(frozen=True)
class CompanyPolicy:
    letter_due_working_days: int
    holidays_extend_notice: bool
    approval_chain: tuple[str, ...]


@dataclass(frozen=True)
class CompanyConfig:
    """A detached, read-only copy of a company's row for hot read paths (qianli.config_cache)."""

    id: str
    code: str
    name: str
    policy: dict[str, Any]


def _company_config(row: Company | None) -> CompanyConfig | None:
    return None if row is None else CompanyConfig(row.id, row.code, row.name, copy.deepcopy(row.policy or {}))


def company_config(session: Session, company_id: str) -> CompanyConfig | None:
    """The company's code, name and policy, cached per process until any company changes."""
    return config_cache.cached(session, ("company", company_id),
                               lambda: _company_config(session.get(Company, company_id)))


def company_config_by_code(session: Session, code: str) -> CompanyConfig | None:
    return config_cache.cached(session, ("company_code", code), lambda: _company_config(
        session.scalar(select(Company).where(Company.code == code))))


def company_policy(company: Company | CompanyConfig | None, settings: Settings) -> CompanyPolicy:
    p = (company.policy if company else None) or {}
    return CompanyPolicy(
        letter_due_working_days=int(p.get("letter_due_working_days", settings.letter_due_working_days)),
        holidays_extend_notice=bool(p.get("holidays_extend_notice", settings.holidays_extend_notice)),
        approval_chain=tuple(p.get("approval_chain", ("hr_specialist", "dept_head"))),
    )


def company_calendar(session: Session, company_id: str | None) -> ChineseCalendar:
    """Bundled and imported State Council schedules, the law for unpublished years, the company's overrides."""
    from qianli.services.calendar import company_calendar as _calendar

    return _calendar(session, company_id)


def preview_notice(session: Session, settings: Settings, *, company_id: str | None, arrival: date,
                   probation: bool) -> NoticeComputation:
    policy = company_policy(company_config(session, company_id) if company_id else None, settings)
    return compute_notice(arrival, probation, calendar=company_calendar(session, company_id),
                          holidays_extend=policy.holidays_extend_notice,
                          letter_due_working_days=policy.letter_due_working_days)


def _validate_form(reason_category: str | None, reason_text: str, handover_items: list[dict[str, Any]]) -> None:
    if reason_category is not None and reason_category not in REASON_CATEGORIES:
        raise InvalidInput("invalid_reason_category", "离职原因类别无效", details={"allowed": list(REASON_CATEGORIES)})
    if len(reason_text) > MAX_REASON_CHARS:
        raise InvalidInput("reason_too_long", f"离职原因不能超过 {MAX_REASON_CHARS} 个字")
    if len(handover_items) > MAX_HANDOVER_ITEMS:
        raise InvalidInput("too_many_handover_items", f"交接事项不能超过 {MAX_HANDOVER_ITEMS} 项")


def open_case(session: Session, settings: Settings, *, employee: Employee, source: str, notice_arrived_at: datetime,
              actor: str, reason_category: str | None = None, reason_text: str = "",
              requested_last_day: date | None = None, handover_items: list[dict[str, Any]] | None = None,
              extra_evidence: dict[str, Any] | None = None) -> ResignationCase:
    """Open a case in ``awaiting_letter``; one open case per employee."""
    if source not in CASE_SOURCES:
        raise InvalidInput("invalid_case_source", "unknown case source")
    handover_items = list(handover_items or [])
    _validate_form(reason_category, reason_text, handover_items)
    if notice_arrived_at > utcnow():
        raise InvalidInput("notice_in_future", "通知送达时间不能晚于当前时间")
    existing = session.scalar(select(ResignationCase.id).where(
        ResignationCase.employee_id == employee.id, ResignationCase.company_id == employee.company_id,
        ResignationCase.state.in_([s.value for s in ANY_OPEN_STATES])))
    if existing:
        raise Conflict("case_already_open", "您已有一个进行中的离职申请", details={"case_id": existing})
    arrival = beijing_date(notice_arrived_at)
    probation = employee.probation_end is not None and arrival <= employee.probation_end
    notice = preview_notice(session, settings, company_id=employee.company_id, arrival=arrival, probation=probation)
    if requested_last_day is not None and requested_last_day <= arrival:
        raise InvalidInput("last_day_not_after_arrival", "申请的最后工作日必须晚于提出离职的日期")
    now = utcnow()
    case = ResignationCase(
        company_id=employee.company_id, employee_id=employee.id, state=CaseState.AWAITING_LETTER.value, source=source,
        notice_arrived_at=notice_arrived_at, arrival_date=arrival, probation=probation,
        reason_category=reason_category, reason_text=reason_text, requested_last_day=requested_last_day,
        earliest_lawful_last_day=notice.earliest_last_day, handover_items=handover_items,
        letter_due_date=notice.letter_due_date, dates_provisional=notice.provisional,
        form_submitted_at=now if source == "miniprogram" else None, created_by=actor,
    )
    session.add(case)
    session.flush()
    append_evidence(session, case, actor, EvidenceKind.CASE_OPENED, {
        "source": source, "notice_arrived_at": notice_arrived_at, "arrival_date": arrival.isoformat(),
        "probation": probation, "reason_category": reason_category, "reason_text": reason_text,
        "requested_last_day": requested_last_day.isoformat() if requested_last_day else None,
        "handover_items": handover_items, "earliest_lawful_last_day": notice.earliest_last_day.isoformat(),
        "letter_due_date": notice.letter_due_date.isoformat(), "dates_provisional": notice.provisional,
        **(extra_evidence or {}),
    }, occurred_at=now)
    return case


def update_case_form(session: Session, case: ResignationCase, *, actor: str, reason_category: str | None,
                     reason_text: str, requested_last_day: date | None, handover_items: list[dict[str, Any]]) -> ResignationCase:
    """The employee completes or revises the form (before signing, or after a return for revision)."""
    if case.state not in (CaseState.AWAITING_LETTER.value, CaseState.RETURNED.value):
        raise Conflict("case_form_locked", "离职申请已提交，不能再修改", details={"state": case.state})
    _validate_form(reason_category, reason_text, handover_items)
    if requested_last_day is not None and requested_last_day <= case.arrival_date:
        raise InvalidInput("last_day_not_after_arrival", "申请的最后工作日必须晚于提出离职的日期")
    case.reason_category, case.reason_text = reason_category, reason_text
    case.requested_last_day, case.handover_items = requested_last_day, list(handover_items)
    case.form_submitted_at = utcnow()
    session.flush()
    append_evidence(session, case, actor, EvidenceKind.CASE_FORM_UPDATED, {
        "reason_category": reason_category, "reason_text": reason_text,
        "requested_last_day": requested_last_day.isoformat() if requested_last_day else None,
        "handover_items": handover_items})
    return case


def get_employee(session: Session, employee_id: str, company_id: str) -> Employee:
    emp = session.scalar(select(Employee).where(Employee.id == employee_id, Employee.company_id == company_id))
    if emp is None or not emp.active:
        raise NotFound("employee_not_found", "找不到该员工")
    return emp


def get_case(session: Session, case_id: str, company_id: str) -> ResignationCase:
    """A case of this company; another company's id is indistinguishable from a missing one."""
    case = session.scalar(select(ResignationCase).where(ResignationCase.id == case_id,
                                                        ResignationCase.company_id == company_id))
    if case is None:
        raise NotFound("case_not_found", "找不到该离职申请")
    return case


def get_employee_case(session: Session, case_id: str, *, employee_id: str, company_id: str) -> ResignationCase:
    case = get_case(session, case_id, company_id)
    if case.employee_id != employee_id:
        raise NotFound("case_not_found", "找不到该离职申请")
    return case


def employee_cases(session: Session, *, employee_id: str, company_id: str) -> list[ResignationCase]:
    return list(session.scalars(select(ResignationCase).where(
        ResignationCase.employee_id == employee_id, ResignationCase.company_id == company_id)
        .order_by(ResignationCase.created_at.desc())))


def apply_action(session: Session, case: ResignationCase, action: CaseAction, *, actor: str,
                 payload: dict[str, Any] | None = None) -> ResignationCase:
    """Move the case through the state machine and record the move as evidence."""
    before = case.state
    after = next_state(before, action)
    case.state = after.value
    now = utcnow()
    if action == CaseAction.SUBMIT_LETTER:
        case.letter_submitted_at = now
    session.flush()
    append_evidence(session, case, actor, transition_kind(action), {"from": before, "to": after.value, **(payload or {})},
                    occurred_at=now)
    return case
