"""Face enrolment with consent, face verification with liveness, the lock, the signing intent.

- **Consent** (PIPL art. 29): face processing needs the employee's separate consent. The
  employee gives it in the mini-program (``give_consent``, against the current text version), or
  HR attests a signed paper form when enrolling (``written_consent_attested``, recorded with the
  HR user and the form's reference). Without one, enrolment is refused (409
  ``face_consent_missing``). Withdrawing consent deletes the template and any kept photo (art. 47).
- **Enrolment**: the reference photo goes through :mod:`identity.faces` (safe decoding, exactly
  one face); only the encrypted template is stored. The raw photo is kept, encrypted, only if
  ``QIANLI_FACE_PHOTO_RETENTION_S`` > 0 and only until then (:func:`purge_expired_photos`).
- **Verification**: a liveness challenge (:mod:`identity.liveness`) and a burst of frames; the
  person must do the actions and match the template. Success records the face factor of the
  signing intent. Each failure (liveness or mismatch) counts; ``QIANLI_FACE_LOCK_AFTER_FAILURES``
  consecutive ones lock face verification (423 ``face_locked``) and alert HR until HR unlocks.
  Bad input (not an image, no face...) is refused without counting and without writing.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

import numpy as np
from sqlalchemy import delete, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from cases.errors import Conflict, Forbidden, InvalidInput, Locked, PayloadTooLarge
from cases.evidence_kinds import EvidenceKind
from cases.states import OPEN_STATES
from identity import intent as intents
from identity.faceid import FaceIdError
from identity.faces import decide, declared_size, encode_single_face, face_distance
from identity.liveness import Challenge, issue_challenge, take_challenge, take_rate_slot
from qianli.db import keep_on_error, utcnow
from qianli.models import (BiometricConsent, Employee, FaceEnrolment, FaceLockState, FaceReferencePhoto,
                           ResignationCase)
from qianli.runtime import Runtime
from qianli.services.alerts import raise_alert
from qianli.services.cases import get_employee, get_employee_case
from qianli.services.evidence import RequestMeta, append_evidence

__all__ = ["CONSENT_TEXT_VERSION", "CONSENT_TEXT", "RequestMeta", "FaceStatus", "FaceVerified",
           "give_consent", "withdraw_consent", "active_consent", "enrol_reference", "face_status", "unlock_face",
           "start_liveness_challenge", "verify_face", "create_signing_intent", "purge_expired_photos",
           "decrypt_template"]

log = logging.getLogger(__name__)

CONSENT_TEXT_VERSION = "face-2026-11"
CONSENT_TEXT = (
    "人脸信息处理单独同意书\n"
    "为在线签署离职相关文件时核验您的本人身份，公司将处理您的人脸信息（敏感个人信息）："
    "由人力资源部门登记您的一张参考照片，仅保存由照片计算出的人脸特征值（加密存储），"
    "签署时由您现场拍摄一组动作视频帧，与该特征值比对。"
    "处理目的：签署身份核验；保存期限：至离职手续办结，或您撤回同意时立即删除；"
    "原始照片不留存（或仅在公司设定的短期内加密留存后删除）。"
    "您可以随时撤回本同意，撤回后可改用线下方式签署，不影响您依法离职的权利。"
    "（依据《个人信息保护法》第二十八、二十九条）"
)
_CONSENT_SHA = hashlib.sha256(CONSENT_TEXT.encode()).hexdigest()
_TEMPLATE_AAD = "face_enrolment.template:{}"
_PHOTO_AAD = "face_reference_photo:{}"


@dataclass(frozen=True)
class FaceStatus:
    employee_id: str
    consent: BiometricConsent | None
    enrolment: FaceEnrolment | None
    lock: FaceLockState | None
    photo_kept_until: Any = None

    @property
    def locked(self) -> bool:
        return bool(self.lock and self.lock.locked_at)

    @property
    def consecutive_failures(self) -> int:
        return self.lock.consecutive_failures if self.lock else 0


@dataclass(frozen=True)
class FaceVerified:
    distance: float
    threshold: float
    frames: int
    actions: tuple[str, ...]
    provider: str


def _open_cases(session: Session, company_id: str, employee_id: str) -> list[ResignationCase]:
    return list(session.scalars(select(ResignationCase).where(
        ResignationCase.company_id == company_id, ResignationCase.employee_id == employee_id,
        ResignationCase.state.in_([s.value for s in OPEN_STATES])).order_by(ResignationCase.created_at)))


def _evidence_on_open_cases(session: Session, company_id: str, employee_id: str, actor: str, action: EvidenceKind,
                            payload: dict[str, Any]) -> None:
    for case in _open_cases(session, company_id, employee_id):
        append_evidence(session, case, actor, action, payload)


# -- consent ----------------------------------------------------------------------------------
def active_consent(session: Session, company_id: str, employee_id: str) -> BiometricConsent | None:
    return session.scalar(select(BiometricConsent).where(
        BiometricConsent.company_id == company_id, BiometricConsent.employee_id == employee_id,
        BiometricConsent.withdrawn_at.is_(None)).order_by(BiometricConsent.given_at.desc()).limit(1))


def give_consent(session: Session, *, company_id: str, employee_id: str, text_version: str,
                 meta: RequestMeta) -> BiometricConsent:
    """The employee agrees to the current consent text (an older version is refused)."""
    emp = get_employee(session, employee_id, company_id)
    if text_version != CONSENT_TEXT_VERSION:
        raise Conflict("face_consent_text_outdated", "同意书已更新，请重新阅读后再同意",
                       details={"current_version": CONSENT_TEXT_VERSION})
    existing = active_consent(session, company_id, emp.id)
    if existing is not None and existing.text_version == CONSENT_TEXT_VERSION:
        return existing
    consent = BiometricConsent(company_id=company_id, employee_id=emp.id, method="employee_app",
                               text_version=CONSENT_TEXT_VERSION, text_sha256=_CONSENT_SHA,
                               actor=f"employee:{emp.id}", ip=meta.ip[:64], user_agent=meta.user_agent[:500])
    session.add(consent)
    session.flush()
    _evidence_on_open_cases(session, company_id, emp.id, f"employee:{emp.id}", EvidenceKind.FACE_CONSENT_GIVEN, {
        "consent_id": consent.id, "method": consent.method, "text_version": consent.text_version,
        "text_sha256": consent.text_sha256, **meta.as_evidence()})
    return consent


def withdraw_consent(session: Session, *, company_id: str, employee_id: str, meta: RequestMeta) -> bool:
    """Withdraw consent: the template and any kept photo are deleted (PIPL art. 47). Returns
    whether an enrolment was deleted."""
    emp = get_employee(session, employee_id, company_id)
    consents = list(session.scalars(select(BiometricConsent).where(
        BiometricConsent.company_id == company_id, BiometricConsent.employee_id == emp.id,
        BiometricConsent.withdrawn_at.is_(None))))
    if not consents:
        raise Conflict("face_consent_missing", "您尚未同意人脸信息处理")
    now = utcnow()
    for c in consents:
        c.withdrawn_at = now
    deleted = _delete_enrolment(session, company_id, emp.id)
    session.flush()
    _evidence_on_open_cases(session, company_id, emp.id, f"employee:{emp.id}", EvidenceKind.FACE_CONSENT_WITHDRAWN, {
        "consent_ids": [c.id for c in consents], "template_deleted": deleted, **meta.as_evidence()})
    return deleted


def _delete_enrolment(session: Session, company_id: str, employee_id: str) -> bool:
    enrolment = _enrolment(session, company_id, employee_id)
    if enrolment is None:
        return False
    session.execute(delete(FaceReferencePhoto).where(FaceReferencePhoto.enrolment_id == enrolment.id))
    session.delete(enrolment)
    session.flush()
    return True


# -- enrolment --------------------------------------------------------------------------------
def _enrolment(session: Session, company_id: str, employee_id: str) -> FaceEnrolment | None:
    return session.scalar(select(FaceEnrolment).where(FaceEnrolment.company_id == company_id,
                                                      FaceEnrolment.employee_id == employee_id))


def _lock_state(session: Session, company_id: str, employee_id: str, *, for_update: bool = False) -> FaceLockState | None:
    q = select(FaceLockState).where(FaceLockState.company_id == company_id, FaceLockState.employee_id == employee_id)
    return session.scalar(q.with_for_update() if for_update else q)


def decrypt_template(rt: Runtime, enrolment: FaceEnrolment) -> np.ndarray:
    raw = rt.cipher.decrypt_bytes(enrolment.template_enc, _TEMPLATE_AAD.format(enrolment.employee_id))
    return np.frombuffer(raw, dtype="<f8").copy()


def enrol_reference(session: Session, rt: Runtime, employee: Employee, data: bytes, *, actor: str,
                    source: str = "roster_import", written_consent_attested: bool = False,
                    consent_reference: str = "", meta: RequestMeta | None = None) -> FaceEnrolment:
    """Enrol (or replace) the employee's reference face from one photo.

    Needs the employee's active consent, or ``written_consent_attested`` (HR attests a signed
    paper consent form, optionally naming it in ``consent_reference``), which is then recorded
    as a consent of method ``hr_attested_written``. Also used by ``qianli roster import --photos``.
    Such a reference is "provided by the employer": it counts for verification only once the
    employee confirms it (:func:`confirm_face_reference`).
    """
    meta = meta or RequestMeta()
    s = rt.settings
    if len(data) > s.max_request_bytes:
        raise PayloadTooLarge("image_too_large", "图片文件过大")
    consent = active_consent(session, employee.company_id, employee.id)
    if consent is None and not written_consent_attested:
        raise Conflict("face_consent_missing", "员工尚未单独同意人脸信息处理，不能登记人脸",
                       details={"employee_id": employee.id})
    face = encode_single_face(data, max_pixels=s.face_max_pixels, max_side=s.face_detect_max_side)  # may raise 4xx
    now = utcnow()
    if consent is None:
        consent = BiometricConsent(company_id=employee.company_id, employee_id=employee.id,
                                   method="hr_attested_written", text_version=CONSENT_TEXT_VERSION,
                                   text_sha256=_CONSENT_SHA, reference=consent_reference[:200], actor=actor,
                                   ip=meta.ip[:64], user_agent=meta.user_agent[:500], given_at=now)
        session.add(consent)
        session.flush()
        _evidence_on_open_cases(session, employee.company_id, employee.id, actor, EvidenceKind.FACE_CONSENT_GIVEN, {
            "consent_id": consent.id, "method": consent.method, "text_version": consent.text_version,
            "reference": consent.reference, **meta.as_evidence()})
    return _store_reference(session, rt, employee, face.encoding, data, source=source, actor=actor, consent=consent,
                            meta=meta)


def _store_reference(session: Session, rt: Runtime, employee: Employee, encoding: Any, data: bytes, *, source: str,
                     actor: str, consent: BiometricConsent, meta: RequestMeta, provider_ref: str | None = None,
                     extra: dict[str, Any] | None = None) -> FaceEnrolment:
    """Save (or replace) the encrypted template and record where it came from (identity history,
    evidence on open cases). An employer-provided reference waits for the employee's confirmation."""
    from qianli.services.identity_trust import EMPLOYER_FACE_SOURCES, FACE_SOURCE_LABELS, record_face_reference

    s = rt.settings
    now = utcnow()
    template = rt.cipher.encrypt(np.asarray(encoding, dtype="<f8").tobytes(), _TEMPLATE_AAD.format(employee.id))
    key_id = template.split(":", 2)[1]
    photo_sha = hashlib.sha256(data).hexdigest()
    enrolment = _enrolment(session, employee.company_id, employee.id)
    if enrolment is None:
        enrolment = FaceEnrolment(company_id=employee.company_id, employee_id=employee.id, version=1, created_at=now)
        session.add(enrolment)
    else:
        enrolment.version += 1
        session.execute(delete(FaceReferencePhoto).where(FaceReferencePhoto.enrolment_id == enrolment.id))
    employer = source in EMPLOYER_FACE_SOURCES
    enrolment.template_enc, enrolment.key_id, enrolment.source = template, key_id, source
    enrolment.photo_sha256, enrolment.enrolled_by, enrolment.updated_at = photo_sha, actor, now
    enrolment.consent_id, enrolment.consent_given_at = consent.id, consent.given_at
    enrolment.consent_text_version = consent.text_version
    enrolment.employee_confirmed_at = None if employer else now
    enrolment.provider_ref = provider_ref
    session.flush()
    if _lock_state(session, employee.company_id, employee.id) is None:
        session.add(FaceLockState(company_id=employee.company_id, employee_id=employee.id))
    if s.face_photo_retention_s > 0:
        photo = FaceReferencePhoto(company_id=employee.company_id, employee_id=employee.id, enrolment_id=enrolment.id,
                                   content_type=_image_type(data), sha256=photo_sha,
                                   delete_after=now + timedelta(seconds=s.face_photo_retention_s), photo_enc=b"")
        session.add(photo)
        session.flush()
        photo.photo_enc = rt.cipher.encrypt(data, _PHOTO_AAD.format(photo.id)).encode()
    session.flush()
    purge_expired_photos(session)
    change = record_face_reference(session, employee, enrolment, actor=actor, meta=meta)
    _evidence_on_open_cases(session, employee.company_id, employee.id, actor, EvidenceKind.FACE_ENROLLED, {
        "enrolment_id": enrolment.id, "version": enrolment.version, "source": source,
        "source_label": FACE_SOURCE_LABELS.get(source, source),
        "provenance": "provided by the employer" if employer else "employee_or_certified",
        "needs_employee_confirmation": employer, "identity_change_id": change.id, "photo_sha256": photo_sha,
        "consent_id": consent.id, "photo_kept_s": max(0, s.face_photo_retention_s), "provider_ref": provider_ref,
        **(extra or {}), **meta.as_evidence()})
    return enrolment


def _image_type(data: bytes) -> str:
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    return "image/webp" if data[8:12] == b"WEBP" else "application/octet-stream"


def purge_expired_photos(session: Session, *, now=None) -> int:
    """Delete raw reference photos past their retention deadline; returns how many."""
    res = cast(CursorResult, session.execute(delete(FaceReferencePhoto).where(FaceReferencePhoto.delete_after <= (now or utcnow()))))
    return int(res.rowcount or 0)


def face_status(session: Session, *, company_id: str, employee_id: str) -> FaceStatus:
    emp = get_employee(session, employee_id, company_id)
    enrolment = _enrolment(session, company_id, emp.id)
    kept = None
    if enrolment is not None:
        kept = session.scalar(select(FaceReferencePhoto.delete_after).where(
            FaceReferencePhoto.enrolment_id == enrolment.id, FaceReferencePhoto.delete_after > utcnow()))
    return FaceStatus(emp.id, active_consent(session, company_id, emp.id), enrolment,
                      _lock_state(session, company_id, emp.id), kept)


def unlock_face(session: Session, *, company_id: str, employee_id: str, actor: str, reason: str = "",
                meta: RequestMeta | None = None) -> FaceStatus:
    emp = get_employee(session, employee_id, company_id)
    state = _lock_state(session, company_id, emp.id, for_update=True)
    if state is None or state.locked_at is None:
        raise Conflict("face_not_locked", "该员工的人脸核验未被锁定")
    locked_at = state.locked_at
    state.consecutive_failures, state.locked_at = 0, None
    state.unlocked_at, state.unlocked_by = utcnow(), actor
    session.flush()
    _evidence_on_open_cases(session, company_id, emp.id, actor, EvidenceKind.FACE_UNLOCKED, {
        "locked_at": locked_at.isoformat(), "reason": reason[:500], **(meta or RequestMeta()).as_evidence()})
    return face_status(session, company_id=company_id, employee_id=emp.id)


# -- verification -----------------------------------------------------------------------------
def _open_case_for(session: Session, *, company_id: str, employee_id: str, case_id: str) -> ResignationCase:
    case = get_employee_case(session, case_id, employee_id=employee_id, company_id=company_id)
    if case.state not in {s.value for s in OPEN_STATES}:
        raise Conflict("case_not_open", "该离职申请已结束，无需再核验身份")
    return case


def _ready_for_face_check(session: Session, company_id: str, employee_id: str) -> tuple[FaceEnrolment, FaceLockState]:
    from qianli.services.identity_trust import EMPLOYER_FACE_SOURCES

    enrolment = _enrolment(session, company_id, employee_id)
    if enrolment is None:
        raise Conflict("face_not_enrolled", "尚未登记您的人脸照片，请在小程序中自行录入，或联系 HR")
    if enrolment.source in EMPLOYER_FACE_SOURCES and enrolment.employee_confirmed_at is None:
        raise Conflict("face_reference_unconfirmed", "人脸参考照片由用人单位提供，请先在小程序中确认，或自行录入人脸",
                       details={"version": enrolment.version, "source": enrolment.source})
    state = _lock_state(session, company_id, employee_id)
    if state is None:
        state = FaceLockState(company_id=company_id, employee_id=employee_id)
        session.add(state)
        session.flush()
    if state.locked_at is not None:
        raise Locked("face_locked", "人脸核验连续失败次数过多，已锁定，请联系 HR 解锁",
                     details={"locked_at": state.locked_at.isoformat()})
    return enrolment, state


def start_liveness_challenge(session: Session, rt: Runtime, *, company_id: str, employee_id: str, case_id: str,
                             meta: RequestMeta) -> Challenge:
    emp = get_employee(session, employee_id, company_id)
    case = _open_case_for(session, company_id=company_id, employee_id=emp.id, case_id=case_id)
    _ready_for_face_check(session, company_id, emp.id)
    take_rate_slot(rt.redis, "liveness_challenge", emp.id, limit=rt.settings.liveness_challenges_per_hour)
    return issue_challenge(rt.redis, rt.settings, employee_id=emp.id, case_id=case.id)


def _check_burst_shape(rt: Runtime, frames: list[bytes]) -> None:
    s = rt.settings
    if len(frames) < s.liveness_min_frames or len(frames) > s.liveness_max_frames:
        raise InvalidInput("liveness_frame_count", f"请上传 {s.liveness_min_frames}-{s.liveness_max_frames} 帧画面",
                           details={"min": s.liveness_min_frames, "max": s.liveness_max_frames, "got": len(frames)})
    for i, f in enumerate(frames):
        if not f:
            raise InvalidInput("image_invalid", "图片为空", details={"frame": i})
        if len(f) > s.liveness_max_frame_bytes:
            raise PayloadTooLarge("image_too_large", "单帧图片过大",
                                  details={"frame": i, "max_bytes": s.liveness_max_frame_bytes})


def _check_frame_pixels(rt: Runtime, frames: list[bytes]) -> None:
    """Every frame's declared size, read from its header before any frame is decoded."""
    s = rt.settings
    if s.liveness_provider != "local":
        return
    for i, f in enumerate(frames):
        try:
            w, h = declared_size(f)
        except (InvalidInput, PayloadTooLarge) as exc:
            exc.details = {**(exc.details or {}), "frame": i}
            raise
        if w * h > s.liveness_frame_max_pixels:
            raise PayloadTooLarge("image_too_large", "单帧图片像素过大",
                                  details={"frame": i, "width": w, "height": h, "max_pixels": s.liveness_frame_max_pixels})


def verify_face(session: Session, rt: Runtime, *, company_id: str, employee_id: str, nonce: str,
                frames: list[bytes], meta: RequestMeta) -> FaceVerified:
    """Check a liveness burst against its challenge and the enrolled face.

    Order: the employee's hourly allowance is counted first, then the burst's shape (count, bytes)
    is checked, then the challenge is spent (single use whatever follows), then the lock, then
    every frame's declared pixel count (from its header, before any frame is decoded); bad frames
    (not an image, too many pixels, no face, several faces) are refused as input errors without
    counting. A burst that fails liveness or shows
    someone else counts as a failure (kept although the request fails).
    """
    emp = get_employee(session, employee_id, company_id)
    take_rate_slot(rt.redis, "face_verification", emp.id, limit=rt.settings.face_verifications_per_hour)
    _check_burst_shape(rt, frames)
    challenge = take_challenge(rt.redis, nonce, employee_id=emp.id)
    case = _open_case_for(session, company_id=company_id, employee_id=emp.id, case_id=challenge.case_id)
    enrolment, _ = _ready_for_face_check(session, company_id, emp.id)
    _check_frame_pixels(rt, frames)
    result = rt.liveness.check(challenge.actions, frames)  # input errors raise here, nothing written
    threshold = float(rt.settings.face_threshold)
    base = {"challenge": challenge.as_evidence(), "liveness": result.as_evidence(), "threshold": threshold,
            "enrolment_version": enrolment.version, **meta.as_evidence()}
    actor = f"employee:{emp.id}"
    if not result.passed:
        _fail(session, rt, emp, case, actor, "liveness_failed", base)
        raise InvalidInput("liveness_failed", _LIVENESS_MESSAGES.get(result.reason or "", "活体检测未通过，请按提示重新拍摄"),
                           details={"reason": result.reason, **_remaining(session, rt, emp)})
    template = decrypt_template(rt, enrolment)
    distance = float(np.median([face_distance(e, template) for e in result.encodings]))
    base["distance"] = round(distance, 4)
    retake_threshold = float(rt.settings.face_retake_threshold)
    decision = decide(distance, threshold, retake_threshold)
    if decision == "retake":
        # Too close to call (a poor photo of the right person lands here far more often than
        # someone else): recorded, not counted towards the lock; bounded by the hourly allowance.
        append_evidence(session, case, actor, EvidenceKind.FACE_VERIFICATION_FAILED, {
            **base, "code": "face_retake", "retake_threshold": retake_threshold, "counted": False})
        keep_on_error(session)
        raise InvalidInput("face_retake", "人脸比对结果不够明确，请在光线充足处正对镜头、摘下口罩和眼镜后重新拍摄",
                           details=_remaining(session, rt, emp))
    if decision == "mismatch":
        _fail(session, rt, emp, case, actor, "face_mismatch", base)
        raise Forbidden("face_mismatch", "人脸与登记照片不一致", details=_remaining(session, rt, emp))
    state = _lock_state(session, company_id, emp.id, for_update=True)
    state.consecutive_failures, state.last_success_at = 0, utcnow()
    append_evidence(session, case, actor, EvidenceKind.FACE_VERIFIED, base)
    intents.record_factor(rt.redis, emp.id, case.id, "face", {
        "distance": round(distance, 4), "threshold": threshold, "actions": list(challenge.actions),
        "frames": result.frames, "provider": result.provider, "verified_at": utcnow().isoformat()})
    return FaceVerified(distance=distance, threshold=threshold, frames=result.frames, actions=challenge.actions,
                        provider=result.provider)


_LIVENESS_MESSAGES = {
    "frames_identical": "画面完全相同，请对着镜头现场拍摄",
    "action_not_detected": "未检测到要求的动作，请按提示完成动作",
    "action_order": "动作顺序与要求不符，请按提示顺序完成",
    "different_people": "画面中的人不一致",
}


def _remaining(session: Session, rt: Runtime, emp: Employee) -> dict[str, int]:
    state = _lock_state(session, emp.company_id, emp.id)
    return {"remaining_attempts": max(0, rt.settings.face_lock_after_failures - (state.consecutive_failures if state else 0))}


def _fail(session: Session, rt: Runtime, emp: Employee, case: ResignationCase, actor: str, code: str,
          base: dict[str, Any]) -> None:
    """Count a failed check (committed even though the request fails); lock at the limit."""
    # One UPDATE with the increment in SQL: two concurrent failures both count.
    session.execute(update(FaceLockState).where(FaceLockState.company_id == emp.company_id,
                                                FaceLockState.employee_id == emp.id)
                    .values(consecutive_failures=FaceLockState.consecutive_failures + 1,
                            last_failure_at=utcnow(), last_failure_reason=code)
                    .execution_options(synchronize_session=False))
    state = _lock_state(session, emp.company_id, emp.id, for_update=True)
    session.refresh(state)
    limit = rt.settings.face_lock_after_failures
    append_evidence(session, case, actor, EvidenceKind.FACE_VERIFICATION_FAILED,
                    {**base, "code": code, "consecutive_failures": state.consecutive_failures, "lock_after": limit})
    keep_on_error(session)
    if state.consecutive_failures >= limit:
        state.locked_at = utcnow()
        session.flush()
        raise_alert(session, company_id=emp.company_id, kind="face_locked", case_id=case.id, employee_id=emp.id,
                    message=f"员工 {emp.name}（{emp.employee_no}）人脸核验连续失败 {state.consecutive_failures} 次，已锁定",
                    payload={"consecutive_failures": state.consecutive_failures, "last_failure": code})
        raise Locked("face_locked", "人脸核验连续失败次数过多，已锁定，请联系 HR 解锁",
                     details={"consecutive_failures": state.consecutive_failures})
    session.flush()


# -- the signing intent -----------------------------------------------------------------------
def create_signing_intent(session: Session, rt: Runtime, *, company_id: str, employee_id: str, case_id: str,
                          letter_sha256: str, meta: RequestMeta) -> intents.SigningIntent:
    """Both factors (SMS ``sign`` code and face with liveness) passed within the window: issue a
    single-use intent bound to (employee, case, letter SHA-256). 403 ``signing_factors_missing``."""
    from qianli.services.identity_trust import assert_ready_to_sign

    emp = get_employee(session, employee_id, company_id)
    case = _open_case_for(session, company_id=company_id, employee_id=emp.id, case_id=case_id)
    assert_ready_to_sign(session, rt, emp)
    issued = intents.issue_signing_intent(rt.redis, rt.settings, employee_id=emp.id, case_id=case.id,
                                          letter_sha256=letter_sha256)
    append_evidence(session, case, f"employee:{emp.id}", EvidenceKind.SIGNING_INTENT_ISSUED, {
        "intent_sha256": hashlib.sha256(issued.id.encode()).hexdigest(), "letter_sha256": letter_sha256.lower(),
        "expires_at": issued.expires_at.isoformat(), **meta.as_evidence()})
    return issued


# -- the employee's own reference: confirming HR's photo, self-enrolment, certified provider -------
ENROLMENT_CHALLENGE = "enrolment"  # the challenge's "case" for a self-enrolment


def confirm_face_reference(session: Session, rt: Runtime, *, company_id: str, employee_id: str, version: int,
                           accept: bool, meta: RequestMeta) -> FaceEnrolment | None:
    """The employee confirms (or rejects) a reference photo the employer provided. Only from a
    settled WeChat binding (a rebinding in its cooling period cannot vouch for a face). A rejected
    photo is deleted and HR is alerted. Returns the enrolment (None after a rejection)."""
    from qianli.services.identity_trust import EMPLOYER_FACE_SOURCES, assert_binding_settled, confirm_employer_face

    emp = get_employee(session, employee_id, company_id)
    enrolment = _enrolment(session, company_id, emp.id)
    if enrolment is None:
        raise Conflict("face_not_enrolled", "尚未登记人脸参考照片")
    if enrolment.source not in EMPLOYER_FACE_SOURCES:
        raise Conflict("face_reference_not_employer", "该人脸参考由您本人录入，无需确认")
    if enrolment.version != version:
        raise Conflict("face_reference_changed", "人脸参考照片已更新，请刷新后重试", details={"version": enrolment.version})
    if enrolment.employee_confirmed_at is not None and accept:
        return enrolment
    assert_binding_settled(session, rt, emp)
    actor = f"employee:{emp.id}"
    confirm_employer_face(session, emp, enrolment, actor=actor, accept=accept)
    payload = {"enrolment_id": enrolment.id, "version": enrolment.version, "source": enrolment.source,
               "photo_sha256": enrolment.photo_sha256, "provenance": "provided by the employer", **meta.as_evidence()}
    if accept:
        enrolment.employee_confirmed_at = utcnow()
        session.flush()
        _evidence_on_open_cases(session, company_id, emp.id, actor, EvidenceKind.FACE_REFERENCE_CONFIRMED, payload)
        return enrolment
    _delete_enrolment(session, company_id, emp.id)
    _evidence_on_open_cases(session, company_id, emp.id, actor, EvidenceKind.FACE_REFERENCE_REJECTED, payload)
    raise_alert(session, company_id=company_id, kind="identity_objection", employee_id=emp.id,
                message=f"员工 {emp.name}（{emp.employee_no}）不认可用人单位提供的人脸参考照片，已删除",
                payload={"enrolment_version": version})
    return None


def start_enrolment_challenge(session: Session, rt: Runtime, *, company_id: str, employee_id: str) -> Challenge:
    """A liveness challenge for the employee's own face reference (needs their consent)."""
    from qianli.services.identity_trust import assert_binding_settled

    emp = get_employee(session, employee_id, company_id)
    if active_consent(session, company_id, emp.id) is None:
        raise Conflict("face_consent_missing", "请先阅读并同意人脸信息处理单独同意书")
    assert_binding_settled(session, rt, emp)
    return issue_challenge(rt.redis, rt.settings, employee_id=emp.id, case_id=ENROLMENT_CHALLENGE)


def self_enrol(session: Session, rt: Runtime, *, company_id: str, employee_id: str, nonce: str, frames: list[bytes],
               meta: RequestMeta) -> FaceEnrolment:
    """The employee's own capture with liveness becomes the reference (replacing any other)."""
    from qianli.services.identity_trust import assert_binding_settled

    emp = get_employee(session, employee_id, company_id)
    _check_burst_shape(rt, frames)
    challenge = take_challenge(rt.redis, nonce, employee_id=emp.id)
    if challenge.case_id != ENROLMENT_CHALLENGE:
        raise InvalidInput("liveness_challenge_invalid", "动作挑战已失效或已使用，请重新开始人脸录入")
    consent = active_consent(session, company_id, emp.id)
    if consent is None:
        raise Conflict("face_consent_missing", "请先阅读并同意人脸信息处理单独同意书")
    assert_binding_settled(session, rt, emp)
    result = rt.liveness.check(challenge.actions, frames)
    if not result.passed:
        raise InvalidInput("liveness_failed", _LIVENESS_MESSAGES.get(result.reason or "", "活体检测未通过，请按提示重新拍摄"),
                           details={"reason": result.reason})
    encoding = np.mean(np.stack([np.asarray(e, dtype="<f8") for e in result.encodings]), axis=0)
    return _store_reference(session, rt, emp, encoding, frames[0], source="self_capture", actor=f"employee:{emp.id}",
                            consent=consent, meta=meta,
                            extra={"challenge": challenge.as_evidence(), "liveness": result.as_evidence()})


_FACEID_KEY = "qianli:faceid:{}"


def _faceid(rt: Runtime):
    client = rt.faceid
    if client is None:
        from cases.errors import ServiceUnavailable

        raise ServiceUnavailable("faceid_not_configured", "实名人脸核身服务未开通（QIANLI_FACEID_BACKEND=off）")
    return client


def _faceid_failed(exc: FaceIdError):
    from cases.errors import ServiceUnavailable

    return ServiceUnavailable("faceid_unavailable", "实名人脸核身服务暂不可用，请稍后重试",
                              details={"error": exc.code})


def start_certified_enrolment(session: Session, rt: Runtime, *, company_id: str, employee_id: str) -> dict[str, Any]:
    """Start a Tencent FaceID (人脸核身) check against the employee's ID on the roster; the answer's
    ``biz_token`` goes to the mini-program's FaceID plugin."""
    from identity.faceid import FaceIdError
    from qianli.services.employees import employee_national_id
    from qianli.services.identity_trust import assert_binding_settled

    emp = get_employee(session, employee_id, company_id)
    if active_consent(session, company_id, emp.id) is None:
        raise Conflict("face_consent_missing", "请先阅读并同意人脸信息处理单独同意书")
    client = _faceid(rt)
    assert_binding_settled(session, rt, emp)
    national_id = employee_national_id(rt, emp)
    if not national_id:
        raise Conflict("national_id_missing", "花名册中没有您的身份证号，无法进行实名人脸核身，请在小程序中自行录入人脸")
    try:
        started = client.detect_auth(name=emp.name, id_card=national_id, extra=f"{company_id}:{emp.id}")
    except FaceIdError as exc:
        raise _faceid_failed(exc) from None
    key = _FACEID_KEY.format(hashlib.sha256(started.biz_token.encode()).hexdigest())
    rt.redis.set(key, f"{company_id}:{emp.id}", ex=7200)
    return {"biz_token": started.biz_token, "url": started.url, "expires_in_s": 7200, "provider": client.name}


def finish_certified_enrolment(session: Session, rt: Runtime, *, company_id: str, employee_id: str, biz_token: str,
                               meta: RequestMeta) -> FaceEnrolment:
    """Fetch the FaceID result; on success (the live face matched the authoritative photo of the
    employee's own ID) the best live frame becomes the reference, source ``faceid_tencent``."""
    from identity.faceid import FaceIdError
    from qianli.services.employees import employee_national_id

    emp = get_employee(session, employee_id, company_id)
    key = _FACEID_KEY.format(hashlib.sha256((biz_token or "").encode()).hexdigest())
    owner = rt.redis.get(key)
    owner = owner.decode() if isinstance(owner, bytes) else owner
    if owner != f"{company_id}:{emp.id}":
        raise InvalidInput("faceid_token_invalid", "核身凭证无效或已过期，请重新开始")
    client = _faceid(rt)
    try:
        info = client.detect_info(biz_token)
    except FaceIdError as exc:
        raise _faceid_failed(exc) from None
    if info.err_code is None:
        raise Conflict("faceid_not_finished", "尚未完成实名人脸核身，请在插件中完成后再提交")
    consent = active_consent(session, company_id, emp.id)
    if consent is None:
        raise Conflict("face_consent_missing", "请先阅读并同意人脸信息处理单独同意书")
    rt.redis.delete(key)  # single use from here on
    if not info.passed:
        raise InvalidInput("faceid_failed", f"实名人脸核身未通过：{info.err_msg or info.err_code}",
                           details={"err_code": info.err_code})
    if (info.id_card or "").upper() != (employee_national_id(rt, emp) or "").upper():
        raise Conflict("faceid_identity_mismatch", "核身所用身份证号与花名册不一致")
    if not info.best_frame:
        raise _faceid_failed(FaceIdError("no_best_frame"))
    s = rt.settings
    face = encode_single_face(info.best_frame, max_pixels=s.face_max_pixels, max_side=s.face_detect_max_side)
    return _store_reference(session, rt, emp, face.encoding, info.best_frame, source="faceid_tencent",
                            actor=f"employee:{emp.id}", consent=consent, meta=meta,
                            provider_ref=info.request_id[:128] or None, extra={"faceid": info.as_evidence()})
