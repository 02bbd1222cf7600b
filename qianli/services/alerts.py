"""HR alerts: things HR must look at (locked face checks, failed reminders, overdue letters).

An alert is a row (shown in the HR console and by ``listAlerts``) and, when the case is known,
an evidence entry. Delivery to HR users' phones is the reminders area's job (daily digests).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cases.errors import NotFound
from cases.evidence_kinds import EvidenceKind
from qianli.db import utcnow
from qianli.models import ALERT_KINDS, HrAlert, ResignationCase
from qianli.services.evidence import append_evidence

__all__ = ["raise_alert", "open_alerts", "resolve_alert"]


def raise_alert(session: Session, *, company_id: str, kind: str, message: str, case_id: str | None = None,
                employee_id: str | None = None, payload: dict[str, Any] | None = None,
                actor: str = "system") -> HrAlert:
    if kind not in ALERT_KINDS:
        raise ValueError(f"unknown alert kind {kind!r}")
    alert = HrAlert(company_id=company_id, kind=kind, case_id=case_id, employee_id=employee_id, message=message,
                    payload=payload or {})
    session.add(alert)
    session.flush()
    if case_id:
        case = session.get(ResignationCase, case_id)
        if case is not None and case.company_id == company_id:
            append_evidence(session, case, actor, EvidenceKind.HR_ALERT_RAISED,
                            {"alert_id": alert.id, "kind": kind, "message": message, **(payload or {})})
    return alert


def open_alerts(session: Session, company_id: str, *, limit: int = 100) -> list[HrAlert]:
    return list(session.scalars(select(HrAlert).where(HrAlert.company_id == company_id, HrAlert.resolved_at.is_(None))
                                .order_by(HrAlert.created_at.desc()).limit(limit)))


def resolve_alert(session: Session, company_id: str, alert_id: str, *, actor: str) -> HrAlert:
    alert = session.scalar(select(HrAlert).where(HrAlert.id == alert_id, HrAlert.company_id == company_id))
    if alert is None:
        raise NotFound("alert_not_found", "找不到该提醒")
    if alert.resolved_at is None:
        alert.resolved_at, alert.resolved_by = utcnow(), actor
        session.flush()
    return alert
