"""The art. 36 addendum: previewAgreementAddendum, signAgreementAddendum, getAgreementAddendum."""

from __future__ import annotations

import io

import marshmallow as ma
from flask import request, send_file
from flask.views import MethodView
from flask_smorest import Blueprint

from cases.errors import Forbidden, InvalidInput
from qianli.services import agreement as svc
from qianli.services.cases import get_case, get_employee_case

from api.auth import current_principal, employee_required, signed_in_required
from api.context import db, runtime
from api.schemas import NonBlank, StrictSchema

__all__ = ["blp"]

blp = Blueprint("agreement", __name__, url_prefix="/api/v1",
                description="Earlier last day by mutual agreement (art. 36): the signed and sealed addendum")


class AddendumFormSchema(StrictSchema):
    intent_id = ma.fields.String(required=True, validate=NonBlank(128),
                                 metadata={"description": "from createSigningIntent, bound to the addendum's SHA-256"})


class AddendumMultipartSchema(AddendumFormSchema):
    signature = ma.fields.Raw(required=True, metadata={"type": "string", "format": "binary",
                                                       "description": "handwritten signature drawn on the canvas (PNG)"})


class SignedAddendumSchema(ma.Schema):
    document_id = ma.fields.String(required=True)
    sha256 = ma.fields.String(required=True, metadata={"description": "SHA-256 of the signed and sealed PDF"})
    addendum_sha256 = ma.fields.String(required=True, metadata={"description": "SHA-256 of the unsigned addendum"})
    agreed_last_day = ma.fields.Date(required=True)
    pades_level = ma.fields.String(required=True, metadata={"example": "B-LTA"})
    case_state = ma.fields.String(required=True)


@blp.route("/cases/<string:case_id>/agreement/addendum/preview")
class AddendumPreview(MethodView):
    @employee_required
    @blp.response(200, {"type": "string", "format": "binary"}, content_type="application/pdf",
                  headers={"X-Letter-SHA256": {"description": "SHA-256 of this PDF (bind it with createSigningIntent)",
                                               "schema": {"type": "string"}}})
    @blp.doc(operationId="previewAgreementAddendum",
             summary="The unsigned art. 36 addendum for the earlier last day HR proposed (PDF) and its SHA-256",
             description="409 no_pending_agreement when HR has proposed no earlier day (or it was answered). The header "
                         "X-Letter-SHA256 is what createSigningIntent binds (letter_sha256 = this value).")
    def get(self, case_id):
        p = current_principal()
        pdf, sha = svc.preview_addendum(db(), employee_id=p.subject_id, company_id=p.company_id, case_id=case_id)
        resp = send_file(io.BytesIO(pdf), mimetype="application/pdf", download_name=f"addendum-{case_id}.pdf",
                         max_age=0)
        resp.headers["X-Letter-SHA256"] = sha
        resp.headers["ETag"] = f'"{sha}"'
        return resp


@blp.route("/cases/<string:case_id>/agreement/addendum/signature")
class AddendumSignature(MethodView):
    @employee_required
    @blp.response(201, SignedAddendumSchema)
    @blp.doc(operationId="signAgreementAddendum",
             summary="Accept the earlier last day: sign the addendum (event certificate, B-LTA); the company seal follows",
             description="multipart/form-data: intent_id and the handwritten signature PNG. Spends the signing intent "
                         "(same SMS code and face check as the letter). Errors: 409 no_pending_agreement, 403 "
                         "signing_intent_invalid / signing_intent_mismatch, 422 signature_image_invalid / "
                         "signature_image_blank, 503 signing_failed.",
             requestBody={"required": True, "content": {"multipart/form-data": {"schema": AddendumMultipartSchema}}})
    def post(self, case_id):
        p = current_principal()
        rt = runtime()
        try:
            args = AddendumFormSchema().load(request.form.to_dict())
        except ma.ValidationError as exc:
            raise InvalidInput("validation_failed", "请求参数无效", details={"form": exc.messages}) from None
        extra = set(request.files) - {"signature"}
        f = request.files.get("signature")
        if extra or f is None:
            raise InvalidInput("file_missing", "缺少签名图片", details={"field": "signature"})
        png = f.read(rt.settings.signature_png_max_bytes + 1)
        doc = svc.sign_addendum(db(), rt, employee_id=p.subject_id, company_id=p.company_id, case_id=case_id,
                                intent_id=args["intent_id"], signature_png=png, actor=p.actor)
        case = get_case(db(), case_id, p.company_id)
        return {"document_id": doc.id, "sha256": doc.sha256, "addendum_sha256": doc.meta["addendum_sha256"],
                "agreed_last_day": case.agreed_last_day, "pades_level": "B-LTA", "case_state": case.state}


@blp.route("/cases/<string:case_id>/agreement/addendum")
class Addendum(MethodView):
    @signed_in_required
    @blp.response(200, {"type": "string", "format": "binary"}, content_type="application/pdf")
    @blp.doc(operationId="getAgreementAddendum", summary="The signed and sealed art. 36 addendum (PDF)",
             description="The employee for their own case; HR staff for their company's cases. 404 addendum_not_found.")
    def get(self, case_id):
        from qianli.storage import read_document

        p = current_principal()
        if p.kind == "employee":
            case = get_employee_case(db(), case_id, employee_id=p.subject_id, company_id=p.company_id)
        elif p.kind == "hr":  # department heads: their department only, like getCase
            from qianli.services.review import get_hr_case, get_reviewer

            case = get_hr_case(db(), get_reviewer(db(), p.subject_id, p.company_id), case_id)
        else:  # pragma: no cover - signed_in_required admits only these two
            raise Forbidden("signed_in_only", "请先登录")
        doc = svc.addendum_document(db(), case)
        data = read_document(runtime().store, doc)
        resp = send_file(io.BytesIO(data), mimetype="application/pdf", download_name=f"addendum-{case.id}.pdf",
                         max_age=0)
        resp.headers["X-Document-SHA256"] = doc.sha256
        return resp
