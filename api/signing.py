"""The letter and its signatures: previewLetter, signLetter, getSignedLetter, verifyDocument."""

from __future__ import annotations

import io

import marshmallow as ma
from flask import request, send_file
from flask.views import MethodView
from flask_smorest import Blueprint

from cases.errors import Forbidden, InvalidInput, NotFound
from qianli.services import signing as svc
from qianli.services.cases import get_case, get_employee_case
from qianli.services.review import get_hr_case, get_reviewer

from api.auth import current_principal, employee_required, signed_in_required
from api.context import db, runtime
from api.schemas import NonBlank, StrictSchema

__all__ = ["blp"]

blp = Blueprint("signing", __name__, url_prefix="/api/v1", description="Resignation letter: preview, signing, verification")

PDF = {"application/pdf": {"schema": {"type": "string", "format": "binary"}}}


class SignFormSchema(StrictSchema):
    intent_id = ma.fields.String(required=True, validate=NonBlank(128), metadata={"description": "from createSigningIntent"})
    idempotency_key = ma.fields.String(required=True, validate=ma.validate.Length(min=8, max=64),
                                       metadata={"description": "client-generated; a retry with the same key returns the same result"})


class SignMultipartSchema(SignFormSchema):
    signature = ma.fields.Raw(required=True, metadata={"type": "string", "format": "binary",
                                                       "description": "handwritten signature drawn on the canvas (PNG)"})


class SignedLetterSchema(ma.Schema):
    document_id = ma.fields.String(required=True)
    sha256 = ma.fields.String(required=True, metadata={"description": "SHA-256 of the signed PDF"})
    letter_sha256 = ma.fields.String(required=True, metadata={"description": "SHA-256 of the unsigned letter (previewLetter)"})
    pades_level = ma.fields.String(required=True, metadata={"example": "B-LTA"})
    event_cert_serial = ma.fields.String(required=True)
    signed_at = ma.fields.String(required=True, metadata={"description": "UTC, ISO 8601"})
    case_state = ma.fields.String(required=True)
    replayed = ma.fields.Boolean(required=True, metadata={"description": "true when this answers a retry"})


class SignatureReportSchema(ma.Schema):
    field_name = ma.fields.String(required=True)
    kind = ma.fields.String(required=True, metadata={"description": "signature | document_timestamp"})
    signer = ma.fields.String(allow_none=True)
    signer_serial = ma.fields.String(allow_none=True)
    case_id = ma.fields.String(allow_none=True, metadata={
        "description": "QianLi event certificates: the case the certificate was issued for (signing-context extension)"})
    intent_sha256 = ma.fields.String(allow_none=True, metadata={
        "description": "QianLi event certificates: SHA-256 of the signing intent (SMS + face checks) it was issued after; "
                       "equals intent_sha256 of the case's letter_signed evidence"})
    signing_time = ma.fields.String(allow_none=True, metadata={"description": "from the trusted timestamp, UTC"})
    claimed_time = ma.fields.String(allow_none=True, metadata={"description": "claimed by the signer's software"})
    intact = ma.fields.Boolean(required=True)
    valid = ma.fields.Boolean(required=True)
    trusted = ma.fields.Boolean(required=True, metadata={"description": "chains to QianLi's root"})
    pades_level = ma.fields.String(allow_none=True)
    ades_indication = ma.fields.String(allow_none=True)
    coverage = ma.fields.String(allow_none=True)
    signed_revision = ma.fields.Integer(allow_none=True)
    total_revisions = ma.fields.Integer(allow_none=True)
    modification_level = ma.fields.String(allow_none=True)
    modifications_ok = ma.fields.Boolean(required=True)
    summary = ma.fields.String(allow_none=True)
    error = ma.fields.String(allow_none=True)


class VerificationSchema(ma.Schema):
    ok = ma.fields.Boolean(required=True)
    signatures = ma.fields.List(ma.fields.Nested(SignatureReportSchema), required=True)
    total_revisions = ma.fields.Integer(required=True)
    problem = ma.fields.String(allow_none=True, metadata={"description": "no_signatures | invalid_signature"})


def _single_file(name: str, limit: int) -> bytes:
    extra = set(request.files) - {name}
    if extra:
        raise InvalidInput("validation_failed", "请求参数无效", details={"files": sorted(extra)})
    f = request.files.get(name)
    if f is None:
        raise InvalidInput("file_missing", "缺少上传文件", details={"field": name})
    return f.read(limit + 1)


@blp.route("/cases/<string:case_id>/letter/preview")
class LetterPreview(MethodView):
    @employee_required
    @blp.response(200, {"type": "string", "format": "binary"}, content_type="application/pdf",
                  headers={"X-Letter-SHA256": {"description": "SHA-256 of this PDF (bind it with createSigningIntent)",
                                               "schema": {"type": "string"}}})
    @blp.doc(operationId="previewLetter", summary="The unsigned resignation letter (PDF) and its SHA-256",
             description="Rendered from the case; the same case and day give the same bytes. The header "
                         "X-Letter-SHA256 is what createSigningIntent binds.")
    def get(self, case_id):
        p = current_principal()
        pdf, sha = svc.preview_letter(db(), employee_id=p.subject_id, company_id=p.company_id, case_id=case_id)
        resp = send_file(io.BytesIO(pdf), mimetype="application/pdf", download_name=f"letter-{case_id}.pdf", max_age=0)
        resp.headers["X-Letter-SHA256"] = sha
        resp.headers["ETag"] = f'"{sha}"'
        return resp


@blp.route("/cases/<string:case_id>/letter/signature")
class LetterSignature(MethodView):
    @employee_required
    @blp.response(201, SignedLetterSchema)
    @blp.alt_response(200, schema=SignedLetterSchema, description="A retry with the same idempotency key")
    @blp.doc(operationId="signLetter", summary="Sign the letter (PAdES B-LTA) with a fresh event certificate",
             description="multipart/form-data: intent_id, idempotency_key and the handwritten signature PNG. "
                         "Spends the signing intent; submits the letter (reminders stop).",
             requestBody={"required": True, "content": {"multipart/form-data": {"schema": SignMultipartSchema}}})
    def post(self, case_id):
        p = current_principal()
        rt = runtime()
        try:
            args = SignFormSchema().load(request.form.to_dict())
        except ma.ValidationError as exc:
            raise InvalidInput("validation_failed", "请求参数无效", details={"form": exc.messages}) from None
        png = _single_file("signature", rt.settings.signature_png_max_bytes)
        out = svc.sign_letter(db(), rt, employee_id=p.subject_id, company_id=p.company_id, case_id=case_id,
                              intent_id=args["intent_id"], signature_png=png,
                              idempotency_key=args["idempotency_key"], actor=p.actor)
        case = get_case(db(), case_id, p.company_id)
        body = {**out.request.result, "case_state": case.state, "replayed": out.replayed}
        return body, (200 if out.replayed else 201)


@blp.route("/cases/<string:case_id>/letter")
class SignedLetter(MethodView):
    @signed_in_required
    @blp.response(200, {"type": "string", "format": "binary"}, content_type="application/pdf")
    @blp.doc(operationId="getSignedLetter", summary="The latest signed letter (countersigned once HR approved)",
             description="The employee for their own case; HR staff for the cases getCase shows them "
                         "(a department head: their department's).")
    def get(self, case_id):
        p = current_principal()
        if p.kind == "employee":
            case = get_employee_case(db(), case_id, employee_id=p.subject_id, company_id=p.company_id)
        elif p.kind == "hr":  # the HR scoping of getCase (a department head: their department only)
            case = get_hr_case(db(), get_reviewer(db(), p.subject_id, p.company_id), case_id)
        else:  # pragma: no cover - signed_in_required admits only these two
            raise Forbidden("signed_in_only", "请先登录")
        doc = svc.latest_letter(db(), case)
        if doc is None:
            raise NotFound("letter_not_found", "还没有已签名的辞职信")
        from qianli.storage import read_document

        data = read_document(runtime().store, doc)
        resp = send_file(io.BytesIO(data), mimetype="application/pdf", download_name=f"letter-{case.id}-{doc.kind}.pdf",
                         max_age=0)
        resp.headers["X-Document-SHA256"] = doc.sha256
        return resp


@blp.route("/documents/verification")
class Verification(MethodView):
    @signed_in_required
    @blp.response(200, VerificationSchema)
    @blp.doc(operationId="verifyDocument", summary="Verify every signature in an uploaded PDF against QianLi's root",
             description="multipart/form-data with one file field 'file'. A PDF with no or invalid signatures is a "
                         "result (ok=false); a non-PDF is 422 pdf_invalid.",
             requestBody={"required": True, "content": {"multipart/form-data": {"schema": {
                 "type": "object", "required": ["file"],
                 "properties": {"file": {"type": "string", "format": "binary"}}, "additionalProperties": False}}}})
    def post(self):
        rt = runtime()
        data = _single_file("file", rt.settings.verify_max_bytes)
        return svc.verify_document(rt, data).to_dict()
