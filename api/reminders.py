"""Reminders of a case, for the employee (own case) and HR (company-scoped) - ``listReminders``."""

from __future__ import annotations

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint

from cases.errors import Forbidden
from qianli.services.cases import get_employee_case
from qianli.services.reminders import list_case_reminders
from qianli.services.review import get_hr_case, get_reviewer

from api.auth import EMPLOYEE_SECURITY, HR_SECURITY, _decorate, current_principal
from api.context import db
from api.fastdump import FastDumpSchema
from api.schemas import StrictSchema

__all__ = ["blp"]


def _employee_or_hr(p) -> None:
    if p.kind not in ("employee", "hr"):
        raise Forbidden("employee_or_hr_only", "仅限已绑定的员工或 HR 使用")


employee_or_hr_required = _decorate(_employee_or_hr, EMPLOYEE_SECURITY + HR_SECURITY)

blp = Blueprint("reminders", __name__, url_prefix="/api/v1/cases", description="Letter reminders and their log")


class ReminderScheduleSchema(FastDumpSchema, StrictSchema):
    state = ma.fields.String(required=True, metadata={"description": "active, paused (letter submitted) or stopped"})
    next_slot = ma.fields.Integer(required=True)
    next_due_at = ma.fields.DateTime(allow_none=True, required=True)
    stop_reason = ma.fields.String(allow_none=True, required=True)


class ReminderDeliverySchema(FastDumpSchema, StrictSchema):
    slot = ma.fields.Integer(required=True, metadata={"description": "0: the letter-due notice; n: the n-th reminder; "
                                                                    "negative: a notification (case returned, ...)"})
    channel = ma.fields.String(required=True, metadata={"description": "sms or wechat"})
    kind = ma.fields.String(required=True)
    status = ma.fields.String(required=True, metadata={"description": "pending, sending, sent, dropped or failed"})
    scheduled_for = ma.fields.DateTime(required=True)
    started_at = ma.fields.DateTime(allow_none=True, required=True)
    finished_at = ma.fields.DateTime(allow_none=True, required=True)
    attempts = ma.fields.Integer(required=True)
    template = ma.fields.String(allow_none=True, required=True)
    content_sha256 = ma.fields.String(allow_none=True, required=True)
    provider = ma.fields.String(allow_none=True, required=True)
    provider_message_id = ma.fields.String(allow_none=True, required=True)
    error_code = ma.fields.String(allow_none=True, required=True)


class ReminderListSchema(FastDumpSchema, StrictSchema):
    case_id = ma.fields.String(required=True)
    letter_due_date = ma.fields.Date(required=True)
    overdue = ma.fields.Boolean(required=True)
    due_date_provisional = ma.fields.Boolean(required=True, metadata={"description": "The due date is an estimate (the holiday arrangement of its period is not published); overdue is judged on it"})
    schedule = ma.fields.Nested(ReminderScheduleSchema, allow_none=True, required=True)
    deliveries = ma.fields.List(ma.fields.Nested(ReminderDeliverySchema), required=True)


@blp.route("/<string:case_id>/reminders")
class CaseReminders(MethodView):
    @employee_or_hr_required
    @blp.response(200, ReminderListSchema)
    @blp.doc(operationId="listReminders", summary="The case's letter reminders: schedule and every delivery attempt",
             description="Employee: own case only. HR: own company (department heads: their department). "
                         "Each delivery shows its channel, status (sent / dropped / failed / ...), the SHA-256 of "
                         "the content sent and the provider's message id; the same facts are in the evidence chain.")
    def get(self, case_id):
        p = current_principal()
        if p.kind == "employee":
            case = get_employee_case(db(), case_id, employee_id=p.subject_id, company_id=p.company_id)
        else:
            case = get_hr_case(db(), get_reviewer(db(), p.subject_id, p.company_id), case_id)
        return list_case_reminders(db(), case)
