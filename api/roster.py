"""HR: import the employee roster (CSV or XLSX) - ``importRoster``."""

from __future__ import annotations

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint

from qianli.services import roster as svc

from api.auth import current_principal, hr_required
from api.context import db, runtime
from api.multipart import merged_form_flags, required_upload
from api.schemas import StrictSchema

__all__ = ["blp"]

blp = Blueprint("roster", __name__, url_prefix="/api/v1/hr/roster", description="Employee roster import (HR)")


class RosterFileSchema(StrictSchema):
    """The multipart body (documentation; the view reads it): the file and, optionally, the flags as
    form fields. Any other part is refused (api/multipart.py)."""

    file = ma.fields.Raw(required=True, metadata={"type": "string", "format": "binary",
                                                  "description": "CSV (UTF-8 or GBK) or XLSX roster"})
    good_rows_only = ma.fields.Boolean(metadata={"description": "As the query parameter (a form field wins)"})
    dry_run = ma.fields.Boolean(metadata={"description": "As the query parameter (a form field wins)"})


class RosterFlagsSchema(StrictSchema):
    good_rows_only = ma.fields.Boolean(load_default=False, metadata={
        "description": "Import the valid rows even when some rows are bad (default: a bad row changes nothing)"})
    dry_run = ma.fields.Boolean(load_default=False, metadata={"description": "Validate and count only; write nothing"})


class RowErrorSchema(ma.Schema):
    row = ma.fields.Integer(required=True, metadata={"description": "Row number in the file (header = 1)"})
    code = ma.fields.String(required=True)
    message = ma.fields.String(required=True)
    field = ma.fields.String(allow_none=True)
    employee_no = ma.fields.String(allow_none=True)


class PhotoResultSchema(ma.Schema):
    row = ma.fields.Integer(required=True)
    employee_no = ma.fields.String(required=True)
    photo = ma.fields.String(required=True)
    status = ma.fields.String(required=True, metadata={"description": "enrolled, failed or not_done"})
    reason = ma.fields.String(allow_none=True)


class RosterReportSchema(ma.Schema):
    format = ma.fields.String(required=True, metadata={"description": "csv or xlsx"})
    rows = ma.fields.Integer(required=True)
    valid_rows = ma.fields.Integer(required=True)
    created = ma.fields.Integer(required=True)
    updated = ma.fields.Integer(required=True)
    unchanged = ma.fields.Integer(required=True)
    error_count = ma.fields.Integer(required=True, metadata={"description": "Number of bad rows"})
    errors = ma.fields.List(ma.fields.Nested(RowErrorSchema), required=True)
    errors_truncated = ma.fields.Boolean(required=True)
    applied = ma.fields.Boolean(required=True, metadata={"description": "Whether anything was written"})
    dry_run = ma.fields.Boolean(required=True)
    good_rows_only = ma.fields.Boolean(required=True)
    created_numbers = ma.fields.List(ma.fields.String(), required=True)
    updated_numbers = ma.fields.List(ma.fields.String(), required=True)
    photos = ma.fields.List(ma.fields.Nested(PhotoResultSchema), required=True)
    phone_changes = ma.fields.List(ma.fields.Dict(), required=True, metadata={
        "description": "Employees whose phone this import changed: {employee_no, row, change_id, usable_from}. "
                       "Each is an identity change announced to the old number; the new one is usable for "
                       "signing after the employee confirms or QIANLI_IDENTITY_COOLING_DAYS"})


@blp.route("")
class Roster(MethodView):
    @hr_required("hr_specialist", "hr_manager")
    @blp.arguments(RosterFlagsSchema, location="query")
    @blp.response(200, RosterReportSchema)
    @blp.doc(operationId="importRoster", summary="Import or update employees from a CSV/XLSX roster",
             description="Columns (Chinese or English headers): 工号/employee_no, 姓名/name, 部门/department, "
                         "职位/position, 入职日期/hire_date, 试用期结束/probation_end, 合同期限/contract_term, "
                         "手机号/phone, 身份证号/national_id, 照片/photo, 企业微信账号/wecom_userid. Re-importing updates by employee number. "
                         "Any bad row: 422 roster_has_errors with the report in details and nothing changed, "
                         "unless good_rows_only. A changed phone is an identity change (see phone_changes); for "
                         "an employee with a case in progress it is a bad row (phone_change_case_open). "
                         "Parts other than file, good_rows_only and dry_run are refused.",
             requestBody={"required": True, "content": {"multipart/form-data": {"schema": RosterFileSchema}}})
    def post(self, flags):
        flags = merged_form_flags(RosterFlagsSchema(), flags)
        upload = required_upload("file")
        data = upload.read(runtime().settings.roster_max_bytes + 1)
        p = current_principal()
        report = svc.import_roster(db(), runtime(), company_id=p.company_id, data=data,
                                   good_rows_only=flags["good_rows_only"], dry_run=flags["dry_run"], actor=p.actor,
                                   source="roster_import")
        svc.photos_not_enrolled(report, "照片请使用命令行 qianli roster import --photos 导入")
        return report.as_dict()
