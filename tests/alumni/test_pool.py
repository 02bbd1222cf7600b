"""Consent, joining the pool at close, and the retention job (deletes what it must, nothing else)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from cases.alumni import CONSENT_TEXT_VERSION
from cases.errors import Conflict, InvalidInput
from qianli.db import utcnow
from qianli.models import (AlumniConsent, AlumniConsentEvent, Alumnus, BiometricConsent, EvidenceEntry, Employee,
                           FaceLockState, RefreshToken, ResignationCase, RetentionDeletion, RetentionSchedule)
from qianli.services import alumni as svc
from qianli.services.auth import issue_employee_session
from qianli.services.employees import employee_phone

from tests.alumni.conftest import META


def test_consent_per_purpose_with_evidence(world, db_session):
    emp = world.employee()
    case = world.open_case(emp)
    world.consent(emp, ["greetings", "job_openings"])
    state = svc.consent_state(db_session, emp.company_id, emp.id)
    assert state.purposes == ["greetings", "job_openings"]
    events = db_session.scalars(select(AlumniConsentEvent).where(AlumniConsentEvent.employee_id == emp.id)).all()
    assert sorted((e.purpose, e.action, e.text_version) for e in events) == [
        ("greetings", "given", CONSENT_TEXT_VERSION), ("job_openings", "given", CONSENT_TEXT_VERSION)]
    assert all(e.ip == "127.0.0.1" and len(e.text_sha256) == 64 for e in events)
    chain = db_session.scalars(select(EvidenceEntry.action).where(EvidenceEntry.case_id == case.id)).all()
    assert "alumni_consent_given" in chain

    svc.withdraw_consent(db_session, company_id=emp.company_id, employee_id=emp.id, purposes=["greetings"], meta=META)
    db_session.commit()
    assert svc.active_purposes(db_session, emp.company_id, emp.id) == {"job_openings"}
    withdrawn = db_session.scalars(select(AlumniConsentEvent).where(AlumniConsentEvent.action == "withdrawn",
                                                                    AlumniConsentEvent.employee_id == emp.id)).all()
    assert [(w.purpose, w.method) for w in withdrawn] == [("greetings", "employee_app")]
    assert "alumni_consent_withdrawn" in db_session.scalars(
        select(EvidenceEntry.action).where(EvidenceEntry.case_id == case.id)).all()


def test_consent_refuses_old_text_and_unknown_purpose(world, db_session):
    emp = world.employee()
    with pytest.raises(Conflict) as e:
        svc.give_consent(db_session, company_id=emp.company_id, employee_id=emp.id, purposes=["greetings"],
                         text_version="alumni-2000-01", meta=META)
    assert e.value.code == "alumni_consent_text_outdated"
    with pytest.raises(InvalidInput):
        svc.give_consent(db_session, company_id=emp.company_id, employee_id=emp.id, purposes=["marketing"],
                         text_version=CONSENT_TEXT_VERSION, meta=META)
    assert db_session.scalar(select(func.count()).select_from(AlumniConsent)) == 0


def test_close_with_consent_joins_pool(world, db_session):
    emp = world.employee(position="销售经理")
    world.consent(emp)
    case, result = world.close(emp, reason="family")
    assert isinstance(result, Alumnus)
    assert (result.department, result.reason_category, result.departure_type) == ("研发部", "family", "resignation")
    assert result.positions[0]["title"] == "销售经理" and result.left_on == case.requested_last_day
    assert db_session.scalar(select(RetentionSchedule).where(RetentionSchedule.employee_id == emp.id)) is None
    assert "alumni_joined" in db_session.scalars(select(EvidenceEntry.action).where(EvidenceEntry.case_id == case.id)).all()


def test_close_without_consent_schedules_retention(world, db_session, settings):
    emp = world.employee()
    _, result = world.close(emp)
    assert isinstance(result, RetentionSchedule)
    assert result.reason == "no_consent" and result.state == "pending"
    grace = result.purge_after.replace(tzinfo=None) - utcnow().replace(tzinfo=None)
    assert timedelta(days=settings.alumni_consent_grace_days - 1) < grace <= timedelta(days=settings.alumni_consent_grace_days)
    assert (result.documents_until - result.created_at.date()).days >= 730
    assert svc.alumnus_for_employee(db_session, emp.company_id, emp.id) is None


def test_late_consent_within_grace_joins_and_cancels_retention(world, db_session, runtime):
    emp = world.employee()
    _, schedule = world.close(emp)
    world.consent(emp, ["job_openings"])
    assert schedule.state == "cancelled"
    assert svc.alumnus_for_employee(db_session, emp.company_id, emp.id) is not None
    result = svc.run_retention(runtime, now=utcnow() + timedelta(days=400))
    assert result.purged == []


def _personal_footprint(session, emp):
    return {
        "refresh_tokens": session.scalar(select(func.count()).select_from(RefreshToken).where(RefreshToken.employee_id == emp.id)),
        "face_locks": session.scalar(select(func.count()).select_from(FaceLockState).where(FaceLockState.employee_id == emp.id)),
        "alumnus": session.scalar(select(func.count()).select_from(Alumnus).where(Alumnus.employee_id == emp.id)),
    }


def test_retention_deletes_exactly_what_is_due(world, db_session, runtime):
    from qianli.services.alumni_search import index_alumnus  # noqa: F401 - the FTS row goes with the profile

    due = world.employee("到期", openid="openid-due")
    not_due = world.employee("未到期", openid="openid-notdue")
    member = world.employee("校友", openid="openid-member")
    active = world.employee("在职", openid="openid-active")
    for e in (due, not_due, member, active):
        issue_employee_session(db_session, runtime.settings, e, openid=e.wechat_openid)
        db_session.add(FaceLockState(company_id=e.company_id, employee_id=e.id, consecutive_failures=1))
        db_session.add(BiometricConsent(company_id=e.company_id, employee_id=e.id, method="employee_app",
                                        text_version="face-2026-11", text_sha256="0" * 64, actor="employee"))
    db_session.commit()
    world.consent(member)
    due_case, due_schedule = world.close(due)
    _, not_due_schedule = world.close(not_due)
    world.close(member)
    due_schedule.purge_after = utcnow() - timedelta(minutes=1)
    db_session.commit()
    evidence_before = db_session.scalar(select(func.count()).select_from(EvidenceEntry))

    result = svc.run_retention(runtime)
    db_session.expire_all()
    assert result.purged == [due.id] and result.cancelled == []

    # the due person: personal data beyond the termination documents is gone, each deletion recorded
    assert _personal_footprint(db_session, due) == {"refresh_tokens": 0, "face_locks": 0, "alumnus": 0}
    d = db_session.get(Employee, due.id)
    assert d.wechat_openid is None and d.national_id_enc is None and employee_phone(runtime, d) == ""
    deletions = {r.category: r.rows for r in db_session.scalars(
        select(RetentionDeletion).where(RetentionDeletion.employee_id == due.id))}
    assert deletions == {"refresh_tokens": 1, "face_lock_states": 1, "contact_fields": 3}
    assert db_session.get(RetentionSchedule, due_schedule.id).state == "purged"
    # ... and the termination documents are kept: the case, its evidence (plus the purge record), the
    # name and position, the consent records
    assert db_session.get(ResignationCase, due_case.id) is not None
    assert (d.name, d.position, d.hire_date is not None) == ("到期", "工程师", True)
    assert db_session.scalar(select(func.count()).select_from(EvidenceEntry)) == evidence_before + 1
    assert db_session.scalar(select(func.count()).select_from(BiometricConsent).where(BiometricConsent.employee_id == due.id)) == 1

    # nobody else lost anything
    for e in (not_due, member, active):
        fp = _personal_footprint(db_session, e)
        assert fp["refresh_tokens"] == 1 and fp["face_locks"] == 1, e.name
        assert db_session.get(Employee, e.id).wechat_openid is not None
        assert employee_phone(runtime, db_session.get(Employee, e.id)) != ""
    assert _personal_footprint(db_session, member)["alumnus"] == 1
    assert db_session.get(RetentionSchedule, not_due_schedule.id).state == "pending"
    assert db_session.scalar(select(func.count()).select_from(RetentionDeletion).where(
        RetentionDeletion.employee_id != due.id)) == 0

    # running again deletes nothing more
    assert svc.run_retention(runtime).purged == []


def test_withdrawing_every_purpose_leaves_the_pool(world, db_session, runtime):
    emp, a = world.alumnus("王五", skills=["Python"], notes="擅长数据分析")
    svc.withdraw_consent(db_session, company_id=emp.company_id, employee_id=emp.id, purposes=None, meta=META)
    db_session.commit()
    schedule = db_session.scalar(select(RetentionSchedule).where(RetentionSchedule.employee_id == emp.id))
    assert schedule.reason == "consent_withdrawn" and schedule.state == "pending"
    result = svc.run_retention(runtime)
    assert result.purged == [emp.id]
    db_session.expire_all()
    assert svc.alumnus_for_employee(db_session, emp.company_id, emp.id) is None
    found = svc.search_alumni(db_session, emp.company_id, svc.SearchFilters(q="数据分析"), role="hr_manager")
    assert found.total == 0
