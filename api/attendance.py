"""HR: attendance import and the early warning (离职预警) - ``importAttendance``, ``listAttendanceImports``,
``listAttritionRisks``, ``dismissAttritionRisk``, ``getAttritionRules``, ``updateAttritionRules``.

Company-scoped through the caller's token; a department head sees (and may dismiss) the risks of
their own department only. Thin: parse, one service call, answer.
"""

from __future__ import annotations

from datetime import timedelta

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import select

from cases.attendance import DEFAULT_RULES, RiskLevel
from cases.clock import beijing_today
from qianli.models import AttendanceImport, Company
from qianli.services import attendance as imports
from qianli.services import attrition as svc
from qianli.services.review import get_reviewer

from api.auth import current_principal, hr_required
from api.context import db, runtime
from api.multipart import merged_form_flags, required_upload
from api.schemas import NonBlank, StrictSchema

__all__ = ["blp"]

blp = Blueprint("attendance", __name__, url_prefix="/api/v1/hr", description="Attendance import and early warning (HR)")


def _reviewer():
    p = current_principal()
    return get_reviewer(db(), p.subject_id, p.company_id)


# ---- import ----------------------------------------------------------------------------------------

class AttendanceFlagsSchema(StrictSchema):
    kind = ma.fields.String(load_default="auto", validate=ma.validate.OneOf(imports.IMPORT_KINDS), metadata={
        "description": "auto (by the header), clock (clock-in records) or leave (approved leave)"})
    coverage = ma.fields.String(load_default="company", validate=ma.validate.OneOf(imports.COVERAGES), metadata={
        "description": "company: the file lists every employee's clock-ins from its first to its last date (WeCom "
                       "and DingTalk exports); file: only for the employees in it. The early warning judges "
                       "only covered days."})
    good_rows_only = ma.fields.Boolean(load_default=False, metadata={
        "description": "Import the valid rows even when some rows are bad (default: a bad row changes nothing)"})
    dry_run = ma.fields.Boolean(load_default=False, metadata={"description": "Validate and preview only; write nothing"})


class AttendanceFileSchema(StrictSchema):
    """The multipart body (documentation; the view reads it)."""

    file = ma.fields.Raw(required=True, metadata={"type": "string", "format": "binary",
                                                  "description": "CSV (UTF-8, UTF-8 with BOM, or GBK) or XLSX"})
    kind = ma.fields.String(metadata={"description": "As the query parameter (a form field wins)"})
    coverage = ma.fields.String(metadata={"description": "As the query parameter (a form field wins)"})
    good_rows_only = ma.fields.Boolean(metadata={"description": "As the query parameter (a form field wins)"})
    dry_run = ma.fields.Boolean(metadata={"description": "As the query parameter (a form field wins)"})


class AttendanceRowErrorSchema(ma.Schema):
    row = ma.fields.Integer(required=True, metadata={"description": "Row number in the file (first row = 1)"})
    code = ma.fields.String(required=True)
    message = ma.fields.String(required=True)
    field = ma.fields.String(allow_none=True)
    employee_no = ma.fields.String(allow_none=True)


class AttendanceReportSchema(ma.Schema):
    format = ma.fields.String(required=True, metadata={"description": "csv or xlsx"})
    kind = ma.fields.String(required=True, metadata={"description": "clock or leave"})
    coverage = ma.fields.String(required=True)
    rows = ma.fields.Integer(required=True)
    valid_rows = ma.fields.Integer(required=True)
    error_count = ma.fields.Integer(required=True, metadata={"description": "Number of bad rows"})
    errors = ma.fields.List(ma.fields.Nested(AttendanceRowErrorSchema), required=True)
    errors_truncated = ma.fields.Boolean(required=True)
    skipped_rows = ma.fields.Integer(required=True, metadata={"description": "Leave rows not approved (skipped)"})
    skipped = ma.fields.List(ma.fields.Dict(), required=True)
    leave_assumed_approved = ma.fields.Boolean(required=True, metadata={
        "description": "A leave file without an approval-status column: every row was taken as approved"})
    employees = ma.fields.Integer(required=True)
    first_day = ma.fields.String(allow_none=True, metadata={"format": "date", "description": "First day in the file"})
    last_day = ma.fields.String(allow_none=True, metadata={"format": "date", "description": "Last day in the file"})
    records_created = ma.fields.Integer(required=True)
    records_updated = ma.fields.Integer(required=True)
    records_unchanged = ma.fields.Integer(required=True)
    leaves_created = ma.fields.Integer(required=True)
    leaves_unchanged = ma.fields.Integer(required=True)
    applied = ma.fields.Boolean(required=True, metadata={"description": "Whether anything was written"})
    dry_run = ma.fields.Boolean(required=True)
    good_rows_only = ma.fields.Boolean(required=True)
    import_id = ma.fields.String(allow_none=True)
    sha256 = ma.fields.String(required=True, metadata={"description": "SHA-256 of the file (kept as evidence)"})
    previous_import_id = ma.fields.String(allow_none=True, metadata={
        "description": "An earlier import of the very same file, if any"})
    preview = ma.fields.List(ma.fields.Dict(), required=True, metadata={"description": "The first valid rows as read"})


class AttendanceImportSchema(ma.Schema):
    id = ma.fields.String(required=True)
    source = ma.fields.String(required=True, metadata={"description": "file or wecom"})
    filename = ma.fields.String(required=True)
    format = ma.fields.String(required=True)
    sha256 = ma.fields.String(required=True)
    size = ma.fields.Integer(required=True)
    first_day = ma.fields.Date(allow_none=True)
    last_day = ma.fields.Date(allow_none=True)
    summary = ma.fields.Dict(required=True)
    actor = ma.fields.String(required=True)
    created_at = ma.fields.DateTime(required=True)


class ImportListQuery(StrictSchema):
    limit = ma.fields.Integer(load_default=50, validate=ma.validate.Range(min=1, max=200))


@blp.route("/attendance/imports")
class AttendanceImports(MethodView):
    @hr_required("hr_specialist", "hr_manager")
    @blp.arguments(AttendanceFlagsSchema, location="query")
    @blp.response(200, AttendanceReportSchema)
    @blp.doc(operationId="importAttendance", summary="Import clock-in records or approved leave (CSV/XLSX)",
             description="Clock-in files as WeCom (打卡日报/打卡记录), DingTalk (每日统计/打卡明细) and time clocks "
                         "export them (姓名/工号/部门/日期/上班打卡时间/下班打卡时间/打卡结果, or 考勤号码 + 日期时间 per "
                         "punch); leave files with 请假类型/开始时间/结束时间/审批状态. Headers are found below export "
                         "titles and mapped by alias; employees matched by 工号 (else by a unique 姓名). Any bad row: "
                         "422 attendance_has_errors with the report in details and nothing written, unless "
                         "good_rows_only. Re-importing the same records changes nothing. Parts other than file, "
                         "kind, coverage, good_rows_only and dry_run are refused.",
             requestBody={"required": True, "content": {"multipart/form-data": {"schema": AttendanceFileSchema}}})
    def post(self, flags):
        flags = merged_form_flags(AttendanceFlagsSchema(), flags)
        upload = required_upload("file")
        data = upload.read(runtime().settings.attendance_max_bytes + 1)
        p = current_principal()
        report = imports.import_attendance(db(), runtime(), company_id=p.company_id, data=data,
                                           filename=upload.filename or "", kind=flags["kind"],
                                           coverage=flags["coverage"], good_rows_only=flags["good_rows_only"],
                                           dry_run=flags["dry_run"], actor=p.actor)
        return report.as_dict()

    @hr_required()
    @blp.arguments(ImportListQuery, location="query")
    @blp.response(200, AttendanceImportSchema(many=True))
    @blp.doc(operationId="listAttendanceImports", summary="The company's attendance imports and WeCom pulls, newest first")
    def get(self, args):
        return list(db().scalars(select(AttendanceImport).where(
            AttendanceImport.company_id == current_principal().company_id)
            .order_by(AttendanceImport.created_at.desc()).limit(args["limit"])))


# ---- risks ------------------------------------------------------------------------------------------

LEVELS = [lv.value for lv in RiskLevel]


class RiskQuery(StrictSchema):
    level = ma.fields.List(ma.fields.String(validate=ma.validate.OneOf(LEVELS)), load_default=None, metadata={
        "description": "Only these levels (repeat the parameter); default all"})
    date = ma.fields.Date(load_default=None, metadata={
        "description": "The day the list is for (default today, Beijing): the working days before it are judged"})


class DismissedSchema(ma.Schema):
    episode = ma.fields.String(required=True)
    reason = ma.fields.String(allow_none=True)
    by = ma.fields.String(allow_none=True)
    at = ma.fields.DateTime(allow_none=True)


class RiskSchema(ma.Schema):
    employee_id = ma.fields.String(required=True)
    employee_no = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    department = ma.fields.String(required=True)
    level = ma.fields.String(required=True, metadata={"description": "red, amber or green (a dismissed alarm: green)"})
    level_label = ma.fields.String(required=True)
    computed_level = ma.fields.String(required=True, metadata={"description": "The level before any dismissal"})
    reasons = ma.fields.List(ma.fields.String(), required=True, metadata={"description": "zh-CN, one per finding"})
    kind = ma.fields.String(allow_none=True, metadata={"description": "gap or drop"})
    episode = ma.fields.String(allow_none=True, metadata={
        "description": "gap:<first absent day> or drop:<first day of the recent window>"})
    gap_days = ma.fields.List(ma.fields.Date(), required=True)
    consecutive_days = ma.fields.Integer(required=True)
    last_clock_in = ma.fields.Date(allow_none=True)
    recent_rate = ma.fields.Float(allow_none=True)
    baseline_rate = ma.fields.Float(allow_none=True)
    notified_at = ma.fields.DateTime(allow_none=True, metadata={"description": "When HR and the department head were told"})
    dismissed = ma.fields.Nested(DismissedSchema, allow_none=True)
    open_case_id = ma.fields.String(allow_none=True)


class RiskListSchema(ma.Schema):
    date = ma.fields.Date(required=True)
    through = ma.fields.Date(required=True, metadata={"description": "The last day judged (the day before date)"})
    counts = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer(), required=True)
    items = ma.fields.List(ma.fields.Nested(RiskSchema), required=True)


class DismissSchema(StrictSchema):
    reason = ma.fields.String(required=True, validate=NonBlank(500))
    episode = ma.fields.String(load_default=None, validate=ma.validate.Length(max=40), metadata={
        "description": "The episode seen (from listAttritionRisks): 409 attrition_episode_changed if it moved on"})


@blp.route("/attrition-risks")
class AttritionRisks(MethodView):
    @hr_required()
    @blp.arguments(RiskQuery, location="query")
    @blp.response(200, RiskListSchema)
    @blp.doc(operationId="listAttritionRisks", summary="The early-warning list: red / amber / green with the reasons",
             description="Red: at least red_consecutive_days consecutive working days (holidays skipped, 调休 days "
                         "counted) without a clock-in and without approved leave; amber: a shorter gap or a drop "
                         "against the employee's own pattern. Employees without any attendance record are counted "
                         "as untracked. A department head sees their department only.")
    def get(self, args):
        day = args["date"] or beijing_today()
        risks = svc.evaluate(db(), current_principal().company_id, through=day - timedelta(days=1),
                             reviewer=_reviewer())
        items = [it.as_dict() for it in risks.items]
        if args["level"]:
            items = [i for i in items if i["level"] in args["level"]]
        return {"date": day, "through": risks.through, "counts": risks.counts(), "items": items}


@blp.route("/attrition-risks/<string:employee_id>/dismissal")
class AttritionDismissal(MethodView):
    @hr_required("hr_specialist", "hr_manager", "dept_head")
    @blp.arguments(DismissSchema)
    @blp.response(201, RiskSchema)
    @blp.doc(operationId="dismissAttritionRisk", summary="Mark an employee's current alarm a false alarm, with the reason",
             description="Recorded with who and when. The same gap (or drop window) does not alert again; a new gap "
                         "after a clock-in does. 409 no_attrition_risk when the employee is green.")
    def post(self, args, employee_id):
        item = svc.dismiss(db(), _reviewer(), employee_id, reason=args["reason"], episode=args["episode"])
        return item.as_dict()


# ---- rules ------------------------------------------------------------------------------------------

class RulesSchema(ma.Schema):
    red_consecutive_days = ma.fields.Integer(required=True)
    amber_consecutive_days = ma.fields.Integer(required=True)
    drop_enabled = ma.fields.Boolean(required=True)
    drop_recent_days = ma.fields.Integer(required=True)
    drop_baseline_days = ma.fields.Integer(required=True)
    drop_percent = ma.fields.Integer(required=True)
    notify_red = ma.fields.Boolean(required=True)


class RulesUpdateSchema(StrictSchema):
    red_consecutive_days = ma.fields.Integer(strict=True, validate=ma.validate.Range(min=1, max=30), metadata={
        "description": f"Consecutive working days without a clock-in or leave that make red (default "
                       f"{DEFAULT_RULES.red_consecutive_days})"})
    amber_consecutive_days = ma.fields.Integer(strict=True, validate=ma.validate.Range(min=0, max=29), metadata={
        "description": "From this many (and fewer than red) amber; 0: none (default 1)"})
    drop_enabled = ma.fields.Boolean(truthy={True}, falsy={False}, metadata={
        "description": "A drop against the own pattern makes amber (JSON true / false only)"})
    drop_recent_days = ma.fields.Integer(strict=True, validate=ma.validate.Range(min=1, max=30), metadata={
        "description": "Recent window, working days (default 5)"})
    drop_baseline_days = ma.fields.Integer(strict=True, validate=ma.validate.Range(min=5, max=120), metadata={
        "description": "Baseline window before it, working days (default 20)"})
    drop_percent = ma.fields.Integer(strict=True, validate=ma.validate.Range(min=10, max=100), metadata={
        "description": "Drop of the attendance rate that makes amber, percent (default 50)"})
    notify_red = ma.fields.Boolean(truthy={True}, falsy={False}, metadata={
        "description": "Tell HR and the department head of each new red (JSON true / false only)"})


@blp.route("/attrition-rules")
class AttritionRulesView(MethodView):
    @hr_required()
    @blp.response(200, RulesSchema)
    @blp.doc(operationId="getAttritionRules", summary="The company's early-warning rules (defaults where not set)")
    def get(self):
        return svc.company_rules(db().get(Company, current_principal().company_id)).as_dict()

    @hr_required("hr_manager")
    @blp.arguments(RulesUpdateSchema)
    @blp.response(200, RulesSchema)
    @blp.doc(operationId="updateAttritionRules", summary="Change some early-warning rules (the others keep their value)",
             description="422 invalid_attrition_rules when the result is inconsistent (amber must stay below red).")
    def patch(self, args):
        p = current_principal()
        return svc.set_rules(db(), p.company_id, args, actor=p.actor).as_dict()
