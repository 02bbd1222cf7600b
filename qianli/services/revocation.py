"""Access revocation and payroll stop at the end of employment, and the systems' confirmations (权限验证).

* :func:`schedule_access_revoke` (at final approval; h15c/h16b for other departures) schedules the
  revocation for 23:59 Asia/Shanghai of the last day. The scheduler's :func:`sweep` sends every due
  one (a sweep finds due rows in the database: nothing depends on a far-future job surviving in
  Redis). :func:`revoke_access_now` sends it at once when HR says so (``revokeAccessNow``).
* Sending publishes ``employee.access_revoke`` and ``employee.payroll_stop`` through the outbox. Each
  endpoint subscribed to the revocation is a *system* expected to confirm: its copy of the event
  carries a confirmation URL and a token (an HMAC of the confirmation's id under the server key;
  never stored, never shown to HR). The receiver calls ``confirmAccessRevocation`` with it, once per
  system, idempotently; it may also report further systems behind it. When WeCom is connected and
  the employee has a ``wecom_userid``, the member is disabled through the WeCom API, recorded as the
  confirmation of system ``wecom``.
* A system that has not confirmed ``QIANLI_REVOCATION_CONFIRM_DEADLINE_S`` after the send raises an
  HR alert (once). Everything is in the case's evidence (view ``access``).
* :func:`publish_case_approved` defines that event's payload (``case.closed`` is close_case's, in
  qianli.services.closing).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from cases.approval import default_last_day
from cases.errors import Conflict, InvalidInput, NotFound, Unauthorized
from cases.evidence_kinds import EvidenceKind
from cases.states import CaseState
from qianli.db import on_commit, run_in_transaction, utcnow
from qianli.models import (AccessRevocation, Employee, OutboxEvent, ResignationCase, RevocationConfirmation,
                           WebhookEndpoint)
from qianli.runtime import Runtime
from qianli.services import webhooks
from qianli.services.alerts import raise_alert
from qianli.services.events import publish
from qianli.services.evidence import append_evidence
from qianli.settings import Settings

__all__ = ["revoke_time", "case_last_day", "employee_summary", "schedule_access_revoke", "cancel_access_revoke",
           "revoke_access_now", "confirm_revocation", "confirmation_token", "case_access_status", "sweep",
           "run_wecom_disable", "publish_case_approved", "RevocationSweepResult",
           "WECOM_SYSTEM", "CONFIRM_PATH"]

log = logging.getLogger(__name__)

SHANGHAI = ZoneInfo("Asia/Shanghai")
WECOM_SYSTEM = "wecom"
CONFIRM_PATH = "/api/v1/access-revocations/confirm"
WECOM_QUEUE = webhooks.QUEUE
WECOM_FUNC = "jobs.webhooks.disable_wecom_member"
MAX_DETAIL = 500


def revoke_time(last_day: date) -> datetime:
    """23:59 Asia/Shanghai of ``last_day``, in UTC."""
    return datetime.combine(last_day, time(23, 59), tzinfo=SHANGHAI).astimezone(ZoneInfo("UTC"))


def case_last_day(case: ResignationCase) -> date:
    """The agreed last day, else the later of the requested and the lawful one."""
    return case.agreed_last_day or default_last_day(case.requested_last_day, case.earliest_lawful_last_day)


def employee_summary(employee: Employee) -> dict[str, Any]:
    """Who, as the company's systems know them (no phone or ID number in events)."""
    return {"id": employee.id, "employee_no": employee.employee_no, "name": employee.name,
            "department": employee.department, "position": employee.position,
            "wecom_userid": employee.wecom_userid}


def _case_data(case: ResignationCase, employee: Employee) -> dict[str, Any]:
    return {"case_id": case.id, "departure_type": getattr(case, "departure_type", "resignation"),
            "employee": employee_summary(employee), "last_day": case_last_day(case).isoformat()}


# ---- events of the case -------------------------------------------------------------------------------

def publish_case_approved(session: Session, case: ResignationCase, *, approved_by: str) -> OutboxEvent:
    """``case.approved``: the case, the employee, the last day, who approved (final approval)."""
    employee = session.get(Employee, case.employee_id)
    return publish(session, company_id=case.company_id, event_type="case.approved", case_id=case.id,
                   employee_id=employee.id, data={**_case_data(case, employee), "approved_by": approved_by,
                                                  "approved_at": utcnow().isoformat()})


# ---- scheduling -----------------------------------------------------------------------------------------

def _revocation(session: Session, case: ResignationCase, *, for_update: bool = False) -> AccessRevocation | None:
    q = select(AccessRevocation).where(AccessRevocation.case_id == case.id,
                                       AccessRevocation.company_id == case.company_id)
    return session.scalar(q.with_for_update() if for_update else q)


def schedule_access_revoke(session: Session, case: ResignationCase, *, last_day: date | None = None,
                           actor: str = "system") -> AccessRevocation:
    """Schedule (or move) the case's revocation to 23:59 Asia/Shanghai of its last day. A revocation
    already sent stays as it is."""
    day = last_day or case_last_day(case)
    rev = _revocation(session, case, for_update=True)
    if rev is not None and rev.status == "sent":
        return rev
    due = revoke_time(day)
    if rev is None:
        rev = AccessRevocation(company_id=case.company_id, case_id=case.id, employee_id=case.employee_id,
                               last_day=day, due_at=due, status="scheduled", mode="scheduled", requested_by=actor)
        session.add(rev)
    elif rev.status == "scheduled" and rev.last_day == day:
        return rev
    else:
        rev.last_day, rev.due_at, rev.status, rev.mode, rev.cancelled_at = day, due, "scheduled", "scheduled", None
    session.flush()
    append_evidence(session, case, actor, EvidenceKind.ACCESS_REVOKE_SCHEDULED, {
        "revocation_id": rev.id, "last_day": day.isoformat(), "due_at": due.isoformat(),
        "timezone": "Asia/Shanghai", "at": "23:59"})
    return rev


def cancel_access_revoke(session: Session, case: ResignationCase, *, actor: str, reason: str) -> AccessRevocation | None:
    """Cancel a scheduled revocation (the case was withdrawn or the departure called off), visibly."""
    rev = _revocation(session, case, for_update=True)
    if rev is None or rev.status != "scheduled":
        return rev
    rev.status, rev.cancelled_at = "cancelled", utcnow()
    session.flush()
    append_evidence(session, case, actor, EvidenceKind.ACCESS_REVOKE_CANCELLED,
                    {"revocation_id": rev.id, "reason": reason[:MAX_DETAIL]})
    return rev


def revoke_access_now(session: Session, rt: Runtime, case: ResignationCase, *, actor: str,
                      reason: str = "") -> AccessRevocation:
    """Send the revocation at once (HR's decision, e.g. a dismissal or a security concern)."""
    reason = (reason or "").strip()
    if len(reason) > MAX_DETAIL:
        raise InvalidInput("reason_too_long", f"原因不能超过 {MAX_DETAIL} 个字")
    if case.state == CaseState.WITHDRAWN.value:
        raise Conflict("case_withdrawn", "该离职申请已撤回，不能回收权限", details={"state": case.state})
    rev = _revocation(session, case, for_update=True)
    if rev is not None and rev.status == "sent":
        raise Conflict("access_already_revoked", "已通知各系统回收权限",
                       details={"sent_at": rev.sent_at.isoformat() if rev.sent_at else None})
    now = utcnow()
    if rev is None:
        rev = AccessRevocation(company_id=case.company_id, case_id=case.id, employee_id=case.employee_id,
                               last_day=case_last_day(case), due_at=now, requested_by=actor)
        session.add(rev)
    rev.due_at, rev.mode, rev.reason, rev.requested_by, rev.status = now, "immediate", reason, actor, "scheduled"
    session.flush()
    _send(session, rt, rev, case, actor=actor)
    return rev


# ---- sending ------------------------------------------------------------------------------------------------

def confirmation_token(settings: Settings, confirmation_id: str) -> str:
    mac = hmac.new(settings.secret_key.encode(), f"revocation-confirm:{confirmation_id}".encode(), hashlib.sha256)
    return f"{confirmation_id}.{base64.urlsafe_b64encode(mac.digest()).decode().rstrip('=')}"


def _confirmation_for_endpoint(rt_settings: Settings):
    def augment(session: Session, event: OutboxEvent, endpoint: WebhookEndpoint) -> dict[str, Any]:
        revocation_id = (event.data or {}).get("revocation_id")
        rev = session.get(AccessRevocation, revocation_id) if revocation_id else None
        if rev is None:
            return {}
        conf = session.scalar(select(RevocationConfirmation).where(
            RevocationConfirmation.revocation_id == rev.id, RevocationConfirmation.system == endpoint.name))
        if conf is None:
            conf = RevocationConfirmation(company_id=rev.company_id, revocation_id=rev.id, case_id=rev.case_id,
                                          system=endpoint.name, endpoint_id=endpoint.id, expected=True)
            session.add(conf)
            session.flush()
        deadline = (rev.sent_at or utcnow()) + timedelta(seconds=rt_settings.revocation_confirm_deadline_s)
        return {"confirmation": {"url": rt_settings.public_base_url.rstrip("/") + CONFIRM_PATH,
                                 "token": confirmation_token(rt_settings, conf.id), "system": endpoint.name,
                                 "deadline": deadline.isoformat()}}
    return augment


def _register(settings: Settings) -> None:
    webhooks.PER_ENDPOINT["employee.access_revoke"] = _confirmation_for_endpoint(settings)


def _send(session: Session, rt: Runtime, rev: AccessRevocation, case: ResignationCase, *, actor: str) -> None:
    _register(rt.settings)
    employee = session.get(Employee, case.employee_id)
    rev.status, rev.sent_at = "sent", utcnow()
    session.flush()
    data = {**_case_data(case, employee), "last_day": rev.last_day.isoformat(), "revocation_id": rev.id,
            "mode": rev.mode, "reason": rev.reason, "effective_at": rev.due_at.isoformat()}
    publish(session, company_id=case.company_id, event_type="employee.access_revoke", case_id=case.id,
            employee_id=employee.id, data=data)
    publish(session, company_id=case.company_id, event_type="employee.payroll_stop", case_id=case.id,
            employee_id=employee.id, data={**_case_data(case, employee), "last_day": rev.last_day.isoformat(),
                                           "pay_through": rev.last_day.isoformat(), "revocation_id": rev.id})
    wecom_conf = None
    if rt.wecom is not None and employee.wecom_userid:
        wecom_conf = RevocationConfirmation(company_id=case.company_id, revocation_id=rev.id, case_id=case.id,
                                            system=WECOM_SYSTEM, endpoint_id=None, expected=True)
        session.add(wecom_conf)
        session.flush()
        conf_id = wecom_conf.id
        on_commit(session, lambda: _enqueue_wecom(rt, conf_id))
    systems = [c.system for c in session.scalars(select(RevocationConfirmation).where(
        RevocationConfirmation.revocation_id == rev.id).order_by(RevocationConfirmation.system))]
    append_evidence(session, case, actor, EvidenceKind.ACCESS_REVOKE_SENT, {
        "revocation_id": rev.id, "mode": rev.mode, "reason": rev.reason, "last_day": rev.last_day.isoformat(),
        "systems_expected_to_confirm": systems,
        "wecom": "disable requested" if wecom_conf else ("no wecom_userid" if rt.wecom else "not connected")})
    append_evidence(session, case, actor, EvidenceKind.PAYROLL_STOP_SENT, {
        "revocation_id": rev.id, "pay_through": rev.last_day.isoformat()})


def _enqueue_wecom(rt: Runtime, confirmation_id: str, attempt: int = 1, at: datetime | None = None) -> None:
    from rq import Queue

    try:
        q = Queue(WECOM_QUEUE, connection=rt.redis)
        kwargs: dict[str, Any] = {"job_id": f"wecom-disable-{confirmation_id}-{attempt}", "result_ttl": 3600,
                                  "failure_ttl": 7 * 86400}
        if at is None:
            q.enqueue(WECOM_FUNC, confirmation_id, attempt, **kwargs)
        else:
            q.enqueue_at(at, WECOM_FUNC, confirmation_id, attempt, **kwargs)
    except Exception:  # noqa: BLE001 - the unconfirmed alert tells HR if it never runs
        log.exception("enqueueing the WeCom disable of confirmation %s failed", confirmation_id)


def run_wecom_disable(rt: Runtime, confirmation_id: str, attempt: int = 1) -> str:
    """Disable the employee's WeCom member (the job's body). Retryable errors are retried on the
    webhook schedule; the outcome is the confirmation of system ``wecom``."""
    from qianli.integrations.wecom import WeComApiError

    def load(s: Session) -> str | None:
        conf = s.get(RevocationConfirmation, confirmation_id)
        if conf is None or conf.status == "confirmed":
            return None
        return s.get(Employee, s.get(AccessRevocation, conf.revocation_id).employee_id).wecom_userid

    userid = run_in_transaction(rt.session_factory, load)
    if not userid or rt.wecom is None:
        return "skipped"
    error: WeComApiError | None = None
    try:
        rt.wecom.disable_member(userid)
    except WeComApiError as exc:
        error = exc
    delays = rt.settings.webhook_retry_delays()

    def record(s: Session) -> str:
        conf = s.get(RevocationConfirmation, confirmation_id, with_for_update=True)
        case = s.get(ResignationCase, conf.case_id)
        if error is None:
            conf.status, conf.confirmed_at, conf.confirmed_via = "confirmed", utcnow(), "wecom_api"
            conf.detail = f"user/update enable=0 for {userid}"
            s.flush()
            append_evidence(s, case, "system", EvidenceKind.ACCESS_REVOKE_CONFIRMED, {
                "confirmation_id": conf.id, "system": WECOM_SYSTEM, "via": "wecom_api", "wecom_userid": userid,
                "attempt": attempt})
            return "confirmed"
        if error.is_retryable and attempt <= len(delays):
            at = utcnow() + timedelta(seconds=delays[attempt - 1])
            on_commit(s, lambda: _enqueue_wecom(rt, confirmation_id, attempt + 1, at))
            conf.detail = f"attempt {attempt}: {error}"[:MAX_DETAIL]
            s.flush()
            return "retrying"
        conf.status, conf.detail = "failed", str(error)[:MAX_DETAIL]
        s.flush()
        append_evidence(s, case, "system", EvidenceKind.ACCESS_REVOKE_FAILED, {
            "confirmation_id": conf.id, "system": WECOM_SYSTEM, "errcode": error.errcode, "errmsg": error.errmsg,
            "attempts": attempt})
        raise_alert(s, company_id=conf.company_id, kind="wecom_failed", case_id=case.id, employee_id=case.employee_id,
                    message=f"企业微信账号停用失败（{error.errcode} {error.errmsg}），请手动停用并核实",
                    payload={"confirmation_id": conf.id, "errcode": error.errcode})
        return "failed"

    return run_in_transaction(rt.session_factory, record)


# ---- confirmations ---------------------------------------------------------------------------------------------

def _clean(text: Any, limit: int) -> str:
    """Printable text only (no control characters, no lone surrogates), at most ``limit`` characters."""
    raw = "".join(ch for ch in str(text or "") if ch.isprintable())
    return raw.encode("utf-8", "ignore").decode("utf-8")[:limit].strip()


@dataclass(frozen=True)
class ConfirmResult:
    confirmation: RevocationConfirmation
    changed: bool


def confirm_revocation(session: Session, settings: Settings, *, token: str, result: str = "revoked",
                       detail: str = "", systems: list[dict[str, str]] | None = None,
                       source: str = "") -> ConfirmResult:
    """A receiver confirms (or reports the failure of) the revocation in its system, authenticated by
    the token of its copy of the event. Idempotent: the same confirmation again changes nothing."""
    if result not in ("revoked", "failed"):
        raise InvalidInput("confirmation_result_invalid", "result must be revoked or failed")
    conf_id, _, _ = (token or "").partition(".")
    if not conf_id or len(token) > 200 or not token.isascii() \
            or not hmac.compare_digest(confirmation_token(settings, conf_id), token):
        raise Unauthorized("confirmation_token_invalid", "confirmation token is invalid")
    conf = session.get(RevocationConfirmation, conf_id, with_for_update=True)
    if conf is None:
        raise Unauthorized("confirmation_token_invalid", "confirmation token is invalid")
    case = session.get(ResignationCase, conf.case_id)
    via = _clean(f"callback:{source}", 120)
    changed = _apply(session, case, conf, result, _clean(detail, MAX_DETAIL), via)
    for extra in systems or []:
        name = _clean(extra.get("system", ""), 100)
        if not name or name == conf.system:
            continue
        sub = session.scalar(select(RevocationConfirmation).where(
            RevocationConfirmation.revocation_id == conf.revocation_id, RevocationConfirmation.system == name))
        if sub is None:
            sub = RevocationConfirmation(company_id=conf.company_id, revocation_id=conf.revocation_id,
                                         case_id=conf.case_id, system=name, endpoint_id=conf.endpoint_id,
                                         expected=False)
            session.add(sub)
            session.flush()
        elif sub.endpoint_id != conf.endpoint_id:
            continue  # another receiver's system: not this token's to confirm
        changed |= _apply(session, case, sub, str(extra.get("result", "revoked")),
                          _clean(extra.get("detail", ""), MAX_DETAIL), via)
    return ConfirmResult(conf, changed)


def _apply(session: Session, case: ResignationCase, conf: RevocationConfirmation, result: str, detail: str,
           via: str) -> bool:
    if result not in ("revoked", "failed"):
        raise InvalidInput("confirmation_result_invalid", "result must be revoked or failed")
    detail = (detail or "")[:MAX_DETAIL]
    if conf.status == "confirmed":
        if result == "failed":
            raise Conflict("revocation_already_confirmed", "this system already confirmed the revocation",
                           details={"system": conf.system, "confirmed_at": conf.confirmed_at.isoformat()})
        return False
    if result == "failed" and conf.status == "failed" and conf.detail == detail:
        return False
    if result == "revoked":
        conf.status, conf.confirmed_at, conf.confirmed_via, conf.detail = "confirmed", utcnow(), via, detail
        session.flush()
        append_evidence(session, case, f"system:{conf.system}"[:120], EvidenceKind.ACCESS_REVOKE_CONFIRMED, {
            "confirmation_id": conf.id, "system": conf.system, "via": via, "detail": detail})
        return True
    conf.status, conf.detail, conf.confirmed_via = "failed", detail, via
    session.flush()
    append_evidence(session, case, f"system:{conf.system}"[:120], EvidenceKind.ACCESS_REVOKE_FAILED, {
        "confirmation_id": conf.id, "system": conf.system, "via": via, "detail": detail})
    raise_alert(session, company_id=conf.company_id, kind="revocation_unconfirmed", case_id=case.id,
                employee_id=case.employee_id, message=f"系统「{conf.system}」报告权限回收失败：{detail or '未说明原因'}",
                payload={"confirmation_id": conf.id, "system": conf.system})
    return True


def case_access_status(session: Session, case: ResignationCase) -> dict[str, Any]:
    """What HR sees: the revocation and, per system, confirmed or not."""
    rev = _revocation(session, case)
    confs = [] if rev is None else list(session.scalars(select(RevocationConfirmation).where(
        RevocationConfirmation.revocation_id == rev.id).order_by(RevocationConfirmation.created_at,
                                                                 RevocationConfirmation.system)))
    return {"revocation": rev, "confirmations": confs,
            "all_confirmed": bool(confs) and all(c.status == "confirmed" for c in confs if c.expected)}


def get_case_revocation_or_404(session: Session, case: ResignationCase) -> AccessRevocation:
    rev = _revocation(session, case)
    if rev is None:
        raise NotFound("access_revocation_not_found", "该案件尚未安排权限回收")
    return rev


# ---- the sweep ------------------------------------------------------------------------------------------------

@dataclass
class RevocationSweepResult:
    sent: int = 0
    cancelled: int = 0
    alerted: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"sent": self.sent, "cancelled": self.cancelled, "alerted": self.alerted}


def sweep(rt: Runtime, *, limit: int = 200) -> RevocationSweepResult:
    """Send due revocations (one transaction each) and alert HR about systems that did not confirm in time."""
    res = RevocationSweepResult()
    now = utcnow()

    def due(s: Session) -> list[str]:
        return list(s.scalars(select(AccessRevocation.id).where(AccessRevocation.status == "scheduled",
                                                                AccessRevocation.due_at <= now)
                              .order_by(AccessRevocation.due_at).limit(limit)))

    for rev_id in run_in_transaction(rt.session_factory, due):
        def send_one(s: Session, rev_id: str = rev_id) -> str:
            rev = s.scalar(select(AccessRevocation).where(AccessRevocation.id == rev_id).with_for_update())
            if rev is None or rev.status != "scheduled" or rev.due_at > now:
                return "skip"
            case = s.get(ResignationCase, rev.case_id)
            if case.state == CaseState.WITHDRAWN.value:
                cancel_access_revoke(s, case, actor="system", reason="case withdrawn")
                return "cancelled"
            _send(s, rt, rev, case, actor="system")
            return "sent"

        try:
            outcome = run_in_transaction(rt.session_factory, send_one)
        except Exception:  # noqa: BLE001 - one bad case must not stop the others; the next round retries
            log.exception("sending access revocation %s failed", rev_id)
            continue
        res.sent += outcome == "sent"
        res.cancelled += outcome == "cancelled"

    cutoff = now - timedelta(seconds=rt.settings.revocation_confirm_deadline_s)

    def overdue(s: Session) -> int:
        rows = list(s.execute(
            select(RevocationConfirmation, AccessRevocation)
            .join(AccessRevocation, AccessRevocation.id == RevocationConfirmation.revocation_id)
            .where(RevocationConfirmation.status == "pending", RevocationConfirmation.expected.is_(True),
                   RevocationConfirmation.alerted_at.is_(None), AccessRevocation.sent_at <= cutoff)
            .limit(limit)).all())
        for conf, rev in rows:
            conf.alerted_at = now
            case = s.get(ResignationCase, conf.case_id)
            raise_alert(s, company_id=conf.company_id, kind="revocation_unconfirmed", case_id=case.id,
                        employee_id=case.employee_id,
                        message=f"系统「{conf.system}」在期限内未确认已回收权限，请核实（权限验证）",
                        payload={"confirmation_id": conf.id, "system": conf.system,
                                 "sent_at": rev.sent_at.isoformat()})
        return len(rows)

    res.alerted = run_in_transaction(rt.session_factory, overdue)
    return res
