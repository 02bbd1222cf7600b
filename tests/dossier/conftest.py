"""Dossier fixtures: a real test PKI with an in-process TSA, and a case with evidence of every kind."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from cases.states import CaseAction
from qianli.services import cases as case_svc
from qianli.services.evidence import append_evidence
from qianli.storage import store_document

from .pki_helpers import make_pki


@pytest.fixture(scope="session")
def pki():
    return make_pki()


@pytest.fixture
def case(runtime, db_session, factory):
    company = factory.company(approval_chain=["hr_specialist", "dept_head"])
    emp = factory.employee(company, name="李雷", employee_no="A001")
    arrived = datetime(2024, 10, 2, 6, 30, tzinfo=timezone.utc)
    c = case_svc.open_case(db_session, runtime.settings, employee=emp, source="instant_message",
                           notice_arrived_at=arrived, actor="hr:1", reason_category="other",
                           reason_text="姐，我想离职，做到这个月底可以吗？", requested_last_day=None, handover_items=[])
    append_evidence(db_session, c, "hr:1", "chat_evidence_recorded",
                    {"text": "姐，我想离职，做到这个月底可以吗？", "sender": "李雷", "sent_at": "2024-10-02T14:30:00+08:00"})
    store = runtime.store
    store_document(db_session, store, company_id=company.id, case_id=c.id, employee_id=emp.id, kind="chat_screenshot",
                   filename="wechat.png", content_type="image/png", data=b"\x89PNG\r\n\x1a\nfake screenshot bytes",
                   created_by="hr:1")
    for n in range(2):
        append_evidence(db_session, c, "system", "reminder_sent", {"channel": "sms", "n": n + 1},
                        occurred_at=arrived + timedelta(days=n + 1))
    append_evidence(db_session, c, "employee:x", "sms_code_verified", {"purpose": "sign"})
    append_evidence(db_session, c, "employee:x", "face_consent_withdrawn", {"consent_ids": [], "template_deleted": False})
    case_svc.apply_action(db_session, c, CaseAction.SUBMIT_LETTER, actor=f"employee:{emp.id}")
    case_svc.apply_action(db_session, c, CaseAction.APPROVE_FIRST, actor="hr:1")
    db_session.commit()
    return c
