"""WeChat login and binding, SMS codes for binding and signing: the storage-side orchestration.

Binding proves that the WeChat user is the employee on the roster: employee number + the
roster's phone + an SMS code sent to that phone. Details that do not match give one uniform
answer, so the endpoints cannot be used to learn who works where or which phone they have.
The SMS code never appears in the database, the evidence chain or a log.
"""

from __future__ import annotations

import hmac
import logging
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exists, or_, select
from sqlalchemy.orm import Session

from cases.errors import Conflict, DomainError, InvalidInput, NotFound, RateLimited
from cases.evidence_kinds import EvidenceKind
from identity import intent
from identity.sms import mask_phone, normalize_cn_mobile
from identity.sms_codes import SmsCodeSent, SmsCodeVerified
from identity.wechat import WeChatApiError, WeChatSession
from qianli.models import (AlumniConsent, Alumnus, Company, Employee, ResignationCase, RetentionSchedule,
                           WechatBindingEvent)
from qianli.runtime import Runtime
from qianli.services.auth import (TokenPair, issue_alumnus_session, issue_employee_session, issue_pending_session,
                                  revoke_employee_sessions)
from qianli.services.cases import get_employee, get_employee_case
from qianli.services.employees import employee_phone
from qianli.services.evidence import RequestMeta, append_evidence

__all__ = [
    "RequestMeta",
    "LoginOutcome",
    "wechat_login",
    "send_bind_code",
    "bind_employee",
    "unbind_employee",
    "send_sign_code",
    "verify_sign_code",
]

log = logging.getLogger(__name__)

_BIND_FAILED = ("binding_failed", "企业代码、工号、手机号或验证码不正确，请核对后重试")


@dataclass(frozen=True)
class LoginOutcome:
    """``employee`` is None for a WeChat user who still has to bind (the tokens then only allow binding);
    ``alumnus`` is True for a former employee (the token allows the alumni operations only)."""

    openid: str
    tokens: TokenPair
    employee: Employee | None
    alumnus: bool = False


# -- login ----------------------------------------------------------------------------------
def wechat_login(session: Session, rt: Runtime, code: str, *, company_code: str | None = None) -> LoginOutcome:
    """Exchange the ``wx.login`` code; a bound openid gets an employee session, else a bind-only one."""
    try:
        who: WeChatSession = rt.wechat.code2session(code)
    except WeChatApiError as exc:
        raise exc.to_domain_error() from None
    query = select(Employee).where(Employee.wechat_openid == who.openid, Employee.active.is_(True))
    if company_code:
        query = query.join(Company, Company.id == Employee.company_id).where(Company.code == company_code)
    bound = list(session.scalars(query))
    if len(bound) > 1:
        raise Conflict("wechat_multiple_companies", "该微信已绑定多家企业，请指定企业代码",
                       details={"companies": sorted(_company_codes(session, bound))})
    if not bound:
        former = _former_in_alumni_scope(session, who.openid, company_code)
        if former is not None:
            return LoginOutcome(who.openid, issue_alumnus_session(rt.settings, former, openid=who.openid), former,
                                alumnus=True)
        return LoginOutcome(who.openid, issue_pending_session(rt.settings, who.openid), None)
    emp = bound[0]
    return LoginOutcome(who.openid, issue_employee_session(session, rt.settings, emp, openid=who.openid), emp)


def _former_in_alumni_scope(session: Session, openid: str, company_code: str | None) -> Employee | None:
    """A deactivated employee still bound to ``openid`` whose alumni consent may still be managed: an
    alumnus, someone with a consent in force, or someone whose retention is pending (they may still
    join). Several companies: the most recently closed one, unless ``company_code`` says which."""
    query = (select(Employee).where(Employee.wechat_openid == openid, Employee.active.is_(False))
             .where(or_(exists().where(Alumnus.employee_id == Employee.id),
                        exists().where(AlumniConsent.employee_id == Employee.id, AlumniConsent.withdrawn_at.is_(None)),
                        exists().where(RetentionSchedule.employee_id == Employee.id,
                                       RetentionSchedule.state == "pending")))
             .order_by(Employee.updated_at.desc()))
    if company_code:
        query = query.join(Company, Company.id == Employee.company_id).where(Company.code == company_code)
    return session.scalars(query.limit(1)).first()


def _company_codes(session: Session, employees: list[Employee]) -> set[str]:
    ids = {e.company_id for e in employees}
    return set(session.scalars(select(Company.code).where(Company.id.in_(ids))))


# -- binding --------------------------------------------------------------------------------
def _roster_employee(session: Session, rt: Runtime, company_code: str, employee_no: str, phone: str) -> Employee | None:
    """The active employee whose roster phone is ``phone``, or None (uniformly, whatever did not match)."""
    emp = session.scalar(select(Employee).join(Company, Company.id == Employee.company_id)
                         .where(Company.code == company_code, Employee.employee_no == employee_no))
    expected = rt.lookup("phone", phone)
    if emp is None or not emp.active:
        hmac.compare_digest(expected, expected)
        return None
    return emp if hmac.compare_digest(emp.phone_hash, expected) else None


def _answer_floor(rt: Runtime, started: float) -> None:
    """Sleep until ``bind_answer_floor_s`` has passed since ``started`` (uniform answer timing)."""
    remaining = rt.settings.bind_answer_floor_s - (time.monotonic() - started)
    if remaining > 0:
        time.sleep(remaining)


def send_bind_code(session: Session, rt: Runtime, *, company_code: str, employee_no: str, phone: str,
                   meta: RequestMeta) -> SmsCodeSent | None:
    """Send a ``bind`` code if the details match the roster; None (and no SMS) otherwise.

    The HTTP answer is the same either way, in status, body and time (``bind_answer_floor_s``).
    The request is charged to the requester (IP, openid, a cooldown per requester and phone)
    before the roster lookup; only a genuine match is charged to the phone and the employee,
    quietly, so a stranger can neither spend a victim's phone budget with wrong details nor learn
    from a refusal that the details matched. A gateway failure on a match is logged, not shown.
    """
    started = time.monotonic()
    phone = normalize_cn_mobile(phone)
    codes = rt.sms_codes
    codes.charge_requester(phone, "bind", ip=meta.ip or None, openid=meta.openid)
    emp = _roster_employee(session, rt, company_code, employee_no, phone)
    sent = None
    if emp is None:
        log.info("Bind code not sent: details do not match the roster (%s)", mask_phone(phone))
    else:
        try:
            sent = codes.send_quietly(phone, "bind", employee_id=emp.id)
        except DomainError as exc:
            log.error("Bind code for employee %s not sent: %s (%s)", emp.id, exc.code, exc.message)
    _answer_floor(rt, started)
    return sent


def bind_employee(session: Session, rt: Runtime, *, openid: str, company_code: str, employee_no: str, phone: str,
                  sms_code: str, meta: RequestMeta) -> tuple[Employee, TokenPair]:
    """Bind ``openid`` to the roster employee proved by number + phone + SMS code; open a session.

    An unknown employee, a phone that is not the roster's, and a wrong, expired, used or missing
    code all get one answer (422 ``binding_failed``, same message, at least
    ``bind_answer_floor_s``) and each counts against the requester's failure budget (429
    ``bind_attempts_exhausted`` when spent), so the endpoint is no oracle of company + employee
    number + phone and no way to try codes faster than that budget.
    """
    started = time.monotonic()
    phone = normalize_cn_mobile(phone)
    codes = rt.sms_codes
    codes.check_format(sms_code)
    codes.check_failures("bind", ip=meta.ip or None, openid=openid)
    emp = _roster_employee(session, rt, company_code, employee_no, phone)
    try:
        if emp is None:
            codes.verify_decoy(phone, "bind", sms_code)
        codes.verify(phone, "bind", sms_code)
    except (InvalidInput, RateLimited) as exc:
        codes.record_failure("bind", ip=meta.ip or None, openid=openid)
        log.info("Binding refused for %s: %s", mask_phone(phone), "no roster match" if emp is None else exc.code)
        _answer_floor(rt, started)
        raise InvalidInput(*_BIND_FAILED) from None
    assert emp is not None
    if emp.wechat_openid == openid:
        return emp, issue_employee_session(session, rt.settings, emp, openid=openid)
    if emp.wechat_openid:
        raise Conflict("employee_already_bound", "该员工已绑定其他微信，请联系 HR 解除绑定")
    other = session.scalar(select(Employee.id).where(Employee.company_id == emp.company_id,
                                                     Employee.wechat_openid == openid))
    if other:
        raise Conflict("wechat_already_bound", "该微信已绑定本企业的其他员工")
    emp.wechat_openid = openid
    session.flush()
    _record_binding(session, emp, "bind", openid, actor=f"wechat:{openid}", reason="", meta=meta,
                    extra={"phone": mask_phone(phone), "sms_verified": True})
    # After an HR unbind the new binding is an identity change: announced, cooling period (identity_trust).
    from qianli.services.identity_trust import record_rebind

    record_rebind(session, rt, emp, openid, meta=meta)
    return emp, issue_employee_session(session, rt.settings, emp, openid=openid)


def unbind_employee(session: Session, *, company_id: str, employee_id: str, actor: str, reason: str,
                    meta: RequestMeta) -> WechatBindingEvent:
    """HR removes the WeChat binding (lost phone, new WeChat account); the employee's sessions end."""
    emp = session.scalar(select(Employee).where(Employee.id == employee_id, Employee.company_id == company_id))
    if emp is None:
        raise NotFound("employee_not_found", "Employee not found")
    if not emp.wechat_openid:
        raise Conflict("employee_not_bound", "This employee has no WeChat binding")
    openid = emp.wechat_openid
    emp.wechat_openid = None
    revoke_employee_sessions(session, emp.id)
    session.flush()
    return _record_binding(session, emp, "unbind", openid, actor=actor, reason=reason, meta=meta, extra={})


def _record_binding(session: Session, emp: Employee, action: str, openid: str, *, actor: str, reason: str,
                    meta: RequestMeta, extra: dict[str, Any]) -> WechatBindingEvent:
    event = WechatBindingEvent(company_id=emp.company_id, employee_id=emp.id, action=action, openid=openid,
                               actor=actor, reason=reason[:500], ip=meta.ip[:64], user_agent=meta.user_agent[:500])
    session.add(event)
    session.flush()
    payload = {"employee_id": emp.id, "openid": openid, "reason": reason, **meta.as_evidence(), **extra}
    payload["openid"] = openid
    for case in session.scalars(select(ResignationCase).where(ResignationCase.employee_id == emp.id,
                                                              ResignationCase.company_id == emp.company_id)):
        append_evidence(session, case, actor, EvidenceKind(f"wechat_{action}"), payload)
    return event


# -- signing factor -------------------------------------------------------------------------
def send_sign_code(session: Session, rt: Runtime, *, company_id: str, employee_id: str, case_id: str,
                   meta: RequestMeta) -> SmsCodeSent:
    """Send a ``sign`` code to the roster phone of the employee who owns ``case_id``."""
    from qianli.services.identity_trust import assert_ready_to_sign

    emp = get_employee(session, employee_id, company_id)
    case = get_employee_case(session, case_id, employee_id=employee_id, company_id=company_id)
    assert_ready_to_sign(session, rt, emp, factors=("phone", "wechat"))  # before spending an SMS
    sent = rt.sms_codes.send(employee_phone(rt, emp), "sign", ip=meta.ip or None, openid=meta.openid,
                              employee_id=emp.id)
    append_evidence(session, case, f"employee:{emp.id}", EvidenceKind.SMS_CODE_SENT, {
        "purpose": "sign", "phone": sent.phone_masked, "provider": sent.provider, "message_id": sent.message_id,
        "expires_in_s": sent.expires_in_s, **meta.as_evidence()})
    return sent


def verify_sign_code(session: Session, rt: Runtime, *, company_id: str, employee_id: str, case_id: str, code: str,
                     meta: RequestMeta) -> SmsCodeVerified:
    """Spend a ``sign`` code; on success record the SMS factor for the signing intent."""
    emp = get_employee(session, employee_id, company_id)
    case = get_employee_case(session, case_id, employee_id=employee_id, company_id=company_id)
    verified = rt.sms_codes.verify(employee_phone(rt, emp), "sign", code)
    evidence = {"purpose": "sign", "phone": verified.phone_masked, "verified_at": verified.verified_at,
                **meta.as_evidence()}
    append_evidence(session, case, f"employee:{emp.id}", EvidenceKind.SMS_CODE_VERIFIED, evidence)
    _record_sms_factor(rt, emp.id, case.id, evidence)
    return verified


def _record_sms_factor(rt: Runtime, employee_id: str, case_id: str, evidence: dict[str, Any]) -> None:
    """Hand the passed factor to the signing-intent module (identity.intent, the face half)."""
    intent.record_factor(rt.redis, employee_id, case_id, "sms", evidence)
