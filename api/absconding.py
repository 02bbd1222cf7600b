"""Leaving without notice (擅自离职): HR confirms the departure, serves the return-to-work notice,
records its postal delivery and the union notification, dismisses (art. 39(2)); the employee reads
the notices (read receipt) and answers in the mini-program. Rules: ``qianli.services.absconding``."""

from __future__ import annotations

import io

import marshmallow as ma
from flask import request, send_file
from flask.views import MethodView
from flask_smorest import Blueprint

from cases import absconding as rules
from cases.errors import Forbidden, InvalidInput
from qianli.models import REASON_CATEGORIES
from qianli.services import absconding as svc
from qianli.services.review import get_reviewer

from api.auth import current_principal, employee_required, hr_required, signed_in_required
from api.cases import CaseSchema
from api.context import db, runtime
from api.hr_cases import reviewer
from api.schemas import StrictSchema

__all__ = ["blp"]

blp = Blueprint("absconding", __name__, url_prefix="/api/v1", description="Leaving without notice (擅自离职)")


# ---- schemas -------------------------------------------------------------------------------------

class ConfirmDepartureSchema(StrictSchema):
    employee_id = ma.fields.String(load_default=None, validate=ma.validate.Length(min=1, max=32))
    employee_no = ma.fields.String(load_default=None, validate=ma.validate.Length(min=1, max=64))
    absent_days = ma.fields.List(ma.fields.Date(), required=True,
                                 validate=ma.validate.Length(min=1, max=rules.MAX_ABSENT_DAYS), metadata={
                                     "description": "The Chinese working days the employee was absent without "
                                                    "leave (holidays and weekends are refused; a 调休 Saturday counts)"})
    last_seen_on = ma.fields.Date(load_default=None, allow_none=True, metadata={
        "description": "The last day the employee was at work (before the first absent day)"})
    risk_id = ma.fields.String(load_default=None, allow_none=True, validate=ma.validate.Length(min=1, max=32),
                               metadata={"description": "The risk-list entry (listAttritionRisks) confirmed from"})
    note = ma.fields.String(load_default="", validate=ma.validate.Length(max=svc.MAX_TEXT))


class AbsenceClauseSchema(ma.Schema):
    reference = ma.fields.String(required=True)
    text = ma.fields.String(required=True)


class ReturnNoticeInfoSchema(ma.Schema):
    document_id = ma.fields.String(required=True)
    served_at = ma.fields.AwareDateTime(required=True)
    deadline = ma.fields.Date(required=True, metadata={"description": "Return or explain by 24:00 Beijing time"})
    deadline_working_days = ma.fields.Integer(required=True)
    deadline_provisional = ma.fields.Boolean(required=True)
    read_at = ma.fields.AwareDateTime(allow_none=True, metadata={"description": "The employee's read receipt"})
    deadline_passed = ma.fields.Boolean(required=True)


class DismissalInfoSchema(ma.Schema):
    document_id = ma.fields.String(required=True)
    dismissed_at = ma.fields.AwareDateTime(required=True)
    termination_date = ma.fields.Date(required=True)
    read_at = ma.fields.AwareDateTime(allow_none=True)


class AbsenceAnswerInfoSchema(ma.Schema):
    seq = ma.fields.Integer(required=True)
    answered_at = ma.fields.AwareDateTime(required=True)
    answer = ma.fields.String(required=True)
    text = ma.fields.String(allow_none=True)
    attachments = ma.fields.List(ma.fields.Dict(), allow_none=True)
    late = ma.fields.Boolean(allow_none=True)
    case_state = ma.fields.String(allow_none=True)
    resignation_case_id = ma.fields.String(allow_none=True)


class PostalDeliverySchema(ma.Schema):
    id = ma.fields.String(required=True)
    notice = ma.fields.String(required=True)
    document_id = ma.fields.String(allow_none=True)
    carrier = ma.fields.String(required=True)
    tracking_no = ma.fields.String(required=True)
    address = ma.fields.String(required=True)
    sent_at = ma.fields.AwareDateTime(required=True)
    status = ma.fields.String(required=True, metadata={"description": "sent, delivered or returned"})
    status_at = ma.fields.AwareDateTime(allow_none=True)
    status_note = ma.fields.String(required=True)
    recorded_by = ma.fields.String(required=True)


class UnionNotificationSchema(ma.Schema):
    id = ma.fields.String(required=True)
    union_name = ma.fields.String(required=True)
    contact_name = ma.fields.String(required=True)
    notified_at = ma.fields.AwareDateTime(required=True)
    method = ma.fields.String(required=True)
    response = ma.fields.String(required=True)
    objection = ma.fields.Boolean(required=True)
    responded_at = ma.fields.AwareDateTime(allow_none=True)
    recorded_by = ma.fields.String(required=True)


class MyAbsenceSchema(ma.Schema):
    case_id = ma.fields.String(required=True)
    state = ma.fields.String(required=True)
    absent_days = ma.fields.List(ma.fields.String(), required=True)
    last_seen_on = ma.fields.Date(allow_none=True)
    risk_id = ma.fields.String(allow_none=True)
    confirmed_at = ma.fields.AwareDateTime(required=True)
    handbook_clause = ma.fields.Nested(AbsenceClauseSchema, allow_none=True)
    return_notice = ma.fields.Nested(ReturnNoticeInfoSchema, allow_none=True)
    dismissal_notice = ma.fields.Nested(DismissalInfoSchema, allow_none=True)
    answers = ma.fields.List(ma.fields.Nested(AbsenceAnswerInfoSchema), required=True)
    resignation_case_id = ma.fields.String(allow_none=True, metadata={
        "description": "The resignation case opened when the employee answered 'resign'"})
    may_answer = ma.fields.Boolean(required=True)


class AbsenceSchema(MyAbsenceSchema):
    note = ma.fields.String(required=True)
    confirmed_by = ma.fields.String(required=True)
    postal_deliveries = ma.fields.List(ma.fields.Nested(PostalDeliverySchema), required=True)
    union_notifications = ma.fields.List(ma.fields.Nested(UnionNotificationSchema), required=True)
    dismissal_blockers = ma.fields.List(ma.fields.String(), required=True, metadata={
        "description": "Why dismissForAbsence would be refused now (empty: it may go ahead at this level)"})
    approval_chain = ma.fields.List(ma.fields.String(), required=True)
    deadline_working_days_policy = ma.fields.Integer(required=True)
    handbook_clause_configured = ma.fields.Boolean(required=True)


class PostalDeliveryInSchema(StrictSchema):
    notice = ma.fields.String(load_default="return_to_work", validate=ma.validate.OneOf(rules.NOTICE_KINDS))
    carrier = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=64), metadata={
        "description": "e.g. EMS, 顺丰速运"})
    tracking_no = ma.fields.String(required=True, validate=ma.validate.Length(min=4, max=64))
    address = ma.fields.String(required=True, validate=ma.validate.Length(min=5, max=500), metadata={
        "description": "The address agreed in the labour contract"})
    sent_at = ma.fields.AwareDateTime(required=True)


class PostalDeliveryUpdateSchema(StrictSchema):
    status = ma.fields.String(required=True, validate=ma.validate.OneOf(("delivered", "returned")))
    status_at = ma.fields.AwareDateTime(required=True)
    note = ma.fields.String(load_default="", validate=ma.validate.Length(max=500))


class UnionNotificationInSchema(StrictSchema):
    union_name = ma.fields.String(required=True, validate=ma.validate.Length(min=2, max=200))
    contact_name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=100),
                                    metadata={"description": "Who at the union received it"})
    notified_at = ma.fields.AwareDateTime(required=True)
    method = ma.fields.String(required=True, validate=ma.validate.OneOf(rules.UNION_METHODS))
    response = ma.fields.String(load_default="", validate=ma.validate.Length(max=svc.MAX_TEXT))
    objection = ma.fields.Boolean(load_default=False)
    responded_at = ma.fields.AwareDateTime(load_default=None, allow_none=True)


class DismissForAbsenceSchema(StrictSchema):
    comment = ma.fields.String(load_default="", validate=ma.validate.Length(max=1000))


class DismissForAbsenceResultSchema(ma.Schema):
    case_id = ma.fields.String(required=True)
    state = ma.fields.String(required=True)
    outcome = ma.fields.String(required=True, metadata={"description": "dismissal_pending (first level of a two-level "
                                                                       "chain) or dismissed (notice sealed and served)"})
    absence = ma.fields.Nested(AbsenceSchema, required=True)


class WithdrawDepartureSchema(StrictSchema):
    reason = ma.fields.String(required=True, validate=ma.validate.Length(min=2, max=1000))


class ReturnNoticeAnswerSchema(StrictSchema):
    answer = ma.fields.String(required=True, validate=ma.validate.OneOf(rules.ANSWERS), metadata={
        "description": "back: 我已返岗; explanation: the reason for the absence (text required, attachments "
                       "optional); resign: 我辞职 (opens an art. 37 resignation the employee then signs)"})
    text = ma.fields.String(load_default="", validate=ma.validate.Length(max=svc.MAX_TEXT))
    reason_category = ma.fields.String(load_default=None, allow_none=True, validate=ma.validate.OneOf(REASON_CATEGORIES))
    requested_last_day = ma.fields.Date(load_default=None, allow_none=True)


class ReturnNoticeAnswerMultipartSchema(ReturnNoticeAnswerSchema):
    attachments = ma.fields.List(ma.fields.Raw(metadata={"type": "string", "format": "binary"}), metadata={
        "description": f"Up to {svc.MAX_ATTACHMENTS} PNG/JPEG/PDF files of at most 5 MB (repeat the part)"})


class ReturnNoticeAnswerResultSchema(ma.Schema):
    case_id = ma.fields.String(required=True)
    outcome = ma.fields.String(required=True, metadata={"description": "The case's state after the answer: "
                                                                       "returned_to_work, explanation_received or "
                                                                       "converted_to_resignation"})
    late = ma.fields.Boolean(required=True, metadata={"description": "Answered after the deadline"})
    resignation_case_id = ma.fields.String(allow_none=True)
    resignation_case = ma.fields.Nested(CaseSchema, allow_none=True)


# ---- HR ------------------------------------------------------------------------------------------------

def _absence(case_id: str) -> dict:
    from qianli.services.review import get_hr_case

    return svc.absence_detail(db(), runtime(), get_hr_case(db(), reviewer(), case_id))


@blp.route("/hr/departures")
class Departures(MethodView):
    @hr_required("hr_specialist", "hr_manager")
    @blp.arguments(ConfirmDepartureSchema)
    @blp.response(201, AbsenceSchema)
    @blp.doc(operationId="confirmDeparture", summary="Confirm that an employee left without notice (确认离职)",
             description="From the risk list (risk_id) or the employee page. Opens a case of departure type "
                         "absconding in state confirmed; the confirmation is timestamped evidence, the first link of "
                         "its chain. 422 absent_day_not_working for a holiday or weekend (a 调休 Saturday is a working "
                         "day); 409 case_already_open when the employee has a case in progress.")
    def post(self, args):
        case = svc.confirm_departure(db(), runtime(), reviewer(), **args)
        return svc.absence_detail(db(), runtime(), case), 201


@blp.route("/hr/cases/<string:case_id>/absence")
class Absence(MethodView):
    @hr_required()
    @blp.response(200, AbsenceSchema)
    @blp.doc(operationId="getAbsence", summary="The absence, the notices and their service, the union record, the "
                                               "employee's answers, and what still blocks a dismissal")
    def get(self, case_id):
        return _absence(case_id)


@blp.route("/hr/cases/<string:case_id>/return-notice")
class ReturnNotice(MethodView):
    @hr_required("hr_specialist", "hr_manager")
    @blp.response(201, AbsenceSchema)
    @blp.doc(operationId="sendReturnToWorkNotice", summary="Seal and serve the return-to-work notice (返岗通知书)",
             description="A Chinese PDF naming the absent working days, the company's handbook clause, the deadline "
                         "(QIANLI_RETURN_NOTICE_DEADLINE_DAYS Chinese working days after service, default 3, the day "
                         "of service not counted, ending 24:00 Beijing time) and the consequence (art. 39(2)); sealed "
                         "by the company (PAdES B-LTA); served in the mini-program (read receipt), by SMS and the "
                         "subscribe message, with reminders until the deadline. 409 handbook_clause_missing until "
                         "the company policy names the clause (updateCompanyPolicy absconding_handbook_clause).")
    def post(self, case_id):
        svc.send_return_notice(db(), runtime(), reviewer(), case_id)
        return _absence(case_id), 201


@blp.route("/hr/cases/<string:case_id>/postal-deliveries")
class PostalDeliveries(MethodView):
    @hr_required("hr_specialist", "hr_manager")
    @blp.arguments(PostalDeliveryInSchema)
    @blp.response(201, PostalDeliverySchema)
    @blp.doc(operationId="recordPostalDelivery", summary="Record a notice posted to the agreed address (送达 evidence)",
             description="Carrier, tracking number, address and when it was sent; its later status with "
                         "updatePostalDelivery. 409 notice_not_issued before the notice exists.")
    def post(self, args, case_id):
        row = svc.record_postal_delivery(db(), runtime(), reviewer(), case_id, **args)
        return svc.postal_json(row), 201


@blp.route("/hr/cases/<string:case_id>/postal-deliveries/<string:delivery_id>")
class PostalDelivery(MethodView):
    @hr_required("hr_specialist", "hr_manager")
    @blp.arguments(PostalDeliveryUpdateSchema)
    @blp.response(200, PostalDeliverySchema)
    @blp.doc(operationId="updatePostalDelivery", summary="Record that a posted notice was delivered (签收) or returned")
    def patch(self, args, case_id, delivery_id):
        row = svc.update_postal_delivery(db(), runtime(), reviewer(), case_id, delivery_id, **args)
        return svc.postal_json(row)


@blp.route("/hr/cases/<string:case_id>/union-notifications")
class UnionNotifications(MethodView):
    @hr_required("hr_specialist", "hr_manager")
    @blp.arguments(UnionNotificationInSchema)
    @blp.response(201, UnionNotificationSchema)
    @blp.doc(operationId="recordUnionNotification",
             summary="Record that the union was told of the intended dismissal (art. 43): who, when, how, response")
    def post(self, args, case_id):
        row = svc.record_union_notification(db(), runtime(), reviewer(), case_id, **args)
        return svc.union_json(row), 201


@blp.route("/hr/cases/<string:case_id>/dismissal")
class Dismissal(MethodView):
    @hr_required("hr_specialist", "hr_manager", "dept_head")
    @blp.arguments(DismissForAbsenceSchema)
    @blp.response(200, DismissForAbsenceResultSchema)
    @blp.doc(operationId="dismissForAbsence", summary="Approve the art. 39(2) dismissal at the current level",
             description="The company's absconding approval chain (default hr_manager, then the department head). "
                         "409 return_notice_not_served, deadline_not_passed (the deadline has not ended, or the "
                         "employee is back), handbook_clause_missing, union_notification_missing (details.blockers "
                         "lists them all); 403 wrong_approval_level / same_approver / other_department. The final "
                         "level seals the dismissal notice (B-LTA) and serves it like the return-to-work notice.")
    def post(self, args, case_id):
        case, outcome = svc.dismiss_for_absence(db(), runtime(), reviewer(), case_id, comment=args["comment"])
        return {"case_id": case.id, "state": case.state, "outcome": outcome, "absence": _absence(case_id)}


@blp.route("/hr/cases/<string:case_id>/departure-withdrawal")
class DepartureWithdrawal(MethodView):
    @hr_required("hr_specialist", "hr_manager")
    @blp.arguments(WithdrawDepartureSchema)
    @blp.response(200, AbsenceSchema)
    @blp.doc(operationId="withdrawDeparture", summary="Withdraw the confirmation (false alarm, explanation accepted)",
             description="Before a dismissal; the case ends as withdrawn and the employee is told.")
    def post(self, args, case_id):
        svc.withdraw_departure(db(), runtime(), reviewer(), case_id, reason=args["reason"])
        return _absence(case_id)


# ---- the employee (and HR reading the notices) ---------------------------------------------------------------

@blp.route("/cases/<string:case_id>/absence")
class MyAbsence(MethodView):
    @employee_required
    @blp.response(200, MyAbsenceSchema)
    @blp.doc(operationId="getMyAbsence", summary="My absence case: the absent days, the notice, its deadline, my answers")
    def get(self, case_id):
        from qianli.services.cases import get_employee_case

        p = current_principal()
        case = get_employee_case(db(), case_id, employee_id=p.subject_id, company_id=p.company_id)
        return svc.absence_detail(db(), runtime(), case, for_employee=True)


@blp.route("/cases/<string:case_id>/notices/<string:notice>")
class Notice(MethodView):
    @signed_in_required
    @blp.response(200, {"type": "string", "format": "binary"}, content_type="application/pdf")
    @blp.doc(operationId="getAbsenceNotice", summary="The sealed return-to-work (return_to_work) or dismissal notice",
             description="The employee's first reading of each notice is recorded as their read receipt (evidence "
                         "notice_read); HR staff may read it too (no receipt).")
    def get(self, case_id, notice):
        if notice not in rules.NOTICE_KINDS:
            raise InvalidInput("notice_kind_invalid", "未知的通知书类型", details={"allowed": list(rules.NOTICE_KINDS)})
        p = current_principal()
        if p.kind == "employee":
            from api.wechat import request_meta

            doc = svc.read_notice(db(), runtime(), case_id=case_id, company_id=p.company_id, notice=notice,
                                  employee_id=p.subject_id, meta=request_meta(p.openid).as_evidence())
        elif p.kind == "hr":
            doc = svc.read_notice(db(), runtime(), case_id=case_id, company_id=p.company_id, notice=notice,
                                  reviewer=get_reviewer(db(), p.subject_id, p.company_id))
        else:  # pragma: no cover - signed_in_required admits only these two
            raise Forbidden("signed_in_only", "请先登录")
        data = svc.notice_bytes(runtime(), doc)
        resp = send_file(io.BytesIO(data), mimetype="application/pdf", download_name=f"{notice}-notice-{case_id}.pdf",
                         max_age=0)
        resp.headers["X-Document-SHA256"] = doc.sha256
        return resp


@blp.route("/cases/<string:case_id>/return-notice/answer")
class Answer(MethodView):
    @employee_required
    @blp.response(200, ReturnNoticeAnswerResultSchema)
    @blp.doc(operationId="answerReturnNotice", summary="Answer the return-to-work notice: I'm back, my explanation, "
                                                       "or I resign",
             description="Before the deadline 'back' ends the case (returned_to_work, no dismissal); after it, or "
                         "while a dismissal awaits its second approval, any answer goes to HR (explanation_received). "
                         "'resign' opens an art. 37 resignation case (notice arriving now) whose letter the employee "
                         "signs themselves (previewLetter, face + SMS, signLetter). JSON, or multipart/form-data with "
                         "attachments. 409 absence_answer_closed once there is nothing to answer.",
             requestBody={"required": True, "content": {
                 "application/json": {"schema": ReturnNoticeAnswerSchema},
                 "multipart/form-data": {"schema": ReturnNoticeAnswerMultipartSchema}}})
    def post(self, case_id):
        from api.wechat import request_meta

        files: list[svc.Attachment] = []
        if request.mimetype == "application/json":
            raw, location = request.get_json(silent=True), "json"
        else:
            raw, location = request.form.to_dict(), "form"
            for f in request.files.getlist("attachments")[: svc.MAX_ATTACHMENTS + 1]:
                data = f.read(svc.MAX_ATTACHMENT_BYTES + 1)
                if data:
                    files.append(svc.Attachment(data, f.mimetype or "", f.filename or ""))
        if not isinstance(raw, dict):
            raise InvalidInput("validation_failed", "请求参数无效", details={location: "object expected"})
        try:
            args = ReturnNoticeAnswerSchema().load(raw)
        except ma.ValidationError as exc:
            raise InvalidInput("validation_failed", "请求参数无效", details={location: exc.messages}) from None
        p = current_principal()
        out = svc.answer_return_notice(db(), runtime(), employee_id=p.subject_id, company_id=p.company_id,
                                       case_id=case_id, actor=p.actor, attachments=files,
                                       meta=request_meta(p.openid).as_evidence(), **args)
        resignation = None
        if out["resignation_case_id"]:
            from qianli.services.cases import get_case

            resignation = get_case(db(), out["resignation_case_id"], p.company_id)
        return {"case_id": case_id, "outcome": out["outcome"], "late": out["late"],
                "resignation_case_id": out["resignation_case_id"], "resignation_case": resignation}

