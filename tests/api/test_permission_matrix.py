"""The permission matrix: every operation of the contract, for every kind of caller.

``MATRIX`` has one row per operationId of the app's OpenAPI document. A row says how to call the
operation (path ids, body, query) and which status each caller must get. The test walks every row
for every caller in ``CALLERS`` against one world (company A with a signed case in 研发部, company B
with its own HR manager); each call runs in a SAVEPOINT that is rolled back afterwards, so every
caller meets the same state and a success of one caller does not change what the next one sees.

Adding an operation: add its row (``test_every_operation_has_a_row`` names the missing ones). The
profiles below (``public``, ``employee_only``, ``hr``) cover the usual shapes; pass the statuses
that differ as keyword arguments, e.g. ``hr(read=200, write=201, dept_head=403)``.

Callers:
  anonymous        no token
  pending          a WeChat login not yet bound to the roster (bind-only token)
  employee         the employee whose case it is (研发部)
  other_employee   another employee of the same company (市场部), no case
  hr_specialist, hr_manager, auditor        HR staff of company A
  dept_head        head of the case's department (研发部)
  other_dept_head  head of another department (市场部)
  foreign_hr       the HR manager of another company
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import pytest

from cases.alumni import CONSENT_TEXT_VERSION as ALUMNI_CONSENT_VERSION
from tests.signing_support import sign_case, signature_png  # at import: a later import may not resolve

CALLERS = ("anonymous", "pending", "employee", "other_employee", "hr_specialist", "dept_head", "other_dept_head",
           "hr_manager", "auditor", "foreign_hr")
EMPLOYEES = ("employee", "other_employee")
HR = ("hr_specialist", "dept_head", "other_dept_head", "hr_manager", "auditor", "foreign_hr")
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
FACES = FIXTURES / "faces"


def public(status: int = 200, **overrides: int) -> dict[str, int]:
    """No security: every caller gets the same answer (the request carries its own proof, if any)."""
    return {c: overrides.get(c, status) for c in CALLERS}


def employee_only(own: int, other: int | None = None, *, pending: int = 403, **overrides: int) -> dict[str, int]:
    """Bound employees only: ``own`` for the case's employee, ``other`` (default 404 when the row names a
    case, else ``own``) for another employee; HR and unbound WeChat users 403; no token 401."""
    table = {"anonymous": 401, "pending": pending, "employee": own, "other_employee": own if other is None else other,
             **{c: 403 for c in HR}}
    table.update(overrides)
    return table


def hr(read: int | None = None, write: int | None = None, *, foreign: int = 404, scoped: bool = True,
       **overrides: int) -> dict[str, int]:
    """HR staff only. ``read``: every HR role may call it (auditor and department heads included);
    ``write``: only hr_specialist and hr_manager (others 403). With ``scoped`` the row names a case or
    employee of company A's 研发部: the other department's head and the other company's HR get 404."""
    table: dict[str, int] = {"anonymous": 401, "pending": 403, "employee": 403, "other_employee": 403}
    if read is not None:
        table.update({c: read for c in HR})
    else:
        table.update({"hr_specialist": write, "hr_manager": write, "dept_head": 403, "other_dept_head": 403,
                      "auditor": 403, "foreign_hr": write})
    if scoped:
        table["foreign_hr"] = foreign
        if read is not None:
            table["other_dept_head"] = 404
    table.update(overrides)
    return table


def employee_or_hr(own: int, other: int = 404, **hr_kwargs: Any) -> dict[str, int]:
    """The case's employee and HR staff (``hr(read=...)`` semantics) may call it."""
    return {**hr(**hr_kwargs), "employee": own, "other_employee": other}


@dataclass
class Row:
    expect: dict[str, int]
    request: Callable[["World"], dict[str, Any]] = field(default=lambda w: {})
    path: Callable[["World"], dict[str, str]] = field(default=lambda w: {})
    note: str = ""


def _json(body: dict[str, Any]) -> Callable[["World"], dict[str, Any]]:
    return lambda w: {"json": body}


def _roster_csv() -> bytes:
    header = "工号,姓名,部门,职位,入职日期,试用期结束,合同期限,手机号,身份证号,照片"
    row = "M900,韩梅梅,研发部,工程师,2023-03-01,2023-09-01,2023-03-01至2026-02-28,13800139000,110105199003071239,"
    return f"{header}\r\n{row}\r\n".encode()


def _attendance_csv(w: "World") -> bytes:
    return f"姓名,工号,日期,上班打卡时间,下班打卡时间\r\n李四,{w.other_employee_no},2025-10-09,09:00,18:00\r\n".encode()


def _signature_png() -> bytes:
    return signature_png()


def _schedule_2027() -> dict[str, Any]:
    return json.loads((FIXTURES / "holidays" / "schedule-2027-test.json").read_text(encoding="utf-8"))


def _last_working_day() -> date:
    from cases.calendar import ChineseCalendar
    from cases.clock import beijing_today

    cal, d = ChineseCalendar(), beijing_today()
    while not cal.is_working_day(d):
        d -= timedelta(days=1)
    return d


CASE = lambda w: {"case_id": w.case_id}  # noqa: E731 - path-parameter shorthands
EMPLOYEE = lambda w: {"employee_id": w.employee_id}  # noqa: E731

MATRIX: dict[str, Row] = {
    # -- public -----------------------------------------------------------------------------------
    "getHealth": Row(public(200)),
    "previewNoticePeriod": Row(public(200), lambda w: {"query_string": {"arrival_date": "2024-10-08"}}),
    "wechatLogin": Row(public(200), _json({"code": "dev-openid-matrix-login"})),
    "hrLogin": Row(public(200), lambda w: {"json": {"company_code": w.company_code, "username": "mgr",
                                                     "password": "correct horse battery"}}),
    "refreshSession": Row(public(200), lambda w: {"json": {"refresh_token": w.refresh_token}},
                          note="the refresh token is the credential; the caller's header plays no part"),
    # -- WeChat users (bound or not) ----------------------------------------------------------------
    "bindEmployee": Row(employee_only(422, pending=422), lambda w: {"json": {
        "company_code": w.company_code, "employee_no": "E-NEW", "phone": "13800138999", "sms_code": "000000"}},
        note="a wrong SMS code: 422 for any WeChat user; HR tokens are refused"),
    "sendSmsCode": Row(employee_only(202, pending=202), lambda w: {"json": {
        "purpose": "bind", "company_code": w.company_code, "employee_no": "E-NEW", "phone": "13800138999"}}),
    # -- the employee's own things ------------------------------------------------------------------
    "listMyCases": Row(employee_only(200)),
    "submitResignation": Row(employee_only(409, 201), _json({
        "reason_category": "career_development", "requested_last_day": (date.today() + timedelta(days=40)).isoformat()}),
        note="the case's employee already has an open case; the other employee may open one"),
    "getMyCase": Row(employee_only(200, 404), path=CASE),
    "updateMyCaseForm": Row(employee_only(409, 404), _json({
        "reason_category": "career_development", "requested_last_day": (date.today() + timedelta(days=40)).isoformat()}),
        path=CASE, note="the letter is signed: the form is frozen"),
    "respondToChatNotice": Row(employee_only(409, 404), _json({"answer": "dispute"}), path=CASE,
                               note="the case was opened by the employee, not from a chat message: no_chat_notice"),
    "confirmAgreedLastDay": Row(employee_only(409, 404), _json({"agreed_last_day": date.today().isoformat()}),
                                path=CASE, note="nothing proposed"),
    "previewLetter": Row(employee_only(409, 404), path=CASE, note="the letter is signed: no preview to sign"),
    "signLetter": Row(employee_only(409, 404), lambda w: {"data": {
        "intent_id": "0" * 32, "idempotency_key": "matrix-key-1", "signature": (io.BytesIO(_signature_png()), "s.png")},
        "content_type": "multipart/form-data"}, path=CASE, note="already signed"),
    "withdrawMyCase": Row(employee_only(200, 404), _json({"reason": "改变主意"}), path=CASE),
    "previewAgreementAddendum": Row(employee_only(409, 404), path=CASE, note="no earlier day proposed"),
    "signAgreementAddendum": Row(employee_only(409, 404), lambda w: {"data": {
        "intent_id": "0" * 32, "signature": (io.BytesIO(_signature_png()), "s.png")},
        "content_type": "multipart/form-data"}, path=CASE, note="no earlier day proposed"),
    "getFaceConsent": Row(employee_only(200)),
    "giveFaceConsent": Row(employee_only(201), lambda w: {"json": {"agree": True, "text_version": w.consent_version}}),
    "withdrawFaceConsent": Row(employee_only(409), note="no consent given"),
    "startLivenessChallenge": Row(employee_only(409, 404), lambda w: {"json": {"case_id": w.case_id}},
                                  note="no reference face enrolled"),
    "verifyFace": Row(employee_only(409, 422), lambda w: {
        "data": {"frames": [(io.BytesIO(b"frame %d" % i), f"f{i}.jpg") for i in range(3)]},
        "content_type": "multipart/form-data"}, path=lambda w: {"nonce": w.nonce},
        note="the challenge was issued to the case's employee, who has no reference face yet; for anyone "
                           "else it is liveness_challenge_invalid, as if it did not exist"),
    "createSigningIntent": Row(employee_only(201, 404), lambda w: {"json": {"case_id": w.case_id,
                                                                             "letter_sha256": "0" * 64}},
                               note="both factors passed (an intent for a signed letter is useless: signLetter answers 409)"),
    "verifySmsCode": Row(employee_only(422, 404), lambda w: {"json": {"purpose": "sign", "case_id": w.case_id,
                                                                       "code": "000000"}}),
    "listIdentityChanges": Row(employee_only(200, 200, pending=200),
                               note="changes announced to the caller's WeChat (none here): an empty list"),
    "answerIdentityChange": Row(employee_only(404, 404, pending=404), _json({"answer": "object"}),
                                path=lambda w: {"change_id": "no-such-change"},
                                note="only the WeChat a change was announced to may answer; anyone else: 404"),
    "getSigningReadiness": Row(employee_only(200)),
    "getMyFaceReference": Row(employee_only(200)),
    "confirmFaceReference": Row(employee_only(409), _json({"version": 1, "accept": True}),
                                note="no reference enrolled: face_not_enrolled"),
    "startFaceEnrolmentChallenge": Row(employee_only(409), note="no face consent: face_consent_missing"),
    "enrolMyFace": Row(employee_only(422, 422), lambda w: {
        "data": {"frames": [(io.BytesIO(b"frame %d" % i), f"f{i}.jpg") for i in range(3)]},
        "content_type": "multipart/form-data"}, path=lambda w: {"nonce": w.nonce},
        note="the nonce is a verification challenge, not an enrolment one (and not the other employee's)"),
    "startCertifiedFaceEnrolment": Row(employee_only(409), note="no face consent: face_consent_missing"),
    "finishCertifiedFaceEnrolment": Row(employee_only(422), _json({"biz_token": "BIZ0000"}),
                                        note="a token never issued to the caller: faceid_token_invalid"),
    # -- employee or HR -------------------------------------------------------------------------------
    "verifyDocument": Row({**employee_only(200), **{c: 200 for c in HR}}, lambda w: {
        "data": {"file": (io.BytesIO(w.signed_pdf), "letter.pdf")}, "content_type": "multipart/form-data"},
        note="verification is not company-scoped: anyone signed in may check a PDF"),
    "getSignedLetter": Row(employee_or_hr(200, read=200), path=CASE),
    "listReminders": Row(employee_or_hr(200, read=200), path=CASE),
    "getAgreementAddendum": Row(employee_or_hr(404, read=404), path=CASE, note="no addendum signed"),
    "getTerminationCertificate": Row(employee_or_hr(404, read=404), path=CASE,
                                     note="not issued yet: certificate_not_issued (the others: case_not_found)"),
    # -- HR: cases ------------------------------------------------------------------------------------
    "listCases": Row(hr(read=200, scoped=False)),
    "getCase": Row(hr(read=200), path=CASE),
    "exportDossier": Row(hr(read=200), path=CASE),
    "approveCase": Row(hr(write=200, dept_head=403, other_dept_head=404), _json({}), path=CASE,
                       note="level 1 of the chain (hr_specialist, dept_head) waits for an hr_specialist"),
    "returnCase": Row(hr(write=200, other_dept_head=404), _json({"reason": "请补充交接事项"}), path=CASE),
    "consentWithdrawal": Row(hr(write=409, other_dept_head=403), _json({"consent": True}), path=CASE,
                             note="no withdrawal request is open"),
    "recordChatEvidence": Row(hr(write=201, foreign=404), lambda w: {"json": {
        "employee_no": w.other_employee_no, "platform": "wechat", "sender_name": "张三", "text": "我要辞职",
        "sent_at": (datetime.now(timezone.utc) - timedelta(hours=2)).isoformat()}}),
    "issueTerminationCertificate": Row(hr(write=409), _json({}), path=CASE,
                                       note="the case is not at final approval: certificate_not_issuable"),
    "closeCase": Row(hr(write=409), _json({}), path=CASE, note="the case is not at final approval: case_not_closable"),
    "listAlerts": Row(hr(read=200, scoped=False)),
    "resolveAlert": Row(hr(write=200), path=lambda w: {"alert_id": w.alert_id}),
    # -- leaving without notice (the world's case is a resignation: the absconding operations answer 409) ----
    "confirmDeparture": Row(hr(write=201, scoped=False, foreign_hr=404), lambda w: {"json": {
        "employee_no": w.other_employee_no, "absent_days": [_last_working_day().isoformat()]}},
        note="the other employee (no case) is confirmed; another company's HR does not find them"),
    "getAbsence": Row(hr(read=409), path=CASE, note="not_absconding_case"),
    "sendReturnToWorkNotice": Row(hr(write=409), path=CASE, note="not_absconding_case"),
    "recordPostalDelivery": Row(hr(write=409), _json({
        "carrier": "EMS", "tracking_no": "1180000000001", "address": "上海市浦东新区世纪大道 100 号",
        "sent_at": "2026-01-05T10:00:00+08:00"}), path=CASE, note="not_absconding_case"),
    "updatePostalDelivery": Row(hr(write=409), _json({"status": "delivered", "status_at": "2026-01-06T10:00:00+08:00"}),
                                path=lambda w: {"case_id": w.case_id, "delivery_id": "no-such-delivery"},
                                note="not_absconding_case"),
    "recordUnionNotification": Row(hr(write=409), _json({
        "union_name": "公司工会委员会", "contact_name": "赵六", "notified_at": "2026-01-05T10:00:00+08:00",
        "method": "written"}), path=CASE, note="not_absconding_case"),
    "dismissForAbsence": Row(hr(write=409, dept_head=409, other_dept_head=404), _json({}), path=CASE,
                             note="the absconding chain's roles (hr_manager, dept_head, hr_specialist) reach the case: "
                                  "not_absconding_case"),
    "withdrawDeparture": Row(hr(write=409), _json({"reason": "误报"}), path=CASE, note="not_absconding_case"),
    "getMyAbsence": Row(employee_only(409, 404), path=CASE, note="not_absconding_case"),
    "getAbsenceNotice": Row(employee_or_hr(409, read=409), path=lambda w: {"case_id": w.case_id,
                                                                         "notice": "return_to_work"},
                            note="not_absconding_case"),
    "answerReturnNotice": Row(employee_only(409, 404), _json({"answer": "back"}), path=CASE,
                              note="not_absconding_case"),
    # -- HR: departure analytics ------------------------------------------------------------------------
    "getDepartureAnalytics": Row(hr(read=200, scoped=False), note="a department head: their department only"),
    "exportDepartureAnalytics": Row(hr(read=200, scoped=False), lambda w: {
        "query_string": {"format": "csv", "chart": "by_reason_period"}}),
    "getDepartureReport": Row(hr(read=200, scoped=False), note="the previous quarter, drawn now (nothing stored)"),
    # -- HR: company ----------------------------------------------------------------------------------
    "getCompanyPolicy": Row(hr(read=200, scoped=False)),
    "updateCompanyPolicy": Row(hr(write=200, hr_specialist=403, scoped=False), _json({"letter_due_working_days": 5})),
    "listHolidayOverrides": Row(hr(read=200, scoped=False)),
    "addHolidayOverride": Row(hr(write=201, hr_specialist=403, scoped=False),
                              _json({"day": "2030-05-06", "kind": "holiday", "note": "公司假日"})),
    "deleteHolidayOverride": Row(hr(write=204, hr_specialist=403), path=lambda w: {"override_id": w.override_id}),
    "listHolidaySchedules": Row(hr(read=200, scoped=False)),
    "getStatutoryHolidays": Row(hr(read=200, scoped=False), path=lambda w: {"year": "2027"}),
    "importHolidaySchedule": Row(hr(write=201, hr_specialist=403, scoped=False), lambda w: {"json": _schedule_2027()}),
    "importRoster": Row(hr(write=200, scoped=False), lambda w: {
        "query_string": {"dry_run": "true"}, "data": {"file": (io.BytesIO(_roster_csv()), "roster.csv")},
        "content_type": "multipart/form-data"}),
    "importAttendance": Row(hr(write=200, scoped=False, foreign_hr=422), lambda w: {
        "query_string": {"dry_run": "true"}, "data": {"file": (io.BytesIO(_attendance_csv(w)), "打卡.csv")},
        "content_type": "multipart/form-data"}, note="another company's HR: the employee is not on their roster"),
    "listAttendanceImports": Row(hr(read=200, scoped=False)),
    "listAttritionRisks": Row(hr(read=200, scoped=False)),
    "dismissAttritionRisk": Row(hr(write=409, dept_head=409, other_dept_head=404), _json({"reason": "出差"}),
                                path=EMPLOYEE, note="the employee has no attendance data: no risk to dismiss"),
    "getAttritionRules": Row(hr(read=200, scoped=False)),
    "updateAttritionRules": Row(hr(write=200, hr_specialist=403, scoped=False), _json({"red_consecutive_days": 4})),
    # -- HR: outbound webhooks ---------------------------------------------------------------------------
    "listWebhookEventTypes": Row(hr(read=200, scoped=False, dept_head=403, other_dept_head=403)),
    "listWebhookEndpoints": Row(hr(read=200, scoped=False, dept_head=403, other_dept_head=403)),
    "createWebhookEndpoint": Row(hr(write=201, hr_specialist=403, scoped=False), _json({
        "name": "门禁", "url": "http://127.0.0.1:9/hook", "event_types": ["employee.access_revoke"]})),
    "getWebhookEndpoint": Row(hr(read=200, dept_head=403, other_dept_head=403), path=lambda w: {"endpoint_id": w.endpoint_id}),
    "updateWebhookEndpoint": Row(hr(write=200, hr_specialist=403), _json({"enabled": False}),
                                 path=lambda w: {"endpoint_id": w.endpoint_id}),
    "deleteWebhookEndpoint": Row(hr(write=204, hr_specialist=403), path=lambda w: {"endpoint_id": w.endpoint_id}),
    "rotateWebhookSecret": Row(hr(write=200, hr_specialist=403), path=lambda w: {"endpoint_id": w.endpoint_id}),
    "sendTestWebhook": Row(hr(write=202), path=lambda w: {"endpoint_id": w.endpoint_id}),
    "listWebhookDeliveries": Row(hr(read=200, scoped=False, dept_head=403, other_dept_head=403)),
    "replayWebhookDelivery": Row(hr(write=202), path=lambda w: {"delivery_id": w.delivery_id}),
    "getCaseAccessRevocation": Row(hr(read=200), path=CASE),
    "revokeAccessNow": Row(hr(write=200), _json({"reason": "立即停权"}), path=CASE),
    "confirmAccessRevocation": Row(public(401), _json({"token": "0" * 32 + ".forged"}),
                                   note="the confirmation token of the event is the credential"),
    # -- HR: employees --------------------------------------------------------------------------------
    "getFaceEnrolment": Row(hr(read=200), path=EMPLOYEE),
    "enrolFace": Row(hr(write=201), lambda w: {
        "query_string": {"written_consent_attested": "true", "consent_reference": "纸质同意书 2024-01"},
        "data": {"photo": (io.BytesIO((FACES / "obama.jpg").read_bytes()), "photo.jpg")},
        "content_type": "multipart/form-data"}, path=EMPLOYEE),
    "unlockFace": Row(hr(write=409), _json({"reason": "本人确认"}), path=EMPLOYEE, note="not locked"),
    "unbindEmployee": Row(hr(write=200), _json({"reason": "换了手机"}), path=EMPLOYEE),
    "changeEmployeePhone": Row(hr(write=409), _json({"phone": "13700001111", "reason": "员工换号"}), path=EMPLOYEE,
                               note="the employee has a case in progress: phone_change_case_open"),
    "listEmployeeIdentityChanges": Row(hr(read=200), path=EMPLOYEE),
    # -- HR: accounts and sessions ------------------------------------------------------------------
    "hrLogout": Row(hr(read=204, scoped=False), note="ends the caller's own session"),
    "changeHrPassword": Row(hr(read=200, scoped=False), _json({"current_password": "correct horse battery",
                                                              "new_password": "matrix new password"})),
    "listHrUsers": Row(hr(write=200, hr_specialist=403, scoped=False)),
    "updateHrUser": Row(hr(write=200, hr_specialist=403), _json({"department": "人事部"}),
                        path=lambda w: {"user_id": w.spec_id}, note="HR managers only; the other company's: 404"),
    "resetHrPassword": Row(hr(write=200, hr_specialist=403), _json({"new_password": "matrix new password"}),
                           path=lambda w: {"user_id": w.spec_id}),
    # -- offboarding ----------------------------------------------------------------------------------
    "listOffboardingTemplates": Row(hr(read=200, scoped=False)),
    "updateOffboardingTemplate": Row(hr(write=200, hr_specialist=403, scoped=False), _json({"items": [
        {"key": "return_laptop", "group": "assets", "title": "收回电脑", "owner_role": "it", "offset": 0}]}),
        path=lambda w: {"departure_type": "resignation"}, note="HR managers only; each company its own template"),
    "listCaseTasks": Row(hr(read=200), path=CASE),
    "listMyTasks": Row(hr(read=200, scoped=False), note="each caller's own tasks (possibly none)"),
    "completeTask": Row(hr(write=200, other_dept_head=404), _json({"note": "档案已转出"}),
                        path=lambda w: {"task_id": w.hr_task_id},
                        note="an HR-owned task: HR completes it; the case's department head sees it but is not its "
                             "owner (403 task_not_owner); callers who cannot see the case: 404"),
    "listMyCaseTasks": Row(employee_only(200, 404), path=CASE),
    # -- alumni pool (issue 17) ----------------------------------------------------------------------
    "getAlumniConsent": Row(employee_only(200)),
    "giveAlumniConsent": Row(employee_only(200), _json({"text_version": ALUMNI_CONSENT_VERSION, "agree": True,
                                                       "purposes": ["greetings"]})),
    "withdrawAlumniConsent": Row(employee_only(200), _json({}), note="nothing given: nothing withdrawn, 200"),
    "listMyJobOpenings": Row(employee_only(200)),
    "answerJobOpening": Row(employee_only(404, 404), _json({"answer": "interested"}),
                            path=lambda w: {"opening_id": "no-such-opening"}),
    "getUnsubscribe": Row(public(404), path=lambda w: {"token": "no-such-token"},
                          note="the token in the message is the credential"),
    "unsubscribeAlumni": Row(public(404), _json({}), path=lambda w: {"token": "no-such-token"}),
    "receiveSmsReply": Row(public(403), _json([]), note="QIANLI_SMS_REPLY_TOKEN unset in tests: disabled"),
    "searchAlumni": Row(hr(read=200, scoped=False)),
    "exportAlumni": Row(hr(read=200, scoped=False)),
    "getAlumnus": Row(hr(read=404, scoped=False), path=lambda w: {"alumnus_id": "no-such-alumnus"}),
    "updateAlumnusTags": Row(hr(write=404, scoped=False), _json({"tags": ["返聘优先"]}),
                             path=lambda w: {"alumnus_id": "no-such-alumnus"}),
    "markAlumnusRehired": Row(hr(write=404, scoped=False), _json({}), path=lambda w: {"alumnus_id": "no-such-alumnus"}),
    "listCampaigns": Row(hr(write=200, auditor=200, scoped=False)),
    "createCampaign": Row(hr(write=201, scoped=False), _json({"purpose": "company_news", "title": "公司动态",
                                                             "body": "新办公室落成"})),
    "listCampaignDeliveries": Row(hr(write=404, auditor=404, scoped=False), path=lambda w: {"campaign_id": "no-such"}),
    "listJobOpenings": Row(hr(write=200, auditor=200, scoped=False)),
    "createJobOpening": Row(hr(write=201, scoped=False), _json({"title": "区域销售经理", "skills": ["销售管理"]})),
    "getJobOpening": Row(hr(write=404, auditor=404, scoped=False), path=lambda w: {"opening_id": "no-such"}),
}

# Cells where the app is known to answer wrongly, with the owner of the fix: the test accepts the
# wrong answer there (and fails once the cell is fixed, so the entry gets removed). Keep this empty.
KNOWN_DEFECTS: dict[tuple[str, str], tuple[int, str]] = {}


def contract_operations(app) -> dict[str, tuple[str, str]]:
    """operationId -> (METHOD, path template) of every operation the app documents."""
    spec = app.extensions["qianli_api"].spec.to_dict()
    ops = {}
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            if method in ("get", "post", "put", "patch", "delete"):
                ops[op["operationId"]] = (method.upper(), path)
    return ops


def test_every_operation_has_a_row(app):
    ops = contract_operations(app)
    missing = sorted(set(ops) - set(MATRIX))
    stale = sorted(set(MATRIX) - set(ops))
    assert not missing, ("operations without a row in tests/api/test_permission_matrix.py MATRIX: "
                         + ", ".join(f"{op} ({' '.join(ops[op])})" for op in missing))
    assert not stale, f"MATRIX rows for operations the contract no longer has: {', '.join(stale)}"
    for op, row in MATRIX.items():
        assert set(row.expect) == set(CALLERS), f"{op}: the row must give a status for every caller"


class World:
    """Company A: a signed case of 研发部's employee; company B: its own HR manager."""

    def __init__(self, runtime, session, factory):
        from identity.intent import record_factor
        from identity.liveness import issue_challenge
        from qianli.services.faces import CONSENT_TEXT_VERSION
        from qianli.services import cases as case_svc
        from qianli.services.alerts import raise_alert
        from qianli.services.auth import Principal, issue_access_token, issue_employee_session
        from qianli.services.company import add_override
        from qianli.services.signing import latest_letter
        from qianli.storage import read_document

        self.rt, self.s, self.f = runtime, session, factory
        company = factory.company(code="matrix-a")
        other_company = factory.company(code="matrix-b", name="别家有限公司")
        self.company_code = company.code
        emp = factory.employee(company, department="研发部", openid="openid-matrix-emp")
        other = factory.employee(company, department="市场部", name="李四", openid="openid-matrix-other")
        users = {
            "hr_specialist": factory.hr(company, "hr_specialist", username="spec"),
            "dept_head": factory.hr(company, "dept_head", username="head", department="研发部"),
            "other_dept_head": factory.hr(company, "dept_head", username="head2", department="市场部"),
            "hr_manager": factory.hr(company, "hr_manager", username="mgr"),
            "auditor": factory.hr(company, "auditor", username="aud"),
            "foreign_hr": factory.hr(other_company, "hr_manager", username="mgr"),
        }
        arrived = datetime.now(timezone.utc) - timedelta(days=1)
        case = case_svc.open_case(session, runtime.settings, employee=emp, source="miniprogram", notice_arrived_at=arrived,
                                  actor=f"employee:{emp.id}", reason_category="career_development",
                                  reason_text="个人发展", requested_last_day=date.today() + timedelta(days=40),
                                  handover_items=[{"item": "代码仓库权限", "owner": "李四", "deadline": None}])
        session.commit()
        sign_case(session, runtime, case, emp)
        session.commit()
        self.case_id, self.employee_id, self.other_employee_no = case.id, emp.id, other.employee_no
        self.spec_id = users["hr_specialist"].id
        record_factor(runtime.redis, emp.id, case.id, "sms", {"test": True})
        record_factor(runtime.redis, emp.id, case.id, "face", {"test": True})
        self.nonce = issue_challenge(runtime.redis, runtime.settings, employee_id=emp.id, case_id=case.id).nonce
        self.consent_version = CONSENT_TEXT_VERSION
        self.signed_pdf = read_document(runtime.store, latest_letter(session, case))
        self.alert_id = raise_alert(session, company_id=company.id, kind="other", message="matrix",
                                    case_id=case.id, employee_id=emp.id).id
        self.override_id = add_override(session, company.id, day=date(2030, 10, 9), kind="holiday", note="matrix").id
        from qianli.services.offboarding import start_offboarding

        tasks = start_offboarding(session, runtime, case, actor="system:matrix")
        self.hr_task_id = next(t.id for t in tasks if t.owner_role == "hr")
        from qianli.services.webhooks import create_endpoint, send_test_event

        endpoint = create_endpoint(session, runtime, company_id=company.id, name="OA", url="http://127.0.0.1:9/hook",
                                   event_types=["case.approved"], actor="matrix").endpoint
        self.endpoint_id = endpoint.id
        self.delivery_id = send_test_event(session, runtime, company.id, endpoint.id, actor="matrix").id
        self.refresh_token = issue_employee_session(session, runtime.settings, emp, openid=emp.wechat_openid).refresh_token
        session.commit()
        pending, _ = issue_access_token(runtime.settings, Principal("wechat_pending", None, None, "openid-matrix-pending"))
        self.headers: dict[str, dict[str, str]] = {
            "anonymous": {}, "pending": {"Authorization": f"Bearer {pending}"},
            "employee": factory.employee_headers(emp), "other_employee": factory.employee_headers(other),
            **{name: factory.hr_headers(user) for name, user in users.items()},
        }


def _redis_snapshot(redis) -> list[tuple[bytes, int, bytes]]:
    return [(key, max(redis.pttl(key), 0), redis.dump(key)) for key in redis.scan_iter(count=1000)]


def _redis_restore(redis, snapshot) -> None:
    """Back to the snapshot (the test's private Redis database): rate limits, spent challenges..."""
    redis.flushdb()
    for key, ttl, value in snapshot:
        redis.restore(key, ttl, value, replace=True)


@pytest.mark.slow
def test_permission_matrix(app, client, runtime, db_session, factory):
    ops = contract_operations(app)
    assert set(ops) <= set(MATRIX), "see test_every_operation_has_a_row"
    world = World(runtime, db_session, factory)
    conn = runtime.session_factory.kw["bind"]
    redis_state = _redis_snapshot(runtime.redis)
    wrong: list[str] = []
    fixed: list[str] = []
    for op_id, (method, template) in sorted(ops.items()):
        row = MATRIX[op_id]
        path = template
        for name, value in row.path(world).items():
            path = path.replace("{" + name + "}", value)
        assert "{" not in path, f"{op_id}: the row gives no value for a path parameter of {template}"
        for caller in CALLERS:
            savepoint = conn.begin_nested()
            try:
                response = client.open(path, method=method, headers=world.headers[caller], **row.request(world))
            finally:
                savepoint.rollback()
                _redis_restore(runtime.redis, redis_state)
                db_session.expire_all()
            status = response.status_code
            if status >= 500:
                wrong.append(f"{op_id} as {caller}: {status} (server error) {response.get_data(as_text=True)[:200]}")
                continue
            expected = row.expect[caller]
            known = KNOWN_DEFECTS.get((op_id, caller))
            if known and status == known[0] != expected:
                continue
            if known and status == expected:
                fixed.append(f"{op_id} as {caller} is fixed: remove it from KNOWN_DEFECTS ({known[1]})")
            elif status != expected:
                body = response.get_json(silent=True) or {}
                wrong.append(f"{op_id} ({method} {template}) as {caller}: expected {expected}, got {status} "
                             f"{body.get('code', '')} {json.dumps(body.get('message', ''), ensure_ascii=False)} "
                             f"{json.dumps(body.get('details', body.get('errors', '')), ensure_ascii=False)[:300]}")
    assert not wrong and not fixed, "\n".join(wrong + fixed)
