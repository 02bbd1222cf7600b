"""HR: the case queue, one case in full, the review chain, withdrawal consent, chat evidence, alerts.

Every operation is company-scoped through the caller's token; a department head sees and decides
only their department's cases. Requests authenticated by the console cookie (no Authorization
header) must carry the console's CSRF token in ``X-CSRF-Token`` for anything but GET (``api.auth``).
"""

from __future__ import annotations

import functools

import marshmallow as ma
from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint

from cases.departure import DepartureType
from cases.errors import InvalidInput
from cases.states import CaseState
from qianli.models import Employee
from qianli.services import review as svc

from api.auth import current_principal, hr_required
from api.cases import CaseSchema, ChatNoticeSchema, EvidenceEntrySchema
from api.context import db, runtime
from api.fastdump import FastDumpSchema
from api.schemas import NonBlank, StrictSchema

__all__ = ["blp", "reviewer", "HrCaseSchema", "HrCaseDetailSchema"]

blp = Blueprint("hr_cases", __name__, url_prefix="/api/v1/hr", description="Case review (HR)")


def reviewer() -> svc.Reviewer:
    p = current_principal()
    return svc.get_reviewer(db(), p.subject_id, p.company_id)


# ---- schemas ---------------------------------------------------------------------------------------

STATES = [s.value for s in CaseState]


class EmployeeSummarySchema(FastDumpSchema):
    id = ma.fields.String(required=True)
    employee_no = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    department = ma.fields.String(required=True)
    position = ma.fields.String(required=True)
    hire_date = ma.fields.Date(allow_none=True)
    probation_end = ma.fields.Date(allow_none=True)


class HrCaseSchema(CaseSchema):
    employee = ma.fields.Nested(EmployeeSummarySchema, required=True)
    overdue = ma.fields.Boolean(required=True, metadata={"description": "Signed letter past its due date (Beijing date)"})
    updated_at = ma.fields.AwareDateTime(required=True)


class CasePageSchema(FastDumpSchema):
    items = ma.fields.List(ma.fields.Nested(HrCaseSchema), required=True)
    total = ma.fields.Integer(required=True)
    page = ma.fields.Integer(required=True)
    page_size = ma.fields.Integer(required=True)


class CaseListQuery(StrictSchema):
    state = ma.fields.List(ma.fields.String(validate=ma.validate.OneOf(STATES)), load_default=list,
                           metadata={"description": "Repeat to filter by several states"})
    overdue = ma.fields.Boolean(load_default=None, allow_none=True)
    departure_type = ma.fields.List(ma.fields.String(validate=ma.validate.OneOf([t.value for t in DepartureType])),
                                    load_default=list, metadata={"description": (
                                        "Repeat to filter by several departure types (resignation, absconding, agreement)")})
    department = ma.fields.String(load_default=None, validate=ma.validate.Length(min=1, max=100))
    created_from = ma.fields.Date(load_default=None, metadata={"description": "Beijing date, inclusive"})
    created_to = ma.fields.Date(load_default=None, metadata={"description": "Beijing date, inclusive"})
    arrival_from = ma.fields.Date(load_default=None)
    arrival_to = ma.fields.Date(load_default=None)
    q = ma.fields.String(load_default=None, validate=ma.validate.Length(min=1, max=100),
                         metadata={"description": "Name or employee number contains"})
    page = ma.fields.Integer(load_default=1, validate=ma.validate.Range(min=1, max=100000))
    page_size = ma.fields.Integer(load_default=20, validate=ma.validate.Range(min=1, max=100))


class ChainSchema(FastDumpSchema):
    ok = ma.fields.Boolean(required=True)
    entries = ma.fields.Integer(required=True)
    first_broken_seq = ma.fields.Integer(allow_none=True)
    reason = ma.fields.String(allow_none=True)
    head_digest = ma.fields.String(allow_none=True)


class DocumentSchema(FastDumpSchema):
    id = ma.fields.String(required=True)
    kind = ma.fields.String(required=True)
    filename = ma.fields.String(required=True)
    content_type = ma.fields.String(required=True)
    size = ma.fields.Integer(required=True)
    sha256 = ma.fields.String(required=True)
    created_at = ma.fields.AwareDateTime(required=True)
    created_by = ma.fields.String(required=True)


class ApprovalInfoSchema(FastDumpSchema):
    chain = ma.fields.List(ma.fields.String(), required=True)
    level = ma.fields.Integer(allow_none=True, metadata={"description": "1-based level waiting for a decision"})
    level_role = ma.fields.String(allow_none=True)
    pending_last_day = ma.fields.Date(allow_none=True, metadata={"description": "Earlier last day awaiting the employee"})
    confirmed_last_day = ma.fields.Date(allow_none=True)


class HrCaseDetailSchema(HrCaseSchema):
    timeline = ma.fields.List(ma.fields.Nested(EvidenceEntrySchema), required=True)
    chain = ma.fields.Nested(ChainSchema, required=True)
    documents = ma.fields.List(ma.fields.Nested(DocumentSchema), required=True)
    approval = ma.fields.Nested(ApprovalInfoSchema, required=True)
    withdrawal_requested_at = ma.fields.AwareDateTime(allow_none=True)
    allowed_actions = ma.fields.List(ma.fields.String(), required=True, metadata={
        "description": "approve, return, consent_withdrawal, decline_withdrawal, export_dossier"})
    chat_notice = ma.fields.Nested(ChatNoticeSchema, allow_none=True, required=True, metadata={
        "description": "Chat-message cases: the recorded message and the employee's answer (disputed: 我没有提出离职)"})


class ApproveSchema(StrictSchema):
    agreed_last_day = ma.fields.Date(load_default=None, allow_none=True, metadata={
        "description": "Confirmed last working day. Earlier than the earliest lawful day: a mutual agreement "
                       "(art. 36) the employee must confirm. Later than requested: refused."})
    comment = ma.fields.String(load_default="", validate=ma.validate.Length(max=svc.MAX_COMMENT))


class ReviewResultSchema(HrCaseSchema):
    outcome = ma.fields.String(required=True, metadata={
        "description": "first_approved, approved, or awaiting_employee_confirmation"})


class ReturnSchema(StrictSchema):
    reason = ma.fields.String(required=True, validate=NonBlank(svc.MAX_COMMENT))


class WithdrawalDecisionSchema(StrictSchema):
    consent = ma.fields.Boolean(load_default=True)
    comment = ma.fields.String(load_default="", validate=ma.validate.Length(max=svc.MAX_COMMENT))


class ChatEvidenceSchema(StrictSchema):
    employee_id = ma.fields.String(load_default=None, validate=ma.validate.Length(min=1, max=32))
    employee_no = ma.fields.String(load_default=None, validate=ma.validate.Length(min=1, max=64))
    text = ma.fields.String(required=True, validate=NonBlank(svc.MAX_CHAT_TEXT), metadata={"description": "消息原文"})
    sender_name = ma.fields.String(required=True, validate=NonBlank(100), metadata={"description": "发送人显示名"})
    platform = ma.fields.String(required=True, validate=ma.validate.OneOf(svc.CHAT_PLATFORMS))
    sent_at = ma.fields.AwareDateTime(required=True, metadata={"description": "When it was sent, with its offset"})
    requested_last_day = ma.fields.Date(load_default=None, allow_none=True,
                                        metadata={"description": "Last day the message asks for, if any"})
    late_reason = ma.fields.String(load_default="", validate=ma.validate.Length(max=svc.MAX_COMMENT), metadata={
        "description": "Required (with a screenshot) when sent_at is older than QIANLI_CHAT_NOTICE_WINDOW_DAYS: "
                       "why the message is recorded only now"})


class ChatEvidenceMultipartSchema(ChatEvidenceSchema):
    screenshot = ma.fields.Raw(metadata={"type": "string", "format": "binary",
                                         "description": "Optional PNG or JPEG screenshot (max 5 MB)"})


class AlertSchema(FastDumpSchema):
    id = ma.fields.String(required=True)
    kind = ma.fields.String(required=True)
    case_id = ma.fields.String(allow_none=True)
    employee_id = ma.fields.String(allow_none=True)
    message = ma.fields.String(required=True)
    payload = ma.fields.Dict(required=True)
    created_at = ma.fields.AwareDateTime(required=True)
    resolved_at = ma.fields.AwareDateTime(allow_none=True)
    resolved_by = ma.fields.String(allow_none=True)


class AlertQuery(StrictSchema):
    limit = ma.fields.Integer(load_default=100, validate=ma.validate.Range(min=1, max=500))


# ---- helpers ------------------------------------------------------------------------------------

@functools.cache
def _case_fields() -> tuple[str, ...]:
    """CaseSchema's field names, read once: instantiating a schema deep-copies its fields (a third
    of a listCases request's CPU when it was done per case)."""
    return tuple(CaseSchema().fields)


def case_body(case, employee=None, overdue: bool | None = None) -> dict:
    employee = employee or db().get(Employee, case.employee_id)
    body = {k: getattr(case, k) for k in _case_fields()}
    body.update(employee=employee, updated_at=case.updated_at,
                overdue=svc.is_overdue(case) if overdue is None else overdue)
    return body


# ---- routes ---------------------------------------------------------------------------------------

@blp.route("/cases")
class Cases(MethodView):
    @hr_required()
    @blp.arguments(CaseListQuery, location="query")
    @blp.response(200, CasePageSchema)
    @blp.doc(operationId="listCases", summary="The case queue: overdue first, then newest; filters; paginated")
    def get(self, args):
        q = svc.CaseQuery(states=args["state"], overdue=args["overdue"], department=args["department"],
                          created_from=args["created_from"], created_to=args["created_to"],
                          arrival_from=args["arrival_from"], arrival_to=args["arrival_to"], search=args["q"],
                          departure_types=args["departure_type"], page=args["page"], page_size=args["page_size"])
        page = svc.list_cases(db(), reviewer(), q, summaries=True)
        return {"items": page.items, "total": page.total, "page": page.page, "page_size": page.page_size}


@blp.route("/cases/<string:case_id>")
class CaseItem(MethodView):
    @hr_required()
    @blp.response(200, HrCaseDetailSchema)
    @blp.doc(operationId="getCase", summary="One case: employee, timeline (evidence chain), chain check, documents, "
                                            "what this HR user may do next")
    def get(self, case_id):
        d = svc.case_detail(db(), runtime(), reviewer(), case_id)
        return {**case_body(d["case"], d["employee"], d["overdue"]), **{k: v for k, v in d.items()
                                                                       if k not in ("case", "employee", "overdue")}}


@blp.route("/cases/<string:case_id>/approval")
class Approval(MethodView):
    @hr_required("hr_specialist", "dept_head", "hr_manager")
    @blp.arguments(ApproveSchema)
    @blp.response(200, ReviewResultSchema)
    @blp.doc(operationId="approveCase", summary="Confirm the case at the current approval level",
             description="No veto (art. 37): approving confirms the agreed last day and the handover. The level's "
                         "role acts (hr_manager at any level; a dept_head only for their department; two levels need "
                         "two people). Final approval applies the company countersignature.")
    def post(self, args, case_id):
        case, outcome = svc.approve_case(db(), runtime(), reviewer(), case_id, agreed_last_day=args["agreed_last_day"],
                                         comment=args["comment"])
        return {**case_body(case), "outcome": outcome}


@blp.route("/cases/<string:case_id>/return")
class Return(MethodView):
    @hr_required("hr_specialist", "dept_head", "hr_manager")
    @blp.arguments(ReturnSchema)
    @blp.response(200, HrCaseSchema)
    @blp.doc(operationId="returnCase", summary="Return the case to the employee for revision (reason required)")
    def post(self, args, case_id):
        return case_body(svc.return_case(db(), runtime(), reviewer(), case_id, reason=args["reason"]))


@blp.route("/cases/<string:case_id>/withdrawal-consent")
class WithdrawalConsent(MethodView):
    @hr_required("hr_specialist", "hr_manager")
    @blp.arguments(WithdrawalDecisionSchema)
    @blp.response(200, HrCaseSchema)
    @blp.doc(operationId="consentWithdrawal", summary="Consent to (or decline) the employee's withdrawal request",
             description="After notice arrived a resignation can only be withdrawn with the employer's consent.")
    def post(self, args, case_id):
        return case_body(svc.decide_withdrawal(db(), runtime(), reviewer(), case_id, consent=args["consent"],
                                               comment=args["comment"]))


@blp.route("/chat-evidence")
class ChatEvidence(MethodView):
    @hr_required("hr_specialist", "hr_manager")
    @blp.response(201, HrCaseSchema)
    @blp.doc(operationId="recordChatEvidence",
             summary="Record the instant message in which an employee resigned; opens the case",
             description="Notice arrives at the time the message was sent. JSON, or multipart/form-data with a "
                         "PNG/JPEG screenshot. A message older than QIANLI_CHAT_NOTICE_WINDOW_DAYS (default 30) "
                         "needs the screenshot (422 chat_screenshot_required) and late_reason (422 "
                         "chat_late_reason_required). The employee is invited at once and may confirm or dispute "
                         "the message in the mini-program (respondToChatNotice).",
             requestBody={"required": True, "content": {
                 "application/json": {"schema": ChatEvidenceSchema},
                 "multipart/form-data": {"schema": ChatEvidenceMultipartSchema}}})
    def post(self):
        if request.mimetype == "application/json":
            raw, shot = request.get_json(), None
            location = "json"
        else:
            raw, location = request.form.to_dict(), "form"
            f = request.files.get("screenshot")
            shot = None
            if f is not None and f.filename is not None:
                data = f.read(svc.MAX_SCREENSHOT_BYTES + 1)
                if data:
                    shot = svc.Screenshot(data, f.mimetype or "", f.filename or "")
            extra = set(request.files) - {"screenshot"}
            if extra:
                raise InvalidInput("validation_failed", "请求参数无效", details={"files": sorted(extra)})
        if not isinstance(raw, dict):
            raise InvalidInput("validation_failed", "请求参数无效", details={location: "object expected"})
        try:
            args = ChatEvidenceSchema().load(raw)
        except ma.ValidationError as exc:
            raise InvalidInput("validation_failed", "请求参数无效", details={location: exc.messages}) from None
        return case_body(svc.record_chat_evidence(db(), runtime(), reviewer(), screenshot=shot, **args)), 201


@blp.route("/alerts")
class Alerts(MethodView):
    @hr_required()
    @blp.arguments(AlertQuery, location="query")
    @blp.response(200, AlertSchema(many=True))
    @blp.doc(operationId="listAlerts", summary="Open alerts (locked face checks, failed reminders, withdrawal requests...)")
    def get(self, args):
        return svc.list_alerts(db(), reviewer(), limit=args["limit"])


@blp.route("/alerts/<string:alert_id>/resolution")
class AlertResolution(MethodView):
    @hr_required("hr_specialist", "hr_manager")
    @blp.response(200, AlertSchema)
    @blp.doc(operationId="resolveAlert", summary="Mark an alert as dealt with")
    def post(self, alert_id):
        return svc.resolve_hr_alert(db(), reviewer(), alert_id)
