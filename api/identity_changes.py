"""Identity changes: the employee's answers (confirm / object) and HR's phone change and history.

WeChat user (bound or not): ``listIdentityChanges``, ``answerIdentityChange`` (only the WeChat that
was bound before the change may answer). Employee: ``getSigningReadiness``. HR:
``changeEmployeePhone`` (hr_specialist / hr_manager), ``listEmployeeIdentityChanges`` (any HR).
"""

from __future__ import annotations

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint

from qianli.services import identity_trust as svc
from qianli.services.cases import get_employee
from qianli.services.review import get_hr_employee, get_reviewer

from api.auth import current_principal, employee_required, hr_required, wechat_user_required
from api.context import db, runtime
from api.schemas import NonBlank, StrictSchema
from api.wechat import request_meta

__all__ = ["blp"]

blp = Blueprint("identity_changes", __name__, url_prefix="/api/v1", description="Identity changes: phone, WeChat "
                                                                                 "rebinding, face reference")


class IdentityChangeSchema(ma.Schema):
    id = ma.fields.String(required=True)
    employee_id = ma.fields.String(required=True)
    factor = ma.fields.String(required=True, metadata={"description": "phone, wechat or face"})
    source = ma.fields.String(required=True, metadata={
        "description": "roster_import, cli, api, rebind, hr_upload, roster_import, self_capture, faceid_tencent"})
    actor = ma.fields.String(required=True, metadata={"description": "Who made the change (hr:<id>, wechat:<openid>...)"})
    old_value = ma.fields.String(required=True, metadata={"description": "Masked"})
    new_value = ma.fields.String(required=True, metadata={"description": "Masked"})
    reason = ma.fields.String(required=True)
    created_at = ma.fields.AwareDateTime(required=True)
    usable_from = ma.fields.AwareDateTime(allow_none=True, metadata={
        "description": "When the factor may be used for signing without confirmation (null: only with it)"})
    status = ma.fields.String(required=True, metadata={"description": "pending, cooled, confirmed or objected"})
    confirmed_at = ma.fields.AwareDateTime(allow_none=True)
    objected_at = ma.fields.AwareDateTime(allow_none=True)
    can_answer = ma.fields.Boolean(required=True, metadata={
        "description": "Whether the caller's WeChat may confirm or object (it was the one bound before the change)"})


class IdentityChangeListSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(IdentityChangeSchema), required=True)


class AnswerSchema(StrictSchema):
    answer = ma.fields.String(required=True, validate=ma.validate.OneOf(("confirm", "object")), metadata={
        "description": "confirm: I asked for this change; object: I did not (the factor is then blocked for signing)"})
    comment = ma.fields.String(load_default="", validate=ma.validate.Length(max=500))


class PhoneChangeSchema(StrictSchema):
    phone = ma.fields.String(required=True, validate=NonBlank(32), metadata={"description": "The new mobile number"})
    reason = ma.fields.String(required=True, validate=NonBlank(500), metadata={"description": "Why (recorded, shown to "
                                                                                            "the employee)"})


class BlockerSchema(ma.Schema):
    factor = ma.fields.String(required=True)
    reason = ma.fields.String(required=True, metadata={"description": "cooling, objected or unconfirmed"})
    change_id = ma.fields.String(allow_none=True)
    changed_at = ma.fields.String(allow_none=True)
    usable_from = ma.fields.String(allow_none=True)


class ReadinessSchema(ma.Schema):
    ready = ma.fields.Boolean(required=True)
    blockers = ma.fields.List(ma.fields.Nested(BlockerSchema), required=True)


def _body(ch, openid: str | None = None) -> dict:
    status = svc.change_status(ch)
    return {"id": ch.id, "employee_id": ch.employee_id, "factor": ch.factor, "source": ch.source, "actor": ch.actor,
            "old_value": ch.old_value, "new_value": ch.new_value, "reason": ch.reason, "created_at": ch.created_at,
            "usable_from": ch.usable_from, "status": status, "confirmed_at": ch.confirmed_at,
            "objected_at": ch.objected_at,
            "can_answer": bool(openid and ch.notify_openid == openid and ch.factor in ("phone", "wechat")
                               and status not in ("confirmed", "objected"))}


@blp.route("/identity/changes")
class MyIdentityChanges(MethodView):
    @wechat_user_required
    @blp.response(200, IdentityChangeListSchema)
    @blp.doc(operationId="listIdentityChanges",
             summary="Identity changes announced to this WeChat (and, for a bound employee, all of theirs)")
    def get(self):
        p = current_principal()
        employee_id = p.subject_id if p.kind == "employee" else None
        items = svc.list_changes(db(), openid=p.openid, employee_id=employee_id,
                                 company_id=p.company_id if employee_id else None)
        return {"items": [_body(ch, p.openid) for ch in items]}


@blp.route("/identity/changes/<string:change_id>/answer")
class AnswerIdentityChange(MethodView):
    @wechat_user_required
    @blp.arguments(AnswerSchema)
    @blp.response(200, IdentityChangeSchema)
    @blp.doc(operationId="answerIdentityChange",
             summary="Confirm or object to a phone change or a WeChat rebinding, from the WeChat bound before it",
             description="Only that WeChat may answer (anyone else: 404). One answer (409 "
                         "identity_change_already_answered). An objection is possible after the cooling period too; "
                         "it blocks the factor for signing and alerts HR.")
    def post(self, args, change_id):
        p = current_principal()
        ch = svc.answer_change(db(), runtime(), change_id=change_id, openid=p.openid, answer=args["answer"],
                               comment=args["comment"], meta=request_meta(p.openid))
        return _body(ch, p.openid)


@blp.route("/identity/signing-readiness")
class SigningReadiness(MethodView):
    @employee_required
    @blp.response(200, ReadinessSchema)
    @blp.doc(operationId="getSigningReadiness",
             summary="Whether the employee's phone, WeChat and face reference may be used for signing now")
    def get(self):
        p = current_principal()
        emp = get_employee(db(), p.subject_id, p.company_id)
        blockers = svc.signing_blockers(db(), runtime(), emp)
        return {"ready": not blockers, "blockers": blockers}


@blp.route("/hr/employees/<string:employee_id>/phone")
class HrPhone(MethodView):
    @hr_required("hr_specialist", "hr_manager")
    @blp.arguments(PhoneChangeSchema)
    @blp.response(200, IdentityChangeSchema)
    @blp.doc(operationId="changeEmployeePhone",
             summary="Change an employee's roster phone (an identity change: announced, cooling period)",
             description="409 phone_change_case_open while a case is in progress, 409 phone_taken, 409 "
                         "phone_unchanged. The old number gets an SMS and the bound WeChat a notice; the new number "
                         "is usable for signing after the employee confirms it from that WeChat or after "
                         "QIANLI_IDENTITY_COOLING_DAYS without objection.")
    def put(self, args, employee_id):
        from cases.errors import Conflict

        p = current_principal()
        emp = get_hr_employee(db(), get_reviewer(db(), p.subject_id, p.company_id), employee_id)
        ch = svc.change_phone(db(), runtime(), emp, args["phone"], actor=p.actor, source="api",
                              reason=args["reason"], meta=request_meta())
        if ch is None:
            raise Conflict("phone_unchanged", "新手机号与当前登记的相同")
        return _body(ch)


@blp.route("/hr/employees/<string:employee_id>/identity-changes")
class HrIdentityChanges(MethodView):
    @hr_required()
    @blp.response(200, IdentityChangeListSchema)
    @blp.doc(operationId="listEmployeeIdentityChanges",
             summary="An employee's identity history: phone changes, WeChat rebinding, face references")
    def get(self, employee_id):
        p = current_principal()
        emp = get_hr_employee(db(), get_reviewer(db(), p.subject_id, p.company_id), employee_id)
        return {"items": [_body(ch) for ch in svc.list_changes(db(), openid=None, employee_id=emp.id,
                                                              company_id=emp.company_id, limit=200)]}
