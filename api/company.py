"""HR managers: the company's notice policy and its holiday-calendar overrides."""

from __future__ import annotations

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint

from qianli.services import company as svc
from qianli.services.absconding import absence_policy
from qianli.services.cases import company_policy

from api.auth import current_principal, hr_required
from api.context import db, runtime
from api.schemas import StrictSchema

__all__ = ["blp"]

blp = Blueprint("company", __name__, url_prefix="/api/v1/hr/company", description="Company policy (HR)")


class HandbookClauseSchema(StrictSchema):
    reference = ma.fields.String(required=True, validate=ma.validate.Length(min=2, max=100), metadata={
        "description": "Where the rule is, e.g. 《员工手册》第五章第十二条"})
    text = ma.fields.String(required=True, validate=ma.validate.Length(min=10, max=2000), metadata={
        "description": "The rule's wording, quoted in the return-to-work and dismissal notices"})


class PolicySchema(ma.Schema):
    letter_due_working_days = ma.fields.Integer(required=True)
    holidays_extend_notice = ma.fields.Boolean(required=True)
    approval_chain = ma.fields.List(ma.fields.String(), required=True)
    absconding_handbook_clause = ma.fields.Nested(HandbookClauseSchema, allow_none=True, required=True, metadata={
        "description": "The handbook rule an unexcused absence breaches (null: not configured; the return-to-work "
                       "notice and an art. 39(2) dismissal are refused until it is)"})
    return_notice_deadline_days = ma.fields.Integer(required=True, metadata={
        "description": "Chinese working days to return or explain after the return-to-work notice is served"})
    absconding_approval_chain = ma.fields.List(ma.fields.String(), required=True, metadata={
        "description": "Who approves a dismissal for absence, level by level (default hr_manager, dept_head)"})


class PolicyUpdateSchema(StrictSchema):
    letter_due_working_days = ma.fields.Integer(validate=ma.validate.Range(min=1, max=30))
    holidays_extend_notice = ma.fields.Boolean()
    approval_chain = ma.fields.List(ma.fields.String(validate=ma.validate.OneOf(svc.APPROVAL_LEVELS)),
                                    validate=ma.validate.Length(min=1, max=2))
    absconding_handbook_clause = ma.fields.Nested(HandbookClauseSchema, allow_none=True)
    return_notice_deadline_days = ma.fields.Integer(validate=ma.validate.Range(min=1, max=30))
    absconding_approval_chain = ma.fields.List(ma.fields.String(validate=ma.validate.OneOf(svc.APPROVAL_LEVELS)),
                                               validate=ma.validate.Length(min=1, max=2))


class OverrideSchema(ma.Schema):
    id = ma.fields.String(dump_only=True)
    day = ma.fields.Date(required=True)
    kind = ma.fields.String(required=True, validate=ma.validate.OneOf(["holiday", "workday"]))
    note = ma.fields.String(load_default="", validate=ma.validate.Length(max=200))


class OverrideInSchema(StrictSchema, OverrideSchema):
    pass


class YearQuery(StrictSchema):
    year = ma.fields.Integer(load_default=None, validate=ma.validate.Range(min=2000, max=2100))


def _policy_body():
    p = current_principal()
    company = svc.get_company(db(), p.company_id)
    pol = company_policy(company, runtime().settings)
    absence = absence_policy(company, runtime())
    return {"letter_due_working_days": pol.letter_due_working_days, "holidays_extend_notice": pol.holidays_extend_notice,
            "approval_chain": list(pol.approval_chain),
            "absconding_handbook_clause": absence.clause.as_dict() if absence.clause else None,
            "return_notice_deadline_days": absence.deadline_working_days,
            "absconding_approval_chain": list(absence.approval_chain)}


@blp.route("/policy")
class Policy(MethodView):
    @hr_required()
    @blp.response(200, PolicySchema)
    @blp.doc(operationId="getCompanyPolicy")
    def get(self):
        return _policy_body()

    @hr_required("hr_manager")
    @blp.arguments(PolicyUpdateSchema)
    @blp.response(200, PolicySchema)
    @blp.doc(operationId="updateCompanyPolicy")
    def patch(self, args):
        svc.update_policy(db(), runtime().settings, current_principal().company_id, args)
        return _policy_body()


@blp.route("/holiday-overrides")
class Overrides(MethodView):
    @hr_required()
    @blp.arguments(YearQuery, location="query")
    @blp.response(200, OverrideSchema(many=True))
    @blp.doc(operationId="listHolidayOverrides")
    def get(self, args):
        return svc.list_overrides(db(), current_principal().company_id, args["year"])

    @hr_required("hr_manager")
    @blp.arguments(OverrideInSchema)
    @blp.response(201, OverrideSchema)
    @blp.doc(operationId="addHolidayOverride", summary="Add a company holiday or working day (overrides the bundled calendar)")
    def post(self, args):
        return svc.add_override(db(), current_principal().company_id, **args)


@blp.route("/holiday-overrides/<string:override_id>")
class Override(MethodView):
    @hr_required("hr_manager")
    @blp.response(204)
    @blp.doc(operationId="deleteHolidayOverride")
    def delete(self, override_id):
        svc.delete_override(db(), current_principal().company_id, override_id)
