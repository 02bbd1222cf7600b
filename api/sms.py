"""SMS codes: sendSmsCode (purposes 'bind' and 'sign') and verifySmsCode (purpose 'sign')."""

from __future__ import annotations

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint

from cases.errors import Forbidden
from identity.sms import mask_phone, normalize_cn_mobile
from identity.sms_codes import PURPOSES
from qianli.services import identity as svc

from api.auth import current_principal, employee_required, wechat_user_required
from api.context import db, runtime
from api.schemas import NonBlank, StrictSchema
from api.wechat import request_meta

__all__ = ["blp"]

blp = Blueprint("sms", __name__, url_prefix="/api/v1/sms", description="SMS verification codes")


class SendCodeSchema(StrictSchema):
    purpose = ma.fields.String(required=True, validate=ma.validate.OneOf(PURPOSES))
    company_code = ma.fields.String(validate=NonBlank(64), metadata={"description": "purpose 'bind' only"})
    employee_no = ma.fields.String(validate=NonBlank(64), metadata={"description": "purpose 'bind' only"})
    phone = ma.fields.String(validate=NonBlank(32), metadata={"description": "purpose 'bind' only: the roster phone"})
    case_id = ma.fields.String(validate=NonBlank(32), metadata={"description": "purpose 'sign' only"})

    @ma.validates_schema
    def _fields_for_purpose(self, data, **_kw):
        need = ("company_code", "employee_no", "phone") if data.get("purpose") == "bind" else ("case_id",)
        banned = ("case_id",) if data.get("purpose") == "bind" else ("company_code", "employee_no", "phone")
        errors = {f: ["required for this purpose"] for f in need if f not in data}
        errors.update({f: ["not allowed for this purpose"] for f in banned if f in data})
        if errors:
            raise ma.ValidationError(errors)


class CodeSentSchema(ma.Schema):
    purpose = ma.fields.String(required=True)
    phone_masked = ma.fields.String(required=True, metadata={"example": "138****8000"})
    expires_in_s = ma.fields.Integer(required=True)
    resend_after_s = ma.fields.Integer(required=True)


class VerifyCodeSchema(StrictSchema):
    purpose = ma.fields.String(required=True, validate=ma.validate.OneOf(("sign",)))
    case_id = ma.fields.String(required=True, validate=NonBlank(32))
    code = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=16))


class CodeVerifiedSchema(ma.Schema):
    purpose = ma.fields.String(required=True)
    verified = ma.fields.Boolean(required=True)


@blp.route("/codes")
class Codes(MethodView):
    @wechat_user_required
    @blp.arguments(SendCodeSchema)
    @blp.response(202, CodeSentSchema)
    @blp.doc(operationId="sendSmsCode", summary="Send a 6-digit code (bind: to the roster phone if the details "
                                                 "match - the answer is the same either way; sign: to the "
                                                 "employee's roster phone)",
             description="Limits (429 with retry_after_s): per client IP, per WeChat openid, per employee and per "
                         "phone, each purpose with a budget of its own. A 'bind' request is charged to the "
                         "requester (IP, openid, a cooldown per requester and phone); only a roster match is "
                         "charged to the phone, quietly, so the answer (202, body, timing) never depends on "
                         "whether the details matched.")
    def post(self, args):
        p = current_principal()
        rt, meta = runtime(), request_meta(p.openid)
        policy = rt.sms_codes.policy
        if args["purpose"] == "bind":
            phone = normalize_cn_mobile(args["phone"])
            svc.send_bind_code(db(), rt, company_code=args["company_code"], employee_no=args["employee_no"],
                               phone=phone, meta=meta)
            masked = mask_phone(phone)
        else:
            if p.kind != "employee":
                raise Forbidden("employee_only", "请先绑定员工身份")
            masked = svc.send_sign_code(db(), rt, company_id=p.company_id, employee_id=p.subject_id,
                                        case_id=args["case_id"], meta=meta).phone_masked
        return {"purpose": args["purpose"], "phone_masked": masked, "expires_in_s": policy.ttl_s,
                "resend_after_s": policy.resend_cooldown_s}


@blp.route("/codes/verify")
class VerifyCode(MethodView):
    @employee_required
    @blp.arguments(VerifyCodeSchema)
    @blp.response(200, CodeVerifiedSchema)
    @blp.doc(operationId="verifySmsCode", summary="Check a 'sign' code; counts as the SMS factor of the signing intent")
    def post(self, args):
        p = current_principal()
        svc.verify_sign_code(db(), runtime(), company_id=p.company_id, employee_id=p.subject_id,
                             case_id=args["case_id"], code=args["code"], meta=request_meta(p.openid))
        return {"purpose": "sign", "verified": True}
