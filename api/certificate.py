"""The end of the relationship: the certificate of termination (art. 50) and closing the case.

getTerminationCertificate serves the sealed PDF to the employee (their own case, in the
mini-program) and to HR (the cases getCase shows them); issueTerminationCertificate lets HR issue
it on or after the last day (the scheduler issues it by itself on the last day when the facts are
complete); closeCase ends the case.
"""

from __future__ import annotations

import io

import marshmallow as ma
from flask import send_file
from flask.views import MethodView
from flask_smorest import Blueprint

from cases.errors import Forbidden
from qianli.services import certificate as svc
from qianli.services.cases import get_employee_case
from qianli.services.review import get_hr_case, get_reviewer

from api.auth import current_principal, hr_required, signed_in_required
from api.context import db, runtime
from api.fastdump import FastDumpSchema
from api.schemas import StrictSchema

__all__ = ["blp", "CertificateInfoSchema", "certificate_info", "ClosingSchema", "closing_body"]

blp = Blueprint("certificate", __name__, url_prefix="/api/v1", description="Certificate of termination and closing")

MAX_REASON = 500


class CertificateInfoSchema(FastDumpSchema):
    document_id = ma.fields.String(required=True)
    sha256 = ma.fields.String(required=True, metadata={"description": "SHA-256 of the sealed PDF"})
    filename = ma.fields.String(required=True)
    size = ma.fields.Integer(required=True)
    pades_level = ma.fields.String(required=True, metadata={"example": "B-LTA"})
    termination_date = ma.fields.Date(required=True)
    issue_date = ma.fields.Date(required=True)
    issued_at = ma.fields.AwareDateTime(required=True)
    issued_by = ma.fields.String(required=True, metadata={"description": "hr:<id> or system (the last-day job)"})
    reissue_of = ma.fields.String(allow_none=True, metadata={"description": "The certificate this one corrects"})
    created = ma.fields.Boolean(required=True, metadata={"description": "false: it had been issued already"})


class IssueCertificateSchema(StrictSchema):
    reissue = ma.fields.Boolean(load_default=False, metadata={
        "description": "Issue a corrected certificate (after the roster was fixed); the earlier one is kept"})
    reason = ma.fields.String(load_default="", validate=ma.validate.Length(max=MAX_REASON), metadata={
        "description": "Required with reissue"})
    state_ground = ma.fields.Boolean(load_default=False, metadata={
        "description": "Dismissals only: state the legal ground (art. 39(2)) because the employee asked for it. "
                       "A resignation always states art. 37 (the employee's own notice)."})


def certificate_info(doc, *, created: bool = True) -> dict:
    from datetime import date

    meta = doc.meta or {}

    def day(key: str) -> date | None:
        return date.fromisoformat(meta[key]) if meta.get(key) else None

    return {"document_id": doc.id, "sha256": doc.sha256, "filename": doc.filename, "size": doc.size,
            "pades_level": meta.get("level", "B-LTA"), "termination_date": day("termination_date"),
            "issue_date": day("issue_date"), "issued_at": doc.created_at, "issued_by": doc.created_by,
            "reissue_of": meta.get("reissue_of"), "created": created}


@blp.route("/cases/<string:case_id>/termination-certificate")
class TerminationCertificate(MethodView):
    @signed_in_required
    @blp.response(200, {"type": "string", "format": "binary"}, content_type="application/pdf",
                  headers={"X-Document-SHA256": {"description": "SHA-256 of this PDF", "schema": {"type": "string"}}})
    @blp.doc(operationId="getTerminationCertificate",
             summary="The certificate of termination (解除劳动合同证明), sealed by the company (PDF, PAdES B-LTA)",
             description="The employee for their own case (the download is recorded as evidence of delivery); HR "
                         "staff for the cases getCase shows them. 404 certificate_not_issued before it is issued.")
    def get(self, case_id):
        p = current_principal()
        if p.kind == "employee":
            case = get_employee_case(db(), case_id, employee_id=p.subject_id, company_id=p.company_id)
        elif p.kind == "hr":
            case = get_hr_case(db(), get_reviewer(db(), p.subject_id, p.company_id), case_id)
        else:  # pragma: no cover - signed_in_required admits only these two
            raise Forbidden("signed_in_only", "请先登录")
        doc = svc.certificate_document(db(), case)
        data = svc.record_download(db(), runtime(), case, doc, actor=p.actor)
        resp = send_file(io.BytesIO(data), mimetype="application/pdf",
                         download_name=f"termination-certificate-{case.id}.pdf", max_age=0)
        resp.headers["X-Document-SHA256"] = doc.sha256
        return resp


@blp.route("/hr/cases/<string:case_id>/termination-certificate")
class IssueTerminationCertificate(MethodView):
    @hr_required("hr_specialist", "hr_manager")
    @blp.arguments(IssueCertificateSchema)
    @blp.response(201, CertificateInfoSchema)
    @blp.alt_response(200, schema=CertificateInfoSchema, description="Already issued: the issued certificate")
    @blp.doc(operationId="issueTerminationCertificate",
             summary="Issue the certificate of termination (art. 50) on or after the last day, sealed B-LTA",
             description="States the contract term, the termination date, the position and the years of service "
                         "(Implementing Regulations art. 24), nothing adverse. 422 certificate_facts_missing names "
                         "each missing fact in errors.facts (fix them with importRoster); 409 "
                         "certificate_before_last_day before the termination date, certificate_not_issuable before "
                         "final approval. Never waits for handover tasks. The employee is notified (SMS + "
                         "subscribe message) and downloads it with getTerminationCertificate.")
    def post(self, args, case_id):
        p = current_principal()
        reviewer = get_reviewer(db(), p.subject_id, p.company_id)
        case = get_hr_case(db(), reviewer, case_id)
        out = svc.issue_certificate(db(), runtime(), case, actor=reviewer.actor, reissue=args["reissue"],
                                    reason=args["reason"], state_ground=args["state_ground"])
        return certificate_info(out.document, created=out.created), (201 if out.created else 200)


class CloseCaseSchema(StrictSchema):
    comment = ma.fields.String(load_default="", validate=ma.validate.Length(max=1000))


class OpenTaskSchema(ma.Schema):
    id = ma.fields.String()
    group = ma.fields.String(allow_none=True)
    title = ma.fields.String(allow_none=True)
    owner_role = ma.fields.String(allow_none=True)
    owner_user_id = ma.fields.String(allow_none=True)
    owner_department = ma.fields.String(allow_none=True)
    due_date = ma.fields.String(allow_none=True)
    status = ma.fields.String(allow_none=True)


class FaceDeletionSchema(ma.Schema):
    templates = ma.fields.Integer(required=True, metadata={"description": "Face templates deleted"})
    reference_photos = ma.fields.Integer(required=True, metadata={"description": "Reference photos deleted"})
    remaining = ma.fields.Dict(required=True, metadata={"description": "Rows left afterwards (0 and 0)"})


class ClosingSchema(ma.Schema):
    case_id = ma.fields.String(required=True)
    state = ma.fields.String(required=True, metadata={"example": "closed"})
    closed_at = ma.fields.AwareDateTime(required=True)
    termination_date = ma.fields.Date(required=True)
    open_tasks = ma.fields.List(ma.fields.Nested(OpenTaskSchema), required=True, metadata={
        "description": "Handover tasks still open at closing (listed in the closing record; they do not block it)"})
    certificate = ma.fields.Dict(required=True, metadata={"description": "document_id, sha256, issued_at"})
    employee_deactivated = ma.fields.Boolean(required=True)
    refresh_tokens_revoked = ma.fields.Integer(required=True)
    face_data_deleted = ma.fields.Nested(FaceDeletionSchema, required=True)
    event_id = ma.fields.String(required=True, metadata={"description": "The case.closed outbox event"})


@blp.route("/hr/cases/<string:case_id>/closure")
class CaseClosure(MethodView):
    @hr_required("hr_specialist", "hr_manager")
    @blp.arguments(CloseCaseSchema)
    @blp.response(200, ClosingSchema)
    @blp.doc(operationId="closeCase", summary="Close the case after the last day, with the certificate issued",
             description="409 case_last_day_not_passed on or before the last day, certificate_not_issued without "
                         "the certificate of termination, case_not_closable before final approval, "
                         "case_already_closed. The closing record lists the handover tasks open now. The employee is "
                         "deactivated and their sessions end; the face template and reference photos are deleted "
                         "(recorded in the evidence); case.closed is published to the webhooks.")
    def post(self, args, case_id):
        from qianli.services.closing import close_case

        p = current_principal()
        reviewer = get_reviewer(db(), p.subject_id, p.company_id)
        case = get_hr_case(db(), reviewer, case_id)
        rec = close_case(db(), runtime(), case, actor=reviewer.actor, role=reviewer.role, comment=args["comment"])
        return closing_body(rec)


def closing_body(rec) -> dict:
    return {"case_id": rec.case.id, "state": rec.case.state, "closed_at": rec.closed_at,
            "termination_date": rec.termination_date, "open_tasks": rec.open_tasks, "certificate": rec.certificate,
            "employee_deactivated": not rec.sessions["employee_active"],
            "refresh_tokens_revoked": rec.sessions["refresh_tokens_revoked"],
            "face_data_deleted": {"templates": len(rec.face_data["templates"]),
                                  "reference_photos": len(rec.face_data["reference_photos"]),
                                  "remaining": rec.face_data["remaining"]}, "event_id": rec.event_id}
