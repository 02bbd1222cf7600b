"""The alumni pool: consent per purpose, joining at close, the profile with its field-level
permission, re-hire search, and the retention of a former employee's data.

- **Consent** (PIPL): ``give_consent`` / ``withdraw_consent`` per purpose against the versioned
  text of :mod:`cases.alumni`; every give and withdraw is an ``alumni_consent_events`` row and an
  entry in the chain of the person's latest case. An SMS reply ("TD", "退订") or the unsubscribe
  link of a message withdraws too (``receive_sms_reply``, ``unsubscribe``).
- **Close** (``on_case_closed``, called by close_case): a person with a consent in force becomes
  an alumnus (profile from the roster and the case); one without gets a retention schedule:
  their personal data beyond the termination documents is deleted by the daily retention job
  after QIANLI_ALUMNI_CONSENT_GRACE_DAYS (they may still consent until then), the termination
  documents are kept at least QIANLI_TERMINATION_RECORDS_RETENTION_DAYS. An alumnus who
  withdraws every purpose leaves the pool the same way, with no grace.
- **Field-level permission**: the performance grade is read and written by hr_manager only;
  :func:`profile_view` is the one place that builds what a role may see (API, console, exports).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from cases.alumni import (CONSENT_TEXT_SHA256, CONSENT_TEXT_VERSION, AlumniPurpose, is_unsubscribe_reply,
                          normalize_terms, search_document)
from cases.clock import SHANGHAI
from cases.departure import DepartureType
from cases.errors import Conflict, Forbidden, InvalidInput, NotFound
from cases.evidence_kinds import EvidenceKind
from cases.states import CaseState
from qianli.db import utcnow
from qianli.models import (PERFORMANCE_GRADES, AlumniConsent, AlumniConsentEvent, Alumnus, CampaignDelivery, Employee,
                           FaceEnrolment, FaceLockState, FaceReferencePhoto, JobOpeningAnswer, RefreshToken,
                           ResignationCase, RetentionDeletion, RetentionSchedule)
from qianli.runtime import Runtime
from qianli.services.alumni_search import fulltext_condition, index_alumnus, unindex_alumnus
from qianli.services.employees import erase_phone
from qianli.services.evidence import RequestMeta, append_evidence
from qianli.settings import Settings, get_settings

__all__ = ["ConsentState", "consent_state", "give_consent", "withdraw_consent", "unsubscribe", "receive_sms_reply",
           "on_case_closed", "join_pool", "get_alumnus", "alumnus_for_employee", "profile_view", "update_alumnus",
           "mark_rehired", "SearchFilters", "SearchPage", "search_alumni", "run_retention", "RetentionResult",
           "active_purposes", "latest_case", "delivery_for_token", "GRADE_ROLE", "retention_overview"]

log = logging.getLogger(__name__)

GRADE_ROLE = "hr_manager"
_PURPOSES = tuple(p.value for p in AlumniPurpose)


# -- consent ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ConsentState:
    employee_id: str
    consents: dict[str, AlumniConsent | None]
    alumnus: Alumnus | None

    @property
    def purposes(self) -> list[str]:
        return [p for p, c in self.consents.items() if c is not None]


def _former_or_current(session: Session, company_id: str, employee_id: str) -> Employee:
    """The employee, active or not (a former employee manages their alumni consent too)."""
    emp = session.scalar(select(Employee).where(Employee.id == employee_id, Employee.company_id == company_id))
    if emp is None:
        raise NotFound("employee_not_found", "找不到该员工")
    return emp


def _active_consents(session: Session, company_id: str, employee_id: str) -> list[AlumniConsent]:
    return list(session.scalars(select(AlumniConsent).where(
        AlumniConsent.company_id == company_id, AlumniConsent.employee_id == employee_id,
        AlumniConsent.withdrawn_at.is_(None)).order_by(AlumniConsent.given_at)))


def active_purposes(session: Session, company_id: str, employee_id: str) -> set[str]:
    return {c.purpose for c in _active_consents(session, company_id, employee_id)}


def alumnus_for_employee(session: Session, company_id: str, employee_id: str) -> Alumnus | None:
    return session.scalar(select(Alumnus).where(Alumnus.company_id == company_id, Alumnus.employee_id == employee_id))


def consent_state(session: Session, company_id: str, employee_id: str) -> ConsentState:
    emp = _former_or_current(session, company_id, employee_id)
    current = {c.purpose: c for c in _active_consents(session, company_id, emp.id)}
    return ConsentState(emp.id, {p: current.get(p) for p in _PURPOSES}, alumnus_for_employee(session, company_id, emp.id))


def latest_case(session: Session, company_id: str, employee_id: str) -> ResignationCase | None:
    return session.scalar(select(ResignationCase).where(
        ResignationCase.company_id == company_id, ResignationCase.employee_id == employee_id)
        .order_by(ResignationCase.created_at.desc()).limit(1))


def _check_purposes(purposes: list[str] | None) -> list[str]:
    if purposes is None:
        return list(_PURPOSES)
    bad = [p for p in purposes if p not in _PURPOSES]
    if bad or not purposes:
        raise InvalidInput("alumni_purpose_invalid", "请选择有效的用途：节日问候、公司动态、岗位推荐",
                           details={"allowed": list(_PURPOSES), "invalid": bad})
    return list(dict.fromkeys(purposes))


def _record(session: Session, emp: Employee, *, purpose: str, action: str, method: str, actor: str,
            meta: RequestMeta, reference: str = "") -> AlumniConsentEvent:
    ev = AlumniConsentEvent(company_id=emp.company_id, employee_id=emp.id, purpose=purpose, action=action,
                            method=method, text_version=CONSENT_TEXT_VERSION if action == "given" else "",
                            text_sha256=CONSENT_TEXT_SHA256 if action == "given" else "", reference=reference[:200],
                            actor=actor, ip=meta.ip[:64], user_agent=meta.user_agent[:500], occurred_at=utcnow())
    session.add(ev)
    return ev


def give_consent(session: Session, *, company_id: str, employee_id: str, purposes: list[str], text_version: str,
                 meta: RequestMeta, settings: Settings | None = None) -> ConsentState:
    """The person agrees, for ``purposes``, to the current text (an older version is refused).

    A former employee who consents while their retention schedule is pending joins the pool."""
    emp = _former_or_current(session, company_id, employee_id)
    purposes = _check_purposes(purposes)
    if text_version != CONSENT_TEXT_VERSION:
        raise Conflict("alumni_consent_text_outdated", "同意书已更新，请重新阅读后再同意",
                       details={"current_version": CONSENT_TEXT_VERSION})
    have = active_purposes(session, company_id, emp.id)
    new = [p for p in purposes if p not in have]
    actor = f"employee:{emp.id}"
    for p in new:
        session.add(AlumniConsent(company_id=company_id, employee_id=emp.id, purpose=p,
                                  text_version=CONSENT_TEXT_VERSION, text_sha256=CONSENT_TEXT_SHA256))
        _record(session, emp, purpose=p, action="given", method="employee_app", actor=actor, meta=meta)
    session.flush()
    if new:
        case = latest_case(session, company_id, emp.id)
        if case is not None:
            append_evidence(session, case, actor, EvidenceKind.ALUMNI_CONSENT_GIVEN, {
                "purposes": new, "text_version": CONSENT_TEXT_VERSION, "text_sha256": CONSENT_TEXT_SHA256,
                **meta.as_evidence()})
        if not emp.active and alumnus_for_employee(session, company_id, emp.id) is None:
            schedule = session.scalar(select(RetentionSchedule).where(
                RetentionSchedule.company_id == company_id, RetentionSchedule.employee_id == emp.id))
            if schedule is not None and schedule.state == "pending":
                schedule.state = "cancelled"
            if case is not None and case.state == CaseState.CLOSED.value:
                join_pool(session, case, actor=actor)
    return consent_state(session, company_id, emp.id)


def withdraw_consent(session: Session, *, company_id: str, employee_id: str, purposes: list[str] | None,
                     meta: RequestMeta, method: str = "employee_app", reference: str = "",
                     actor: str | None = None, settings: Settings | None = None) -> ConsentState:
    """Withdraw ``purposes`` (None: all). Pending messages of those purposes are cancelled at once; an
    alumnus left with no purpose leaves the pool (the retention job deletes the profile next run)."""
    emp = _former_or_current(session, company_id, employee_id)
    purposes = _check_purposes(purposes)
    now = utcnow()
    withdrawn: list[str] = []
    actor = actor or f"employee:{emp.id}"
    for c in _active_consents(session, company_id, emp.id):
        if c.purpose in purposes:
            c.withdrawn_at, c.withdrawn_method = now, method
            withdrawn.append(c.purpose)
            _record(session, emp, purpose=c.purpose, action="withdrawn", method=method, actor=actor, meta=meta,
                    reference=reference)
    if withdrawn:
        session.execute(update(CampaignDelivery).where(
            CampaignDelivery.company_id == company_id, CampaignDelivery.employee_id == emp.id,
            CampaignDelivery.status == "pending", CampaignDelivery.purpose.in_(withdrawn))
            .values(status="skipped_no_consent", detail="consent withdrawn before sending"))
        session.flush()
        case = latest_case(session, company_id, emp.id)
        if case is not None:
            append_evidence(session, case, actor, EvidenceKind.ALUMNI_CONSENT_WITHDRAWN, {
                "purposes": withdrawn, "method": method, "reference": reference, **meta.as_evidence()})
        if not active_purposes(session, company_id, emp.id) and not emp.active:
            _schedule_retention(session, emp, case, reason="consent_withdrawn", purge_after=now,
                                settings=settings or get_settings())
    return consent_state(session, company_id, emp.id)


def delivery_for_token(session: Session, token: str) -> CampaignDelivery:
    """The message an unsubscribe token belongs to (404 ``unsubscribe_token_invalid``)."""
    delivery = session.scalar(select(CampaignDelivery).where(CampaignDelivery.unsubscribe_token == token)) \
        if token else None
    if delivery is None:
        raise NotFound("unsubscribe_token_invalid", "退订链接无效或已过期")
    return delivery


def unsubscribe(session: Session, *, token: str, all_purposes: bool, meta: RequestMeta) -> tuple[CampaignDelivery, list[str]]:
    """The unsubscribe link of a message: withdraws that message's purpose (or all)."""
    delivery = delivery_for_token(session, token)
    before = active_purposes(session, delivery.company_id, delivery.employee_id)
    withdraw_consent(session, company_id=delivery.company_id, employee_id=delivery.employee_id,
                     purposes=None if all_purposes else [delivery.purpose], meta=meta, method="unsubscribe_link",
                     reference=f"delivery:{delivery.id}", actor=f"unsubscribe_link:{delivery.id}")
    after = active_purposes(session, delivery.company_id, delivery.employee_id)
    return delivery, sorted(before - after)


def receive_sms_reply(session: Session, rt: Runtime, *, phone: str, text: str, reply_id: str,
                      meta: RequestMeta) -> int:
    """An SMS reply from ``phone``: "TD"/"退订" withdraws every alumni purpose of every former or
    current employee with that phone who has a consent in force. Returns how many people."""
    if not is_unsubscribe_reply(text):
        return 0
    phone_hash = rt.lookup("phone", phone)
    employees = list(session.scalars(select(Employee).where(Employee.phone_hash == phone_hash)))
    n = 0
    for emp in employees:
        if active_purposes(session, emp.company_id, emp.id):
            withdraw_consent(session, company_id=emp.company_id, employee_id=emp.id, purposes=None, meta=meta,
                             method="sms_reply", reference=f"sms_reply:{reply_id}"[:200], actor="sms_reply")
            n += 1
    return n


# -- close: the pool or the retention schedule ------------------------------------------------
def on_case_closed(session: Session, case: ResignationCase, *, actor: str = "system",
                   settings: Settings | None = None) -> Alumnus | RetentionSchedule:
    """Called by close_case in its transaction: the person joins the pool if a consent is in force,
    else their data goes on the retention schedule."""
    settings = settings or get_settings()
    emp = session.get(Employee, case.employee_id)
    if emp is None:
        raise NotFound("employee_not_found", "找不到该员工")
    if active_purposes(session, case.company_id, emp.id):
        return join_pool(session, case, actor=actor)
    return _schedule_retention(session, emp, case, reason="no_consent",
                               purge_after=utcnow() + timedelta(days=settings.alumni_consent_grace_days),
                               settings=settings)


def _last_day(case: ResignationCase) -> date:
    return case.agreed_last_day or case.requested_last_day or case.earliest_lawful_last_day


def join_pool(session: Session, case: ResignationCase, *, actor: str) -> Alumnus:
    """Create (or refresh) the alumnus profile from the roster and the closed case."""
    emp = session.get(Employee, case.employee_id)
    alumnus = alumnus_for_employee(session, case.company_id, case.employee_id)
    left_on = _last_day(case)
    position = {"title": emp.position or "", "from": emp.hire_date.isoformat() if emp.hire_date else None,
                "to": left_on.isoformat()}
    if alumnus is None:
        alumnus = Alumnus(company_id=case.company_id, employee_id=emp.id, skills=[], tags=[], notes="",
                          positions=[position] if emp.position else [], updated_by=actor)
        session.add(alumnus)
    elif emp.position and all(p.get("title") != emp.position for p in alumnus.positions or []):
        alumnus.positions = [*(alumnus.positions or []), position]
    alumnus.case_id, alumnus.department = case.id, emp.department or ""
    alumnus.hired_on, alumnus.left_on = emp.hire_date, left_on
    alumnus.departure_type = case.departure_type or DepartureType.RESIGNATION.value
    alumnus.reason_category = case.reason_category
    _refresh_search_text(alumnus)
    session.flush()
    index_alumnus(session, alumnus)
    append_evidence(session, case, actor, EvidenceKind.ALUMNI_JOINED, {
        "alumnus_id": alumnus.id, "purposes": sorted(active_purposes(session, case.company_id, emp.id))})
    return alumnus


def _schedule_retention(session: Session, emp: Employee, case: ResignationCase | None, *, reason: str,
                        purge_after: datetime, settings: Settings) -> RetentionSchedule:
    closed_on = utcnow().astimezone(SHANGHAI).date()
    schedule = session.scalar(select(RetentionSchedule).where(
        RetentionSchedule.company_id == emp.company_id, RetentionSchedule.employee_id == emp.id))
    if schedule is None:
        schedule = RetentionSchedule(company_id=emp.company_id, employee_id=emp.id)
        session.add(schedule)
    schedule.case_id = case.id if case is not None else schedule.case_id
    schedule.reason, schedule.state, schedule.purge_after, schedule.purged_at = reason, "pending", purge_after, None
    schedule.documents_until = closed_on + timedelta(days=settings.termination_records_retention_days)
    session.flush()
    return schedule


# -- profile ----------------------------------------------------------------------------------
def _refresh_search_text(a: Alumnus) -> None:
    a.search_text = search_document(list(a.skills or []), list(a.tags or []), a.notes or "",
                                    [p.get("title") or "" for p in a.positions or []])


def get_alumnus(session: Session, company_id: str, alumnus_id: str, *, department: str | None = None) -> Alumnus:
    """An alumnus of this company; ``department`` set: a department head's scope (others: 404; an
    empty one, a head without a department, sees nobody)."""
    a = session.scalar(select(Alumnus).where(Alumnus.id == alumnus_id, Alumnus.company_id == company_id))
    if a is None or (department is not None and (not department or a.department != department)):
        raise NotFound("alumnus_not_found", "找不到该离职人才")
    return a


def profile_view(session: Session, a: Alumnus, *, role: str | None, employee: Employee | None = None) -> dict[str, Any]:
    """What ``role`` may see of a profile: the performance grade only for hr_manager (the key is
    absent otherwise, not null)."""
    emp = employee or session.get(Employee, a.employee_id)
    out: dict[str, Any] = {
        "id": a.id, "employee_id": a.employee_id, "employee_no": emp.employee_no if emp else "",
        "name": emp.name if emp else "", "department": a.department, "positions": list(a.positions or []),
        "hired_on": a.hired_on, "left_on": a.left_on, "departure_type": a.departure_type,
        "reason_category": a.reason_category, "skills": list(a.skills or []), "tags": list(a.tags or []),
        "notes": a.notes or "", "rehire_eligible": a.rehire_eligible, "joined_at": a.joined_at,
        "rehired_at": a.rehired_at, "updated_at": a.updated_at,
        "purposes": sorted(active_purposes(session, a.company_id, a.employee_id)),
    }
    if role == GRADE_ROLE:
        out["performance_grade"] = a.performance_grade
    return out


_EDITABLE = ("skills", "tags", "notes", "rehire_eligible", "performance_grade", "positions")


def update_alumnus(session: Session, a: Alumnus, *, actor: str, role: str, changes: dict[str, Any]) -> Alumnus:
    """Update tags and profile fields; the grade only by hr_manager (403 ``grade_forbidden``)."""
    unknown = set(changes) - set(_EDITABLE)
    if unknown:
        raise InvalidInput("alumnus_field_invalid", f"unknown fields: {', '.join(sorted(unknown))}")
    if "performance_grade" in changes:
        if role != GRADE_ROLE:
            raise Forbidden("grade_forbidden", "只有 HR 经理可以查看或修改绩效等级", details={"role": role})
        grade = changes["performance_grade"]
        if grade is not None and grade not in PERFORMANCE_GRADES:
            raise InvalidInput("grade_invalid", "绩效等级应为 A、B、C、D 之一", details={"allowed": list(PERFORMANCE_GRADES)})
        a.performance_grade = grade
    if "skills" in changes:
        a.skills = normalize_terms(changes["skills"])
    if "tags" in changes:
        a.tags = normalize_terms(changes["tags"])
    if "notes" in changes:
        a.notes = (changes["notes"] or "")[:5000]
    if "rehire_eligible" in changes:
        a.rehire_eligible = changes["rehire_eligible"]
    if "positions" in changes:
        a.positions = [{"title": str(p.get("title", ""))[:100], "from": p.get("from"), "to": p.get("to")}
                       for p in changes["positions"]][:30]
    a.updated_by, a.updated_at = actor, utcnow()
    _refresh_search_text(a)
    session.flush()
    index_alumnus(session, a)
    return a


def mark_rehired(session: Session, a: Alumnus, *, actor: str, rehired: bool = True) -> Alumnus:
    """Record (or undo) a re-hire: ``rehired_at`` is what the rehire rate counts."""
    a.rehired_at, a.rehired_by = (utcnow(), actor) if rehired else (None, None)
    a.updated_by, a.updated_at = actor, utcnow()
    session.flush()
    return a


# -- search -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class SearchFilters:
    q: str = ""
    skills: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    department: str | None = None
    reason_category: str | None = None
    departure_type: str | None = None
    grades: tuple[str, ...] = ()
    eligible_only: bool = False
    left_from: date | None = None
    left_to: date | None = None
    include_rehired: bool = True


@dataclass(frozen=True)
class SearchPage:
    items: list[Alumnus] = field(default_factory=list)
    total: int = 0
    page: int = 1
    per_page: int = 20


def search_alumni(session: Session, company_id: str, filters: SearchFilters, *, role: str,
                  scope_department: str | None = None, page: int = 1, per_page: int = 20) -> SearchPage:
    """Re-hire search. ``grades`` is a manager's filter (403 ``grade_forbidden`` for others, so the
    grade cannot be inferred by filtering). Newest departures first."""
    if filters.grades and role != GRADE_ROLE:
        raise Forbidden("grade_forbidden", "只有 HR 经理可以按绩效等级筛选", details={"role": role})
    if filters.left_from and filters.left_to and filters.left_from > filters.left_to:
        raise InvalidInput("date_range_invalid", "开始日期不能晚于结束日期")
    if scope_department is not None and not scope_department:  # a department head without a department
        return SearchPage([], 0, page, per_page)
    q = select(Alumnus).where(Alumnus.company_id == company_id)
    if scope_department is not None:
        q = q.where(Alumnus.department == scope_department)
    if filters.department:
        q = q.where(Alumnus.department == filters.department)
    if filters.reason_category:
        q = q.where(Alumnus.reason_category == filters.reason_category)
    if filters.departure_type:
        q = q.where(Alumnus.departure_type == filters.departure_type)
    if filters.grades:
        q = q.where(Alumnus.performance_grade.in_(filters.grades))
    if filters.eligible_only:
        q = q.where(Alumnus.rehire_eligible.is_(True))
    if filters.left_from:
        q = q.where(Alumnus.left_on >= filters.left_from)
    if filters.left_to:
        q = q.where(Alumnus.left_on <= filters.left_to)
    if not filters.include_rehired:
        q = q.where(Alumnus.rehired_at.is_(None))
    cond = fulltext_condition(session, filters.q)
    if cond is not None:
        q = q.where(cond)
    rows = list(session.scalars(q.order_by(Alumnus.left_on.desc(), Alumnus.id)))
    want_s = {s.lower() for s in filters.skills}
    want_t = {t.lower() for t in filters.tags}
    if want_s or want_t:  # JSON lists: matched here, the same on both databases
        rows = [a for a in rows if want_s <= {s.lower() for s in a.skills or []}
                and want_t <= {t.lower() for t in a.tags or []}]
    start = (page - 1) * per_page
    return SearchPage(rows[start:start + per_page], len(rows), page, per_page)


# -- retention --------------------------------------------------------------------------------
@dataclass(frozen=True)
class RetentionResult:
    purged: list[str]
    cancelled: list[str]
    deletions: int

    def as_dict(self) -> dict[str, Any]:
        return {"purged": self.purged, "cancelled": self.cancelled, "deletions": self.deletions}


def _purge_one(session: Session, rt: Runtime, schedule: RetentionSchedule, actor: str) -> int:
    """Delete a former employee's personal data beyond the termination documents; one
    ``retention_deletions`` row per category. Kept: the employee row's name, number, department,
    position and dates (they appear in the termination documents), the cases, letters,
    certificate and evidence chain, and the consent records (proof of lawful processing)."""
    emp = session.get(Employee, schedule.employee_id)
    counts: dict[str, int] = {}

    def _delete(category: str, stmt) -> None:
        res = session.execute(stmt)
        counts[category] = int(getattr(res, "rowcount", 0) or 0)

    alumnus = alumnus_for_employee(session, schedule.company_id, emp.id)
    if alumnus is not None:
        unindex_alumnus(session, alumnus.id)
        _delete("alumni_profile", delete(Alumnus).where(Alumnus.id == alumnus.id))
    _delete("job_opening_answers", delete(JobOpeningAnswer).where(JobOpeningAnswer.employee_id == emp.id))
    _delete("campaign_deliveries", delete(CampaignDelivery).where(CampaignDelivery.employee_id == emp.id))
    _delete("refresh_tokens", delete(RefreshToken).where(RefreshToken.employee_id == emp.id))
    _delete("face_reference_photos", delete(FaceReferencePhoto).where(FaceReferencePhoto.employee_id == emp.id))
    _delete("face_enrolments", delete(FaceEnrolment).where(FaceEnrolment.employee_id == emp.id))
    _delete("face_lock_states", delete(FaceLockState).where(FaceLockState.employee_id == emp.id))
    contact = 0
    if emp.national_id_enc or emp.national_id_hash:
        emp.national_id_enc, emp.national_id_hash = None, None
        contact += 1
    if emp.wechat_openid:
        emp.wechat_openid = None
        contact += 1
    if erase_phone(rt, emp):
        contact += 1
    counts["contact_fields"] = contact
    now = utcnow()
    rows = [RetentionDeletion(company_id=schedule.company_id, employee_id=emp.id, schedule_id=schedule.id,
                              category=cat, rows=n, detail={"reason": schedule.reason}, actor=actor, deleted_at=now)
            for cat, n in counts.items() if n]
    session.add_all(rows)
    schedule.state, schedule.purged_at = "purged", now
    session.flush()
    case = session.get(ResignationCase, schedule.case_id) if schedule.case_id else None
    if case is not None:
        append_evidence(session, case, actor, EvidenceKind.PERSONAL_DATA_PURGED, {
            "schedule_id": schedule.id, "reason": schedule.reason,
            "deleted": {r.category: r.rows for r in rows},
            "documents_kept_until": schedule.documents_until.isoformat()})
    return len(rows)


def run_retention(rt: Runtime, *, now: datetime | None = None, actor: str = "job:retention") -> RetentionResult:
    """The daily retention job: every pending schedule whose time is up, one transaction each. A
    person who consented since (and so joined the pool) is not purged: the schedule is cancelled."""
    now = now or utcnow()
    purged: list[str] = []
    cancelled: list[str] = []
    n = 0
    with rt.session_factory() as session:
        due = list(session.scalars(select(RetentionSchedule.id).where(
            RetentionSchedule.state == "pending", RetentionSchedule.purge_after <= now)))
    for sid in due:
        with rt.session_factory() as session:
            schedule = session.get(RetentionSchedule, sid)
            if schedule is None or schedule.state != "pending":
                continue
            emp = session.get(Employee, schedule.employee_id)
            if emp is None:
                continue
            if emp.active or active_purposes(session, schedule.company_id, emp.id):
                schedule.state = "cancelled"
                cancelled.append(emp.id)
            else:
                n += _purge_one(session, rt, schedule, actor)
                purged.append(emp.id)
            session.commit()
    return RetentionResult(purged, cancelled, n)


def retention_overview(session: Session, company_id: str) -> dict[str, int]:
    """Counts for the console: pending, purged, and documents past their minimum retention."""
    today = utcnow().astimezone(SHANGHAI).date()
    rows = session.execute(select(RetentionSchedule.state, func.count()).where(
        RetentionSchedule.company_id == company_id).group_by(RetentionSchedule.state)).all()
    out = {state: int(c) for state, c in rows}
    out["documents_past_minimum"] = int(session.scalar(select(func.count()).select_from(RetentionSchedule).where(
        RetentionSchedule.company_id == company_id, RetentionSchedule.documents_until < today)) or 0)
    return out
