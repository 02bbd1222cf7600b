"""The employee's answers in a review: confirm HR's earlier last day, withdraw (or ask to)."""

from __future__ import annotations

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint

from qianli.services import review as svc

from api.auth import current_principal, employee_required
from api.cases import CaseSchema, ChatNoticeSchema
from api.context import db, runtime
from api.schemas import StrictSchema

__all__ = ["blp"]

blp = Blueprint("case_actions", __name__, url_prefix="/api/v1/cases", description="Resignation cases (employee answers)")


class ConfirmLastDaySchema(StrictSchema):
    agreed_last_day = ma.fields.Date(required=True, metadata={"description": "The day HR proposed (guards a stale page)"})
    accept = ma.fields.Boolean(load_default=True, metadata={"description": "false declines: the lawful day stands"})


class WithdrawSchema(StrictSchema):
    reason = ma.fields.String(load_default="", validate=ma.validate.Length(max=svc.MAX_COMMENT))


class ChatNoticeAnswerSchema(StrictSchema):
    answer = ma.fields.String(required=True, validate=ma.validate.OneOf(("confirm", "dispute")), metadata={
        "description": "confirm: I sent this message as my resignation; dispute: 我没有提出离职"})
    comment = ma.fields.String(load_default="", validate=ma.validate.Length(max=svc.MAX_COMMENT))


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


@blp.route("/<string:case_id>/chat-notice/answer")
class ChatNoticeAnswer(MethodView):
    @employee_required
    @blp.arguments(ChatNoticeAnswerSchema)
    @blp.response(200, ChatNoticeSchema)
    @blp.doc(operationId="respondToChatNotice",
             summary="Confirm or dispute (我没有提出离职) the chat message HR recorded as this resignation",
             description="No HR consent involved; one answer per case (409 chat_notice_already_answered). A dispute "
                         "stops the reminders, alerts HR, is shown in the console and the dossier, and the case "
                         "cannot be approved unless the employee signs a letter themselves. 409 no_chat_notice for "
                         "a case the employee opened.")
    def post(self, args, case_id):
        from api.wechat import request_meta

        p = current_principal()
        meta = request_meta(p.openid)
        return svc.respond_to_chat_notice(db(), runtime(), employee_id=p.subject_id, company_id=p.company_id,
                                          case_id=case_id, actor=p.actor, answer=args["answer"],
                                          comment=args["comment"], meta=meta.as_evidence())
