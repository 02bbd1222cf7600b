"""Closing a case: the relationship has ended and the employer's duties at the end are done.

HR closes a case (``close_case``) only after the last day (the termination date has passed in
Beijing) and with the certificate of termination issued (art. 50). The closing record, the
``case_close`` evidence entry, lists the handover tasks still open at that moment (they do not
block closing; the law lets the employer settle them later, never hold back the certificate).
In the same transaction:

* the employee is deactivated and every session ends (refresh tokens revoked, the session epoch
  moved on, so access tokens are refused at once);
* the face template and any kept reference photo are deleted (PIPL art. 19/47: the purpose,
  identity checks for the resignation, is fulfilled), recorded as ``face_data_deleted`` with what
  was deleted and the counts left afterwards (zero), so the deletion can be checked;
* the person joins the alumni pool when a consent is in force, else their data goes on the retention
  schedule (``qianli.services.alumni.on_case_closed``);
* ``case.closed`` is published through the transactional outbox.

Consent records, the evidence chain, the documents and the dossier are kept (contracts and wage
records at least two years). Services never commit.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from cases.clock import beijing_today
from cases.errors import Conflict, Forbidden, InvalidInput
from cases.evidence_kinds import EvidenceKind
from cases.states import CaseAction, CaseState
from qianli.db import utcnow
from qianli.models import Alumnus, Employee, FaceEnrolment, FaceReferencePhoto, RefreshToken, ResignationCase
from qianli.runtime import Runtime
from qianli.services.alumni import on_case_closed
from qianli.services.auth import revoke_employee_sessions
from qianli.services.cases import apply_action
from qianli.services.certificate import CERTIFICATE_STATES, latest_certificate, termination_date
from qianli.services.events import publish
from qianli.services.evidence import append_evidence
from qianli.services.offboarding import open_tasks

__all__ = ["ClosingRecord", "close_case", "closable", "open_tasks_of", "delete_face_data", "MAX_COMMENT",
           "CLOSERS"]

MAX_COMMENT = 1000
CLOSERS = ("hr_specialist", "hr_manager")


@dataclass(frozen=True)
class ClosingRecord:
    case: ResignationCase
    closed_at: datetime
    termination_date: date
    open_tasks: list[dict[str, Any]]
    certificate: dict[str, Any]
    face_data: dict[str, Any]
    sessions: dict[str, Any]
    event_id: str


def open_tasks_of(session: Session, case: ResignationCase) -> list[dict[str, Any]]:
    """The handover tasks still open (h15t's ``open_tasks``), as the closing record lists them."""
    out = []
    for t in open_tasks(session, case.id):
        out.append({k: _plain(getattr(t, k, None)) for k in ("id", "group", "title", "owner_role", "owner_user_id",
                                                             "owner_department", "due_date", "status") if hasattr(t, k)})
    return out


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, (date, datetime)) else value


def closable(session: Session, case: ResignationCase, *, today: date | None = None) -> tuple[str | None, str, dict]:
    """(code, message, details) of what stops closing now, or (None, "", {}) when it may be closed."""
    if case.state == CaseState.CLOSED.value:
        return "case_already_closed", "该案件已结案", {"state": case.state}
    if case.state not in CERTIFICATE_STATES:
        return "case_not_closable", "只有终审通过或已解除劳动合同的案件可以结案", {"state": case.state}
    end = termination_date(case)
    today = today or beijing_today()
    if end is None or today <= end:
        return ("case_last_day_not_passed", "最后工作日过后才能结案",
                {"termination_date": end.isoformat() if end else None,
                 "closable_from": (end + timedelta(days=1)).isoformat() if end else None, "today": today.isoformat()})
    if latest_certificate(session, case) is None:
        return ("certificate_not_issued", "请先出具解除劳动合同证明（劳动合同法第五十条），再结案",
                {"operation": "issueTerminationCertificate"})
    return None, "", {}


def delete_face_data(session: Session, company_id: str, employee_id: str) -> dict[str, Any]:
    """Delete the employee's face template(s) and reference photos; returns what was deleted and the
    counts left (both 0 after this), for the evidence."""
    enrolments = list(session.scalars(select(FaceEnrolment).where(
        FaceEnrolment.company_id == company_id, FaceEnrolment.employee_id == employee_id)))
    photos = list(session.scalars(select(FaceReferencePhoto).where(
        FaceReferencePhoto.company_id == company_id, FaceReferencePhoto.employee_id == employee_id)))
    deleted = {
        "templates": [{"enrolment_id": e.id, "source": e.source, "model": e.model, "photo_sha256": e.photo_sha256,
                       "template_enc_sha256": hashlib.sha256(e.template_enc.encode()).hexdigest(),
                       "enrolled_at": _plain(e.created_at)} for e in enrolments],
        "reference_photos": [{"id": p.id, "sha256": p.sha256} for p in photos],
    }
    session.execute(delete(FaceReferencePhoto).where(FaceReferencePhoto.company_id == company_id,
                                                     FaceReferencePhoto.employee_id == employee_id))
    session.execute(delete(FaceEnrolment).where(FaceEnrolment.company_id == company_id,
                                                FaceEnrolment.employee_id == employee_id))
    session.flush()
    remaining = {
        "face_enrolments": session.scalar(select(func.count()).select_from(FaceEnrolment).where(
            FaceEnrolment.company_id == company_id, FaceEnrolment.employee_id == employee_id)),
        "face_reference_photos": session.scalar(select(func.count()).select_from(FaceReferencePhoto).where(
            FaceReferencePhoto.company_id == company_id, FaceReferencePhoto.employee_id == employee_id)),
    }
    return {**deleted, "remaining": remaining}


def close_case(session: Session, rt: Runtime, case: ResignationCase, *, actor: str, role: str,
               comment: str = "", today: date | None = None) -> ClosingRecord:
    """Close ``case`` (409 with the reason otherwise): closing record, deactivation, sessions ended,
    face data deleted, ``case.closed`` published, all in the caller's transaction."""
    if role not in CLOSERS:
        raise Forbidden("role_forbidden", "requires role: hr_specialist, hr_manager", details={"role": role})
    comment = (comment or "").strip()
    if len(comment) > MAX_COMMENT:
        raise InvalidInput("comment_too_long", f"结案说明不能超过 {MAX_COMMENT} 个字")
    case = session.scalar(select(ResignationCase).where(ResignationCase.id == case.id).with_for_update()
                          .execution_options(populate_existing=True))
    code, message, details = closable(session, case, today=today)
    if code is not None:
        raise Conflict(code, message, details=details)
    end = termination_date(case)
    assert end is not None  # closable() checked it
    cert = latest_certificate(session, case)
    assert cert is not None
    emp = session.get(Employee, case.employee_id)
    tasks = open_tasks_of(session, case)

    face = delete_face_data(session, case.company_id, emp.id)
    append_evidence(session, case, actor, EvidenceKind.FACE_DATA_DELETED, {
        "reason": "case_closed", "legal_basis": "个人信息保护法第十九条、第四十七条（处理目的已实现）", **face})

    live_tokens = session.scalar(select(func.count()).select_from(RefreshToken).where(
        RefreshToken.employee_id == emp.id, RefreshToken.revoked_at.is_(None))) or 0
    revoke_employee_sessions(session, emp.id)
    session.execute(update(Employee).where(Employee.id == emp.id).values(active=False))
    session.flush()
    session.refresh(emp)
    sessions = {"refresh_tokens_revoked": int(live_tokens), "session_epoch": emp.session_epoch,
                "employee_active": emp.active}
    append_evidence(session, case, actor, EvidenceKind.EMPLOYEE_DEACTIVATED, {
        "employee_id": emp.id, "employee_no": emp.employee_no, **sessions})

    certificate = {"document_id": cert.id, "sha256": cert.sha256, "issued_at": _plain(cert.created_at)}
    apply_action(session, case, CaseAction.CLOSE, actor=actor, payload={
        "termination_date": end.isoformat(), "comment": comment, "certificate": certificate,
        "open_tasks": tasks, "open_task_count": len(tasks), "employee_deactivated": True,
        "face_data_deleted": {"templates": len(face["templates"]), "reference_photos": len(face["reference_photos"])}})

    # The alumni pool (h17a): with a consent in force the person joins it, else their data goes on the
    # retention schedule; in this transaction, before the event is published.
    pool = on_case_closed(session, case, actor=actor, settings=rt.settings)
    alumni = "joined_pool" if isinstance(pool, Alumnus) else "retention_scheduled"

    event = publish(session, company_id=case.company_id, event_type="case.closed", case_id=case.id,
                    employee_id=emp.id, data={
                        "case_id": case.id, "employee_id": emp.id, "employee_no": emp.employee_no,
                        "departure_type": case.departure_type, "termination_date": end.isoformat(),
                        "closed_at": utcnow().isoformat(), "certificate_sha256": cert.sha256,
                        "open_task_count": len(tasks), "alumni": alumni})
    session.flush()
    return ClosingRecord(case=case, closed_at=utcnow(), termination_date=end, open_tasks=tasks,
                         certificate=certificate, face_data=face, sessions=sessions, event_id=event.id)
