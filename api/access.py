"""Access revocation of a case (HR) and the receivers' confirmation callback (权限验证).

``getCaseAccessRevocation``: when access ends, whether it was sent, and per system whether it
confirmed. ``revokeAccessNow``: HR sends the revocation at once (reason required, in the evidence).
``confirmAccessRevocation``: called by the company's systems, authenticated by the token of their
copy of the ``employee.access_revoke`` event (no QianLi account), idempotent.
"""

from __future__ import annotations

import marshmallow as ma
from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint

from qianli.services import revocation as svc
from qianli.services.review import get_hr_case, get_reviewer

from api.auth import current_principal, hr_required
from api.context import db, runtime
from api.schemas import NonBlank, StrictSchema

__all__ = ["blp"]

blp = Blueprint("access", __name__, url_prefix="/api/v1", description="Access revocation and its confirmations")


class RevocationSchema(ma.Schema):
    id = ma.fields.String(required=True)
    last_day = ma.fields.Date(required=True)
    due_at = ma.fields.AwareDateTime(required=True, metadata={"description": "23:59 Asia/Shanghai of the last day, "
                                                                            "or when HR revoked at once"})
    status = ma.fields.String(required=True, metadata={"description": "scheduled, sent or cancelled"})
    mode = ma.fields.String(required=True, metadata={"description": "scheduled or immediate"})
    reason = ma.fields.String(required=True)
    requested_by = ma.fields.String(required=True)
    sent_at = ma.fields.AwareDateTime(allow_none=True, required=True)
    cancelled_at = ma.fields.AwareDateTime(allow_none=True, required=True)


class ConfirmationSchema(ma.Schema):
    system = ma.fields.String(required=True)
    endpoint_id = ma.fields.String(allow_none=True, required=True)
    expected = ma.fields.Boolean(required=True, metadata={"description": "false: a further system a receiver reported"})
    status = ma.fields.String(required=True, metadata={"description": "pending, confirmed or failed"})
    detail = ma.fields.String(required=True)
    confirmed_at = ma.fields.AwareDateTime(allow_none=True, required=True)
    confirmed_via = ma.fields.String(allow_none=True, required=True)
    alerted_at = ma.fields.AwareDateTime(allow_none=True, required=True,
                                         metadata={"description": "When HR was alerted that it had not confirmed"})


class AccessStatusSchema(ma.Schema):
    case_id = ma.fields.String(required=True)
    revocation = ma.fields.Nested(RevocationSchema, allow_none=True, required=True)
    confirmations = ma.fields.List(ma.fields.Nested(ConfirmationSchema), required=True)
    all_confirmed = ma.fields.Boolean(required=True)
    confirm_deadline_s = ma.fields.Integer(required=True)


class RevokeNowSchema(StrictSchema):
    reason = ma.fields.String(required=True, validate=NonBlank(500))


class SystemReportSchema(StrictSchema):
    system = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=100))
    result = ma.fields.String(load_default="revoked", validate=ma.validate.OneOf(["revoked", "failed"]))
    detail = ma.fields.String(load_default="", validate=ma.validate.Length(max=500))


class ConfirmInSchema(StrictSchema):
    token = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=200),
                             metadata={"description": "data.confirmation.token of the employee.access_revoke event"})
    result = ma.fields.String(load_default="revoked", validate=ma.validate.OneOf(["revoked", "failed"]))
    detail = ma.fields.String(load_default="", validate=ma.validate.Length(max=500))
    systems = ma.fields.List(ma.fields.Nested(SystemReportSchema), load_default=list,
                             validate=ma.validate.Length(max=50),
                             metadata={"description": "Further systems behind this receiver (door access, VPN...)"})


class ConfirmOutSchema(ma.Schema):
    system = ma.fields.String(required=True)
    status = ma.fields.String(required=True)
    confirmed_at = ma.fields.AwareDateTime(allow_none=True, required=True)
    changed = ma.fields.Boolean(required=True, metadata={"description": "false: already recorded (idempotent)"})


def _status(case) -> dict:
    st = svc.case_access_status(db(), case)
    return {"case_id": case.id, **st, "confirm_deadline_s": runtime().settings.revocation_confirm_deadline_s}


def _hr_case(case_id: str, *, for_update: bool = False):
    p = current_principal()
    return get_hr_case(db(), get_reviewer(db(), p.subject_id, p.company_id), case_id, for_update=for_update)


@blp.route("/hr/cases/<string:case_id>/access-revocation")
class CaseAccess(MethodView):
    @hr_required()
    @blp.response(200, AccessStatusSchema)
    @blp.doc(operationId="getCaseAccessRevocation", summary="When the case's access ends and which systems confirmed")
    def get(self, case_id):
        return _status(_hr_case(case_id))


@blp.route("/hr/cases/<string:case_id>/access-revocation/revoke-now")
class RevokeNow(MethodView):
    @hr_required("hr_specialist", "hr_manager")
    @blp.arguments(RevokeNowSchema)
    @blp.response(200, AccessStatusSchema)
    @blp.doc(operationId="revokeAccessNow", summary="Revoke the employee's access at once (employee.access_revoke "
                                                     "and employee.payroll_stop now, WeCom member disabled)",
             description="409 access_already_revoked once sent; 409 case_withdrawn.")
    def post(self, args, case_id):
        p = current_principal()
        case = _hr_case(case_id, for_update=True)
        svc.revoke_access_now(db(), runtime(), case, actor=f"hr:{p.subject_id}", reason=args["reason"])
        return _status(case)


@blp.route("/access-revocations/confirm")
class Confirm(MethodView):
    @blp.arguments(ConfirmInSchema)
    @blp.response(200, ConfirmOutSchema)
    @blp.doc(operationId="confirmAccessRevocation",
             summary="A receiving system confirms it revoked the employee's access (idempotent)",
             description="Authenticated by data.confirmation.token of the employee.access_revoke delivery (401 "
                         "confirmation_token_invalid). result=failed reports that revocation failed there (HR alert); "
                         "a failure after a confirmation: 409 revocation_already_confirmed.")
    def post(self, args):
        out = svc.confirm_revocation(db(), runtime().settings, token=args["token"], result=args["result"],
                                     detail=args["detail"], systems=args["systems"],
                                     source=request.remote_addr or "")
        c = out.confirmation
        return {"system": c.system, "status": c.status, "confirmed_at": c.confirmed_at, "changed": out.changed}
