"""HR: departure analytics, its exports and the quarterly report - ``getDepartureAnalytics``,
``exportDepartureAnalytics``, ``getDepartureReport``.

Every HR role may read them; a department head sees their own department only (like every HR
read). Groups of fewer than 5 people are suppressed (``null`` in JSON, ``*`` in CSV/XLSX/PDF).
"""

from __future__ import annotations

import io

import marshmallow as ma
from flask import send_file
from flask.views import MethodView
from flask_smorest import Blueprint

from cases.analytics import Granularity
from cases.departure import DepartureType
from cases.errors import InvalidInput
from qianli.services import analytics as svc
from qianli.services.analytics_export import EXPORT_FORMATS, export_csv, export_filename, export_xlsx
from qianli.services.analytics_report import departure_report_for
from qianli.services.review import get_reviewer

from api.auth import current_principal, hr_required
from api.context import db, runtime
from api.schemas import StrictSchema

__all__ = ["blp"]

blp = Blueprint("analytics", __name__, url_prefix="/api/v1/hr/analytics", description="Departure analytics (HR)")

XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
SUPPRESSED_NOTE = "null: suppressed (fewer than 5 people, or hidden so that a total cannot give it away)"


class AnalyticsQuerySchema(StrictSchema):
    start = ma.fields.Date(data_key="from", load_default=None, metadata={
        "description": "First day (Beijing date, inclusive) of notice arrival; default: the first day of the month "
                       "eleven months before `to`"})
    end = ma.fields.Date(data_key="to", load_default=None, metadata={
        "description": "Last day (Beijing date, inclusive); default: today"})
    granularity = ma.fields.String(load_default="month", validate=ma.validate.OneOf([g.value for g in Granularity]))
    department = ma.fields.String(load_default=None, validate=ma.validate.Length(min=1, max=100))
    departure_type = ma.fields.String(load_default=None, validate=ma.validate.OneOf([t.value for t in DepartureType]))


class ExportQuerySchema(AnalyticsQuerySchema):
    format = ma.fields.String(required=True, validate=ma.validate.OneOf(EXPORT_FORMATS))
    chart = ma.fields.String(load_default=None, validate=ma.validate.OneOf(svc.CHART_IDS), metadata={
        "description": "Which chart; required for CSV; XLSX without it holds every chart (one sheet each)"})


class ReportQuerySchema(StrictSchema):
    year = ma.fields.Integer(load_default=None, validate=ma.validate.Range(min=2000, max=2099))
    quarter = ma.fields.Integer(load_default=None, validate=ma.validate.Range(min=1, max=4))
    fresh = ma.fields.Boolean(load_default=False, metadata={
        "description": "Draw the report from today's data instead of serving the stored quarterly report"})


class KeyLabelSchema(ma.Schema):
    key = ma.fields.String(required=True)
    label = ma.fields.String(required=True)


class ChartRowSchema(ma.Schema):
    key = ma.fields.String(required=True)
    label = ma.fields.String(required=True)
    values = ma.fields.List(ma.fields.Raw(allow_none=True, metadata={"type": "number", "nullable": True}), required=True,
                            metadata={"description": "Counts (people) or metric values; " + SUPPRESSED_NOTE})
    total = ma.fields.Integer(allow_none=True, metadata={"description": "Row total (counts charts); " + SUPPRESSED_NOTE})


class ChartSchema(ma.Schema):
    id = ma.fields.String(required=True, validate=ma.validate.OneOf(svc.CHART_IDS))
    title = ma.fields.String(required=True)
    kind = ma.fields.String(required=True, metadata={"description": "counts (people) or metrics"})
    row_dimension = ma.fields.String(required=True)
    column_dimension = ma.fields.String(required=True)
    columns = ma.fields.List(ma.fields.Nested(KeyLabelSchema), required=True)
    rows = ma.fields.List(ma.fields.Nested(ChartRowSchema), required=True)
    column_totals = ma.fields.List(ma.fields.Integer(allow_none=True), metadata={"description": "counts charts"})
    total = ma.fields.Integer(allow_none=True, metadata={"description": "counts charts: grand total"})
    suppressed_cells = ma.fields.Integer(metadata={"description": "counts charts"})
    overall = ma.fields.Nested(ChartRowSchema, metadata={"description": "metrics chart: everyone in scope"})


class SummarySchema(ma.Schema):
    departures = ma.fields.Integer(allow_none=True)
    close_median_days = ma.fields.Float(allow_none=True, metadata={"description": "Notice to close, median, days"})
    close_p90_days = ma.fields.Float(allow_none=True, metadata={"description": "Notice to close, 90th percentile"})
    letters_overdue_share = ma.fields.Float(allow_none=True, metadata={"description": "0..1"})
    reminders_per_case = ma.fields.Float(allow_none=True)
    handover_median_days = ma.fields.Float(allow_none=True, metadata={
        "description": "First offboarding task created to last completed, median, days"})
    rehire_rate = ma.fields.Float(allow_none=True, metadata={"description": "0..1: departures marked re-hired"})


class DepartureAnalyticsSchema(ma.Schema):
    from_ = ma.fields.Date(data_key="from", attribute="from", required=True)
    to = ma.fields.Date(required=True)
    granularity = ma.fields.String(required=True)
    department = ma.fields.String(allow_none=True)
    departure_type = ma.fields.String(allow_none=True)
    scope_department = ma.fields.String(allow_none=True, metadata={
        "description": "A department head's own department (the only one they see); null for company-wide roles"})
    date_basis = ma.fields.String(required=True, metadata={
        "description": "notice_arrival: a departure counts in the Beijing month/quarter its notice arrived"})
    k_threshold = ma.fields.Integer(required=True, metadata={"description": "Smallest group published (5)"})
    generated_at = ma.fields.AwareDateTime(required=True)
    periods = ma.fields.List(ma.fields.Nested(KeyLabelSchema), required=True)
    summary = ma.fields.Nested(SummarySchema, required=True)
    charts = ma.fields.List(ma.fields.Nested(ChartSchema), required=True)


def _reviewer():
    p = current_principal()
    return get_reviewer(db(), p.subject_id, p.company_id)


def _query(args) -> svc.AnalyticsQuery:
    return svc.make_query(start=args["start"], end=args["end"], granularity=args["granularity"],
                          department=args["department"], departure_type=args["departure_type"])


@blp.route("/departures")
class DepartureAnalytics(MethodView):
    @hr_required()
    @blp.arguments(AnalyticsQuerySchema, location="query")
    @blp.response(200, DepartureAnalyticsSchema)
    @blp.doc(operationId="getDepartureAnalytics",
             summary="Departures by reason, department, period and type; notice-to-close time, overdue letters, "
                     "reminders",
             description="Any HR role; a department head sees their own department only. A departure is a case "
                         "that was not withdrawn (nor an absconding case that ended in a return to work or a "
                         "conversion to a resignation), counted in the Beijing month/quarter its notice arrived. Groups "
                         "of fewer than 5 people are null (suppressed), with complementary suppression so that "
                         "totals never give them away. Errors: 422 invalid_period (from after to), "
                         "period_too_long (more than 60 months), validation_failed.")
    def get(self, args):
        return svc.departure_analytics(db(), _reviewer(), _query(args)).as_dict()


@blp.route("/departures/export")
class DepartureAnalyticsExport(MethodView):
    @hr_required()
    @blp.arguments(ExportQuerySchema, location="query")
    @blp.response(200, {"type": "string", "format": "binary"}, content_type="text/csv",
                  description="CSV (UTF-8 with BOM) of one chart, or XLSX "
                              "(application/vnd.openxmlformats-officedocument.spreadsheetml.sheet)")
    @blp.doc(responses={"200": {"description": "CSV (UTF-8 with BOM) of one chart, or XLSX", "content": {
        "text/csv": {"schema": {"type": "string", "format": "binary"}},
        XLSX_MIME: {"schema": {"type": "string", "format": "binary"}}}}})
    @blp.doc(operationId="exportDepartureAnalytics",
             summary="Export a dashboard chart as CSV or XLSX (every chart as XLSX)",
             description="The same numbers as getDepartureAnalytics with the same filters; suppressed numbers are "
                         "written as *. Errors: 422 chart_required (CSV without chart), invalid_period, "
                         "period_too_long, validation_failed.")
    def get(self, args):
        a = svc.departure_analytics(db(), _reviewer(), _query(args))
        fmt, chart = args["format"], args["chart"]
        if fmt == "csv":
            if chart is None:
                raise InvalidInput("chart_required", "导出 CSV 时需要指定图表（chart）",
                                   details={"allowed": list(svc.CHART_IDS)})
            data, mime = export_csv(a, chart), "text/csv; charset=utf-8"
        else:
            data = export_xlsx(a, [chart] if chart else None)
            mime = XLSX_MIME
        return send_file(io.BytesIO(data), mimetype=mime, as_attachment=True,
                         download_name=export_filename(a, chart, fmt), max_age=0)


@blp.route("/departures/report")
class DepartureReport(MethodView):
    @hr_required()
    @blp.arguments(ReportQuerySchema, location="query")
    @blp.response(200, {"type": "string", "format": "binary"}, content_type="application/pdf",
                  description="The quarterly departure analysis report (离职分析报告), Chinese PDF with charts")
    @blp.doc(operationId="getDepartureReport",
             summary="The quarterly departure analysis report (PDF); default: the previous quarter",
             description="Company-wide roles get the report the scheduler stored at the start of the next quarter "
                         "(header X-Report-Source: stored) or, before it exists or with fresh=true, one drawn now "
                         "(generated). A department head always gets their own department's report, drawn now. "
                         "Errors: 422 invalid_quarter (a quarter not yet begun, or only one of year/quarter).")
    def get(self, args):
        data, filename, source = departure_report_for(db(), runtime(), _reviewer(), year=args["year"],
                                                      quarter=args["quarter"], fresh=args["fresh"])
        resp = send_file(io.BytesIO(data), mimetype="application/pdf", as_attachment=False, download_name=filename,
                         max_age=0)
        resp.headers["X-Report-Source"] = source
        return resp
