"""HR: the State Council's holiday schedule for a year, entered once; what the law says about a year."""

from __future__ import annotations

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint

from qianli.services import calendar as svc

from api.auth import current_principal, hr_required
from api.context import db, runtime
from api.schemas import NonBlank, StrictSchema

__all__ = ["blp"]

blp = Blueprint("calendar", __name__, url_prefix="/api/v1/hr/calendar",
                description="Holiday schedules (国务院节假日安排) and statutory holidays (HR)")

IMPORT_ERRORS = (
    "Errors (422): `invalid_schedule` (shape), `schedule_year_out_of_range`, `schedule_day_outside_year` "
    "(a day outside 1 Dec of the year before .. 31 Jan of the year after), `schedule_overlap`, "
    "`schedule_workday_not_weekend` (a swapped working day must be a Saturday or Sunday), "
    "`schedule_contradicts_law` (a statutory holiday of the 放假办法 outside every holiday block; `details.days`).")


class HolidayBlockSchema(StrictSchema):
    name = ma.fields.String(required=True, validate=NonBlank(svc.MAX_NAME), metadata={"example": "春节"})
    first = ma.fields.Date(required=True, metadata={"description": "First day off (inclusive)"})
    last = ma.fields.Date(required=True, metadata={"description": "Last day off (inclusive)"})


class SwappedWorkdaySchema(StrictSchema):
    name = ma.fields.String(required=True, validate=NonBlank(svc.MAX_NAME), metadata={"example": "春节"})
    date = ma.fields.Date(required=True, metadata={"description": "A Saturday or Sunday worked (调休上班)"})


class ScheduleInSchema(StrictSchema):
    year = ma.fields.Integer(required=True, validate=ma.validate.Range(min=1900, max=9999))
    source = ma.fields.String(required=True, validate=NonBlank(svc.MAX_SOURCE),
                              metadata={"description": "The notice's title and number, e.g. 国务院办公厅关于2027年部分节假日安排的通知（国办发明电〔2026〕…号）"})
    holidays = ma.fields.List(ma.fields.Nested(HolidayBlockSchema), required=True,
                              validate=ma.validate.Length(min=1, max=svc.MAX_BLOCKS))
    workdays = ma.fields.List(ma.fields.Nested(SwappedWorkdaySchema), load_default=list,
                              validate=ma.validate.Length(max=svc.MAX_BLOCKS))


class ScheduleSchema(ma.Schema):
    year = ma.fields.Integer(required=True)
    scope = ma.fields.String(required=True, metadata={"description": "bundled | all_companies | company"})
    source = ma.fields.String(required=True)
    holidays = ma.fields.List(ma.fields.List(ma.fields.String()), required=True,
                              metadata={"description": "[name, first, last] per holiday block"})
    workdays = ma.fields.List(ma.fields.List(ma.fields.String()), required=True,
                              metadata={"description": "[name, day] per swapped working day"})
    imported_at = ma.fields.DateTime(allow_none=True)
    imported_by = ma.fields.String(allow_none=True)
    sha256 = ma.fields.String(allow_none=True)


class RecomputedCaseSchema(ma.Schema):
    case_id = ma.fields.String(required=True)
    before = ma.fields.Dict(required=True)
    after = ma.fields.Dict(required=True)
    moved = ma.fields.List(ma.fields.String(), required=True,
                           metadata={"description": "letter_due_date and/or earliest_lawful_last_day when they moved"})
    notified = ma.fields.Boolean(required=True, metadata={"description": "Employee notified and HR alerted"})


class ImportResultSchema(ma.Schema):
    schedule = ma.fields.Nested(ScheduleSchema, required=True)
    replaced = ma.fields.Boolean(required=True, metadata={"description": "An earlier import of this year was replaced"})
    warnings = ma.fields.List(ma.fields.String(), required=True)
    cases_recomputed = ma.fields.List(ma.fields.Nested(RecomputedCaseSchema), required=True)
    cases_unchanged = ma.fields.Integer(required=True)


class StatutoryDaySchema(ma.Schema):
    date = ma.fields.String(required=True)
    name = ma.fields.String(required=True)


class StatutorySchema(ma.Schema):
    year = ma.fields.Integer(required=True)
    law_version = ma.fields.String(required=True, metadata={"description": "Revision of the 放假办法 applied: 2007, 2013 or 2024"})
    statutory = ma.fields.List(ma.fields.Nested(StatutoryDaySchema), required=True)
    estimated_makeup = ma.fields.List(ma.fields.Nested(StatutoryDaySchema), required=True,
                                      metadata={"description": "Art. 6 make-up days as estimated until the schedule is published"})


def _doc(args: dict) -> dict:
    return {"year": args["year"], "source": args["source"],
            "holidays": [{"name": h["name"], "first": h["first"].isoformat(), "last": h["last"].isoformat()}
                         for h in args["holidays"]],
            "workdays": [{"name": w["name"], "date": w["date"].isoformat()} for w in args["workdays"]]}


@blp.route("/schedules")
class Schedules(MethodView):
    @hr_required()
    @blp.response(200, ScheduleSchema(many=True))
    @blp.doc(operationId="listHolidaySchedules",
             summary="Published holiday schedules in force for the company (bundled, imported for all, imported for it)")
    def get(self):
        return svc.list_schedules(db(), current_principal().company_id)

    @hr_required("hr_manager")
    @blp.arguments(ScheduleInSchema)
    @blp.response(201, ImportResultSchema)
    @blp.doc(operationId="importHolidaySchedule",
             summary="Enter a year's State Council holiday schedule for the company; recompute provisional open cases",
             description=("Checked against the law (every statutory holiday inside a holiday block; swapped working "
                          "days on weekends). Replaces an earlier import of the same year for the company. Every open "
                          "case of the company whose dates were provisional is recomputed; a change is recorded in the "
                          "case's evidence (`dates_recomputed`); when the letter due date or the earliest last day moves "
                          "the employee is notified and HR gets a `dates_recomputed` alert. " + IMPORT_ERRORS))
    def post(self, args):
        p = current_principal()
        res = svc.import_schedule(db(), runtime(), doc=_doc(args), company_id=p.company_id, actor=f"hr:{p.subject_id}")
        row = res.schedule
        return {"schedule": {"year": row.year, "scope": "company", "source": row.source, "holidays": row.holidays,
                             "workdays": row.workdays, "imported_at": row.imported_at, "imported_by": row.imported_by,
                             "sha256": row.sha256},
                "replaced": res.replaced, "warnings": res.warnings, "cases_recomputed": res.recomputed,
                "cases_unchanged": res.unchanged}


@blp.route("/statutory/<int:year>")
class Statutory(MethodView):
    @hr_required()
    @blp.response(200, StatutorySchema)
    @blp.doc(operationId="getStatutoryHolidays",
             summary="The statutory holidays of a year by the 放假办法, and the estimated art. 6 make-up days",
             description="Errors (422): `schedule_year_out_of_range`.")
    def get(self, year: int):
        return svc.statutory_preview(year)
