"""Identity factors the employer cannot quietly replace: phone changes, WeChat rebinding, face provenance.

The employer keeps the roster, so an HR account could otherwise put its own phone on an employee,
unbind their WeChat, bind its own, upload its own photo and sign in the employee's name. Here:

- **A phone change** (roster re-import over HTTP or the CLI, ``changeEmployeePhone``) is an
  :class:`~qianli.models.IdentityChange`: recorded in the employee's identity history, refused
  while a case is open (``409 phone_change_case_open``), announced by SMS to the *old* number and
  by subscribe message to the WeChat bound at the time, and usable for signing only once the
  employee confirms it from that WeChat, or after ``QIANLI_IDENTITY_COOLING_DAYS`` (default 7)
  without objection. An objection blocks it for good (HR must change it again, which starts over).
- **Rebinding after an HR unbind** gets the same treatment: announced to the roster phone and the
  WeChat that was unbound (which may object), usable after the same period.
- **The face reference** counts at once when the employee made it (self-enrolment with liveness
  in the mini-program, or a certified real-name provider). An HR-uploaded photo is "provided by
  the employer": it counts only after the employee confirms it from a settled binding.

:func:`signing_blockers` is the gate the signing path checks; :func:`factor_provenance` is what
each signature's evidence records; :func:`dossier_identity` is what the dossier shows, including
every change in the 30 days before a signing.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from cases.clock import beijing_text
from cases.errors import Conflict, NotFound
from cases.evidence_kinds import EvidenceKind
from cases.states import ANY_OPEN_STATES
from identity.sms import mask_phone
from qianli.crypto import normalize_phone
from qianli.db import on_commit, session_scope, utcnow
from qianli.models import (Company, Employee, EvidenceEntry, FaceEnrolment, IdentityChange, ResignationCase,
                           WechatBindingEvent)
from qianli.runtime import Runtime
from qianli.services.alerts import raise_alert
from qianli.services.employees import PHONE_RE, employee_phone, set_personal_data
from qianli.services.evidence import RequestMeta, append_evidence

__all__ = ["EMPLOYER_FACE_SOURCES", "FACE_SOURCE_LABELS", "RECENT_DAYS", "change_phone", "record_rebind",
           "record_face_reference", "confirm_employer_face", "answer_change", "list_changes", "change_status",
           "signing_blockers", "assert_ready_to_sign", "assert_binding_settled", "factor_provenance",
           "dossier_identity", "mask_openid", "open_cases"]

log = logging.getLogger(__name__)

EMPLOYER_FACE_SOURCES = ("hr_upload", "roster_import")
FACE_SOURCE_LABELS = {
    "self_capture": "员工本人在小程序中拍摄（活体检测）",
    "faceid_tencent": "腾讯云人脸核身（公安实名认证）",
    "hr_upload": "用人单位提供（HR 上传）",
    "roster_import": "用人单位提供（花名册导入）",
}
EMPLOYER_LABEL = "provided by the employer"
RECENT_DAYS = 30
_FACTOR_ZH = {"phone": "手机号", "wechat": "微信绑定", "face": "人脸参考"}


def mask_openid(openid: str | None) -> str:
    return f"…{openid[-6:]}" if openid else ""


def open_cases(session: Session, emp: Employee) -> list[ResignationCase]:
    return list(session.scalars(select(ResignationCase).where(
        ResignationCase.company_id == emp.company_id, ResignationCase.employee_id == emp.id,
        ResignationCase.state.in_([s.value for s in ANY_OPEN_STATES])).order_by(ResignationCase.created_at)))


def _cooling(rt: Runtime) -> timedelta:
    return timedelta(days=rt.settings.identity_cooling_days)


def change_status(ch: IdentityChange, now: datetime | None = None) -> str:
    """``objected``, ``confirmed``, ``cooled`` (the period passed without objection) or ``pending``."""
    now = now or utcnow()
    if ch.objected_at is not None:
        return "objected"
    if ch.confirmed_at is not None:
        return "confirmed"
    if ch.usable_from is not None and now >= ch.usable_from:
        return "cooled"
    return "pending"


def _change_payload(ch: IdentityChange) -> dict[str, Any]:
    return {"change_id": ch.id, "factor": ch.factor, "source": ch.source, "old": ch.old_value, "new": ch.new_value,
            "reason": ch.reason, "usable_from": ch.usable_from.isoformat() if ch.usable_from else None,
            "notify_openid": mask_openid(ch.notify_openid), "notices": list(ch.notices or [])}


def _evidence_on_open_cases(session: Session, emp: Employee, actor: str, action: EvidenceKind,
                            payload: dict[str, Any]) -> None:
    for case in open_cases(session, emp):
        append_evidence(session, case, actor, action, payload)


def _new_change(session: Session, emp: Employee, *, factor: str, source: str, actor: str, old: str, new: str,
                reason: str, notify_openid: str | None, usable_from: datetime | None, meta: RequestMeta | None,
                notices: list[dict[str, Any]]) -> IdentityChange:
    ch = IdentityChange(company_id=emp.company_id, employee_id=emp.id, factor=factor, source=source, actor=actor[:120],
                        old_value=old[:64], new_value=new[:64], reason=(reason or "")[:500],
                        ip=(meta.ip if meta else "")[:64], user_agent=(meta.user_agent if meta else "")[:500],
                        notify_openid=notify_openid, notices=notices, usable_from=usable_from, created_at=utcnow())
    session.add(ch)
    session.flush()
    return ch


# ---- notices (after commit; a failed notice is logged and recorded on the change) -------------------

def _announce(session: Session, rt: Runtime, emp: Employee, ch: IdentityChange, *, sms_phone: str | None,
              openid: str | None, text: str) -> None:
    """Send the notice once the change is committed: SMS (the 'reminder' template: name + text) and a
    subscribe message when a template is configured. Outcomes are written back on the change."""
    change_id, name = ch.id, emp.name

    def send() -> None:
        from identity.sms import SmsGatewayError
        from identity.wechat import WeChatApiError

        results: list[dict[str, Any]] = []
        if sms_phone:
            try:
                sent = rt.sms_gateway.send(sms_phone, "reminder", {"name": name, "text": text})
                results.append({"channel": "sms", "to": mask_phone(sms_phone), "result": "sent",
                                "provider": sent.provider, "message_id": sent.message_id})
            except SmsGatewayError as exc:
                log.warning("identity notice SMS failed for change %s: %s", change_id, exc)
                results.append({"channel": "sms", "to": mask_phone(sms_phone), "result": "failed",
                                "error": exc.code})
        s = rt.settings
        if openid and s.wechat_subscribe_template_id:
            data = {"thing1": "身份信息变更提醒", "date2": utcnow().date().isoformat(),
                    "thing3": "如非本人操作请在小程序内反对"}
            try:
                msg_id = rt.wechat.send_subscribe_message(openid, s.wechat_subscribe_template_id,
                                                                  "pages/identity/changes", data,
                                                                  s.wechat_miniprogram_state)
                results.append({"channel": "wechat", "to": mask_openid(openid), "result": "sent",
                                "message_id": str(msg_id)})
            except WeChatApiError as exc:
                log.warning("identity notice WeChat message failed for change %s: %s", change_id, exc)
                results.append({"channel": "wechat", "to": mask_openid(openid), "result": "failed",
                                "error": str(exc.errcode)})
        elif openid:
            results.append({"channel": "wechat", "to": mask_openid(openid), "result": "not_configured",
                            "note": "QIANLI_WECHAT_SUBSCRIBE_TEMPLATE_ID is empty; shown in the mini-program only"})
        try:
            with session_scope(rt.session_factory) as s2:
                row = s2.get(IdentityChange, change_id)
                if row is not None:
                    row.notice_results = results
        except Exception:  # noqa: BLE001 - the notice went out; failing to note it must not break anything
            log.exception("could not record the notices of identity change %s", change_id)

    on_commit(session, send)


def _when(dt: datetime) -> str:
    return beijing_text(dt)[:16]


# ---- phone ------------------------------------------------------------------------------------------

def change_phone(session: Session, rt: Runtime, emp: Employee, new_phone: str, *, actor: str, source: str,
                 reason: str = "", meta: RequestMeta | None = None) -> IdentityChange | None:
    """Change the roster phone as an identity event (see the module docstring). None if unchanged."""
    new_phone = normalize_phone(new_phone or "")
    if not PHONE_RE.match(new_phone):
        from cases.errors import InvalidInput

        raise InvalidInput("invalid_phone", "手机号格式不正确")
    old_phone = employee_phone(rt, emp)
    if old_phone == new_phone:
        return None
    cases = open_cases(session, emp)
    if cases:
        raise Conflict("phone_change_case_open", "该员工有进行中的离职申请，手机号是签署要素，办结前不能更改",
                       details={"case_ids": [c.id for c in cases], "employee_no": emp.employee_no})
    taken = session.scalar(select(Employee.employee_no).where(
        Employee.company_id == emp.company_id, Employee.phone_hash == rt.lookup("phone", new_phone),
        Employee.id != emp.id))
    if taken:
        raise Conflict("phone_taken", f"手机号已属于员工 {taken}", details={"employee_no": taken})
    set_personal_data(rt, emp, phone=new_phone)
    now = utcnow()
    ch = _new_change(session, emp, factor="phone", source=source, actor=actor, old=mask_phone(old_phone),
                     new=mask_phone(new_phone), reason=reason, notify_openid=emp.wechat_openid,
                     usable_from=now + _cooling(rt), meta=meta,
                     notices=[{"channel": "sms", "to": mask_phone(old_phone)}]
                     + ([{"channel": "wechat", "to": mask_openid(emp.wechat_openid)}] if emp.wechat_openid else []))
    company = session.get(Company, emp.company_id)
    days = rt.settings.identity_cooling_days
    text = (f"{company.name}于{_when(now)}将您登记的手机号由{mask_phone(old_phone)}改为{mask_phone(new_phone)}。"
            f"如非您本人要求，请在签离小程序“身份变更”中提出异议；{days}天内无异议或经您确认后，新号码才能用于签署。")
    _announce(session, rt, emp, ch, sms_phone=old_phone, openid=emp.wechat_openid, text=text)
    _evidence_on_open_cases(session, emp, actor, EvidenceKind.IDENTITY_PHONE_CHANGED, _change_payload(ch))
    return ch


# ---- WeChat -----------------------------------------------------------------------------------------

def record_rebind(session: Session, rt: Runtime, emp: Employee, openid: str, *, meta: RequestMeta | None = None) -> IdentityChange | None:
    """A bind after an HR unbind: announced to the roster phone and the unbound WeChat, cooling period."""
    unbind = session.scalar(select(WechatBindingEvent).where(
        WechatBindingEvent.company_id == emp.company_id, WechatBindingEvent.employee_id == emp.id,
        WechatBindingEvent.action == "unbind").order_by(WechatBindingEvent.id.desc()).limit(1))
    if unbind is None:
        return None
    now = utcnow()
    phone = employee_phone(rt, emp)
    ch = _new_change(session, emp, factor="wechat", source="rebind", actor=f"wechat:{openid}",
                     old=mask_openid(unbind.openid), new=mask_openid(openid),
                     reason=f"unbound by {unbind.actor} at {unbind.occurred_at.isoformat()}: {unbind.reason}"[:500],
                     notify_openid=unbind.openid, usable_from=now + _cooling(rt), meta=meta,
                     notices=[{"channel": "sms", "to": mask_phone(phone)},
                              {"channel": "wechat", "to": mask_openid(unbind.openid)}])
    company = session.get(Company, emp.company_id)
    days = rt.settings.identity_cooling_days
    text = (f"您在{company.name}的签离账号于{_when(now)}绑定了新的微信（此前的绑定由 HR 解除）。"
            f"如非您本人操作，请用原微信在签离小程序“身份变更”中提出异议；{days}天内无异议后，新微信才能用于签署。")
    _announce(session, rt, emp, ch, sms_phone=phone, openid=unbind.openid, text=text)
    _evidence_on_open_cases(session, emp, f"wechat:{openid}", EvidenceKind.IDENTITY_WECHAT_REBOUND, _change_payload(ch))
    return ch


# ---- face -------------------------------------------------------------------------------------------

def record_face_reference(session: Session, emp: Employee, enrolment: FaceEnrolment, *, actor: str,
                          meta: RequestMeta | None = None) -> IdentityChange:
    """The identity-history row of a new face reference: the employee's own (usable at once) or the
    employer's (usable after the employee confirms it)."""
    employer = enrolment.source in EMPLOYER_FACE_SOURCES
    return _new_change(session, emp, factor="face", source=enrolment.source, actor=actor, old="",
                       new=f"v{enrolment.version}:{enrolment.photo_sha256[:12]}",
                       reason=EMPLOYER_LABEL if employer else "", notify_openid=emp.wechat_openid if employer else None,
                       usable_from=None if employer else utcnow(), meta=meta, notices=[])


def confirm_employer_face(session: Session, emp: Employee, enrolment: FaceEnrolment, *, actor: str,
                          accept: bool) -> IdentityChange | None:
    """Mark the latest face change confirmed (accept) or objected (reject) by the employee."""
    ch = session.scalar(select(IdentityChange).where(
        IdentityChange.company_id == emp.company_id, IdentityChange.employee_id == emp.id,
        IdentityChange.factor == "face").order_by(IdentityChange.created_at.desc(), IdentityChange.id.desc()).limit(1))
    if ch is None:
        return None
    now = utcnow()
    if accept:
        ch.confirmed_at, ch.confirmed_by = now, actor
    else:
        ch.objected_at, ch.objected_by, ch.objection = now, actor, "员工不认可用人单位提供的人脸照片"
    session.flush()
    return ch


# ---- the employee's answers -------------------------------------------------------------------------

def list_changes(session: Session, *, openid: str | None, employee_id: str | None = None,
                 company_id: str | None = None, limit: int = 50) -> list[IdentityChange]:
    """Changes announced to this WeChat user, and (for a bound employee) every change of theirs."""
    conds = []
    if openid:
        conds.append(IdentityChange.notify_openid == openid)
    if employee_id and company_id:
        conds.append((IdentityChange.employee_id == employee_id) & (IdentityChange.company_id == company_id))
    if not conds:
        return []
    return list(session.scalars(select(IdentityChange).where(or_(*conds))
                                .order_by(IdentityChange.created_at.desc(), IdentityChange.id.desc()).limit(limit)))


def answer_change(session: Session, rt: Runtime, *, change_id: str, openid: str, answer: str, comment: str = "",
                  meta: RequestMeta | None = None) -> IdentityChange:
    """Confirm or object to a phone change or a rebinding, from the WeChat that was bound before it.

    Only that WeChat may answer (anyone else: 404, as for a change that does not exist). An
    objection is possible even after the cooling period and blocks the factor for signing."""
    ch = session.scalar(select(IdentityChange).where(IdentityChange.id == change_id).with_for_update())
    if ch is None or not ch.notify_openid or ch.notify_openid != openid or ch.factor not in ("phone", "wechat"):
        raise NotFound("identity_change_not_found", "找不到该身份变更记录")
    status = change_status(ch)
    if status in ("confirmed", "objected"):
        raise Conflict("identity_change_already_answered", "该变更已确认或已反对", details={"status": status})
    now = utcnow()
    actor = f"wechat:{openid}"
    emp = session.get(Employee, ch.employee_id)
    if answer == "confirm":
        ch.confirmed_at, ch.confirmed_by = now, actor
        action = EvidenceKind.IDENTITY_CHANGE_CONFIRMED
    else:
        ch.objected_at, ch.objected_by, ch.objection = now, actor, (comment or "")[:500]
        action = EvidenceKind.IDENTITY_CHANGE_OBJECTED
        raise_alert(session, company_id=ch.company_id, kind="identity_objection", employee_id=ch.employee_id,
                    message=f"员工 {emp.name}（{emp.employee_no}）反对{_FACTOR_ZH[ch.factor]}变更（{ch.old_value} → "
                            f"{ch.new_value}），该要素不能用于签署",
                    payload={"change_id": ch.id, "factor": ch.factor, "comment": comment[:500]}, actor="system")
    session.flush()
    extra = meta.as_evidence() if meta is not None else {}
    _evidence_on_open_cases(session, emp, actor, action, {**_change_payload(ch), "comment": comment[:500], **extra})
    return ch


# ---- the gate ---------------------------------------------------------------------------------------

def _latest(session: Session, emp: Employee, factor: str) -> IdentityChange | None:
    return session.scalar(select(IdentityChange).where(
        IdentityChange.company_id == emp.company_id, IdentityChange.employee_id == emp.id,
        IdentityChange.factor == factor).order_by(IdentityChange.created_at.desc(), IdentityChange.id.desc()).limit(1))


def _enrolment(session: Session, emp: Employee) -> FaceEnrolment | None:
    return session.scalar(select(FaceEnrolment).where(FaceEnrolment.company_id == emp.company_id,
                                                      FaceEnrolment.employee_id == emp.id))


def signing_blockers(session: Session, rt: Runtime, emp: Employee, *, now: datetime | None = None,
                     factors: tuple[str, ...] = ("phone", "wechat", "face")) -> list[dict[str, Any]]:
    """What keeps this employee's factors from being used for signing now (empty: nothing)."""
    now = now or utcnow()
    out: list[dict[str, Any]] = []
    for factor in ("phone", "wechat"):
        if factor not in factors:
            continue
        ch = _latest(session, emp, factor)
        if ch is None:
            continue
        status = change_status(ch, now)
        if status in ("pending", "objected"):
            out.append({"factor": factor, "reason": "cooling" if status == "pending" else "objected",
                        "change_id": ch.id, "changed_at": ch.created_at.isoformat(),
                        "usable_from": ch.usable_from.isoformat() if ch.usable_from and status == "pending" else None})
    if "face" in factors:
        enr = _enrolment(session, emp)
        if enr is not None and enr.source in EMPLOYER_FACE_SOURCES and enr.employee_confirmed_at is None:
            out.append({"factor": "face", "reason": "unconfirmed", "change_id": None,
                        "changed_at": enr.updated_at.isoformat(), "usable_from": None})
    return out


_BLOCKER_ZH = {
    ("phone", "cooling"): "手机号近期被更改，须经您在原微信中确认或冷静期届满后才能用于签署",
    ("phone", "objected"): "手机号变更已被反对，请联系 HR 更正",
    ("wechat", "cooling"): "微信为重新绑定，冷静期届满后才能用于签署",
    ("wechat", "objected"): "微信重新绑定已被原微信反对，请联系 HR",
    ("face", "unconfirmed"): "人脸参考照片由用人单位提供，须您在小程序中确认后才能使用",
}


def assert_ready_to_sign(session: Session, rt: Runtime, emp: Employee, *,
                         factors: tuple[str, ...] = ("phone", "wechat", "face")) -> None:
    blockers = signing_blockers(session, rt, emp, factors=factors)
    if blockers:
        text = "；".join(_BLOCKER_ZH[(b["factor"], b["reason"])] for b in blockers)
        raise Conflict("identity_not_settled", f"身份要素尚不能用于签署：{text}", details={"blockers": blockers})


def assert_binding_settled(session: Session, rt: Runtime, emp: Employee) -> None:
    """For the employee's own acts that vouch for a factor (confirming a face, self-enrolment)."""
    assert_ready_to_sign(session, rt, emp, factors=("wechat",))


# ---- provenance -------------------------------------------------------------------------------------

def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt else None


def factor_provenance(session: Session, rt: Runtime, emp: Employee, *, at: datetime | None = None) -> dict[str, Any]:
    """Who set each factor and when, for a signature's evidence; plus every change of the last 30 days."""
    at = at or utcnow()
    phone_ch = _latest(session, emp, "phone")
    phone = {"masked": mask_phone(employee_phone(rt, emp))}
    if phone_ch is None:
        phone.update(set_at=_iso(emp.created_at), set_by="roster", source="roster_initial", status="initial")
    else:
        phone.update(set_at=_iso(phone_ch.created_at), set_by=phone_ch.actor, source=phone_ch.source,
                     status=change_status(phone_ch, at), confirmed_at=_iso(phone_ch.confirmed_at),
                     usable_from=_iso(phone_ch.usable_from))
    bind = session.scalar(select(WechatBindingEvent).where(
        WechatBindingEvent.company_id == emp.company_id, WechatBindingEvent.employee_id == emp.id,
        WechatBindingEvent.action == "bind").order_by(WechatBindingEvent.id.desc()).limit(1))
    wechat_ch = _latest(session, emp, "wechat")
    wechat: dict[str, Any] = {"openid": mask_openid(emp.wechat_openid),
                              "bound_at": _iso(bind.occurred_at) if bind else None,
                              "bound_by": bind.actor if bind else None,
                              "after_hr_unbind": wechat_ch is not None and wechat_ch.new_value == mask_openid(emp.wechat_openid)}
    if wechat["after_hr_unbind"]:
        wechat.update(status=change_status(wechat_ch, at), unbound=wechat_ch.reason, confirmed_at=_iso(wechat_ch.confirmed_at))
    enr = _enrolment(session, emp)
    face: dict[str, Any] = {"enrolled": enr is not None}
    if enr is not None:
        employer = enr.source in EMPLOYER_FACE_SOURCES
        face.update(source=enr.source, label=FACE_SOURCE_LABELS.get(enr.source, enr.source),
                    provided_by_employer=employer, provenance=EMPLOYER_LABEL if employer else "employee_or_certified",
                    enrolled_by=enr.enrolled_by, enrolled_at=_iso(enr.updated_at), version=enr.version,
                    photo_sha256=enr.photo_sha256, employee_confirmed_at=_iso(enr.employee_confirmed_at),
                    provider_ref=enr.provider_ref)
    return {"phone": phone, "wechat": wechat, "face": face,
            "changes_within_30_days": recent_changes(session, emp, until=at)}


def recent_changes(session: Session, emp: Employee, *, until: datetime, days: int = RECENT_DAYS) -> list[dict[str, Any]]:
    since = until - timedelta(days=days)
    out: list[dict[str, Any]] = []
    for ch in session.scalars(select(IdentityChange).where(
            IdentityChange.company_id == emp.company_id, IdentityChange.employee_id == emp.id,
            IdentityChange.created_at >= since, IdentityChange.created_at <= until).order_by(IdentityChange.created_at)):
        out.append({"at": ch.created_at.isoformat(), "factor": ch.factor, "source": ch.source, "actor": ch.actor,
                    "old": ch.old_value, "new": ch.new_value, "status": change_status(ch, until),
                    "text": _change_text(ch, until)})
    for ev in session.scalars(select(WechatBindingEvent).where(
            WechatBindingEvent.company_id == emp.company_id, WechatBindingEvent.employee_id == emp.id,
            WechatBindingEvent.occurred_at >= since, WechatBindingEvent.occurred_at <= until)
            .order_by(WechatBindingEvent.id)):
        out.append({"at": ev.occurred_at.isoformat(), "factor": "wechat", "source": ev.action, "actor": ev.actor,
                    "old": "", "new": mask_openid(ev.openid), "status": ev.action,
                    "text": f"微信{'绑定' if ev.action == 'bind' else '解除绑定'}（{mask_openid(ev.openid)}），操作者 {ev.actor}"
                            + (f"，原因：{ev.reason}" if ev.reason else "")})
    out.sort(key=lambda d: d["at"])
    return out


_STATUS_ZH = {"pending": "冷静期内", "cooled": "冷静期满无异议", "confirmed": "员工已确认", "objected": "员工已反对"}


def _change_text(ch: IdentityChange, now: datetime) -> str:
    status = _STATUS_ZH[change_status(ch, now)]
    if ch.factor == "phone":
        return f"手机号由 {ch.old_value} 改为 {ch.new_value}（{ch.source}，操作者 {ch.actor}，{status}）"
    if ch.factor == "wechat":
        return f"HR 解绑后重新绑定微信 {ch.new_value}（原 {ch.old_value}，{status}）"
    label = FACE_SOURCE_LABELS.get(ch.source, ch.source)
    extra = f"，{EMPLOYER_LABEL}，{'员工已确认' if ch.confirmed_at else ('员工已拒绝' if ch.objected_at else '员工未确认')}" \
        if ch.source in EMPLOYER_FACE_SOURCES else ""
    return f"登记人脸参考：{label}（操作者 {ch.actor}{extra}）"


def provenance_lines(p: dict[str, Any]) -> list[str]:
    """Human-readable (zh-CN) lines of a factor_provenance record, for the dossier report."""
    phone, wechat, face = p.get("phone") or {}, p.get("wechat") or {}, p.get("face") or {}
    lines = [f"手机号 {phone.get('masked')}：{phone.get('set_by')} 于 {phone.get('set_at')} 设置（{phone.get('source')}，"
             f"{_STATUS_ZH.get(phone.get('status'), '初始登记')}）",
             f"微信 {wechat.get('openid')}：{wechat.get('bound_by')} 于 {wechat.get('bound_at')} 绑定"
             + ("（HR 解绑后重新绑定）" if wechat.get("after_hr_unbind") else "")]
    if face.get("enrolled"):
        lines.append(f"人脸参考：{face.get('label')}" + ("（provided by the employer，用人单位提供" +
                     ("，员工已确认）" if face.get("employee_confirmed_at") else "，员工未确认）")
                     if face.get("provided_by_employer") else "") + f"，{face.get('enrolled_by')} 于 {face.get('enrolled_at')}")
    else:
        lines.append("人脸参考：未登记")
    return lines


def dossier_identity(session: Session, rt: Runtime, case: ResignationCase) -> dict[str, Any]:
    """The case's identity provenance for the dossier: each signature's factors as recorded when it
    was made, the changes of the 30 days before it (flags), and the employee's identity history."""
    emp = session.get(Employee, case.employee_id)
    signatures, flags = [], []
    for entry in session.scalars(select(EvidenceEntry).where(
            EvidenceEntry.case_id == case.id, EvidenceEntry.company_id == case.company_id,
            EvidenceEntry.action == "letter_signed").order_by(EvidenceEntry.id)):
        prov = (entry.payload or {}).get("identity_provenance")
        if not prov:
            continue
        signatures.append({"signed_at": entry.occurred_at.isoformat(), "seq": entry.seq, "provenance": prov,
                           "lines": provenance_lines(prov)})
        for c in prov.get("changes_within_30_days") or []:
            flags.append({"at": c["at"], "text": f"签署（{entry.occurred_at.isoformat()}）前 30 天内：{c['text']}",
                          "signature_seq": entry.seq})
        if (prov.get("face") or {}).get("provided_by_employer"):
            flags.append({"at": entry.occurred_at.isoformat(),
                          "text": "签署所用人脸参考由用人单位提供（provided by the employer）", "signature_seq": entry.seq})
    if not signatures:
        for c in recent_changes(session, emp, until=utcnow()):
            flags.append({"at": c["at"], "text": f"导出前 30 天内（尚未签署）：{c['text']}", "signature_seq": None})
    history = [{"at": ch.created_at.isoformat(), "factor": ch.factor, "source": ch.source, "actor": ch.actor,
                "old": ch.old_value, "new": ch.new_value, "reason": ch.reason, "status": change_status(ch),
                "usable_from": _iso(ch.usable_from), "confirmed_at": _iso(ch.confirmed_at),
                "confirmed_by": ch.confirmed_by, "objected_at": _iso(ch.objected_at), "objection": ch.objection,
                "notices": ch.notices, "notice_results": ch.notice_results, "ip": ch.ip}
               for ch in session.scalars(select(IdentityChange).where(
                   IdentityChange.company_id == emp.company_id, IdentityChange.employee_id == emp.id)
                   .order_by(IdentityChange.created_at))]
    return {"signatures": signatures, "flags": flags, "history": history,
            "current": factor_provenance(session, rt, emp)}
