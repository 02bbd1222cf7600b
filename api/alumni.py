"""The alumni pool (issue 17): consent, profile and tags, re-hire search, campaigns, job openings.

Employee or former employee (mini-program; a deactivated employee logs in with WeChat and gets an
alumni-only token): ``getAlumniConsent``, ``giveAlumniConsent``, ``withdrawAlumniConsent``,
``listMyJobOpenings``, ``answerJobOpening``.
Public (the message carries the proof): ``getUnsubscribe``, ``unsubscribeAlumni`` (the link in each
message), ``receiveSmsReply`` (the SMS provider's reply callback, shared-secret header).
HR: ``searchAlumni``, ``exportAlumni``, ``getAlumnus`` (any HR role; a department head: their
department only), ``updateAlumnusTags``, ``markAlumnusRehired``, ``createCampaign``, ``listCampaigns``,
``listCampaignDeliveries``, ``createJobOpening``, ``listJobOpenings``, ``getJobOpening``.

The performance grade is a field-level permission: only hr_manager sees it (the key is absent for
every other role, in the API, the console and the exports) and only hr_manager may filter by it or
set it (403 ``grade_forbidden``).
"""

from __future__ import annotations

import csv
import hmac
import io

import marshmallow as ma
from flask import Response, request
from flask.views import MethodView
from flask_smorest import Blueprint

from cases.alumni import CONSENT_TEXT, CONSENT_TEXT_VERSION, PURPOSE_LABELS, AlumniPurpose
from cases.departure import DepartureType
from cases.errors import Forbidden, InvalidInput, Unauthorized
from identity.sms import normalize_cn_mobile
from qianli.models import CAMPAIGN_DELIVERY_STATUSES, PERFORMANCE_GRADES, REASON_CATEGORIES
from qianli.services import alumni as svc
from qianli.services import alumni_outreach as out
from qianli.services.evidence import RequestMeta
from qianli.services.review import get_reviewer

from api.auth import current_principal, employee_or_alumnus_required, hr_required
from api.context import db, runtime
from api.schemas import NonBlank, StrictSchema

__all__ = ["blp", "alumni_export_rows", "EXPORT_COLUMNS"]

blp = Blueprint("alumni", __name__, url_prefix="/api/v1", description="Alumni pool: consent, profiles, re-hire "
                                                                     "search, campaigns, job openings")

PURPOSES = [p.value for p in AlumniPurpose]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _meta(openid: str | None = None) -> RequestMeta:
    return RequestMeta(ip=request.remote_addr or "", user_agent=request.headers.get("User-Agent", ""), openid=openid)


# -- consent ----------------------------------------------------------------------------------
class PurposeStateSchema(ma.Schema):
    purpose = ma.fields.String(required=True, metadata={"description": "greetings, company_news or job_openings"})
    label = ma.fields.String(required=True, metadata={"description": "zh-CN name of the purpose"})
    given = ma.fields.Boolean(required=True)
    given_at = ma.fields.AwareDateTime(allow_none=True)
    text_version = ma.fields.String(allow_none=True)


class AlumniConsentSchema(ma.Schema):
    text_version = ma.fields.String(required=True, metadata={"description": "Current version of the consent text"})
    text = ma.fields.String(required=True, metadata={"description": "The consent text to show (zh-CN)"})
    purposes = ma.fields.List(ma.fields.Nested(PurposeStateSchema), required=True)
    member = ma.fields.Boolean(required=True, metadata={"description": "Whether the person is in the alumni pool"})


class GiveAlumniConsentSchema(StrictSchema):
    text_version = ma.fields.String(required=True, validate=NonBlank(32),
                                    metadata={"description": "text_version of the text shown"})
    purposes = ma.fields.List(ma.fields.String(validate=ma.validate.OneOf(PURPOSES)), required=True,
                              validate=ma.validate.Length(min=1, max=3),
                              metadata={"description": "The purposes the person ticked (each separately)"})
    agree = ma.fields.Boolean(required=True, validate=ma.validate.Equal(True))


class WithdrawAlumniConsentSchema(StrictSchema):
    purposes = ma.fields.List(ma.fields.String(validate=ma.validate.OneOf(PURPOSES)),
                              validate=ma.validate.Length(min=1, max=3),
                              metadata={"description": "Purposes to withdraw; absent: all of them"})


def _consent_body(state: svc.ConsentState) -> dict:
    return {"text_version": CONSENT_TEXT_VERSION, "text": CONSENT_TEXT, "member": state.alumnus is not None,
            "purposes": [{"purpose": p, "label": PURPOSE_LABELS[AlumniPurpose(p)], "given": c is not None,
                          "given_at": c.given_at if c else None, "text_version": c.text_version if c else None}
                         for p, c in state.consents.items()]}


@blp.route("/alumni/consent")
class AlumniConsent(MethodView):
    @employee_or_alumnus_required
    @blp.response(200, AlumniConsentSchema)
    @blp.doc(operationId="getAlumniConsent", summary="The alumni-network consent text and the purposes consented to",
             description="For employees and former employees (alumni-only token from wechatLogin).")
    def get(self):
        p = current_principal()
        return _consent_body(svc.consent_state(db(), p.company_id, p.subject_id))

    @employee_or_alumnus_required
    @blp.arguments(GiveAlumniConsentSchema)
    @blp.response(200, AlumniConsentSchema)
    @blp.doc(operationId="giveAlumniConsent",
             summary="Consent to joining the alumni network for the listed purposes (PIPL); joins the pool at close",
             description="409 alumni_consent_text_outdated when text_version is not the current one. A former "
                         "employee whose data is still kept joins the pool at once.")
    def put(self, args):
        p = current_principal()
        return _consent_body(svc.give_consent(db(), company_id=p.company_id, employee_id=p.subject_id,
                                              purposes=args["purposes"], text_version=args["text_version"],
                                              meta=_meta(p.openid), settings=runtime().settings))

    @employee_or_alumnus_required
    @blp.arguments(WithdrawAlumniConsentSchema)
    @blp.response(200, AlumniConsentSchema)
    @blp.doc(operationId="withdrawAlumniConsent",
             summary="Withdraw the consent for some or all purposes; nothing more is sent for them",
             description="Pending messages of the withdrawn purposes are cancelled at once. A former employee left "
                         "with no purpose leaves the pool: the retention job deletes the profile on its next run.")
    def delete(self, args):
        p = current_principal()
        return _consent_body(svc.withdraw_consent(db(), company_id=p.company_id, employee_id=p.subject_id,
                                                  purposes=args.get("purposes"), meta=_meta(p.openid),
                                                  settings=runtime().settings))


# -- unsubscribe (public) ----------------------------------------------------------------------
class UnsubscribeInfoSchema(ma.Schema):
    purpose = ma.fields.String(required=True)
    label = ma.fields.String(required=True)
    subscribed = ma.fields.Boolean(required=True, metadata={"description": "Consent for this purpose in force"})


class AlumniUnsubscribeSchema(StrictSchema):
    all_purposes = ma.fields.Boolean(load_default=False, metadata={
        "description": "Withdraw every alumni purpose, not only the message's"})


class UnsubscribedSchema(ma.Schema):
    withdrawn = ma.fields.List(ma.fields.String(), required=True, metadata={"description": "Purposes withdrawn now"})
    message = ma.fields.String(required=True)


@blp.route("/alumni/unsubscribe/<string:token>")
class Unsubscribe(MethodView):
    @blp.response(200, UnsubscribeInfoSchema)
    @blp.doc(operationId="getUnsubscribe", summary="What the unsubscribe link of a message would withdraw",
             description="No login: the token in the message is the credential. 404 unsubscribe_token_invalid.")
    def get(self, token):
        d = svc.delivery_for_token(db(), token)
        return {"purpose": d.purpose, "label": PURPOSE_LABELS[AlumniPurpose(d.purpose)],
                "subscribed": d.purpose in svc.active_purposes(db(), d.company_id, d.employee_id)}

    @blp.arguments(AlumniUnsubscribeSchema)
    @blp.response(200, UnsubscribedSchema)
    @blp.doc(operationId="unsubscribeAlumni", summary="Unsubscribe with the link of a message (withdraws the consent)")
    def post(self, args, token):
        _, withdrawn = svc.unsubscribe(db(), token=token, all_purposes=args["all_purposes"], meta=_meta())
        return {"withdrawn": withdrawn, "message": "已退订，之后不会再向您发送此类消息" if withdrawn else "您已退订"}


class SmsReplySchema(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE  # providers add fields (sign, extend, nationcode, dest_code ...)

    mobile = ma.fields.String(metadata={"description": "Tencent Cloud: the sender's number"})
    phone_number = ma.fields.String(metadata={"description": "Aliyun: the sender's number"})
    text = ma.fields.String(metadata={"description": "Tencent Cloud: the reply text"})
    content = ma.fields.String(metadata={"description": "Aliyun: the reply text"})
    sequence_id = ma.fields.Raw(metadata={"description": "Aliyun: the reply's id"})
    time = ma.fields.Raw(metadata={"description": "Tencent Cloud: unix time of the reply"})


class SmsReplyResultSchema(ma.Schema):
    received = ma.fields.Integer(required=True)
    unsubscribed = ma.fields.Integer(required=True, metadata={"description": "People whose consent was withdrawn"})


@blp.route("/alumni/sms-replies")
class SmsReplies(MethodView):
    @blp.arguments(SmsReplySchema(many=True))
    @blp.response(200, SmsReplyResultSchema)
    @blp.doc(operationId="receiveSmsReply",
             summary="The SMS provider's reply callback: 'TD' / '退订' withdraws every alumni purpose of the sender",
             description="Authenticated by the X-QianLi-Token header (QIANLI_SMS_REPLY_TOKEN; 401 "
                         "sms_reply_token_invalid; 403 sms_reply_disabled while the setting is empty). Body: a JSON array of "
                         "replies in Tencent Cloud (mobile, text) or Aliyun (phone_number, content) form.")
    def post(self, replies):
        expected = runtime().settings.sms_reply_token
        if not expected:
            raise Forbidden("sms_reply_disabled", "SMS reply callback is not configured (QIANLI_SMS_REPLY_TOKEN)")
        if not hmac.compare_digest(request.headers.get("X-QianLi-Token", "").encode(), expected.encode()):
            raise Unauthorized("sms_reply_token_invalid", "invalid callback token")
        n = 0
        for i, r in enumerate(replies):
            raw_phone = r.get("mobile") or r.get("phone_number") or ""
            try:
                phone = normalize_cn_mobile(raw_phone)
            except InvalidInput:
                continue
            ref = str(r.get("sequence_id") or r.get("time") or i)
            n += svc.receive_sms_reply(db(), runtime(), phone=phone, text=r.get("text") or r.get("content") or "",
                                       reply_id=ref, meta=_meta())
        return {"received": len(replies), "unsubscribed": n}


# -- HR: profiles and search --------------------------------------------------------------------
class AlumnusPositionSchema(ma.Schema):
    title = ma.fields.String(required=True, validate=ma.validate.Length(max=100))
    from_ = ma.fields.String(data_key="from", allow_none=True, validate=ma.validate.Length(max=10))
    to = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=10))


class AlumnusSchema(ma.Schema):
    id = ma.fields.String(required=True)
    employee_id = ma.fields.String(required=True)
    employee_no = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    department = ma.fields.String(required=True)
    positions = ma.fields.List(ma.fields.Nested(AlumnusPositionSchema), required=True)
    hired_on = ma.fields.Date(allow_none=True)
    left_on = ma.fields.Date(allow_none=True)
    departure_type = ma.fields.String(required=True, metadata={"description": "resignation, absconding or agreement"})
    reason_category = ma.fields.String(allow_none=True)
    skills = ma.fields.List(ma.fields.String(), required=True)
    tags = ma.fields.List(ma.fields.String(), required=True)
    notes = ma.fields.String(required=True)
    rehire_eligible = ma.fields.Boolean(allow_none=True)
    performance_grade = ma.fields.String(allow_none=True, metadata={
        "description": "A-D. Present only for the hr_manager role (field-level permission)"})
    purposes = ma.fields.List(ma.fields.String(), required=True, metadata={"description": "Consents in force"})
    joined_at = ma.fields.AwareDateTime(required=True)
    rehired_at = ma.fields.AwareDateTime(allow_none=True, metadata={"description": "Set when re-hired (rehire rate)"})
    updated_at = ma.fields.AwareDateTime(required=True)


class AlumniPageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(AlumnusSchema), required=True)
    total = ma.fields.Integer(required=True)
    page = ma.fields.Integer(required=True)
    page_size = ma.fields.Integer(required=True)


class AlumniSearchArgsSchema(StrictSchema):
    q = ma.fields.String(load_default="", validate=ma.validate.Length(max=100), metadata={
        "description": "Chinese full-text over skills, tags, positions and notes (every word must match)"})
    skill = ma.fields.List(ma.fields.String(validate=ma.validate.Length(max=50)), load_default=list,
                           metadata={"description": "Has all these skills (repeatable)"})
    tag = ma.fields.List(ma.fields.String(validate=ma.validate.Length(max=50)), load_default=list,
                         metadata={"description": "Has all these tags (repeatable)"})
    department = ma.fields.String(validate=ma.validate.Length(max=100))
    reason_category = ma.fields.String(validate=ma.validate.OneOf(REASON_CATEGORIES))
    departure_type = ma.fields.String(validate=ma.validate.OneOf([d.value for d in DepartureType]))
    grade = ma.fields.List(ma.fields.String(validate=ma.validate.OneOf(PERFORMANCE_GRADES)), load_default=list,
                           metadata={"description": "hr_manager only (others: 403 grade_forbidden)"})
    eligible_only = ma.fields.Boolean(load_default=False)
    left_from = ma.fields.Date()
    left_to = ma.fields.Date()
    include_rehired = ma.fields.Boolean(load_default=True)
    page = ma.fields.Integer(load_default=1, validate=ma.validate.Range(min=1, max=10000))
    page_size = ma.fields.Integer(load_default=20, validate=ma.validate.Range(min=1, max=100))


def _reviewer():
    p = current_principal()
    return get_reviewer(db(), p.subject_id, p.company_id)


def _scope(r) -> str | None:
    """A department head sees their department's alumni only (none without a department)."""
    return (r.department or "") if r.role == "dept_head" else None


def _filters(args) -> svc.SearchFilters:
    return svc.SearchFilters(q=args["q"], skills=tuple(args["skill"]), tags=tuple(args["tag"]),
                             department=args.get("department"), reason_category=args.get("reason_category"),
                             departure_type=args.get("departure_type"), grades=tuple(args["grade"]),
                             eligible_only=args["eligible_only"], left_from=args.get("left_from"),
                             left_to=args.get("left_to"), include_rehired=args["include_rehired"])


@blp.route("/hr/alumni")
class AlumniSearch(MethodView):
    @hr_required()
    @blp.arguments(AlumniSearchArgsSchema, location="query")
    @blp.response(200, AlumniPageSchema)
    @blp.doc(operationId="searchAlumni", summary="Re-hire search over the alumni pool (filters + Chinese full-text)",
             description="Newest departures first. A department head: their department only. The grade filter and "
                         "the performance_grade field: hr_manager only.")
    def get(self, args):
        r = _reviewer()
        page = svc.search_alumni(db(), r.company_id, _filters(args), role=r.role, scope_department=_scope(r),
                                 page=args["page"], per_page=args["page_size"])
        return {"items": [svc.profile_view(db(), a, role=r.role) for a in page.items], "total": page.total,
                "page": page.page, "page_size": page.per_page}


EXPORT_COLUMNS = [("name", "姓名"), ("employee_no", "工号"), ("department", "部门"), ("positions", "岗位"),
                  ("hired_on", "入职日期"), ("left_on", "离职日期"), ("departure_type", "离职类型"),
                  ("reason_category", "离职原因"), ("skills", "技能"), ("tags", "标签"),
                  ("rehire_eligible", "可再录用"), ("performance_grade", "绩效等级"), ("rehired_at", "已返聘"),
                  ("notes", "备注")]


def alumni_export_rows(profiles: list[dict], role: str) -> tuple[list[str], list[list[str]]]:
    """Header and rows of an export; the grade column exists only for hr_manager."""
    cols = [(k, label) for k, label in EXPORT_COLUMNS if k != "performance_grade" or role == svc.GRADE_ROLE]

    def cell(v) -> str:
        if isinstance(v, list):
            return "；".join(p.get("title", "") if isinstance(p, dict) else str(p) for p in v)
        if v is None:
            return ""
        if isinstance(v, bool):
            return "是" if v else "否"
        return str(v)

    return [label for _, label in cols], [[cell(p.get(k)) for k, _ in cols] for p in profiles]


class AlumniExportArgsSchema(AlumniSearchArgsSchema):
    format = ma.fields.String(load_default="csv", validate=ma.validate.OneOf(("csv", "xlsx")))
    page_size = ma.fields.Integer(load_default=5000, validate=ma.validate.Range(min=1, max=5000))


@blp.route("/hr/alumni/export")
class AlumniExport(MethodView):
    @hr_required()
    @blp.arguments(AlumniExportArgsSchema, location="query")
    @blp.response(200, {"type": "string", "format": "binary"}, content_type="text/csv",
                  description="CSV (UTF-8 with BOM), or XLSX with format=xlsx")
    @blp.doc(operationId="exportAlumni", summary="Export the search result as CSV or XLSX (grade column: hr_manager only)",
             responses={"200": {"content": {"text/csv": {"schema": {"type": "string", "format": "binary"}},
                                             XLSX: {"schema": {"type": "string", "format": "binary"}}}}})
    def get(self, args):
        r = _reviewer()
        page = svc.search_alumni(db(), r.company_id, _filters(args), role=r.role, scope_department=_scope(r),
                                 page=args["page"], per_page=args["page_size"])
        header, rows = alumni_export_rows([svc.profile_view(db(), a, role=r.role) for a in page.items], r.role)
        if args["format"] == "xlsx":
            from openpyxl import Workbook

            wb = Workbook()
            ws = wb.active
            ws.title = "离职人才库"
            ws.append(header)
            for row in rows:
                ws.append(row)
            buf = io.BytesIO()
            wb.save(buf)
            return Response(buf.getvalue(), headers={"Content-Disposition": "attachment; filename=alumni.xlsx"},
                            mimetype=XLSX)
        text = io.StringIO()
        w = csv.writer(text)
        w.writerow(header)
        w.writerows(rows)
        return Response("\ufeff" + text.getvalue(), mimetype="text/csv",
                        headers={"Content-Disposition": "attachment; filename=alumni.csv"})


class AlumnusTagsSchema(StrictSchema):
    skills = ma.fields.List(ma.fields.String(validate=ma.validate.Length(min=1, max=50)),
                            validate=ma.validate.Length(max=50))
    tags = ma.fields.List(ma.fields.String(validate=ma.validate.Length(min=1, max=50)),
                          validate=ma.validate.Length(max=50))
    notes = ma.fields.String(validate=ma.validate.Length(max=5000))
    rehire_eligible = ma.fields.Boolean(allow_none=True)
    performance_grade = ma.fields.String(allow_none=True, validate=ma.validate.OneOf(PERFORMANCE_GRADES),
                                         metadata={"description": "hr_manager only (others: 403 grade_forbidden)"})
    positions = ma.fields.List(ma.fields.Nested(AlumnusPositionSchema), validate=ma.validate.Length(max=30))


@blp.route("/hr/alumni/<string:alumnus_id>")
class AlumnusItem(MethodView):
    @hr_required()
    @blp.response(200, AlumnusSchema)
    @blp.doc(operationId="getAlumnus", summary="One alumnus profile (performance_grade: hr_manager only)")
    def get(self, alumnus_id):
        r = _reviewer()
        a = svc.get_alumnus(db(), r.company_id, alumnus_id, department=_scope(r))
        return svc.profile_view(db(), a, role=r.role)

    @hr_required("hr_specialist")
    @blp.arguments(AlumnusTagsSchema)
    @blp.response(200, AlumnusSchema)
    @blp.doc(operationId="updateAlumnusTags",
             summary="Update skills, tags, notes, positions, rehire eligibility (and the grade: hr_manager only)")
    def patch(self, args, alumnus_id):
        r = _reviewer()
        a = svc.get_alumnus(db(), r.company_id, alumnus_id)
        changes = dict(args)
        if "positions" in changes:
            changes["positions"] = [{"title": p["title"], "from": p.get("from_"), "to": p.get("to")}
                                    for p in changes["positions"]]
        svc.update_alumnus(db(), a, actor=r.actor, role=r.role, changes=changes)
        return svc.profile_view(db(), a, role=r.role)


class AlumnusRehireSchema(StrictSchema):
    rehired = ma.fields.Boolean(load_default=True, metadata={"description": "false undoes a mistaken mark"})


@blp.route("/hr/alumni/<string:alumnus_id>/rehire")
class AlumnusRehire(MethodView):
    @hr_required("hr_specialist")
    @blp.arguments(AlumnusRehireSchema)
    @blp.response(200, AlumnusSchema)
    @blp.doc(operationId="markAlumnusRehired", summary="Mark an alumnus re-hired (rehired_at; the rehire rate counts it)")
    def post(self, args, alumnus_id):
        r = _reviewer()
        a = svc.get_alumnus(db(), r.company_id, alumnus_id)
        svc.mark_rehired(db(), a, actor=r.actor, rehired=args["rehired"])
        return svc.profile_view(db(), a, role=r.role)


# -- HR: campaigns -----------------------------------------------------------------------------
class CreateCampaignSchema(StrictSchema):
    purpose = ma.fields.String(required=True, validate=ma.validate.OneOf(PURPOSES))
    title = ma.fields.String(required=True, validate=NonBlank(100))
    body = ma.fields.String(required=True, validate=NonBlank(300))
    job_opening_id = ma.fields.String(validate=ma.validate.Length(max=32),
                                      metadata={"description": "Required with purpose job_openings"})
    frequency_cap = ma.fields.Integer(validate=ma.validate.Range(min=1, max=100), metadata={
        "description": "At most this many alumni messages per person in frequency_window_days "
                       "(default QIANLI_ALUMNI_FREQUENCY_CAP)"})
    frequency_window_days = ma.fields.Integer(validate=ma.validate.Range(min=1, max=365))


class AlumniCampaignSchema(ma.Schema):
    id = ma.fields.String(required=True)
    purpose = ma.fields.String(required=True)
    title = ma.fields.String(required=True)
    body = ma.fields.String(required=True)
    job_opening_id = ma.fields.String(allow_none=True)
    festival = ma.fields.String(allow_none=True)
    frequency_cap = ma.fields.Integer(required=True)
    frequency_window_days = ma.fields.Integer(required=True)
    state = ma.fields.String(required=True, metadata={"description": "queued, running or done"})
    recipients = ma.fields.Integer(required=True)
    created_by = ma.fields.String(required=True)
    created_at = ma.fields.AwareDateTime(required=True)
    finished_at = ma.fields.AwareDateTime(allow_none=True)


@blp.route("/hr/alumni-campaigns")
class Campaigns(MethodView):
    @hr_required("hr_specialist", "auditor")
    @blp.response(200, AlumniCampaignSchema(many=True))
    @blp.doc(operationId="listCampaigns", summary="The company's alumni campaigns, newest first")
    def get(self):
        return out.list_campaigns(db(), current_principal().company_id)

    @hr_required("hr_specialist")
    @blp.arguments(CreateCampaignSchema)
    @blp.response(201, AlumniCampaignSchema)
    @blp.doc(operationId="createCampaign",
             summary="Send a message to the alumni who consented to its purpose (RQ jobs; quiet hours, rate limit, "
                     "per-person cap, unsubscribe path)")
    def post(self, args):
        r = _reviewer()
        return out.create_campaign(db(), runtime(), company_id=r.company_id, actor=r.actor, **args)


class CampaignDeliverySchema(ma.Schema):
    id = ma.fields.String(required=True)
    employee_id = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    purpose = ma.fields.String(required=True)
    status = ma.fields.String(required=True, metadata={"description": ", ".join(CAMPAIGN_DELIVERY_STATUSES)})
    channel = ma.fields.String(required=True)
    attempts = ma.fields.Integer(required=True)
    not_before = ma.fields.AwareDateTime(required=True)
    sent_at = ma.fields.AwareDateTime(allow_none=True)
    provider_message_id = ma.fields.String(required=True)
    detail = ma.fields.String(required=True)


class CampaignDeliveryPageSchema(ma.Schema):
    campaign = ma.fields.Nested(AlumniCampaignSchema, required=True)
    items = ma.fields.List(ma.fields.Nested(CampaignDeliverySchema), required=True)
    total = ma.fields.Integer(required=True)
    page = ma.fields.Integer(required=True)
    page_size = ma.fields.Integer(required=True)


class CampaignDeliveryArgsSchema(StrictSchema):
    status = ma.fields.String(validate=ma.validate.OneOf(CAMPAIGN_DELIVERY_STATUSES))
    page = ma.fields.Integer(load_default=1, validate=ma.validate.Range(min=1, max=10000))
    page_size = ma.fields.Integer(load_default=50, validate=ma.validate.Range(min=1, max=500))


def delivery_body(d, emp) -> dict:
    return {"id": d.id, "employee_id": d.employee_id, "name": emp.name, "purpose": d.purpose, "status": d.status,
            "channel": d.channel, "attempts": d.attempts, "not_before": d.not_before, "sent_at": d.sent_at,
            "provider_message_id": d.provider_message_id, "detail": d.detail}


@blp.route("/hr/alumni-campaigns/<string:campaign_id>/deliveries")
class CampaignDeliveries(MethodView):
    @hr_required("hr_specialist", "auditor")
    @blp.arguments(CampaignDeliveryArgsSchema, location="query")
    @blp.response(200, CampaignDeliveryPageSchema)
    @blp.doc(operationId="listCampaignDeliveries", summary="The delivery log of a campaign")
    def get(self, args, campaign_id):
        campaign, rows, total = out.list_deliveries(db(), current_principal().company_id, campaign_id,
                                                    status=args.get("status"), page=args["page"],
                                                    per_page=args["page_size"])
        return {"campaign": campaign, "items": [delivery_body(d, e) for d, e in rows], "total": total,
                "page": args["page"], "page_size": args["page_size"]}


# -- job openings ------------------------------------------------------------------------------
class CreateOpeningSchema(StrictSchema):
    title = ma.fields.String(required=True, validate=NonBlank(100))
    department = ma.fields.String(load_default="", validate=ma.validate.Length(max=100))
    description = ma.fields.String(load_default="", validate=ma.validate.Length(max=5000))
    skills = ma.fields.List(ma.fields.String(validate=ma.validate.Length(min=1, max=50)), load_default=list,
                            validate=ma.validate.Length(max=30))
    tags = ma.fields.List(ma.fields.String(validate=ma.validate.Length(min=1, max=50)), load_default=list,
                          validate=ma.validate.Length(max=30))
    notify = ma.fields.Boolean(load_default=True, metadata={
        "description": "Send a job-opening campaign to the matching alumni who consented to job openings"})
    message = ma.fields.String(validate=ma.validate.Length(min=1, max=300))


class JobOpeningSchema(ma.Schema):
    id = ma.fields.String(required=True)
    title = ma.fields.String(required=True)
    department = ma.fields.String(required=True)
    description = ma.fields.String(required=True)
    skills = ma.fields.List(ma.fields.String(), required=True)
    tags = ma.fields.List(ma.fields.String(), required=True)
    status = ma.fields.String(required=True)
    created_by = ma.fields.String(required=True)
    created_at = ma.fields.AwareDateTime(required=True)


class JobOpeningCreatedSchema(JobOpeningSchema):
    campaign = ma.fields.Nested(AlumniCampaignSchema, allow_none=True)


class OpeningMatchSchema(ma.Schema):
    alumnus = ma.fields.Nested(AlumnusSchema, required=True)
    matched_skills = ma.fields.List(ma.fields.String(), required=True)
    matched_tags = ma.fields.List(ma.fields.String(), required=True)
    score = ma.fields.Integer(required=True)


class JobAnswerViewSchema(ma.Schema):
    employee_id = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    alumnus_id = ma.fields.String(allow_none=True)
    answer = ma.fields.String(required=True)
    note = ma.fields.String(required=True)
    answered_at = ma.fields.AwareDateTime(required=True)


class JobOpeningDetailSchema(JobOpeningSchema):
    matches = ma.fields.List(ma.fields.Nested(OpeningMatchSchema), required=True)
    answers = ma.fields.List(ma.fields.Nested(JobAnswerViewSchema), required=True)


@blp.route("/hr/job-openings")
class JobOpenings(MethodView):
    @hr_required("hr_specialist", "auditor")
    @blp.response(200, JobOpeningSchema(many=True))
    @blp.doc(operationId="listJobOpenings", summary="The company's job openings for alumni, newest first")
    def get(self):
        return out.list_job_openings(db(), current_principal().company_id)

    @hr_required("hr_specialist")
    @blp.arguments(CreateOpeningSchema)
    @blp.response(201, JobOpeningCreatedSchema)
    @blp.doc(operationId="createJobOpening",
             summary="Post a job opening (skills/tags) and message the matching alumni who consented to job openings")
    def post(self, args):
        r = _reviewer()
        opening, campaign = out.create_job_opening(db(), runtime(), company_id=r.company_id, actor=r.actor, **args)
        return {**{k: getattr(opening, k) for k in JobOpeningSchema._declared_fields}, "campaign": campaign}


@blp.route("/hr/job-openings/<string:opening_id>")
class JobOpeningItem(MethodView):
    @hr_required("hr_specialist", "auditor")
    @blp.response(200, JobOpeningDetailSchema)
    @blp.doc(operationId="getJobOpening", summary="A job opening with its matching alumni and their answers")
    def get(self, opening_id):
        r = _reviewer()
        opening = out.get_job_opening(db(), r.company_id, opening_id)
        matches = [{"alumnus": svc.profile_view(db(), a, role=r.role), "matched_skills": list(m.skills),
                    "matched_tags": list(m.tags), "score": m.score} for a, m in out.opening_matches(db(), opening)]
        answers = [{"employee_id": e.id, "name": e.name, "alumnus_id": a.id if a else None, "answer": ans.answer,
                    "note": ans.note, "answered_at": ans.answered_at} for ans, e, a in out.opening_answers(db(), opening)]
        return {**{k: getattr(opening, k) for k in JobOpeningSchema._declared_fields}, "matches": matches,
                "answers": answers}


class MyJobOpeningSchema(ma.Schema):
    id = ma.fields.String(required=True)
    title = ma.fields.String(required=True)
    department = ma.fields.String(required=True)
    description = ma.fields.String(required=True)
    skills = ma.fields.List(ma.fields.String(), required=True)
    answer = ma.fields.String(allow_none=True, metadata={"description": "interested, not_interested or null"})


class JobAnswerSchema(StrictSchema):
    answer = ma.fields.String(required=True, validate=ma.validate.OneOf(("interested", "not_interested")))
    note = ma.fields.String(load_default="", validate=ma.validate.Length(max=500))


class JobAnswerResultSchema(ma.Schema):
    opening_id = ma.fields.String(required=True)
    answer = ma.fields.String(required=True)
    answered_at = ma.fields.AwareDateTime(required=True)


@blp.route("/alumni/job-openings")
class MyJobOpenings(MethodView):
    @employee_or_alumnus_required
    @blp.response(200, MyJobOpeningSchema(many=True))
    @blp.doc(operationId="listMyJobOpenings", summary="The open positions sent to me, with my answer")
    def get(self):
        p = current_principal()
        return [{"id": o.id, "title": o.title, "department": o.department, "description": o.description,
                 "skills": o.skills, "answer": ans} for o, ans in out.openings_for_alumnus(db(), p.company_id,
                                                                                         p.subject_id)]


@blp.route("/alumni/job-openings/<string:opening_id>/answer")
class JobOpeningAnswer(MethodView):
    @employee_or_alumnus_required
    @blp.arguments(JobAnswerSchema)
    @blp.response(200, JobAnswerResultSchema)
    @blp.doc(operationId="answerJobOpening", summary="Answer a job opening ('interested' is shown to HR)",
             description="409 alumni_not_member for someone not in the alumni pool; 409 job_opening_closed.")
    def post(self, args, opening_id):
        p = current_principal()
        row = out.answer_job_opening(db(), company_id=p.company_id, employee_id=p.subject_id, opening_id=opening_id,
                                     answer=args["answer"], note=args["note"])
        return {"opening_id": row.opening_id, "answer": row.answer, "answered_at": row.answered_at}
