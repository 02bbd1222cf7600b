"""Company policy and holiday overrides (HR managers)."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cases.absconding import HandbookClause
from cases.errors import Conflict, InvalidInput, NotFound
from qianli.models import Company, HolidayOverride
from qianli.settings import Settings

__all__ = ["get_company", "update_policy", "list_overrides", "add_override", "delete_override", "APPROVAL_LEVELS"]

APPROVAL_LEVELS = ("hr_specialist", "dept_head", "hr_manager")


def get_company(session: Session, company_id: str) -> Company:
    company = session.get(Company, company_id)
    if company is None:
        raise NotFound("company_not_found", "company not found")
    return company


def update_policy(session: Session, settings: Settings, company_id: str, changes: dict[str, Any]) -> Company:
    company = get_company(session, company_id)
    policy = dict(company.policy or {})
    if "letter_due_working_days" in changes:
        n = changes["letter_due_working_days"]
        if not 1 <= n <= 30:
            raise InvalidInput("invalid_policy", "letter_due_working_days must be between 1 and 30")
        policy["letter_due_working_days"] = n
    if "holidays_extend_notice" in changes:
        policy["holidays_extend_notice"] = bool(changes["holidays_extend_notice"])
    if "approval_chain" in changes:
        chain = list(changes["approval_chain"])
        if not 1 <= len(chain) <= 2 or len(set(chain)) != len(chain) or any(r not in APPROVAL_LEVELS for r in chain):
            raise InvalidInput("invalid_policy", "approval_chain: one or two distinct roles of " + ", ".join(APPROVAL_LEVELS))
        policy["approval_chain"] = chain
    if "absconding_handbook_clause" in changes:
        raw = changes["absconding_handbook_clause"]
        policy["absconding_handbook_clause"] = None if raw is None else \
            HandbookClause.parse(raw.get("reference", ""), raw.get("text", "")).as_dict()
    if "return_notice_deadline_days" in changes:
        n = changes["return_notice_deadline_days"]
        if not isinstance(n, int) or not 1 <= n <= 30:
            raise InvalidInput("invalid_policy", "return_notice_deadline_days must be between 1 and 30")
        policy["return_notice_deadline_days"] = n
    if "absconding_approval_chain" in changes:
        chain = list(changes["absconding_approval_chain"])
        if not 1 <= len(chain) <= 2 or len(set(chain)) != len(chain) or any(r not in APPROVAL_LEVELS for r in chain):
            raise InvalidInput("invalid_policy",
                               "absconding_approval_chain: one or two distinct roles of " + ", ".join(APPROVAL_LEVELS))
        policy["absconding_approval_chain"] = chain
    company.policy = policy
    session.flush()
    return company


def list_overrides(session: Session, company_id: str, year: int | None = None) -> list[HolidayOverride]:
    q = select(HolidayOverride).where(HolidayOverride.company_id == company_id).order_by(HolidayOverride.day)
    rows = list(session.scalars(q))
    return [r for r in rows if year is None or r.day.year == year]


def add_override(session: Session, company_id: str, *, day: date, kind: str, note: str) -> HolidayOverride:
    if kind not in ("holiday", "workday"):
        raise InvalidInput("invalid_override_kind", "kind must be 'holiday' or 'workday'")
    if session.scalar(select(HolidayOverride.id).where(HolidayOverride.company_id == company_id, HolidayOverride.day == day)):
        raise Conflict("override_exists", f"{day.isoformat()} already has an override; delete it first")
    row = HolidayOverride(company_id=company_id, day=day, kind=kind, note=note)
    session.add(row)
    session.flush()
    return row


def delete_override(session: Session, company_id: str, override_id: str) -> None:
    row = session.scalar(select(HolidayOverride).where(HolidayOverride.id == override_id,
                                                       HolidayOverride.company_id == company_id))
    if row is None:
        raise NotFound("override_not_found", "override not found")
    session.delete(row)
    session.flush()
