"""Offboarding: templates (HR), a case's handover tasks (HR, department-scoped), "my tasks" (the console
user's own), completing a task (its owner or HR; JSON, or multipart with an attachment), and the
employee's read-only view of their handover in the mini-program."""

from __future__ import annotations

import marshmallow as ma
from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint

from cases.errors import InvalidInput
from cases.offboarding import (MAX_DESCRIPTION, MAX_ITEMS, MAX_OFFSET, MAX_TITLE, DayKind, OwnerRole, TaskGroup,
                               TaskStatus)
from qianli.services import offboarding as svc

from api.auth import current_principal, employee_required, hr_required
from api.context import db, runtime
from api.hr_cases import reviewer
from api.schemas import StrictSchema

__all__ = ["blp"]

blp = Blueprint("offboarding", __name__, url_prefix="/api/v1", description="Offboarding templates and handover tasks")


# ---- schemas ----------------------------------------------------------------------------------------

class TemplateItemSchema(ma.Schema):
    key = ma.fields.String(required=True, metadata={"description": "Stable id within the template: [a-z][a-z0-9_]{0,47}"})
    group = ma.fields.String(required=True, metadata={"enum": [g.value for g in TaskGroup]})
    title = ma.fields.String(required=True, metadata={"maxLength": MAX_TITLE})
    description = ma.fields.String(metadata={"maxLength": MAX_DESCRIPTION})
    owner_role = ma.fields.String(allow_none=True, metadata={
        "enum": [r.value for r in OwnerRole], "description": "A role owns the task (or owner_user_id, not both)"})
    owner_user_id = ma.fields.String(allow_none=True, metadata={"description": "A specific console user owns it"})
    offset = ma.fields.Integer(required=True, metadata={
        "minimum": -MAX_OFFSET, "maximum": MAX_OFFSET,
        "description": "Deadline in days relative to the last day (negative: before it, 0: the last day)"})
    day_kind = ma.fields.String(metadata={"enum": [k.value for k in DayKind], "description": (
        "working (default): Chinese working days of the company calendar, 调休 included; calendar: calendar days")})


class TemplateSchema(ma.Schema):
    departure_type = ma.fields.String(required=True)
    version = ma.fields.Integer(required=True, metadata={"description": "0: the product's default"})
    is_default = ma.fields.Boolean(required=True)
    items = ma.fields.List(ma.fields.Nested(TemplateItemSchema), required=True)
    updated_at = ma.fields.AwareDateTime(allow_none=True)
    updated_by = ma.fields.String(allow_none=True)
    comment = ma.fields.String(required=True)


class TemplateListSchema(ma.Schema):
    templates = ma.fields.List(ma.fields.Nested(TemplateSchema), required=True)


class TemplateUpdateSchema(StrictSchema):
    items = ma.fields.List(ma.fields.Dict(), required=True, validate=ma.validate.Length(min=1, max=MAX_ITEMS),
                           metadata={"description": "Every item (the whole template); validated strictly "
                                                    "(422 with a code per problem and the item named)"})
    expected_version = ma.fields.Integer(load_default=None, allow_none=True, metadata={
        "description": "The version the edit started from; another edit meanwhile: 409 template_version_conflict"})
    comment = ma.fields.String(load_default="", validate=ma.validate.Length(max=500))


class AttachmentSchema(ma.Schema):
    document_id = ma.fields.String(required=True)
    filename = ma.fields.String(required=True)
    content_type = ma.fields.String(required=True)
    size = ma.fields.Integer(required=True)
    sha256 = ma.fields.String(required=True)


class TaskSchema(ma.Schema):
    id = ma.fields.String(required=True)
    case_id = ma.fields.String(required=True)
    employee_id = ma.fields.String(required=True)
    key = ma.fields.String(required=True)
    source = ma.fields.String(required=True, metadata={"description": "template, or employee (the form's items)"})
    departure_type = ma.fields.String(required=True)
    template_version = ma.fields.Integer(required=True)
    group = ma.fields.String(required=True)
    group_label = ma.fields.String(required=True)
    title = ma.fields.String(required=True)
    description = ma.fields.String(required=True)
    owner_role = ma.fields.String(allow_none=True)
    owner_user_id = ma.fields.String(allow_none=True)
    owner_department = ma.fields.String(allow_none=True)
    owner_label = ma.fields.String(required=True)
    last_day = ma.fields.Date(required=True)
    offset = ma.fields.Integer(required=True)
    day_kind = ma.fields.String(required=True)
    due_date = ma.fields.Date(required=True)
    due_provisional = ma.fields.Boolean(required=True, metadata={
        "description": "The due date relied on a day whose holiday arrangement is not yet published"})
    status = ma.fields.String(required=True, metadata={"enum": [s.value for s in TaskStatus]})
    status_label = ma.fields.String(required=True)
    overdue = ma.fields.Boolean(required=True)
    completed_at = ma.fields.AwareDateTime(allow_none=True)
    completed_by = ma.fields.String(allow_none=True)
    completed_by_name = ma.fields.String(allow_none=True)
    note = ma.fields.String(required=True)
    attachment = ma.fields.Nested(AttachmentSchema, allow_none=True)
    cancelled_at = ma.fields.AwareDateTime(allow_none=True)
    cancelled_by = ma.fields.String(allow_none=True)
    cancel_reason = ma.fields.String(allow_none=True)
    escalated_at = ma.fields.AwareDateTime(allow_none=True)
    created_at = ma.fields.AwareDateTime(required=True)
    can_complete = ma.fields.Boolean(required=True, metadata={"description": "This console user may complete it now"})


class TaskEmployeeSchema(ma.Schema):
    id = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    employee_no = ma.fields.String(required=True)
    department = ma.fields.String(required=True)


class MyTaskSchema(TaskSchema):
    employee = ma.fields.Nested(TaskEmployeeSchema, required=True)


class TaskListSchema(ma.Schema):
    tasks = ma.fields.List(ma.fields.Nested(TaskSchema), required=True)


class MyTaskListSchema(ma.Schema):
    tasks = ma.fields.List(ma.fields.Nested(MyTaskSchema), required=True)


class MyTasksQuery(StrictSchema):
    status = ma.fields.String(load_default="open", validate=ma.validate.OneOf([*(s.value for s in TaskStatus), "all"]),
                              metadata={"description": "open (default), done, cancelled, or all"})
    limit = ma.fields.Integer(load_default=200, validate=ma.validate.Range(min=1, max=500))


class CompleteTaskSchema(StrictSchema):
    note = ma.fields.String(load_default="", validate=ma.validate.Length(max=svc.MAX_NOTE),
                            metadata={"description": "What was done (e.g. 电脑已收回，资产编号 …)"})


class CompleteTaskMultipartSchema(CompleteTaskSchema):
    attachment = ma.fields.Raw(metadata={"type": "string", "format": "binary",
                                         "description": "Optional PDF, PNG or JPEG (max 10 MB): a signed receipt, a photo"})


class EmployeeTaskSchema(ma.Schema):
    id = ma.fields.String(required=True)
    group = ma.fields.String(required=True)
    group_label = ma.fields.String(required=True)
    title = ma.fields.String(required=True)
    status = ma.fields.String(required=True)
    status_label = ma.fields.String(required=True)
    due_date = ma.fields.Date(required=True)
    overdue = ma.fields.Boolean(required=True)
    completed_on = ma.fields.Date(allow_none=True, metadata={"description": "Beijing date it was done"})


class EmployeeTaskListSchema(ma.Schema):
    tasks = ma.fields.List(ma.fields.Nested(EmployeeTaskSchema), required=True)


def _template_body(t: svc.TemplateView) -> dict:
    return {"departure_type": t.departure_type, "version": t.version, "is_default": t.is_default,
            "items": t.items_doc(), "updated_at": t.updated_at, "updated_by": t.updated_by, "comment": t.comment}


# ---- routes -----------------------------------------------------------------------------------------

@blp.route("/hr/offboarding-templates")
class Templates(MethodView):
    @hr_required()
    @blp.response(200, TemplateListSchema)
    @blp.doc(operationId="listOffboardingTemplates",
             summary="The company's offboarding template of each departure type (the product default until edited)")
    def get(self):
        return {"templates": [_template_body(t) for t in svc.list_templates(db(), current_principal().company_id)]}


@blp.route("/hr/offboarding-templates/<string:departure_type>")
class TemplateItem(MethodView):
    @hr_required("hr_manager")
    @blp.arguments(TemplateUpdateSchema)
    @blp.response(200, TemplateSchema)
    @blp.doc(operationId="updateOffboardingTemplate",
             summary="Replace the template of a departure type (stored as a new version; tasks keep theirs)",
             description="Items: key, group (work_handover, assets, accounts_access, finance_social_insurance), "
                         "title, description, owner_role (it, admin, finance, dept_head, hr) or owner_user_id, "
                         "offset (-60..60 days from the last day) and day_kind (working, calendar). 422 codes: "
                         "invalid_template, invalid_template_item, duplicate_template_key, invalid_task_group, "
                         "template_owner_required, invalid_owner_role, template_owner_unknown, "
                         "invalid_template_offset, invalid_day_kind. 404 departure_type_not_found.")
    def put(self, args, departure_type):
        return _template_body(svc.update_template(db(), reviewer(), departure_type, args["items"],
                                                  expected_version=args["expected_version"], comment=args["comment"]))


@blp.route("/hr/cases/<string:case_id>/tasks")
class CaseTasks(MethodView):
    @hr_required()
    @blp.response(200, TaskListSchema)
    @blp.doc(operationId="listCaseTasks", summary="A case's handover tasks (the task board)")
    def get(self, case_id):
        return {"tasks": svc.list_case_tasks(db(), reviewer(), case_id)}


@blp.route("/hr/tasks")
class MyTasks(MethodView):
    @hr_required()
    @blp.arguments(MyTasksQuery, location="query")
    @blp.response(200, MyTaskListSchema)
    @blp.doc(operationId="listMyTasks",
             summary="The signed-in console user's tasks: assigned to them, or to a role they hold",
             description="Role-owned tasks: hr (hr_specialist, hr_manager), dept_head (the head of the employee's "
                         "department), it/admin/finance (users with that duty, see updateHrUser task_roles).")
    def get(self, args):
        status = None if args["status"] == "all" else args["status"]
        return {"tasks": svc.list_my_tasks(db(), reviewer(), status=status, limit=args["limit"])}


@blp.route("/hr/tasks/<string:task_id>/completion")
class TaskCompletion(MethodView):
    @hr_required()
    @blp.response(200, TaskSchema)
    @blp.doc(operationId="completeTask", summary="Mark a handover task done (its owner, or HR on the owner's behalf)",
             description="JSON {note}, or multipart/form-data with note and an optional attachment (PDF, PNG, "
                         "JPEG; max 10 MB) kept in the document store. Recorded in the case's evidence. "
                         "409 task_not_open, 403 task_not_owner, 413 attachment_too_large, 415 attachment_type.",
             requestBody={"required": True, "content": {
                 "application/json": {"schema": CompleteTaskSchema},
                 "multipart/form-data": {"schema": CompleteTaskMultipartSchema}}})
    def post(self, task_id):
        attachment = None
        if request.mimetype == "application/json":
            raw, location = request.get_json(), "json"
        else:
            raw, location = request.form.to_dict(), "form"
            f = request.files.get("attachment")
            if f is not None and f.filename is not None:
                data = f.read(svc.MAX_ATTACHMENT_BYTES + 1)
                if data:
                    attachment = svc.Attachment(data, f.filename or "")
            extra = set(request.files) - {"attachment"}
            if extra:
                raise InvalidInput("validation_failed", "请求参数无效", details={"files": sorted(extra)})
        if not isinstance(raw, dict):
            raise InvalidInput("validation_failed", "请求参数无效", details={location: "object expected"})
        try:
            args = CompleteTaskSchema().load(raw)
        except ma.ValidationError as exc:
            raise InvalidInput("validation_failed", "请求参数无效", details={location: exc.messages}) from None
        return svc.complete_task(db(), runtime(), reviewer(), task_id, note=args["note"], attachment=attachment)


@blp.route("/cases/<string:case_id>/tasks")
class EmployeeCaseTasks(MethodView):
    @employee_required
    @blp.response(200, EmployeeTaskListSchema)
    @blp.doc(operationId="listMyCaseTasks",
             summary="The employee follows their handover: each task's title, group, status and due date")
    def get(self, case_id):
        p = current_principal()
        return {"tasks": svc.employee_tasks(db(), employee_id=p.subject_id, company_id=p.company_id,
                                            case_id=case_id)}
