"""previewNoticePeriod: what the law makes of a notice arriving on a given day."""

from __future__ import annotations

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint

from cases.errors import NotFound
from qianli.services.cases import company_config_by_code, preview_notice

from api.context import db, runtime
from api.schemas import StrictSchema

__all__ = ["blp"]

blp = Blueprint("notice", __name__, url_prefix="/api/v1/notice", description="Notice-period rules (art. 37)")


class NoticeQuery(StrictSchema):
    arrival_date = ma.fields.Date(required=True, metadata={"description": "Day the notice reaches the employer (YYYY-MM-DD, Asia/Shanghai)"})
    probation = ma.fields.Boolean(load_default=False, metadata={"description": "Employee in probation on that day"})
    company_code = ma.fields.String(load_default=None, validate=ma.validate.Length(max=64),
                                    metadata={"description": "Apply this company's policy and holiday overrides"})


class NoticePreview(ma.Schema):
    arrival_date = ma.fields.Date(required=True)
    probation = ma.fields.Boolean(required=True)
    notice_days = ma.fields.Integer(required=True)
    earliest_last_day = ma.fields.Date(required=True, metadata={"description": "Earliest lawful last day of employment"})
    letter_due_date = ma.fields.Date(required=True, metadata={"description": "Signed letter due (N Chinese working days after arrival)"})
    provisional = ma.fields.Boolean(required=True, metadata={"description": (
        "True when the letter due date could still change: it relies on a day that the State Council's not yet "
        "published arrangement (调休, make-up days) of a year could move. Statutory holidays are never counted as "
        "working days, provisional or not; the earliest last day never depends on the arrangement")})
    pending_years = ma.fields.List(ma.fields.Integer(), required=True, metadata={
        "description": "Years whose unpublished holiday arrangement makes the result provisional (empty when final)"})
    explanation = ma.fields.String(required=True)


@blp.route("/preview")
class NoticePreviewView(MethodView):
    @blp.arguments(NoticeQuery, location="query")
    @blp.response(200, NoticePreview)
    @blp.doc(operationId="previewNoticePeriod")
    def get(self, args):
        company_id = None
        if args.get("company_code"):
            company = company_config_by_code(db(), args["company_code"])
            if company is None:
                raise NotFound("company_not_found", "找不到该公司")
            company_id = company.id
        n = preview_notice(db(), runtime().settings, company_id=company_id, arrival=args["arrival_date"],
                           probation=args["probation"])
        return {"arrival_date": args["arrival_date"], "probation": args["probation"], "notice_days": n.notice_days,
                "earliest_last_day": n.earliest_last_day, "letter_due_date": n.letter_due_date,
                "provisional": n.provisional, "pending_years": list(n.pending_years), "explanation": n.explanation_zh}
