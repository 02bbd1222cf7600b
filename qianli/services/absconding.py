"""Leaving without notice (擅自离职): confirm the departure, serve the return-to-work notice, record
its service, take the employee's answer, record the union notification, and dismiss (art. 39(2)).

The flow (rules in ``cases.absconding``, states in ``cases.states``):

1. ``confirm_departure`` (HR): names the absent Chinese working days (or the date last seen) and
   opens a case of departure type ``absconding`` in ``confirmed``; the confirmation's timestamp is
   the first link of the evidence chain.
2. ``send_return_notice`` (HR): renders the 返岗通知书 (absent days, the company's handbook clause,
   the deadline in Chinese working days, the consequence), seals it with the company seal (B-LTA,
   the same code as the countersignature), stores it, and serves it: SMS and the subscribe message
   at once (after commit), a reminder every reminder interval until the deadline, the notice in
   the mini-program (the employee's first read is recorded as a read receipt). HR records the
   postal delivery (``record_postal_delivery`` and later its delivered/returned status).
3. ``answer_return_notice`` (employee): "I'm back" (before the deadline the case ends as
   ``returned_to_work``), an explanation with attachments (HR decides), or "I resign" (the case
   becomes ``converted_to_resignation`` and a normal art. 37 resignation case opens; the employee
   signs its letter themselves with face + SMS like any other).
4. ``record_union_notification`` (HR, art. 43) and ``dismiss_for_absence`` (the company's absconding
   approval chain, default HR manager then department head): refused until the deadline passed
   without a return, the handbook clause is configured and the union was notified; the final level
   seals and serves the dismissal notice (解除劳动合同通知书) like the return-to-work notice.

Services never commit; side effects (messages) run after the caller's commit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cases import absconding as rules
from cases.absconding import HandbookClause
from cases.clock import SHANGHAI, beijing_date, beijing_today
from cases.departure import DepartureType
from cases.errors import Conflict, Forbidden, InvalidInput, NotFound, PayloadTooLarge, UnsupportedMediaType
from cases.evidence_kinds import EvidenceKind
from cases.states import ANY_OPEN_STATES, CaseAction, CaseState
from qianli.db import utcnow
from qianli.models import (AbsenceCase, Company, Document, Employee, PostalDelivery, ResignationCase, UnionNotification)
from qianli.runtime import Runtime
from qianli.services.alerts import raise_alert
from qianli.services.cases import apply_action, company_calendar, get_employee_case, open_case
from qianli.services.evidence import append_evidence
from qianli.services.reminders import notify_employee, on_case_opened, reminder_policy
from qianli.services.review import HR_WRITERS, Reviewer, get_hr_case, sees_employee
from qianli.services.signing import seal_with_company
from qianli.storage import read_document, sha256_hex, store_document
from signing.notices import (DismissalNoticeData, ReturnNoticeData, render_dismissal_notice, render_return_notice)

__all__ = ["AbsencePolicy", "absence_policy", "confirm_departure", "send_return_notice", "read_notice",
           "record_postal_delivery", "update_postal_delivery", "answer_return_notice", "record_union_notification",
           "dismiss_for_absence", "withdraw_departure", "absence_detail", "get_absence", "Attachment",
           "ATTACHMENT_TYPES", "MAX_ATTACHMENTS", "MAX_ATTACHMENT_BYTES", "MAX_TEXT", "DEPARTURE_TYPE",
           "after_dismissal"]

log = logging.getLogger(__name__)

DEPARTURE_TYPE = DepartureType.ABSCONDING.value
MAX_TEXT = 2000
MAX_ATTACHMENTS = 5
MAX_ATTACHMENT_BYTES = 5 * 1024 * 1024
ATTACHMENT_TYPES = {"image/png": (b"\x89PNG\r\n\x1a\n", "png"), "image/jpeg": (b"\xff\xd8\xff", "jpg"),
                    "application/pdf": (b"%PDF-", "pdf")}
MAX_REMINDERS = 30
_S = CaseState


# ---- policy -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class AbsencePolicy:
    clause: HandbookClause | None
    deadline_working_days: int
    approval_chain: tuple[str, ...]


def absence_policy(company: Company, rt: Runtime) -> AbsencePolicy:
    """The company's handbook clause, deadline and absconding approval chain (policy keys
    ``absconding_handbook_clause``, ``return_notice_deadline_days``, ``absconding_approval_chain``)."""
    p = company.policy or {}
    return AbsencePolicy(
        clause=HandbookClause.from_policy(p.get("absconding_handbook_clause")),
        deadline_working_days=int(p.get("return_notice_deadline_days") or rt.settings.return_notice_deadline_days),
        approval_chain=tuple(p.get("absconding_approval_chain") or rules.DEFAULT_CHAIN))


# ---- reading --------------------------------------------------------------------------------------

def get_absence(session: Session, case: ResignationCase) -> AbsenceCase:
    """The absconding details of ``case``; 409 ``not_absconding_case`` for a resignation."""
    absence = session.get(AbsenceCase, case.id)
    if absence is None or absence.company_id != case.company_id:
        raise Conflict("not_absconding_case", "该案件不是擅自离职案件")
    return absence


def _writer(reviewer: Reviewer) -> None:
    if reviewer.role not in HR_WRITERS:
        raise Forbidden("role_forbidden", "requires role: hr_specialist, hr_manager", details={"role": reviewer.role})


def _hr_absence(session: Session, reviewer: Reviewer, case_id: str) -> tuple[ResignationCase, AbsenceCase]:
    case = get_hr_case(session, reviewer, case_id, for_update=True)
    return case, get_absence(session, case)


def _days(absence: AbsenceCase) -> tuple[date, ...]:
    return tuple(date.fromisoformat(d) for d in absence.absent_days)


def _iso(v: date | datetime | None) -> str | None:
    return v.isoformat() if v is not None else None


def _latest_union(session: Session, case: ResignationCase) -> UnionNotification | None:
    return session.scalar(select(UnionNotification).where(
        UnionNotification.case_id == case.id, UnionNotification.company_id == case.company_id)
        .order_by(UnionNotification.notified_at.desc(), UnionNotification.created_at.desc()).limit(1))


def _postal(session: Session, case: ResignationCase, notice: str | None = None) -> list[PostalDelivery]:
    q = select(PostalDelivery).where(PostalDelivery.case_id == case.id, PostalDelivery.company_id == case.company_id)
    if notice:
        q = q.where(PostalDelivery.notice == notice)
    return list(session.scalars(q.order_by(PostalDelivery.sent_at, PostalDelivery.created_at)))


def _answers(session: Session, case: ResignationCase) -> list[dict[str, Any]]:
    from qianli.models import EvidenceEntry

    rows = session.scalars(select(EvidenceEntry).where(
        EvidenceEntry.case_id == case.id, EvidenceEntry.company_id == case.company_id,
        EvidenceEntry.action == EvidenceKind.ABSENCE_ANSWERED.value).order_by(EvidenceEntry.seq))
    return [{"seq": e.seq, "answered_at": e.occurred_at, **{k: (e.payload or {}).get(k) for k in (
        "answer", "text", "attachments", "late", "case_state", "resignation_case_id")}} for e in rows]


def postal_json(p: PostalDelivery) -> dict[str, Any]:
    return {"id": p.id, "notice": p.notice, "document_id": p.document_id, "carrier": p.carrier,
            "tracking_no": p.tracking_no, "address": p.address, "sent_at": p.sent_at, "status": p.status,
            "status_at": p.status_at, "status_note": p.status_note, "recorded_by": p.recorded_by}


def union_json(u: UnionNotification) -> dict[str, Any]:
    return {"id": u.id, "union_name": u.union_name, "contact_name": u.contact_name, "notified_at": u.notified_at,
            "method": u.method, "response": u.response, "objection": u.objection, "responded_at": u.responded_at,
            "recorded_by": u.recorded_by}


ATTENDANCE_LOOKBACK_DAYS = 30


def attendance_evidence(session: Session, case: ResignationCase, absence: AbsenceCase) -> dict[str, Any]:
    """The employee's attendance around the absence, as imported: every day's record and approved
    leave from ``ATTENDANCE_LOOKBACK_DAYS`` before the first absent day to the dismissal (or today),
    each with the import (file SHA-256, row) it came from, and those imports."""
    from qianli.models import AttendanceImport, AttendanceLeave, AttendanceRecord

    days = _days(absence)
    first = days[0] - timedelta(days=ATTENDANCE_LOOKBACK_DAYS)
    last = max(days[-1], beijing_date(absence.dismissed_at) if absence.dismissed_at else beijing_today())
    records = session.scalars(select(AttendanceRecord).where(
        AttendanceRecord.company_id == case.company_id, AttendanceRecord.employee_id == case.employee_id,
        AttendanceRecord.day >= first, AttendanceRecord.day <= last).order_by(AttendanceRecord.day)).all()
    leaves = session.scalars(select(AttendanceLeave).where(
        AttendanceLeave.company_id == case.company_id, AttendanceLeave.employee_id == case.employee_id,
        AttendanceLeave.last_day >= first, AttendanceLeave.first_day <= last).order_by(AttendanceLeave.first_day)).all()
    import_ids = sorted({r.import_id for r in records} | {lv.import_id for lv in leaves})
    imports = session.scalars(select(AttendanceImport).where(AttendanceImport.id.in_(import_ids),
                                                             AttendanceImport.company_id == case.company_id)).all() \
        if import_ids else []
    return {
        "from": first.isoformat(), "to": last.isoformat(),
        "records": [{"day": r.day.isoformat(), "present": r.present, "first_clock_at": _iso(r.first_clock_at),
                     "last_clock_at": _iso(r.last_clock_at), "result": r.result, "source": r.source,
                     "import_id": r.import_id, "source_sha256": r.source_sha256, "source_row": r.source_row}
                    for r in records],
        "leaves": [{"leave_type": lv.leave_type, "starts_at": _iso(lv.starts_at), "ends_at": _iso(lv.ends_at),
                    "first_day": lv.first_day.isoformat(), "last_day": lv.last_day.isoformat(),
                    "import_id": lv.import_id, "source_sha256": lv.source_sha256, "source_row": lv.source_row}
                   for lv in leaves],
        "imports": [{"id": i.id, "source": i.source, "filename": i.filename, "format": i.format, "sha256": i.sha256,
                     "size": i.size, "document_id": i.document_id, "first_day": _iso(i.first_day),
                     "last_day": _iso(i.last_day), "actor": i.actor, "created_at": _iso(i.created_at)}
                    for i in imports],
    }


def absence_detail(session: Session, rt: Runtime, case: ResignationCase, *, for_employee: bool = False) -> dict[str, Any]:
    """Everything about the absence a page (HR console, mini-program) or the dossier shows."""
    absence = get_absence(session, case)
    company = session.get(Company, case.company_id)
    policy = absence_policy(company, rt)
    today = beijing_today()
    union = _latest_union(session, case)
    past = absence.deadline is not None and rules.deadline_passed(absence.deadline, today)
    blockers = rules.dismissal_blockers(state=case.state, deadline=absence.deadline, today=today, clause=policy.clause,
                                        union_notified=union is not None)
    out: dict[str, Any] = {
        "case_id": case.id, "state": case.state, "absent_days": list(absence.absent_days),
        "last_seen_on": absence.last_seen_on, "risk_id": absence.risk_id, "confirmed_at": absence.confirmed_at,
        "handbook_clause": absence.handbook_clause or (policy.clause.as_dict() if policy.clause else None),
        "return_notice": None if absence.return_notice_document_id is None else {
            "document_id": absence.return_notice_document_id, "served_at": absence.return_notice_served_at,
            "deadline": absence.deadline, "deadline_working_days": absence.deadline_working_days,
            "deadline_provisional": absence.deadline_provisional, "read_at": absence.return_notice_read_at,
            "deadline_passed": past},
        "dismissal_notice": None if absence.dismissal_document_id is None else {
            "document_id": absence.dismissal_document_id, "dismissed_at": absence.dismissed_at,
            "termination_date": absence.termination_date, "read_at": absence.dismissal_read_at},
        "answers": _answers(session, case),
        "resignation_case_id": absence.resignation_case_id,
        "may_answer": case.state in rules.ANSWERABLE_STATES,
    }
    if not for_employee:
        out.update({
            "note": absence.note, "confirmed_by": absence.confirmed_by,
            "postal_deliveries": [postal_json(p) for p in _postal(session, case)],
            "union_notifications": [union_json(u) for u in session.scalars(select(UnionNotification).where(
                UnionNotification.case_id == case.id, UnionNotification.company_id == case.company_id)
                .order_by(UnionNotification.notified_at))],
            "dismissal_blockers": blockers, "approval_chain": list(policy.approval_chain),
            "deadline_working_days_policy": policy.deadline_working_days,
            "handbook_clause_configured": policy.clause is not None,
            "attendance": attendance_evidence(session, case, absence),
        })
    return out


# ---- 1. confirming the departure ---------------------------------------------------------------------

def confirm_departure(session: Session, rt: Runtime, reviewer: Reviewer, *, employee_id: str | None = None,
                      employee_no: str | None = None, absent_days: list[date], last_seen_on: date | None = None,
                      risk_id: str | None = None, note: str = "") -> ResignationCase:
    """HR confirms the employee left without notice: a case of departure type ``absconding`` in
    ``confirmed``, its first evidence entry the timestamped confirmation."""
    _writer(reviewer)
    note = (note or "").strip()
    if len(note) > MAX_TEXT:
        raise InvalidInput("note_too_long", f"备注不能超过 {MAX_TEXT} 个字")
    if risk_id is not None and not (1 <= len(risk_id) <= 32):
        raise InvalidInput("risk_id_invalid", "风险名单条目编号无效")
    if bool(employee_id) == bool(employee_no):
        raise InvalidInput("employee_ref_required", "请提供员工 ID 或工号（二选一）")
    cond = Employee.id == employee_id if employee_id else Employee.employee_no == employee_no
    employee = session.scalar(select(Employee).where(cond, Employee.company_id == reviewer.company_id)
                              .with_for_update())
    if employee is None or not employee.active or not sees_employee(reviewer, employee):
        raise NotFound("employee_not_found", "找不到该员工")
    now = utcnow()
    today = beijing_date(now)
    days = rules.check_absent_days(absent_days, calendar=company_calendar(session, reviewer.company_id), today=today,
                                   last_seen_on=last_seen_on)
    existing = session.scalar(select(ResignationCase.id).where(
        ResignationCase.employee_id == employee.id, ResignationCase.company_id == employee.company_id,
        ResignationCase.state.in_([s.value for s in ANY_OPEN_STATES])))
    if existing:
        raise Conflict("case_already_open", "该员工已有进行中的离职案件", details={"case_id": existing})
    case = ResignationCase(
        company_id=employee.company_id, employee_id=employee.id, state=_S.CONFIRMED.value, source="hr_confirmation",
        notice_arrived_at=now, arrival_date=today, probation=False, reason_category=None, reason_text="",
        requested_last_day=None, earliest_lawful_last_day=today, handover_items=[], letter_due_date=today,
        dates_provisional=False, created_by=reviewer.actor, departure_type=DepartureType.ABSCONDING.value)
    session.add(case)
    session.flush()
    absence = AbsenceCase(case_id=case.id, company_id=case.company_id, employee_id=employee.id,
                          absent_days=[d.isoformat() for d in days], last_seen_on=last_seen_on, risk_id=risk_id,
                          note=note, confirmed_at=now, confirmed_by=reviewer.actor)
    session.add(absence)
    session.flush()
    append_evidence(session, case, reviewer.actor, EvidenceKind.DEPARTURE_CONFIRMED, {
        "departure_type": DEPARTURE_TYPE, "employee_no": employee.employee_no, "employee_name": employee.name,
        "department": employee.department, "absent_days": absence.absent_days, "absent_working_days": len(days),
        "last_seen_on": _iso(last_seen_on), "risk_id": risk_id, "note": note, "confirmed_by": reviewer.display_name,
        "confirmed_by_role": reviewer.role, "confirmed_at": now,
        "calendar": {d.isoformat(): company_calendar(session, reviewer.company_id).reason(d) for d in days}},
        occurred_at=now)
    return case


# ---- 2. the return-to-work notice -----------------------------------------------------------------------

def _employee(session: Session, case: ResignationCase) -> Employee:
    return session.get(Employee, case.employee_id)


def send_return_notice(session: Session, rt: Runtime, reviewer: Reviewer, case_id: str) -> AbsenceCase:
    """Render, seal (B-LTA) and serve the 返岗通知书; refused without the company's handbook clause."""
    _writer(reviewer)
    case, absence = _hr_absence(session, reviewer, case_id)
    if case.state != _S.CONFIRMED.value:
        raise Conflict("return_notice_already_served" if absence.return_notice_document_id else "case_invalid_transition",
                       "返岗通知书已送达" if absence.return_notice_document_id else "当前状态不能送达返岗通知书",
                       details={"state": case.state})
    company = session.get(Company, case.company_id)
    policy = absence_policy(company, rt)
    if policy.clause is None:
        raise Conflict("handbook_clause_missing", "请先在公司政策中设定适用的规章制度条款（员工手册），返岗通知书须援引该条款",
                       details={"policy_key": "absconding_handbook_clause"})
    now = utcnow()
    served_on = beijing_date(now)
    deadline = rules.return_deadline(company_calendar(session, case.company_id), served_on,
                                     policy.deadline_working_days)
    emp = _employee(session, case)
    data = ReturnNoticeData(
        case_id=case.id, company_name=company.name, employee_name=emp.name, employee_no=emp.employee_no,
        department=emp.department, position=emp.position, absent_days=_days(absence), last_seen_on=absence.last_seen_on,
        clause_reference=policy.clause.reference, clause_text=policy.clause.text, served_on=served_on,
        deadline=deadline.date, deadline_working_days=policy.deadline_working_days,
        deadline_provisional=deadline.provisional)
    unsigned, layout = render_return_notice(data)
    seal = seal_with_company(rt, company, unsigned, page=layout.page, box=layout.company_box,
                             caption=f"{company.name} 电子印章", time_label="送达时间：", reason="返岗通知书（公司盖章）",
                             kind="notice", failure_code="return_notice_seal_failed",
                             failure_message="公司签章暂不可用，返岗通知书未送达，请稍后重试")
    doc = store_document(session, rt.store, company_id=case.company_id, kind="return_to_work_notice",
                         filename=f"返岗通知书-{emp.employee_no}.pdf", content_type="application/pdf", data=seal.pdf,
                         created_by=reviewer.actor, case_id=case.id, employee_id=case.employee_id,
                         meta={"unsigned_sha256": sha256_hex(unsigned), "seal_cert_serial": seal.cert_serial,
                               "level": "B-LTA", "deadline": deadline.date.isoformat()})
    absence.handbook_clause = policy.clause.as_dict()
    absence.return_notice_document_id = doc.id
    absence.return_notice_served_at = now
    absence.deadline = deadline.date
    absence.deadline_working_days = policy.deadline_working_days
    absence.deadline_provisional = deadline.provisional
    reminders = _schedule_notice_deliveries(session, rt, case, deadline.date, now)
    apply_action(session, case, CaseAction.SERVE_RETURN_NOTICE, actor=reviewer.actor, payload={
        "document_id": doc.id, "sha256": doc.sha256, "unsigned_sha256": sha256_hex(unsigned), "pades_level": "B-LTA",
        "seal_backend": seal.backend, "seal_cert_serial": seal.cert_serial, "seal_cert_subject": seal.cert_subject,
        "sealed_at": seal.signed_at.isoformat(), "absent_days": absence.absent_days,
        "handbook_clause": absence.handbook_clause, "served_on": served_on.isoformat(),
        "deadline": deadline.date.isoformat(), "deadline_ends": _deadline_end(deadline.date).isoformat(),
        "deadline_working_days": policy.deadline_working_days, "deadline_rule": "中国工作日，送达当日不计入，截止日 24:00（北京时间）",
        "deadline_provisional": deadline.provisional,
        "served_via": ["miniprogram", "sms", "wechat_subscribe"], "reminders_scheduled": reminders,
        "served_by": reviewer.display_name})
    session.flush()
    return absence


def _deadline_end(deadline: date) -> datetime:
    """24:00 Beijing time of the deadline, in UTC."""
    return datetime.combine(deadline + timedelta(days=1), time.min, SHANGHAI).astimezone(timezone.utc)


def _schedule_notice_deliveries(session: Session, rt: Runtime, case: ResignationCase, deadline: date,
                                now: datetime) -> list[str]:
    """The notice by SMS and subscribe message now, and a reminder every reminder interval until the
    deadline ends (each dropped at send time once the employee answered or the case moved on)."""
    params = {"deadline": deadline.isoformat()}
    notify_employee(session, rt, case, "return_to_work_notice", params, now=now)
    pol = reminder_policy(rt.settings)
    end = _deadline_end(deadline)
    at, out = pol.next_send_at(now), list[str]()
    while at < end and len(out) < MAX_REMINDERS:
        notify_employee(session, rt, case, "return_notice_reminder", params, now=now, at=at)
        out.append(at.isoformat())
        at = pol.next_send_at(at)
    return out


def read_notice(session: Session, rt: Runtime, *, case_id: str, company_id: str, notice: str,
                employee_id: str | None = None, reviewer: Reviewer | None = None,
                meta: dict[str, Any] | None = None) -> Document:
    """The sealed notice's document. The employee's first reading of each notice is their read receipt
    (evidence ``notice_read``); HR reading it records nothing."""
    if notice not in rules.NOTICE_KINDS:
        raise InvalidInput("notice_kind_invalid", "未知的通知书类型")
    if reviewer is not None:
        case = get_hr_case(session, reviewer, case_id)
    else:
        case = get_employee_case(session, case_id, employee_id=employee_id or "", company_id=company_id)
    absence = get_absence(session, case)
    doc_id = absence.return_notice_document_id if notice == "return_to_work" else absence.dismissal_document_id
    if doc_id is None:
        raise NotFound("notice_not_found", "还没有该通知书")
    doc = session.get(Document, doc_id)
    if reviewer is None:
        field = "return_notice_read_at" if notice == "return_to_work" else "dismissal_read_at"
        if getattr(absence, field) is None:
            case = session.scalar(select(ResignationCase).where(ResignationCase.id == case.id).with_for_update()
                                  .execution_options(populate_existing=True))
            absence = session.get(AbsenceCase, case.id, populate_existing=True)
            if getattr(absence, field) is None:
                now = utcnow()
                setattr(absence, field, now)
                append_evidence(session, case, f"employee:{case.employee_id}", EvidenceKind.NOTICE_READ, {
                    "notice": notice, "document_id": doc.id, "sha256": doc.sha256, "read_at": now,
                    "via": "miniprogram", **(meta or {})}, occurred_at=now)
    return doc


# ---- postal delivery ----------------------------------------------------------------------------------------

def record_postal_delivery(session: Session, rt: Runtime, reviewer: Reviewer, case_id: str, *, notice: str,
                           carrier: str, tracking_no: str, address: str, sent_at: datetime) -> PostalDelivery:
    """HR records that a notice was posted to the employee's agreed address (送达 evidence)."""
    _writer(reviewer)
    if notice not in rules.NOTICE_KINDS:
        raise InvalidInput("notice_kind_invalid", "未知的通知书类型", details={"allowed": list(rules.NOTICE_KINDS)})
    carrier, tracking_no, address = (carrier or "").strip(), (tracking_no or "").strip(), (address or "").strip()
    if not 1 <= len(carrier) <= 64 or not 4 <= len(tracking_no) <= 64 or not 5 <= len(address) <= 500:
        raise InvalidInput("postal_delivery_invalid", "请填写快递公司、运单号（4-64 位）和送达地址（5-500 字）")
    if sent_at.tzinfo is None or sent_at.utcoffset() is None:
        raise InvalidInput("sent_at_naive", "寄出时间须带时区（例如 +08:00）")
    sent_at = sent_at.astimezone(timezone.utc)
    if sent_at > utcnow() + timedelta(minutes=5):
        raise InvalidInput("sent_at_in_future", "寄出时间不能晚于当前时间")
    case, absence = _hr_absence(session, reviewer, case_id)
    doc_id = absence.return_notice_document_id if notice == "return_to_work" else absence.dismissal_document_id
    if doc_id is None:
        raise Conflict("notice_not_issued", "该通知书尚未出具，不能登记邮寄", details={"notice": notice})
    issued_at = absence.return_notice_served_at if notice == "return_to_work" else absence.dismissed_at
    if issued_at is not None and sent_at < issued_at - timedelta(days=1):
        raise InvalidInput("sent_before_notice", "寄出时间早于通知书出具时间")
    row = PostalDelivery(company_id=case.company_id, case_id=case.id, notice=notice, document_id=doc_id,
                         carrier=carrier, tracking_no=tracking_no, address=address, sent_at=sent_at, status="sent",
                         status_at=sent_at, status_note="", recorded_by=reviewer.actor)
    session.add(row)
    session.flush()
    append_evidence(session, case, reviewer.actor, EvidenceKind.POSTAL_DELIVERY_RECORDED, {
        "postal_delivery_id": row.id, "notice": notice, "document_id": doc_id,
        "document_sha256": session.get(Document, doc_id).sha256, "carrier": carrier, "tracking_no": tracking_no,
        "address": address, "sent_at": sent_at, "recorded_by": reviewer.display_name})
    return row


def update_postal_delivery(session: Session, rt: Runtime, reviewer: Reviewer, case_id: str, delivery_id: str, *,
                           status: str, status_at: datetime, note: str = "") -> PostalDelivery:
    """Delivered (签收) or returned (退回): what became of a posted notice, as evidence."""
    _writer(reviewer)
    if status not in ("delivered", "returned"):
        raise InvalidInput("postal_status_invalid", "状态须为已签收（delivered）或已退回（returned）")
    note = (note or "").strip()
    if len(note) > 500:
        raise InvalidInput("note_too_long", "备注不能超过 500 个字")
    if status_at.tzinfo is None or status_at.utcoffset() is None:
        raise InvalidInput("status_at_naive", "时间须带时区（例如 +08:00）")
    status_at = status_at.astimezone(timezone.utc)
    case, _absence = _hr_absence(session, reviewer, case_id)
    row = session.scalar(select(PostalDelivery).where(PostalDelivery.id == delivery_id,
                                                      PostalDelivery.case_id == case.id))
    if row is None:
        raise NotFound("postal_delivery_not_found", "找不到该邮寄记录")
    if row.status != "sent":
        raise Conflict("postal_status_final", "该邮寄记录的状态已登记", details={"status": row.status})
    if status_at < row.sent_at or status_at > utcnow() + timedelta(minutes=5):
        raise InvalidInput("status_at_invalid", "签收或退回时间须在寄出之后、当前时间之前")
    row.status, row.status_at, row.status_note = status, status_at, note
    session.flush()
    append_evidence(session, case, reviewer.actor, EvidenceKind.POSTAL_DELIVERY_UPDATED, {
        "postal_delivery_id": row.id, "notice": row.notice, "carrier": row.carrier, "tracking_no": row.tracking_no,
        "status": status, "status_at": status_at, "note": note, "recorded_by": reviewer.display_name})
    return row


# ---- 3. the employee's answer --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Attachment:
    data: bytes
    content_type: str
    filename: str


def _check_attachment(a: Attachment) -> tuple[str, str]:
    if len(a.data) > MAX_ATTACHMENT_BYTES:
        raise PayloadTooLarge("attachment_too_large", f"附件不能超过 {MAX_ATTACHMENT_BYTES // (1024 * 1024)} MB")
    for ctype, (magic, ext) in ATTACHMENT_TYPES.items():
        if a.data.startswith(magic):
            return ctype, ext
    raise UnsupportedMediaType("attachment_type", "附件须为 PNG、JPEG 图片或 PDF 文件",
                               details={"accepted": list(ATTACHMENT_TYPES)})


def answer_return_notice(session: Session, rt: Runtime, *, employee_id: str, company_id: str, case_id: str,
                         actor: str, answer: str, text: str = "", attachments: list[Attachment] | None = None,
                         reason_category: str | None = None, requested_last_day: date | None = None,
                         meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """The employee answers the return-to-work notice in the mini-program (see the module docstring)."""
    text = (text or "").strip()
    attachments = list(attachments or [])
    if len(text) > MAX_TEXT:
        raise InvalidInput("answer_text_too_long", f"说明不能超过 {MAX_TEXT} 个字")
    if len(attachments) > MAX_ATTACHMENTS:
        raise InvalidInput("too_many_attachments", f"附件不能超过 {MAX_ATTACHMENTS} 个")
    if answer == "explanation" and not text:
        raise InvalidInput("explanation_required", "请填写缺勤原因的说明")
    types = [_check_attachment(a) for a in attachments]
    case = get_employee_case(session, case_id, employee_id=employee_id, company_id=company_id)
    case = session.scalar(select(ResignationCase).where(ResignationCase.id == case.id).with_for_update()
                          .execution_options(populate_existing=True))
    absence = get_absence(session, case)
    now = utcnow()
    past = absence.deadline is not None and rules.deadline_passed(absence.deadline, beijing_date(now))
    action = rules.answer_action(answer, state=case.state, past_deadline=past)
    stored: list[dict[str, Any]] = []
    for a, (ctype, ext) in zip(attachments, types, strict=True):
        doc = store_document(session, rt.store, company_id=case.company_id, kind="absence_attachment",
                             filename=f"说明附件-{len(stored) + 1}.{ext}", content_type=ctype, data=a.data,
                             created_by=actor, case_id=case.id, employee_id=case.employee_id,
                             meta={"original_filename": a.filename[:200]})
        stored.append({"document_id": doc.id, "sha256": doc.sha256, "content_type": ctype, "size": doc.size})
    before = case.state
    append_evidence(session, case, actor, EvidenceKind.ABSENCE_ANSWERED, {
        "answer": answer, "answer_label": rules.ANSWER_LABELS[answer], "text": text, "attachments": stored,
        "late": past, "deadline": _iso(absence.deadline), "case_state": before, **(meta or {})}, occurred_at=now)
    absence.answer, absence.answered_at = answer, now
    resignation = None
    if action == CaseAction.CONVERT_TO_RESIGNATION:
        apply_action(session, case, action, actor=actor, payload={"answer": answer})
        resignation = _open_resignation(session, rt, case, absence, actor=actor, now=now,
                                        reason_category=reason_category, reason_text=text,
                                        requested_last_day=requested_last_day)
    else:
        apply_action(session, case, action, actor=actor, payload={"answer": answer, "late": past})
    if action != CaseAction.RETURN_TO_WORK:
        emp = _employee(session, case)
        raise_alert(session, company_id=case.company_id, kind="absence_answered", case_id=case.id, employee_id=emp.id,
                    message=f"员工 {emp.name}（{emp.employee_no}）答复了返岗通知书：{rules.ANSWER_LABELS[answer]}"
                            + ("（期限届满后）" if past else ""), payload={"answer": answer}, actor="system")
    session.flush()
    return {"case": case, "outcome": case.state, "resignation_case_id": resignation.id if resignation else None,
            "late": past}


def _open_resignation(session: Session, rt: Runtime, case: ResignationCase, absence: AbsenceCase, *, actor: str,
                      now: datetime, reason_category: str | None, reason_text: str,
                      requested_last_day: date | None) -> ResignationCase:
    """The employee resigns instead: an art. 37 resignation case whose notice arrives now (the answer
    entered the system the employer designated); its letter is signed with face + SMS like any other."""
    emp = _employee(session, case)
    if requested_last_day is not None and requested_last_day <= beijing_date(now):
        raise InvalidInput("last_day_not_after_arrival", "申请的最后工作日必须晚于提出离职的日期")
    resignation = open_case(session, rt.settings, employee=emp, source="miniprogram", notice_arrived_at=now,
                            actor=actor, reason_category=reason_category, reason_text=reason_text[:2000],
                            requested_last_day=requested_last_day,
                            extra_evidence={"converted_from_case_id": case.id, "departure_type_before": DEPARTURE_TYPE})
    absence.resignation_case_id = resignation.id
    append_evidence(session, case, actor, EvidenceKind.RESIGNATION_OPENED_FROM_ABSENCE, {
        "resignation_case_id": resignation.id, "notice_arrived_at": now,
        "earliest_lawful_last_day": resignation.earliest_lawful_last_day.isoformat(),
        "letter_due_date": resignation.letter_due_date.isoformat()})
    on_case_opened(session, rt, resignation)
    return resignation


# ---- 4. union and dismissal -------------------------------------------------------------------------------------

def record_union_notification(session: Session, rt: Runtime, reviewer: Reviewer, case_id: str, *, union_name: str,
                              contact_name: str, notified_at: datetime, method: str, response: str = "",
                              objection: bool = False, responded_at: datetime | None = None) -> UnionNotification:
    """The union told of the intended dismissal and its reason (art. 43): who, when, how, their answer."""
    _writer(reviewer)
    union_name, contact_name, response = (union_name or "").strip(), (contact_name or "").strip(), (response or "").strip()
    if not 2 <= len(union_name) <= 200 or not 1 <= len(contact_name) <= 100:
        raise InvalidInput("union_notification_invalid", "请填写工会名称和接收人")
    if method not in rules.UNION_METHODS:
        raise InvalidInput("union_method_invalid", "通知方式无效", details={"allowed": list(rules.UNION_METHODS)})
    if len(response) > MAX_TEXT:
        raise InvalidInput("union_response_too_long", f"工会意见不能超过 {MAX_TEXT} 个字")
    for name, value in (("notified_at", notified_at), ("responded_at", responded_at)):
        if value is not None and (value.tzinfo is None or value.utcoffset() is None):
            raise InvalidInput(f"{name}_naive", "时间须带时区（例如 +08:00）")
    notified_at = notified_at.astimezone(timezone.utc)
    responded_at = responded_at.astimezone(timezone.utc) if responded_at is not None else None
    now = utcnow()
    if notified_at > now + timedelta(minutes=5) or (responded_at is not None and not notified_at <= responded_at
                                                     <= now + timedelta(minutes=5)):
        raise InvalidInput("union_time_invalid", "通知时间不能晚于当前时间，工会答复须在通知之后")
    case, absence = _hr_absence(session, reviewer, case_id)
    if case.state not in {_S.NOTICE_SERVED.value, _S.EXPLANATION_RECEIVED.value, _S.DISMISSAL_PENDING.value}:
        raise Conflict("case_not_dismissible", "该案件当前状态不需要通知工会", details={"state": case.state})
    if notified_at < absence.confirmed_at.replace(second=0, microsecond=0):  # forms give minutes
        raise InvalidInput("union_time_invalid", "通知工会的时间不能早于确认擅自离职的时间")
    row = UnionNotification(company_id=case.company_id, case_id=case.id, union_name=union_name,
                            contact_name=contact_name, notified_at=notified_at, method=method, response=response,
                            objection=bool(objection), responded_at=responded_at, recorded_by=reviewer.actor)
    session.add(row)
    session.flush()
    append_evidence(session, case, reviewer.actor, EvidenceKind.UNION_NOTIFIED, {
        "union_notification_id": row.id, "union_name": union_name, "contact_name": contact_name,
        "notified_at": notified_at, "method": method, "response": response, "objection": bool(objection),
        "responded_at": responded_at, "legal_basis": rules.ARTICLE_43, "recorded_by": reviewer.display_name})
    return row


def dismiss_for_absence(session: Session, rt: Runtime, reviewer: Reviewer, case_id: str, *,
                        comment: str = "") -> tuple[ResignationCase, str]:
    """One level of the company's absconding approval chain approves the art. 39(2) dismissal; the final
    level seals and serves the dismissal notice. Returns the case and ``dismissal_pending`` or ``dismissed``."""
    comment = (comment or "").strip()
    if len(comment) > 1000:
        raise InvalidInput("comment_too_long", "审批意见不能超过 1000 个字")
    if reviewer.role == "auditor":
        raise Forbidden("role_read_only", "审计角色只读")
    case, absence = _hr_absence(session, reviewer, case_id)
    company = session.get(Company, case.company_id)
    policy = absence_policy(company, rt)
    union = _latest_union(session, case)
    now = utcnow()
    rules.check_dismissal(state=case.state, deadline=absence.deadline, today=beijing_date(now), clause=policy.clause,
                          union_notified=union is not None)
    first = None
    if case.state == _S.DISMISSAL_PENDING.value:
        from qianli.services.review import _latest

        entry = _latest(session, case, (EvidenceKind.CASE_APPROVE_DISMISSAL.value,))
        first = entry.actor if entry is not None else None
    status = rules.dismissal_status(case.state, policy.approval_chain, first_approver=first)
    emp = _employee(session, case)
    rules.check_may_approve(status, role=reviewer.role, actor=reviewer.actor, department=reviewer.department,
                            employee_department=emp.department)
    assert status.level is not None and policy.clause is not None and union is not None and absence.deadline is not None
    base = {"level": status.level + 1, "levels": len(status.chain), "level_role": status.level_role,
            "approver_role": reviewer.role, "approver_name": reviewer.display_name, "comment": comment,
            "legal_basis": rules.ARTICLE_39_2, "handbook_clause": policy.clause.as_dict(),
            "deadline": absence.deadline.isoformat(), "union_notification_id": union.id}
    if not status.final:
        apply_action(session, case, CaseAction.APPROVE_DISMISSAL, actor=reviewer.actor, payload=base)
        return case, case.state
    termination = beijing_date(now)
    postal = [f"{p.carrier} {p.tracking_no}（{_zh(beijing_date(p.sent_at))}寄出，"
              f"{ {'sent': '在途', 'delivered': '已签收', 'returned': '已退回'}[p.status]}）"
              for p in _postal(session, case, "return_to_work")]
    explained = any(a["answer"] for a in _answers(session, case))
    data = DismissalNoticeData(
        case_id=case.id, company_name=company.name, employee_name=emp.name, employee_no=emp.employee_no,
        department=emp.department, position=emp.position, absent_days=_days(absence),
        clause_reference=policy.clause.reference, clause_text=policy.clause.text,
        return_notice_served_on=beijing_date(absence.return_notice_served_at), deadline=absence.deadline,
        postal=tuple(postal), explanation_received=explained, union_name=union.union_name,
        union_notified_at=union.notified_at, union_response=union.response, termination_date=termination,
        issued_on=termination)
    unsigned, layout = render_dismissal_notice(data)
    seal = seal_with_company(rt, company, unsigned, page=layout.page, box=layout.company_box,
                             caption=f"{company.name} 电子印章", time_label="解除时间：",
                             reason="解除劳动合同通知书（劳动合同法第三十九条第二项，公司盖章）", kind="notice",
                             failure_code="dismissal_notice_seal_failed",
                             failure_message="公司签章暂不可用，解除未生效，请稍后重试")
    doc = store_document(session, rt.store, company_id=case.company_id, kind="dismissal_notice",
                         filename=f"解除劳动合同通知书-{emp.employee_no}.pdf", content_type="application/pdf",
                         data=seal.pdf, created_by=reviewer.actor, case_id=case.id, employee_id=case.employee_id,
                         meta={"unsigned_sha256": sha256_hex(unsigned), "seal_cert_serial": seal.cert_serial,
                               "level": "B-LTA", "termination_date": termination.isoformat()})
    absence.dismissal_document_id, absence.dismissed_at, absence.termination_date = doc.id, now, termination
    case.agreed_last_day = termination  # the day the contract ends, where the offboarding and certificate read it
    notify_employee(session, rt, case, "dismissal_notice", {"termination_date": termination.isoformat()}, now=now)
    apply_action(session, case, CaseAction.DISMISS, actor=reviewer.actor, payload={
        **base, "document_id": doc.id, "sha256": doc.sha256, "unsigned_sha256": sha256_hex(unsigned),
        "pades_level": "B-LTA", "seal_backend": seal.backend, "seal_cert_serial": seal.cert_serial,
        "seal_cert_subject": seal.cert_subject, "sealed_at": seal.signed_at.isoformat(),
        "termination_date": termination.isoformat(), "served_via": ["miniprogram", "sms", "wechat_subscribe"],
        "absent_days": absence.absent_days, "union_notified_at": union.notified_at,
        "wages": "已出勤期间的工资依法足额支付"})
    after_dismissal(session, rt, case, actor=reviewer.actor)
    session.flush()
    return case, case.state


def _zh(d: date) -> str:
    return f"{d.year}年{d.month}月{d.day}日"


def after_dismissal(session: Session, rt: Runtime, case: ResignationCase, *, actor: str) -> None:
    """What follows the dismissal, in its transaction: the offboarding run counted from today
    (``start_offboarding(immediate=True)``), access revoked at once (``revoke_access_now``) and the certificate of termination (``issue_certificate``; art. 50: never
    conditional on the handover). A certificate that lacks a roster fact does not undo the dismissal:
    HR is alerted with the facts to complete and issues it from the case page."""
    from qianli.services.certificate import issue_certificate
    from qianli.services.offboarding import start_offboarding
    from qianli.services.revocation import revoke_access_now

    tasks = start_offboarding(session, rt, case, actor=actor, immediate=True)
    rev = revoke_access_now(session, rt, case, actor=actor, reason="依据劳动合同法第三十九条第二项解除劳动合同")
    revocation = {"status": rev.status, "id": rev.id}
    certificate: dict[str, Any]
    try:
        issued = issue_certificate(session, rt, case, actor=actor)
        certificate = {"document_id": issued.document.id, "sha256": issued.document.sha256}
    except InvalidInput as exc:
        emp = _employee(session, case)
        raise_alert(session, company_id=case.company_id, kind="certificate_facts_missing", case_id=case.id,
                    employee_id=emp.id, actor="system", message=f"{emp.name}（{emp.employee_no}）已解除劳动合同，"
                    f"解除劳动合同证明无法出具：{exc.message}", payload={"missing": exc.details.get("missing", [])})
        certificate = {"error": exc.code, "missing": exc.details.get("missing", [])}
    append_evidence(session, case, actor, EvidenceKind.OFFBOARDING_AFTER_DISMISSAL, {
        "offboarding_tasks": len(tasks), "immediate": True, "access_revocation": revocation,
        "certificate": certificate})


def withdraw_departure(session: Session, rt: Runtime, reviewer: Reviewer, case_id: str, *,
                       reason: str) -> ResignationCase:
    """The company withdraws the confirmation (a false alarm, an explanation it accepts, the employee is
    back): the case ends as ``withdrawn``; the employee is told."""
    _writer(reviewer)
    reason = (reason or "").strip()
    if not 2 <= len(reason) <= 1000:
        raise InvalidInput("reason_required", "请填写撤回原因（2 到 1000 个字）")
    case, absence = _hr_absence(session, reviewer, case_id)
    apply_action(session, case, CaseAction.WITHDRAW, actor=reviewer.actor, payload={
        "reason": reason, "decided_by": reviewer.display_name, "answer": absence.answer})
    if absence.return_notice_document_id is not None:
        notify_employee(session, rt, case, "absence_withdrawn", {"comment": reason})
    return case


def notice_bytes(rt: Runtime, doc: Document) -> bytes:
    data = read_document(rt.store, doc)
    if sha256_hex(data) != doc.sha256:
        raise Conflict("document_corrupted", "存储的文件与登记的摘要不符", details={"document_id": doc.id})
    return data
