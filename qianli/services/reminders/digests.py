"""The daily digest of overdue letters to HR (SMS), and the escalation it records in each case's evidence."""

from __future__ import annotations

import logging
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from cases.evidence_kinds import EvidenceKind
from cases.reminders import (LETTER_STATES, content_digest, hr_digest_message)
from identity.sms import SmsGatewayError
from qianli.db import session_scope, utcnow
from qianli.models import (Employee, HrAlert, HrDigest, HrUser, ResignationCase)
from qianli.runtime import Runtime
from qianli.services.alerts import raise_alert
from qianli.services.evidence import append_evidence
from qianli.services.reminders.common import ACTOR, DIGEST_ROLES, SMS_TEMPLATE, _begin_write
from qianli.services.reminders.hr_phones import hr_phone

__all__ = ["send_hr_digests"]

log = logging.getLogger(__name__)


def _overdue_cases(session: Session, company_id: str, today: date) -> list[tuple[ResignationCase, Employee]]:
    return list(session.execute(
        select(ResignationCase, Employee).join(Employee, Employee.id == ResignationCase.employee_id)
        .where(ResignationCase.company_id == company_id, ResignationCase.state.in_(sorted(LETTER_STATES)),
               ResignationCase.letter_due_date < today)
        .order_by(ResignationCase.letter_due_date)).all())


def send_hr_digests(rt: Runtime, company_id: str, day: date, *, now: datetime | None = None) -> dict[str, str]:
    """Each HR user of the company (not auditors; department heads for their department only) gets
    one digest of overdue letters for ``day``; the cases get an overdue alert (once) and a
    ``reminder_escalated`` evidence entry naming who was told."""
    now = now or utcnow()
    out: dict[str, str] = {}
    with session_scope(rt.session_factory) as session:
        _begin_write(session)
        overdue = _overdue_cases(session, company_id, day)
        if not overdue:
            return out
        alerted = set(session.scalars(select(HrAlert.case_id).where(
            HrAlert.company_id == company_id, HrAlert.kind == "letter_overdue",
            HrAlert.case_id.in_([c.id for c, _ in overdue]))))
        for case, emp in overdue:
            if case.id not in alerted:
                raise_alert(session, company_id=company_id, kind="letter_overdue", case_id=case.id,
                            employee_id=emp.id, actor=ACTOR,
                            message=(f"{emp.name}（{emp.employee_no}）的书面辞职信应于{case.letter_due_date.isoformat()}"
                                     + ("（暂定，节假日安排未公布）前提交，按暂定日期已逾期" if case.dates_provisional
                                        else "前提交，已逾期")),
                            payload={"letter_due_date": case.letter_due_date.isoformat(),
                                     "due_date_provisional": case.dates_provisional})
        users = session.scalars(select(HrUser).where(HrUser.company_id == company_id, HrUser.active.is_(True),
                                                     HrUser.role.in_(DIGEST_ROLES)).order_by(HrUser.username)).all()
        told: dict[str, list[str]] = {}
        for user in users:
            mine = [(c, e) for c, e in overdue if user.role != "dept_head" or (user.department and e.department == user.department)]
            if not mine:
                continue
            exists = session.scalar(select(HrDigest.id).where(HrDigest.hr_user_id == user.id, HrDigest.day == day))
            if exists:
                out[user.id] = "exists"
                continue
            msg = hr_digest_message(hr_name=user.display_name, day=day,
                                    cases=[(e.name, e.employee_no, c.letter_due_date, c.dates_provisional)
                                           for c, e in mine])
            digest = HrDigest(company_id=company_id, hr_user_id=user.id, day=day, case_ids=[c.id for c, _ in mine],
                              content_sha256=content_digest("sms", SMS_TEMPLATE, msg.sms_params))
            session.add(digest)
            session.flush()  # the unique (user, day) row is taken before anything is sent
            phone = hr_phone(rt, user)
            if phone is None:
                digest.status, digest.error = "no_channel", "no phone on file; shown as alerts in the console"
            else:
                try:
                    sent = rt.sms_gateway.send(phone, SMS_TEMPLATE, msg.sms_params)
                    digest.status, digest.provider_message_id, digest.sent_at = "sent", sent.message_id, utcnow()
                except SmsGatewayError as exc:
                    digest.status, digest.error = "failed", f"{exc.provider_code}: {exc.provider_message}"[:500]
            out[user.id] = digest.status
            for c, _ in mine:
                told.setdefault(c.id, []).append(f"{user.id}:{user.role}:{digest.status}")
        for case, _ in overdue:
            if case.id in told:
                append_evidence(session, case, ACTOR, EvidenceKind.REMINDER_ESCALATED, {
                    "day": day.isoformat(), "letter_due_date": case.letter_due_date.isoformat(),
                    "due_date_provisional": case.dates_provisional,
                    "hr_digests": told[case.id]}, occurred_at=now)
    return out
