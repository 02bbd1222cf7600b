"""The employee's side of a case: submit the resignation form, read and complete their cases."""

from __future__ import annotations

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint

from cases.evidence_kinds import EvidenceKind
from qianli.db import utcnow
from qianli.models import REASON_CATEGORIES
from qianli.services import cases as svc
from qianli.services.evidence import case_evidence, employee_view
from qianli.services.reminders import on_case_opened
from qianli.services.certificate import latest_certificate
from qianli.services.review import chat_notice

from api.auth import current_principal, employee_required
from api.certificate import CertificateInfoSchema, certificate_info
from api.context import db, runtime
from api.fastdump import FastDumpSchema
from api.schemas import StrictSchema

__all__ = ["blp", "CaseSchema", "HandoverItemSchema", "ChatNoticeSchema"]

blp = Blueprint("cases", __name__, url_prefix="/api/v1/cases", description="Resignation cases (employee)")


class HandoverItemSchema(StrictSchema):
    item = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=200), metadata={"description": "交接事项"})
    owner = ma.fields.String(load_default="", validate=ma.validate.Length(max=100), metadata={"description": "接收人"})
    deadline = ma.fields.Date(load_default=None, allow_none=True)


class CaseFormSchema(StrictSchema):
    reason_category = ma.fields.String(required=True, validate=ma.validate.OneOf(REASON_CATEGORIES))
    reason_text = ma.fields.String(load_default="", validate=ma.validate.Length(max=svc.MAX_REASON_CHARS))
    requested_last_day = ma.fields.Date(required=True)
    handover_items = ma.fields.List(ma.fields.Nested(HandoverItemSchema), load_default=list,
                                    validate=ma.validate.Length(max=svc.MAX_HANDOVER_ITEMS))


class CaseSchema(FastDumpSchema):
    id = ma.fields.String(required=True)
    state = ma.fields.String(required=True)
    source = ma.fields.String(required=True)
    departure_type = ma.fields.String(required=True, metadata={"description": (
        "How the employment ends: resignation (art. 37), absconding (擅自离职), agreement (art. 36)"),
        "enum": ["resignation", "absconding", "agreement"]})
    notice_arrived_at = ma.fields.AwareDateTime(required=True, metadata={"description": "UTC"})
    arrival_date = ma.fields.Date(required=True, metadata={"description": "Asia/Shanghai date"})
    probation = ma.fields.Boolean(required=True)
    reason_category = ma.fields.String(allow_none=True)
    reason_text = ma.fields.String()
    requested_last_day = ma.fields.Date(allow_none=True)
    earliest_lawful_last_day = ma.fields.Date(required=True)
    agreed_last_day = ma.fields.Date(allow_none=True)
    handover_items = ma.fields.List(ma.fields.Dict())
    letter_due_date = ma.fields.Date(required=True)
    dates_provisional = ma.fields.Boolean(required=True)
    dates_note = ma.fields.String(allow_none=True, metadata={"description": (
        "zh-CN caveat shown with a provisional due date (null when the dates are final)")})
    letter_submitted_at = ma.fields.AwareDateTime(allow_none=True)
    created_at = ma.fields.AwareDateTime(required=True)


class EvidenceEntrySchema(FastDumpSchema):
    seq = ma.fields.Integer(required=True)
    occurred_at = ma.fields.AwareDateTime(required=True)
    actor = ma.fields.String(required=True)
    action = ma.fields.String(required=True)
    payload = ma.fields.Dict(required=True)
    digest = ma.fields.String(required=True)


class EmployeeTimelineEntrySchema(EvidenceEntrySchema):
    redacted = ma.fields.Boolean(required=True, metadata={
        "description": "Always true: client addresses, user agents and failed-attempt face distances are left "
                       "out of the employee's view, so the payload does not recompute to digest"})


class ChatNoticeSchema(FastDumpSchema):
    text = ma.fields.String(required=True, metadata={"description": "The message HR recorded as the notice"})
    platform = ma.fields.String(required=True)
    sender_name = ma.fields.String(required=True)
    sent_at = ma.fields.String(allow_none=True, metadata={"description": "When it was sent (ISO 8601, UTC)"})
    recorded_at = ma.fields.AwareDateTime(required=True)
    recorded_by = ma.fields.String(required=True)
    late = ma.fields.Boolean(required=True, metadata={
        "description": "Recorded more than QIANLI_CHAT_NOTICE_WINDOW_DAYS after it was sent"})
    late_reason = ma.fields.String(required=True)
    screenshot_sha256 = ma.fields.String(allow_none=True)
    state = ma.fields.String(required=True, metadata={"description": "pending, confirmed or disputed"})
    answered_at = ma.fields.AwareDateTime(allow_none=True)
    comment = ma.fields.String(required=True, metadata={"description": "The employee's comment with the answer"})


class CaseDetailSchema(CaseSchema):
    timeline = ma.fields.List(ma.fields.Nested(EmployeeTimelineEntrySchema), required=True)
    chat_notice = ma.fields.Nested(ChatNoticeSchema, allow_none=True, required=True, metadata={
        "description": "For a case HR opened from a chat message: the message and the employee's answer "
                       "(respondToChatNotice)"})
    termination_certificate = ma.fields.Nested(CertificateInfoSchema, allow_none=True, required=True, metadata={
        "description": "The certificate of termination once the company issued it (download it with "
                       "getTerminationCertificate); null before"})


def _form_items(items):
    return [{"item": i["item"], "owner": i.get("owner", ""),
             "deadline": i["deadline"].isoformat() if i.get("deadline") else None} for i in items]


@blp.route("")
class MyCases(MethodView):
    @employee_required
    @blp.response(200, CaseSchema(many=True))
    @blp.doc(operationId="listMyCases")
    def get(self):
        p = current_principal()
        return svc.employee_cases(db(), employee_id=p.subject_id, company_id=p.company_id)

    @employee_required
    @blp.arguments(CaseFormSchema)
    @blp.response(201, CaseSchema)
    @blp.doc(operationId="submitResignation", summary="Submit the resignation form (notice arrives now)")
    def post(self, args):
        p = current_principal()
        employee = svc.get_employee(db(), p.subject_id, p.company_id)
        case = svc.open_case(db(), runtime().settings, employee=employee, source="miniprogram",
                             notice_arrived_at=utcnow(), actor=p.actor, reason_category=args["reason_category"],
                             reason_text=args["reason_text"], requested_last_day=args["requested_last_day"],
                             handover_items=_form_items(args["handover_items"]),
                             extra_evidence={"openid": p.openid})
        on_case_opened(db(), runtime(), case)
        return case


@blp.route("/<string:case_id>")
class MyCase(MethodView):
    @employee_required
    @blp.response(200, CaseDetailSchema)
    @blp.doc(operationId="getMyCase")
    def get(self, case_id):
        p = current_principal()
        case = svc.get_employee_case(db(), case_id, employee_id=p.subject_id, company_id=p.company_id)
        entries = case_evidence(db(), case.id, case.company_id)
        case.timeline = [employee_view(e) for e in entries]
        case.chat_notice = chat_notice(db(), case)
        # a certificate is stored together with its chain entry (issue_certificate): without one, no query
        issued = any(e.action == EvidenceKind.TERMINATION_CERTIFICATE_ISSUED.value for e in entries)
        doc = latest_certificate(db(), case) if issued else None
        case.termination_certificate = certificate_info(doc) if doc is not None else None
        return case

    @employee_required
    @blp.arguments(CaseFormSchema)
    @blp.response(200, CaseSchema)
    @blp.doc(operationId="updateMyCaseForm", summary="Complete or revise the form before signing")
    def put(self, args, case_id):
        p = current_principal()
        case = svc.get_employee_case(db(), case_id, employee_id=p.subject_id, company_id=p.company_id)
        return svc.update_case_form(db(), case, actor=p.actor, reason_category=args["reason_category"],
                                    reason_text=args["reason_text"], requested_last_day=args["requested_last_day"],
                                    handover_items=_form_items(args["handover_items"]))
