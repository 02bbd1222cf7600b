"""The employee's answers in a review: confirm HR's earlier last day, withdraw (or ask to)."""

from __future__ import annotations

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint

from qianli.services import review as svc

from api.auth import current_principal, employee_required
from api.cases import CaseSchema
from api.context import db
from api.schemas import StrictSchema

__all__ = ["blp"]

blp = Blueprint("case_actions", __name__, url_prefix="/api/v1/cases", description="Resignation cases (employee answers)")


class ConfirmLastDaySchema(StrictSchema):
    agreed_last_day = ma.fields.Date(required=True, metadata={"description": "The day HR proposed (guards a stale page)"})
    accept = ma.fields.Boolean(load_default=True, metadata={"description": "false declines: the lawful day stands"})


class WithdrawSchema(StrictSchema):
    reason = ma.fields.String(load_default="", validate=ma.validate.Length(max=svc.MAX_COMMENT))


class WithdrawResultSchema(CaseSchema):
    withdrawal = ma.fields.String(required=True, metadata={
        "description": "withdrawn (before notice arrived) or requested (waiting for the employer's consent)"})


@blp.route("/<string:case_id>/agreed-last-day")
class AgreedLastDay(MethodView):
    @employee_required
    @blp.arguments(ConfirmLastDaySchema)
    @blp.response(200, CaseSchema)
    @blp.doc(operationId="confirmAgreedLastDay",
             summary="Confirm (or decline) the earlier last day HR proposed (mutual agreement, art. 36)")
    def post(self, args, case_id):
        p = current_principal()
        return svc.confirm_agreed_last_day(db(), employee_id=p.subject_id, company_id=p.company_id, case_id=case_id,
                                           actor=p.actor, agreed_last_day=args["agreed_last_day"], accept=args["accept"])


@blp.route("/<string:case_id>/withdrawal")
class Withdrawal(MethodView):
    @employee_required
    @blp.arguments(WithdrawSchema)
    @blp.response(200, WithdrawResultSchema)
    @blp.doc(operationId="withdrawMyCase", summary="Withdraw the resignation, or ask the employer to agree to it",
             description="Once notice has reached the employer (when the case opened), withdrawal needs the "
                         "employer's consent: the request is recorded, the case stays as it is, and HR decides.")
    def post(self, args, case_id):
        p = current_principal()
        case, outcome = svc.request_withdrawal(db(), employee_id=p.subject_id, company_id=p.company_id,
                                               case_id=case_id, actor=p.actor, reason=args["reason"])
        case.withdrawal = outcome
        return case
