"""Face: consent, HR enrolment and unlock, liveness challenge + verification, the signing intent.

Employee (mini-program): ``getFaceConsent``, ``giveFaceConsent``, ``withdrawFaceConsent``,
``startLivenessChallenge``, ``verifyFace`` (multipart burst), ``createSigningIntent``.
HR: ``getFaceEnrolment`` (any HR role), ``enrolFace`` (multipart photo), ``unlockFace``
(hr_specialist / hr_manager).
"""

from __future__ import annotations

import marshmallow as ma
from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint

from qianli.services import faces as svc
from qianli.services.identity_trust import EMPLOYER_FACE_SOURCES, FACE_SOURCE_LABELS
from qianli.services.cases import get_employee
from qianli.services.review import get_hr_employee, get_reviewer

from api.auth import current_principal, employee_required, hr_required
from api.context import db, runtime
from api.schemas import NonBlank, StrictSchema

__all__ = ["blp"]

blp = Blueprint("faces", __name__, url_prefix="/api/v1", description="Face match with consent and liveness; "
                                                                     "the signing intent")


def _meta(openid: str | None = None) -> svc.RequestMeta:
    return svc.RequestMeta(ip=request.remote_addr or "", user_agent=request.headers.get("User-Agent", ""),
                           openid=openid)


def _read(storage, limit: int) -> bytes:
    """At most ``limit`` + 1 bytes of an uploaded file (so that "too large" can be told)."""
    return storage.read(limit + 1) if storage is not None else b""


# -- consent ----------------------------------------------------------------------------------
class ConsentTextSchema(ma.Schema):
    text_version = ma.fields.String(required=True)
    text = ma.fields.String(required=True, metadata={"description": "The consent text to show (zh-CN)"})
    given = ma.fields.Boolean(required=True, metadata={"description": "Whether the employee's consent is in force"})
    given_at = ma.fields.AwareDateTime(allow_none=True)
    given_text_version = ma.fields.String(allow_none=True)


class GiveConsentSchema(StrictSchema):
    text_version = ma.fields.String(required=True, validate=NonBlank(32),
                                    metadata={"description": "text_version of the text shown to the employee"})
    agree = ma.fields.Boolean(required=True, validate=ma.validate.Equal(True),
                              metadata={"description": "Must be true: the employee ticked the separate consent"})


class ConsentSchema(ma.Schema):
    consent_id = ma.fields.String(required=True)
    method = ma.fields.String(required=True, metadata={"description": "employee_app or hr_attested_written"})
    text_version = ma.fields.String(required=True)
    given_at = ma.fields.AwareDateTime(required=True)


class ConsentWithdrawnSchema(ma.Schema):
    withdrawn = ma.fields.Boolean(required=True)
    template_deleted = ma.fields.Boolean(required=True)


def _consent_body(c) -> dict:
    return {"consent_id": c.id, "method": c.method, "text_version": c.text_version, "given_at": c.given_at}


@blp.route("/faces/consent")
class FaceConsent(MethodView):
    @employee_required
    @blp.response(200, ConsentTextSchema)
    @blp.doc(operationId="getFaceConsent", summary="The biometric consent text and whether it was given")
    def get(self):
        p = current_principal()
        c = svc.active_consent(db(), p.company_id, p.subject_id)
        return {"text_version": svc.CONSENT_TEXT_VERSION, "text": svc.CONSENT_TEXT, "given": c is not None,
                "given_at": c.given_at if c else None, "given_text_version": c.text_version if c else None}

    @employee_required
    @blp.arguments(GiveConsentSchema)
    @blp.response(201, ConsentSchema)
    @blp.doc(operationId="giveFaceConsent",
             summary="Give separate consent to face processing (PIPL art. 29); needed before HR can enrol a face")
    def post(self, args):
        p = current_principal()
        c = svc.give_consent(db(), company_id=p.company_id, employee_id=p.subject_id,
                             text_version=args["text_version"], meta=_meta(p.openid))
        return _consent_body(c)

    @employee_required
    @blp.response(200, ConsentWithdrawnSchema)
    @blp.doc(operationId="withdrawFaceConsent",
             summary="Withdraw the consent; the face template and any kept photo are deleted")
    def delete(self):
        p = current_principal()
        deleted = svc.withdraw_consent(db(), company_id=p.company_id, employee_id=p.subject_id, meta=_meta(p.openid))
        return {"withdrawn": True, "template_deleted": deleted}


# -- HR: enrolment, status, unlock ------------------------------------------------------------
class FaceStatusSchema(ma.Schema):
    employee_id = ma.fields.String(required=True)
    consent = ma.fields.Nested(ConsentSchema, allow_none=True, required=True)
    enrolled = ma.fields.Boolean(required=True)
    enrolled_at = ma.fields.AwareDateTime(allow_none=True)
    enrolled_by = ma.fields.String(allow_none=True)
    source = ma.fields.String(allow_none=True)
    version = ma.fields.Integer(allow_none=True)
    photo_kept_until = ma.fields.AwareDateTime(allow_none=True, metadata={
        "description": "Deadline of the kept raw photo, if any (QIANLI_FACE_PHOTO_RETENTION_S)"})
    locked = ma.fields.Boolean(required=True)
    locked_at = ma.fields.AwareDateTime(allow_none=True)
    consecutive_failures = ma.fields.Integer(required=True)
    provided_by_employer = ma.fields.Boolean(allow_none=True, metadata={
        "description": "The reference came from HR (hr_upload, roster_import): it counts only once the employee "
                       "confirms it (confirmFaceReference)"})
    employee_confirmed_at = ma.fields.AwareDateTime(allow_none=True)


def _status_body(st: svc.FaceStatus) -> dict:
    e = st.enrolment
    return {"employee_id": st.employee_id, "consent": _consent_body(st.consent) if st.consent else None,
            "enrolled": e is not None, "enrolled_at": e.updated_at if e else None,
            "enrolled_by": e.enrolled_by if e else None, "source": e.source if e else None,
            "version": e.version if e else None, "photo_kept_until": st.photo_kept_until,
            "locked": st.locked, "locked_at": st.lock.locked_at if st.lock else None,
            "consecutive_failures": st.consecutive_failures,
            "provided_by_employer": (e.source in EMPLOYER_FACE_SOURCES) if e else None,
            "employee_confirmed_at": e.employee_confirmed_at if e else None}


class EnrolFlagsSchema(StrictSchema):
    written_consent_attested = ma.fields.Boolean(load_default=False, metadata={
        "description": "HR attests that the employee signed a paper consent form for face processing "
                       "(recorded with the HR user); without it the employee's own consent must exist"})
    consent_reference = ma.fields.String(load_default="", validate=ma.validate.Length(max=200), metadata={
        "description": "Reference of the signed paper form (with written_consent_attested)"})


class EnrolPhotoSchema(StrictSchema):
    photo = ma.fields.Raw(required=True, metadata={"type": "string", "format": "binary",
                                                   "description": "Reference photo (JPEG, PNG or WebP; one face)"})


class UnlockSchema(StrictSchema):
    reason = ma.fields.String(load_default="", validate=ma.validate.Length(max=500))


@blp.route("/hr/employees/<string:employee_id>/face")
class HrFace(MethodView):
    @hr_required()
    @blp.response(200, FaceStatusSchema)
    @blp.doc(operationId="getFaceEnrolment", summary="An employee's face consent, enrolment and lock state",
             description="A department head: employees of their department only (others: 404).")
    def get(self, employee_id):
        p = current_principal()
        emp = get_hr_employee(db(), get_reviewer(db(), p.subject_id, p.company_id), employee_id)
        return _status_body(svc.face_status(db(), company_id=p.company_id, employee_id=emp.id))

    @hr_required("hr_specialist", "hr_manager")
    @blp.arguments(EnrolFlagsSchema, location="query")
    @blp.arguments(EnrolPhotoSchema, location="files")
    @blp.response(201, FaceStatusSchema)
    @blp.doc(operationId="enrolFace",
             summary="Enrol (or replace) an employee's reference face from one photo",
             description="409 face_consent_missing unless the employee gave consent (giveFaceConsent) or "
                         "written_consent_attested=true. Only the encrypted template is kept; the photo is "
                         "not kept unless QIANLI_FACE_PHOTO_RETENTION_S > 0. The reference is 'provided by the "
                         "employer': face checks refuse it (409 face_reference_unconfirmed) until the employee "
                         "confirms it in the mini-program (confirmFaceReference) or enrols their own face.")
    def put(self, flags, files, employee_id):
        p = current_principal()
        rt = runtime()
        emp = get_employee(db(), employee_id, p.company_id)
        data = _read(files["photo"], rt.settings.max_request_bytes)
        svc.enrol_reference(db(), rt, emp, data, actor=p.actor, source="hr_upload",
                            written_consent_attested=flags["written_consent_attested"],
                            consent_reference=flags["consent_reference"], meta=_meta())
        return _status_body(svc.face_status(db(), company_id=p.company_id, employee_id=emp.id)), 201


@blp.route("/hr/employees/<string:employee_id>/face/unlock")
class HrFaceUnlock(MethodView):
    @hr_required("hr_specialist", "hr_manager")
    @blp.arguments(UnlockSchema)
    @blp.response(200, FaceStatusSchema)
    @blp.doc(operationId="unlockFace", summary="Clear a face-verification lock (after 5 consecutive failures)")
    def post(self, args, employee_id):
        p = current_principal()
        return _status_body(svc.unlock_face(db(), company_id=p.company_id, employee_id=employee_id, actor=p.actor,
                                            reason=args["reason"], meta=_meta()))


# -- liveness + verification ------------------------------------------------------------------
class StartChallengeSchema(StrictSchema):
    case_id = ma.fields.String(required=True, validate=NonBlank(32))


class ChallengeSchema(ma.Schema):
    nonce = ma.fields.String(required=True, metadata={"description": "Single use; put it in the verifyFace URL"})
    actions = ma.fields.List(ma.fields.String(), required=True, metadata={
        "description": "Two of blink, turn_left, turn_right, open_mouth, in the order to perform them "
                       "(turn_left: the person turns to their own left)"})
    expires_at = ma.fields.AwareDateTime(required=True)
    expires_in_s = ma.fields.Integer(required=True)
    min_frames = ma.fields.Integer(required=True)
    max_frames = ma.fields.Integer(required=True)
    max_frame_bytes = ma.fields.Integer(required=True)


class BurstSchema(StrictSchema):
    frames = ma.fields.List(ma.fields.Raw(metadata={"type": "string", "format": "binary"}), required=True,
                            metadata={"description": "The burst in time order (repeat the part 'frames'): "
                                                     "a neutral frame first, then the actions in order. JPEG/PNG, "
                                                     "not mirrored."})


class FaceVerifiedSchema(ma.Schema):
    verified = ma.fields.Boolean(required=True)
    distance = ma.fields.Float(required=True)
    threshold = ma.fields.Float(required=True)
    frames = ma.fields.Integer(required=True)
    actions = ma.fields.List(ma.fields.String(), required=True)


@blp.route("/faces/liveness/challenges")
class LivenessChallenges(MethodView):
    @employee_required
    @blp.arguments(StartChallengeSchema)
    @blp.response(201, ChallengeSchema)
    @blp.doc(operationId="startLivenessChallenge",
             summary="A random two-action liveness challenge for a face check on this case (short-lived, single use)")
    def post(self, args):
        p = current_principal()
        rt = runtime()
        ch = svc.start_liveness_challenge(db(), rt, company_id=p.company_id, employee_id=p.subject_id,
                                          case_id=args["case_id"], meta=_meta(p.openid))
        s = rt.settings
        return {"nonce": ch.nonce, "actions": list(ch.actions), "expires_at": ch.expires_at_dt,
                "expires_in_s": int(ch.expires_at - ch.issued_at), "min_frames": s.liveness_min_frames,
                "max_frames": s.liveness_max_frames, "max_frame_bytes": s.liveness_max_frame_bytes}


@blp.route("/faces/liveness/challenges/<string:nonce>/verify")
class VerifyFace(MethodView):
    @employee_required
    @blp.arguments(BurstSchema, location="files")
    @blp.response(200, FaceVerifiedSchema)
    @blp.doc(operationId="verifyFace",
             summary="Submit the liveness burst for the challenge; checks the actions, one person throughout, "
                     "and the match with the enrolled face",
             description="Success counts as the face factor of the signing intent. Failures: 422 liveness_failed "
                         "(details.reason), 403 face_mismatch (distance above QIANLI_FACE_RETAKE_THRESHOLD); 5 "
                         "consecutive failures lock face checks (423 face_locked) until HR unlocks. A distance "
                         "between QIANLI_FACE_THRESHOLD and QIANLI_FACE_RETAKE_THRESHOLD is 422 face_retake (take "
                         "the photos again; recorded, not counted towards the lock). The challenge is spent by any "
                         "submission.")
    def post(self, files, nonce):
        p = current_principal()
        rt = runtime()
        limit = rt.settings.liveness_max_frame_bytes
        frames = [_read(f, limit) for f in files["frames"][: rt.settings.liveness_max_frames + 1]]
        res = svc.verify_face(db(), rt, company_id=p.company_id, employee_id=p.subject_id, nonce=nonce,
                              frames=frames, meta=_meta(p.openid))
        return {"verified": True, "distance": round(res.distance, 4), "threshold": res.threshold,
                "frames": res.frames, "actions": list(res.actions)}


# -- the signing intent -----------------------------------------------------------------------
class IntentRequestSchema(StrictSchema):
    case_id = ma.fields.String(required=True, validate=NonBlank(32))
    letter_sha256 = ma.fields.String(required=True, validate=ma.validate.Regexp(r"^[0-9a-fA-F]{64}$"),
                                     metadata={"description": "SHA-256 (hex) of the letter PDF to be signed"})


class IntentSchema(ma.Schema):
    intent_id = ma.fields.String(required=True, metadata={"description": "Single use; give it to the signing call"})
    expires_at = ma.fields.AwareDateTime(required=True)


@blp.route("/identity/signing-intents")
class SigningIntents(MethodView):
    @employee_required
    @blp.arguments(IntentRequestSchema)
    @blp.response(201, IntentSchema)
    @blp.doc(operationId="createSigningIntent",
             summary="After a 'sign' SMS code and a face check with liveness (both within the window): a "
                     "single-use signing intent bound to this case and letter",
             description="403 signing_factors_missing (details.missing) when a factor is missing or too old.")
    def post(self, args):
        p = current_principal()
        it = svc.create_signing_intent(db(), runtime(), company_id=p.company_id, employee_id=p.subject_id,
                                       case_id=args["case_id"], letter_sha256=args["letter_sha256"],
                                       meta=_meta(p.openid))
        return {"intent_id": it.id, "expires_at": it.expires_at}


# -- the employee's own reference -------------------------------------------------------------------
class MyReferenceSchema(ma.Schema):
    enrolled = ma.fields.Boolean(required=True)
    version = ma.fields.Integer(allow_none=True)
    source = ma.fields.String(allow_none=True)
    source_label = ma.fields.String(allow_none=True, metadata={"description": "zh-CN, to show the employee"})
    provided_by_employer = ma.fields.Boolean(required=True)
    needs_confirmation = ma.fields.Boolean(required=True)
    enrolled_at = ma.fields.AwareDateTime(allow_none=True)
    employee_confirmed_at = ma.fields.AwareDateTime(allow_none=True)


class ConfirmReferenceSchema(StrictSchema):
    version = ma.fields.Integer(required=True, validate=ma.validate.Range(min=1), metadata={
        "description": "The version shown (guards against a photo replaced meanwhile)"})
    accept = ma.fields.Boolean(required=True, metadata={
        "description": "true: this is my photo; false: it is not (the reference is deleted and HR alerted)"})


class CertifiedStartSchema(ma.Schema):
    biz_token = ma.fields.String(required=True, metadata={"description": "Give it to the FaceID mini-program plugin"})
    url = ma.fields.String(required=True)
    expires_in_s = ma.fields.Integer(required=True)
    provider = ma.fields.String(required=True)


class CertifiedFinishSchema(StrictSchema):
    biz_token = ma.fields.String(required=True, validate=NonBlank(128))


def _my_reference(company_id: str, employee_id: str) -> dict:
    st = svc.face_status(db(), company_id=company_id, employee_id=employee_id)
    e = st.enrolment
    employer = bool(e and e.source in EMPLOYER_FACE_SOURCES)
    return {"enrolled": e is not None, "version": e.version if e else None, "source": e.source if e else None,
            "source_label": FACE_SOURCE_LABELS.get(e.source, e.source) if e else None,
            "provided_by_employer": employer, "needs_confirmation": employer and e.employee_confirmed_at is None,
            "enrolled_at": e.updated_at if e else None, "employee_confirmed_at": e.employee_confirmed_at if e else None}


@blp.route("/faces/reference")
class MyReference(MethodView):
    @employee_required
    @blp.response(200, MyReferenceSchema)
    @blp.doc(operationId="getMyFaceReference",
             summary="Where the employee's face reference came from, and whether it waits for their confirmation")
    def get(self):
        p = current_principal()
        return _my_reference(p.company_id, p.subject_id)


@blp.route("/faces/reference/confirmation")
class MyReferenceConfirmation(MethodView):
    @employee_required
    @blp.arguments(ConfirmReferenceSchema)
    @blp.response(200, MyReferenceSchema)
    @blp.doc(operationId="confirmFaceReference",
             summary="Confirm (or reject) the reference photo the employer provided",
             description="409 face_reference_not_employer (the employee's own reference needs no confirmation), "
                         "409 face_reference_changed (another version now), 409 identity_not_settled (a WeChat "
                         "binding in its cooling period cannot vouch for a face). Rejecting deletes it and alerts HR.")
    def post(self, args):
        p = current_principal()
        svc.confirm_face_reference(db(), runtime(), company_id=p.company_id, employee_id=p.subject_id,
                                   version=args["version"], accept=args["accept"], meta=_meta(p.openid))
        return _my_reference(p.company_id, p.subject_id)


@blp.route("/faces/enrolment/challenges")
class EnrolmentChallenges(MethodView):
    @employee_required
    @blp.response(201, ChallengeSchema)
    @blp.doc(operationId="startFaceEnrolmentChallenge",
             summary="A liveness challenge to enrol the employee's own face (self-enrolment; needs consent)")
    def post(self):
        p = current_principal()
        rt = runtime()
        ch = svc.start_enrolment_challenge(db(), rt, company_id=p.company_id, employee_id=p.subject_id)
        s = rt.settings
        return {"nonce": ch.nonce, "actions": list(ch.actions), "expires_at": ch.expires_at_dt,
                "expires_in_s": int(ch.expires_at - ch.issued_at), "min_frames": s.liveness_min_frames,
                "max_frames": s.liveness_max_frames, "max_frame_bytes": s.liveness_max_frame_bytes}


@blp.route("/faces/enrolment/challenges/<string:nonce>/enrol")
class EnrolMyFace(MethodView):
    @employee_required
    @blp.arguments(BurstSchema, location="files")
    @blp.response(201, MyReferenceSchema)
    @blp.doc(operationId="enrolMyFace",
             summary="Submit the liveness burst: the employee's own capture becomes the face reference",
             description="Replaces any other reference (an employer-provided one included). 422 liveness_failed; "
                         "the challenge is spent by any submission.")
    def post(self, files, nonce):
        p = current_principal()
        rt = runtime()
        limit = rt.settings.liveness_max_frame_bytes
        frames = [_read(f, limit) for f in files["frames"][: rt.settings.liveness_max_frames + 1]]
        svc.self_enrol(db(), rt, company_id=p.company_id, employee_id=p.subject_id, nonce=nonce, frames=frames,
                       meta=_meta(p.openid))
        return _my_reference(p.company_id, p.subject_id), 201


@blp.route("/faces/certified-enrolments")
class CertifiedEnrolments(MethodView):
    @employee_required
    @blp.response(201, CertifiedStartSchema)
    @blp.doc(operationId="startCertifiedFaceEnrolment",
             summary="Start a Tencent Cloud FaceID (人脸核身) check against the ID number on the roster",
             description="503 faceid_not_configured when QIANLI_FACEID_BACKEND=off; 409 national_id_missing.")
    def post(self):
        p = current_principal()
        return svc.start_certified_enrolment(db(), runtime(), company_id=p.company_id, employee_id=p.subject_id), 201


@blp.route("/faces/certified-enrolments/finish")
class CertifiedEnrolmentFinish(MethodView):
    @employee_required
    @blp.arguments(CertifiedFinishSchema)
    @blp.response(201, MyReferenceSchema)
    @blp.doc(operationId="finishCertifiedFaceEnrolment",
             summary="After the FaceID plugin: the live face matched the ID's authoritative photo -> reference",
             description="409 faceid_not_finished (the plugin has not completed), 422 faceid_failed, 409 "
                         "faceid_identity_mismatch, 422 faceid_token_invalid (unknown, expired, used, another "
                         "employee's).")
    def post(self, args):
        p = current_principal()
        svc.finish_certified_enrolment(db(), runtime(), company_id=p.company_id, employee_id=p.subject_id,
                                       biz_token=args["biz_token"], meta=_meta(p.openid))
        return _my_reference(p.company_id, p.subject_id), 201
