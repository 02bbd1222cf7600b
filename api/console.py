"""The HR console at ``/hr/``: server-rendered pages (Jinja) and a little vanilla JavaScript.

Login uses the HR login service and keeps the access token in the HttpOnly, SameSite=Strict
cookie ``qianli_hr`` (the API accepts the same cookie). Every form post carries a CSRF token: an
HMAC of the session cookie (``api.csrf``); the login form, which has no session yet, uses a
double-submit cookie. Pages call the same services as the API; a refused action rolls the
request back (its response status is >= 400) and shows the reason.
"""

from __future__ import annotations

import io
import json
import secrets
from functools import wraps
from typing import Any, Callable
from urllib.parse import urlencode

from flask import (Blueprint, flash, g, get_flashed_messages, redirect, render_template, request,
                   send_file, url_for)
from werkzeug.wrappers import Response

from cases.clock import beijing_text, beijing_today
from cases.errors import DomainError, Forbidden, InvalidInput, NotFound, RateLimited, Unauthorized
from cases.evidence_kinds import evidence_label
from cases.states import STATE_LABELS
from qianli.models import Company
from qianli.services import review as svc
from qianli.services.auth import decode_access_token, end_hr_session, hr_login, resolve_principal
from qianli.services.evidence import RequestMeta
from qianli.storage import case_documents, read_document

from api.auth import HR_COOKIE
from api.context import db, runtime
from api.csrf import CSRF_FIELD, check_csrf_value, csrf_token
from api.errors import STATUS_BY_ERROR
from api.schemas import DATE_MAX, DATE_MIN

__all__ = ["bp", "STATE_LABELS"]

bp = Blueprint("hr_console", __name__, url_prefix="/hr", template_folder="templates",
               static_folder="static/hr", static_url_path="/static")

LOGIN_CSRF_COOKIE = "qianli_hr_login"
ROLE_LABELS = {"hr_specialist": "人事专员", "hr_manager": "人事经理", "dept_head": "部门负责人", "auditor": "审计（只读）"}
SOURCE_LABELS = {"miniprogram": "小程序", "instant_message": "即时消息（聊天记录）", "hr_confirmation": "HR 确认擅自离职"}
DOC_LABELS = {"letter_unsigned": "辞职信（未签名）", "letter_signed": "辞职信（员工已签名）",
              "letter_countersigned": "辞职信（公司已会签）", "chat_screenshot": "聊天截图", "dossier": "离职档案",
              "agreement_addendum": "提前离职协议（员工签名、公司盖章）", "return_to_work_notice": "返岗通知书（公司盖章）",
              "dismissal_notice": "解除劳动合同通知书（公司盖章）", "absence_attachment": "员工说明附件",
              "task_attachment": "交接任务附件", "termination_certificate": "解除劳动合同证明（公司盖章）",
              "departure_report": "离职分析报告", "other": "其他"}
FLASH_TEXT = {"first_approved": "一级审核已通过", "approved": "终审已通过，公司已会签",
              "awaiting_employee_confirmation": "已提出提前的最后工作日，等待员工确认", "returned": "已退回员工修改",
              "withdrawal_consented": "已同意撤回", "withdrawal_declined": "已记录不同意撤回", "alert_resolved": "提醒已处理",
              "user_updated": "账号已更新", "password_reset": "密码已重置，该账号的登录已全部失效",
              "password_changed": "密码已修改，其他设备上的登录已失效",
              "certificate_issued": "解除劳动合同证明已出具并通知员工", "certificate_exists": "解除劳动合同证明此前已出具",
              "case_closed": "案件已结案：员工账号已停用，人脸数据已删除"}


# ---- session --------------------------------------------------------------------------------------

def _session_token() -> str | None:
    return request.cookies.get(HR_COOKIE) or None


def login_required(fn: Callable) -> Callable:
    @wraps(fn)
    def wrapper(*args, **kwargs):
        token = _session_token()
        if not token:
            return _to_login()
        try:
            principal = resolve_principal(db(), decode_access_token(runtime().settings, token))
        except Unauthorized:
            return _to_login(expired=True)
        if principal.kind != "hr":
            return _to_login()
        try:
            g.reviewer = svc.get_reviewer(db(), principal.subject_id, principal.company_id)
        except DomainError:
            return _to_login()
        g.hr_session_id = principal.session_id
        g.csrf = csrf_token(token)
        if request.method == "POST":
            check_csrf_value(token, request.form.get(CSRF_FIELD))
        return fn(*args, **kwargs)

    return wrapper


def _to_login(expired: bool = False) -> Response:
    target = request.full_path.rstrip("?") if request.method == "GET" else url_for("hr_console.queue")
    resp = redirect(url_for("hr_console.login", next=target, expired=1 if expired else None), code=303)
    if expired:
        resp.delete_cookie(HR_COOKIE, path="/")
    return resp


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/hr/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("hr_console.queue")


def _secure_cookies() -> bool:
    return request.is_secure or runtime().settings.public_base_url.startswith("https://")


# ---- rendering helpers -------------------------------------------------------------------------------

def _beijing(value: Any) -> str:
    if value is None:
        return "—"
    if hasattr(value, "astimezone") and hasattr(value, "hour"):
        return beijing_text(value)
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _payload_summary(payload: dict[str, Any]) -> str:
    text = json.dumps(payload, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= 400 else text[:400] + "…"


@bp.app_template_filter("beijing")
def _beijing_filter(value):
    return _beijing(value)


def _render(template: str, status: int = 200, **ctx):
    reviewer = g.get("reviewer")
    company = db().get(Company, reviewer.company_id) if reviewer else None
    body = render_template(template, reviewer=reviewer, company=company, csrf=g.get("csrf", ""),
                           role_labels=ROLE_LABELS, state_labels=STATE_LABELS, messages=get_flashed_messages(), **ctx)
    return body, status


def _status_of(err: DomainError) -> int:
    return next((s for cls, s in STATUS_BY_ERROR if isinstance(err, cls)), 400)


@bp.after_request
def _headers(resp: Response) -> Response:
    resp.headers.setdefault("Content-Security-Policy",
                            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                            "object-src 'self'; frame-src 'self'; frame-ancestors 'self'; form-action 'self'; "
                            "base-uri 'none'")
    resp.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
    resp.headers.setdefault("X-Content-Type-Options", "nosniff")
    resp.headers.setdefault("Referrer-Policy", "same-origin")
    resp.headers.setdefault("Cache-Control", "no-store")
    return resp


@bp.errorhandler(DomainError)
def _domain_error(err: DomainError):
    db().rollback()
    return _render("hr/error.html", _status_of(err), error=err)


# ---- login ----------------------------------------------------------------------------------------

@bp.get("/login")
def login():
    nonce = secrets.token_urlsafe(24)
    body, status = _render("hr/login.html", login_csrf=nonce, next=_safe_next(request.args.get("next")),
                           expired=bool(request.args.get("expired")), company_code=request.args.get("company", ""))
    resp = Response(body, status, mimetype="text/html")
    resp.set_cookie(LOGIN_CSRF_COOKIE, nonce, httponly=True, samesite="Strict", secure=_secure_cookies(), path="/hr/")
    return resp


@bp.post("/login")
def login_submit():
    nonce = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    presented = request.form.get(CSRF_FIELD, "")
    if not nonce or not secrets.compare_digest(nonce, presented):
        return _render("hr/error.html", 403, error=DomainError("csrf_failed", "页面已过期，请刷新后重新登录"))
    company_code = request.form.get("company_code", "").strip()
    username = request.form.get("username", "").strip()
    password = request.form.get("password", "")
    try:
        if not (company_code and username and password) or max(len(company_code), len(username)) > 64 \
                or len(password) > 256:
            raise Unauthorized("login_failed", "公司代码、用户名或密码错误")
        rt = runtime()
        user, pair = hr_login(db(), rt.settings, company_code=company_code, username=username, password=password,
                              redis=rt.redis, ip=request.remote_addr or "",
                              user_agent=request.headers.get("User-Agent", ""))
    except (Unauthorized, RateLimited) as exc:
        if not db().info.get("qianli_keep_on_error"):
            db().rollback()
        new_nonce = secrets.token_urlsafe(24)
        locked = isinstance(exc, RateLimited)
        body, _ = _render("hr/login.html", login_csrf=new_nonce, next=_safe_next(request.form.get("next")),
                          expired=False, company_code=company_code,
                          error=exc.message if locked else "公司代码、用户名或密码错误")
        resp = Response(body, 429 if locked else 401, mimetype="text/html")
        if locked:
            resp.headers["Retry-After"] = str(exc.details.get("retry_after_s", 60))
        resp.set_cookie(LOGIN_CSRF_COOKIE, new_nonce, httponly=True, samesite="Strict", secure=_secure_cookies(),
                        path="/hr/")
        return resp
    resp = redirect(_safe_next(request.form.get("next")), code=303)
    resp.set_cookie(HR_COOKIE, pair.access_token, max_age=pair.expires_in, httponly=True, samesite="Strict",
                    secure=_secure_cookies(), path="/")
    resp.delete_cookie(LOGIN_CSRF_COOKIE, path="/hr/")
    return resp


@bp.post("/logout")
@login_required
def logout():
    end_hr_session(db(), g.hr_session_id, "logout")
    resp = redirect(url_for("hr_console.login"), code=303)
    resp.delete_cookie(HR_COOKIE, path="/")
    return resp


# ---- the queue --------------------------------------------------------------------------------------

def _date_arg(name: str):
    from datetime import date

    value = request.args.get(name, "").strip()
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise InvalidInput("validation_failed", f"日期格式错误：{name}") from None
    if not DATE_MIN <= day <= DATE_MAX:
        raise InvalidInput("validation_failed", f"日期超出范围（{DATE_MIN.isoformat()} 至 {DATE_MAX.isoformat()}）：{name}")
    return day


@bp.get("/")
@login_required
def queue():
    states = [s for s in request.args.getlist("state") if s in STATE_LABELS]
    overdue = {"1": True, "0": False}.get(request.args.get("overdue", ""))
    try:
        page = max(1, min(int(request.args.get("page", "1")), 100000))
    except ValueError:
        page = 1
    q = svc.CaseQuery(states=states, overdue=overdue, department=request.args.get("department", "").strip()[:100] or None,
                      arrival_from=_date_arg("arrival_from"), arrival_to=_date_arg("arrival_to"),
                      search=request.args.get("q", "").strip()[:100] or None, page=page, page_size=20)
    result = svc.list_cases(db(), g.reviewer, q)
    pages = max(1, (result.total + q.page_size - 1) // q.page_size)
    args = {k: v for k, v in request.args.items(multi=True) if k != "page"}

    def page_url(n: int) -> str:
        return url_for("hr_console.queue") + "?" + urlencode([*[(k, v) for k, v in request.args.items(multi=True)
                                                                if k != "page"], ("page", n)])

    return _render("hr/queue.html", result=result, pages=pages, page_url=page_url, filters=args, states=states,
                   overdue=request.args.get("overdue", ""), source_labels=SOURCE_LABELS)


# ---- one case -----------------------------------------------------------------------------------------

def _letter_document(case):
    docs = case_documents(db(), case.id, case.company_id)
    for kind in ("letter_countersigned", "letter_signed"):
        found = [d for d in docs if d.kind == kind]
        if found:
            return found[-1]
    return None


@bp.get("/cases/<case_id>")
@login_required
def case_page(case_id: str):
    d = svc.case_detail(db(), runtime(), g.reviewer, case_id)
    timeline = [{"seq": e.seq, "at": _beijing(e.occurred_at), "actor": e.actor, "action": e.action,
                 "label": evidence_label(e.action), "summary": _payload_summary(e.payload),
                 "digest": e.digest} for e in d["timeline"]]
    from api.console_absence import absence_context

    return _render("hr/case.html", d=d, case=d["case"], employee=d["employee"], timeline=timeline,
                   letter=_letter_document(d["case"]), doc_labels=DOC_LABELS, source_labels=SOURCE_LABELS,
                   absence=absence_context(d["case"]), end=_end_of_case(d["case"]))


def _end_of_case(case) -> dict[str, Any]:
    """The certificate card: the issued certificate, or what issuing it now would meet (facts, last day)."""
    from cases.clock import beijing_today
    from qianli.services import certificate as cert

    doc = cert.latest_certificate(db(), case)
    end = cert.termination_date(case)
    missing: list[str] = []
    if doc is None and case.state in cert.CERTIFICATE_STATES:
        try:
            cert.certificate_facts(db(), runtime(), case)
        except InvalidInput as exc:
            missing = [cert.FACT_LABELS.get(m, m) for m in exc.details.get("missing", [])] or [exc.message]
    writer = g.reviewer.role in svc.HR_WRITERS
    from qianli.services.closing import closable, open_tasks_of
    from qianli.services.evidence import case_evidence

    close_code, close_message, _details = closable(db(), case)
    closing = None
    if case.state == "closed":
        closing = next((e for e in reversed(case_evidence(db(), case.id, case.company_id))
                        if e.action == "case_close"), None)
    return {"close_blocked": close_message if close_code and case.state != "closed" else None,
            "may_close": writer and close_code is None, "closing": closing,
            "open_tasks": open_tasks_of(db(), case) if case.state in cert.CERTIFICATE_STATES | {"closed"} else [],
            "stage": case.state in cert.CERTIFICATE_STATES | {"closed"},
            "certificate": doc, "termination_date": end, "missing": missing,
            "before_last_day": end is not None and beijing_today() < end,
            "may_issue": writer and case.state in cert.CERTIFICATE_STATES,
            "may_reissue": writer and doc is not None and case.state in cert.CERTIFICATE_STATES | {"closed"}}


def _done(case_id: str, outcome: str) -> Response:
    flash(FLASH_TEXT.get(outcome, outcome))
    return redirect(url_for("hr_console.case_page", case_id=case_id), code=303)


@bp.post("/cases/<case_id>/approve")
@login_required
def approve(case_id: str):
    from datetime import date

    raw_day = request.form.get("agreed_last_day", "").strip()
    try:
        day = date.fromisoformat(raw_day) if raw_day else None
    except ValueError:
        raise InvalidInput("validation_failed", "最后工作日格式错误") from None
    if day is not None and not DATE_MIN <= day <= DATE_MAX:
        raise InvalidInput("validation_failed", "最后工作日超出范围") from None
    _, outcome = svc.approve_case(db(), runtime(), g.reviewer, case_id, agreed_last_day=day,
                                  comment=request.form.get("comment", "").strip())
    return _done(case_id, outcome)


@bp.post("/cases/<case_id>/return")
@login_required
def return_case(case_id: str):
    svc.return_case(db(), runtime(), g.reviewer, case_id, reason=request.form.get("reason", ""))
    return _done(case_id, "returned")


@bp.post("/cases/<case_id>/withdrawal")
@login_required
def withdrawal(case_id: str):
    consent = request.form.get("consent") == "yes"
    svc.decide_withdrawal(db(), runtime(), g.reviewer, case_id, consent=consent,
                          comment=request.form.get("comment", "").strip())
    return _done(case_id, "withdrawal_consented" if consent else "withdrawal_declined")


@bp.get("/cases/<case_id>/letter.pdf")
@login_required
def letter_pdf(case_id: str):
    case = svc.get_hr_case(db(), g.reviewer, case_id)
    doc = _letter_document(case)
    if doc is None:
        raise NotFound("letter_not_found", "该案件还没有已签名的辞职信")
    data = read_document(runtime().store, doc)
    return send_file(io.BytesIO(data), mimetype="application/pdf", as_attachment=False,
                     download_name=f"letter-{case.id}-{doc.kind}.pdf", max_age=0)


@bp.get("/cases/<case_id>/addendum.pdf")
@login_required
def addendum_pdf(case_id: str):
    from qianli.services.agreement import addendum_document

    case = svc.get_hr_case(db(), g.reviewer, case_id)
    doc = addendum_document(db(), case)
    data = read_document(runtime().store, doc)
    return send_file(io.BytesIO(data), mimetype="application/pdf", as_attachment=False,
                     download_name=f"addendum-{case.id}.pdf", max_age=0)


@bp.post("/cases/<case_id>/certificate")
@login_required
def issue_certificate(case_id: str):
    from qianli.services.certificate import issue_certificate as issue

    case = svc.get_hr_case(db(), g.reviewer, case_id)
    if g.reviewer.role not in svc.HR_WRITERS:
        raise Forbidden("role_forbidden", "requires role: hr_specialist, hr_manager", details={"role": g.reviewer.role})
    reissue = request.form.get("reissue") == "yes"
    out = issue(db(), runtime(), case, actor=g.reviewer.actor, reissue=reissue,
                reason=request.form.get("reason", "").strip()[:500],
                state_ground=request.form.get("state_ground") == "yes")
    return _done(case_id, "certificate_issued" if out.created else "certificate_exists")


@bp.post("/cases/<case_id>/close")
@login_required
def close(case_id: str):
    from qianli.services.closing import close_case

    case = svc.get_hr_case(db(), g.reviewer, case_id)
    close_case(db(), runtime(), case, actor=g.reviewer.actor, role=g.reviewer.role,
               comment=request.form.get("comment", "").strip())
    return _done(case_id, "case_closed")


@bp.get("/cases/<case_id>/certificate.pdf")
@login_required
def certificate_pdf(case_id: str):
    from qianli.services.certificate import certificate_document

    case = svc.get_hr_case(db(), g.reviewer, case_id)
    doc = certificate_document(db(), case)
    data = read_document(runtime().store, doc)
    return send_file(io.BytesIO(data), mimetype="application/pdf", as_attachment=request.args.get("download") == "1",
                     download_name=f"termination-certificate-{case.id}.pdf", max_age=0)


@bp.get("/cases/<case_id>/dossier.zip")
@login_required
def dossier_zip(case_id: str):
    from qianli.services.dossier import build_dossier

    case = svc.get_hr_case(db(), g.reviewer, case_id)
    data = build_dossier(db(), runtime(), case, actor=g.reviewer.actor)
    return send_file(io.BytesIO(data), mimetype="application/zip", as_attachment=True,
                     download_name=f"dossier-{case.id}.zip", max_age=0)


# ---- an employee's identity factors ---------------------------------------------------------------------

@bp.get("/employees/<employee_id>/identity")
@login_required
def identity_page(employee_id: str):
    from qianli.services import identity_trust

    emp = svc.get_hr_employee(db(), g.reviewer, employee_id)
    changes = identity_trust.list_changes(db(), openid=None, employee_id=emp.id, company_id=emp.company_id, limit=200)
    rows = [{"at": _beijing(c.created_at), "factor": c.factor, "source": c.source, "actor": c.actor,
             "old": c.old_value, "new": c.new_value, "reason": c.reason,
             "status": identity_trust.change_status(c), "usable_from": _beijing(c.usable_from)} for c in changes]
    blockers = identity_trust.signing_blockers(db(), runtime(), emp)
    return _render("hr/identity.html", employee=emp, rows=rows, blockers=blockers,
                   can_write=g.reviewer.role in svc.HR_WRITERS, today=beijing_today(),
                   prefill={k: request.args.get(k, "")[:800] for k in ("risk_id", "absent_days", "last_seen_on")})


@bp.post("/employees/<employee_id>/phone")
@login_required
def change_phone(employee_id: str):
    from cases.errors import Conflict, Forbidden

    from qianli.services import identity_trust

    if g.reviewer.role not in svc.HR_WRITERS:
        raise Forbidden("role_forbidden", "requires role: hr_specialist, hr_manager")
    emp = svc.get_hr_employee(db(), g.reviewer, employee_id)
    reason = request.form.get("reason", "").strip()
    if not reason:
        raise InvalidInput("reason_required", "请填写更改原因")
    meta = RequestMeta(ip=request.remote_addr or "", user_agent=request.headers.get("User-Agent", ""))
    ch = identity_trust.change_phone(db(), runtime(), emp, request.form.get("phone", ""), actor=g.reviewer.actor,
                                     source="console", reason=reason[:500], meta=meta)
    if ch is None:
        raise Conflict("phone_unchanged", "新手机号与当前登记的相同")
    flash("手机号已更改：已通知原手机号和已绑定的微信，冷静期满或员工确认后才能用于签署")
    return redirect(url_for("hr_console.identity_page", employee_id=emp.id), code=303)


# ---- alerts ---------------------------------------------------------------------------------------------

@bp.get("/alerts")
@login_required
def alerts():
    return _render("hr/alerts.html", alerts=svc.list_alerts(db(), g.reviewer))


@bp.post("/alerts/<alert_id>/resolve")
@login_required
def resolve_alert(alert_id: str):
    svc.resolve_hr_alert(db(), g.reviewer, alert_id)
    flash(FLASH_TEXT["alert_resolved"])
    return redirect(url_for("hr_console.alerts"), code=303)


# ---- holiday schedules --------------------------------------------------------------------------------

SCOPE_LABELS = {"bundled": "内置", "all_companies": "运维录入（所有公司）", "company": "本公司录入"}


def _calendar_render(status: int = 200, *, form: dict[str, Any] | None = None, result: Any = None):
    from qianli.services import calendar as cal

    schedules = cal.list_schedules(db(), g.reviewer.company_id)
    next_year = max([s["year"] for s in schedules] + [datetime_now_year()]) + 1
    next_year = min(next_year, 2099)
    return _render("hr/calendar.html", status, schedules=schedules, statutory=cal.statutory_preview(next_year),
                   scope_labels=SCOPE_LABELS, form=form or {}, result=result)


def datetime_now_year() -> int:
    from cases.clock import beijing_today

    return beijing_today().year


def _schedule_lines(text: str, fields: int, what: str) -> list[list[str]]:
    rows = []
    for n, line in enumerate(text.replace("，", ",").splitlines(), start=1):
        parts = [p for p in line.replace(",", " ").split() if p]
        if not parts:
            continue
        if len(parts) != fields:
            raise InvalidInput("invalid_schedule", f"{what}第 {n} 行应为 {fields} 项（以空格分隔）")
        rows.append(parts)
    return rows


@bp.get("/calendar")
@login_required
def calendar_page():
    return _calendar_render()


@bp.post("/calendar")
@login_required
def calendar_import():
    from cases.errors import Forbidden
    from qianli.services import calendar as cal

    if g.reviewer.role != "hr_manager":
        raise Forbidden("role_forbidden", "只有人事经理可以录入节假日安排", details={"role": g.reviewer.role})
    form = {k: request.form.get(k, "")[:5000] for k in ("year", "source", "holidays", "workdays")}
    try:
        year = int(form["year"])
    except ValueError:
        raise InvalidInput("invalid_schedule", "年份格式错误") from None
    doc = {"year": year, "source": form["source"],
           "holidays": [{"name": a, "first": b, "last": c} for a, b, c in _schedule_lines(form["holidays"], 3, "放假")],
           "workdays": [{"name": a, "date": b} for a, b in _schedule_lines(form["workdays"], 2, "调休上班日")]}
    try:
        res = cal.import_schedule(db(), runtime(), doc=doc, company_id=g.reviewer.company_id, actor=g.reviewer.actor)
    except DomainError as err:
        db().rollback()
        flash(err.message)
        return _calendar_render(_status_of(err), form=form)
    result = {"year": res.schedule.year, "replaced": res.replaced, "warnings": res.warnings,
              "recomputed": res.recomputed, "unchanged": res.unchanged}
    return _calendar_render(result=result)


# ---- HR accounts (HR managers) and one's own password --------------------------------------------------

def _manager_only() -> None:
    if g.reviewer.role != "hr_manager":
        raise Forbidden("role_forbidden", "仅人事经理可管理 HR 账号")


@bp.get("/users")
@login_required
def users():
    from qianli.services import hr_users

    _manager_only()
    return _render("hr/users.html", users=hr_users.list_hr_users(db(), g.reviewer.company_id))


@bp.post("/users/<user_id>")
@login_required
def update_user(user_id: str):
    from qianli.services import hr_users

    _manager_only()
    user = hr_users.get_hr_user(db(), g.reviewer.company_id, user_id)
    action = request.form.get("action", "")
    common = {"actor": g.reviewer.actor, "actor_user_id": g.reviewer.id, "ip": request.remote_addr or ""}
    if action in ("deactivate", "reactivate"):
        hr_users.update_hr_user(db(), user, active=action == "reactivate", **common)
    elif action == "role":
        hr_users.update_hr_user(db(), user, role=request.form.get("role", ""),
                                department=request.form.get("department", "").strip()[:100] or None, **common)
    else:
        raise InvalidInput("validation_failed", "未知操作")
    flash(FLASH_TEXT["user_updated"])
    return redirect(url_for("hr_console.users"), code=303)


@bp.post("/users/<user_id>/password")
@login_required
def reset_user_password(user_id: str):
    from qianli.services import hr_users

    _manager_only()
    user = hr_users.get_hr_user(db(), g.reviewer.company_id, user_id)
    password = request.form.get("new_password", "")
    if len(password) > 256:
        raise InvalidInput("validation_failed", "密码过长")
    rt = runtime()
    hr_users.reset_hr_password(db(), rt.settings, rt.redis, user, password, actor=g.reviewer.actor,
                               ip=request.remote_addr or "")
    flash(FLASH_TEXT["password_reset"])
    if user.id == g.reviewer.id:  # one's own sessions ended too
        return _to_login(expired=True)
    return redirect(url_for("hr_console.users"), code=303)


@bp.route("/password", methods=["GET", "POST"])
@login_required
def change_password():
    from qianli.services import hr_users

    if request.method == "GET":
        return _render("hr/password.html")
    current, new = request.form.get("current_password", ""), request.form.get("new_password", "")
    if len(current) > 256 or len(new) > 256:
        raise InvalidInput("validation_failed", "密码过长")
    user = hr_users.get_hr_user(db(), g.reviewer.company_id, g.reviewer.id)
    hr_users.change_own_password(db(), user, current_password=current, new_password=new,
                                 current_session_id=g.hr_session_id, ip=request.remote_addr or "")
    flash(FLASH_TEXT["password_changed"])
    return redirect(url_for("hr_console.queue"), code=303)


# ---- departure analytics --------------------------------------------------------------------------------

def _fmt_number(value: Any) -> str:
    return "*" if value is None else (f"{value:g}" if isinstance(value, float) else str(value))


def _fmt_share(value: Any) -> str:
    return "*" if value is None else f"{value * 100:.1f}%"


@bp.get("/analytics")
@login_required
def analytics_page():
    from cases.analytics import previous_quarter
    from cases.clock import beijing_today
    from cases.departure import DEPARTURE_LABELS
    from qianli.services import analytics as an
    from qianli.services.analytics_export import SHARE_COLUMNS, filters_text, suppression_note

    q = an.make_query(start=_date_arg("from"), end=_date_arg("to"),
                      granularity=request.args.get("granularity", "").strip() or None,
                      department=request.args.get("department", "").strip()[:100] or None,
                      departure_type=request.args.get("departure_type", "").strip() or None)
    a = an.departure_analytics(db(), g.reviewer, q)
    data = a.as_dict()
    params = {"from": q.start.isoformat(), "to": q.end.isoformat(), "granularity": q.granularity.value,
              **({"department": q.department} if q.department else {}),
              **({"departure_type": q.departure_type} if q.departure_type else {})}

    def export_url(chart_id: str | None, fmt: str) -> str:
        return "/api/v1/hr/analytics/departures/export?" + urlencode(
            {**params, "format": fmt, **({"chart": chart_id} if chart_id else {})})

    def report_url(year: int | None, quarter: int | None) -> str:
        args = {"year": year, "quarter": quarter} if year else {}
        return "/api/v1/hr/analytics/departures/report" + ("?" + urlencode(args) if args else "")

    quarters = []
    y, qn = previous_quarter(beijing_today())
    for _ in range(4):
        quarters.append((y, qn, f"{y}年第{qn}季度"))
        y, qn = (y - 1, 4) if qn == 1 else (y, qn - 1)
    return _render("hr/analytics.html", q=q, data=data, chart_data={"charts": data["charts"]},
                   departments=an.visible_departments(db(), g.reviewer), departure_labels=DEPARTURE_LABELS,
                   filters_text=filters_text(a), note=suppression_note(a.k), fmt=_fmt_number, pct=_fmt_share,
                   export_url=export_url, report_url=report_url, quarters=quarters, share_keys=SHARE_COLUMNS)


# Leaving without notice: its pages live in their own module, on this blueprint.
from api import console_absence  # noqa: E402,F401
# Pages of other areas, on this blueprint (imported last: they use the helpers above).
from api import console_attendance  # noqa: E402,F401
from api import console_webhooks  # noqa: E402,F401
