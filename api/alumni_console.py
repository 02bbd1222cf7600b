"""HR console pages of the alumni pool (``/hr/alumni/...``) and the public unsubscribe page
(``/alumni/unsubscribe/<token>``, the link in every alumni message).

The pages call the same services as the API (``qianli.services.alumni``, ``alumni_outreach``) and
build every profile with ``profile_view``: the performance grade appears only for hr_manager
(table column, profile field, edit control, filter and export column alike).
"""

from __future__ import annotations

from urllib.parse import urlencode

from flask import Blueprint, Flask, flash, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from cases.departure import DEPARTURE_LABELS
from cases.alumni import FESTIVAL_LABELS, GRADE_LABELS, PURPOSE_LABELS, AlumniPurpose
from cases.errors import DomainError, Forbidden, InvalidInput
from qianli.models import CAMPAIGN_DELIVERY_STATUSES, PERFORMANCE_GRADES, REASON_CATEGORIES
from qianli.services import alumni as svc
from qianli.services import alumni_outreach as out
from qianli.services.evidence import RequestMeta

from api.console import _date_arg, _render, _status_of, login_required
from api.context import db, runtime

__all__ = ["bp", "public_bp", "register", "REASON_LABELS", "DEPARTURE_LABELS_ZH", "DELIVERY_LABELS"]

bp = Blueprint("hr_alumni", __name__, url_prefix="/hr/alumni", template_folder="templates")
public_bp = Blueprint("alumni_public", __name__, url_prefix="/alumni", template_folder="templates")

REASON_LABELS = {"career_development": "个人发展", "compensation": "薪酬待遇", "family": "家庭原因", "health": "健康原因",
                 "relocation": "工作地点变动", "further_study": "继续深造", "work_environment": "工作环境", "other": "其他"}
DEPARTURE_LABELS_ZH = DEPARTURE_LABELS
DELIVERY_LABELS = {"pending": "待发送", "sent": "已发送", "failed": "发送失败", "skipped_no_consent": "未发送（无同意/已撤回）",
                   "skipped_frequency_cap": "未发送（超过频次上限）", "skipped_no_phone": "未发送（无手机号）"}


def register(app: Flask) -> None:
    app.register_blueprint(bp)
    app.register_blueprint(public_bp)


@bp.errorhandler(DomainError)
def _domain_error(err: DomainError):
    db().rollback()
    return _render("hr/error.html", _status_of(err), error=err)


def _ctx(**kw):
    return {"purpose_labels": {p.value: label for p, label in PURPOSE_LABELS.items()}, "reason_labels": REASON_LABELS,
            "departure_labels": DEPARTURE_LABELS_ZH, "grade_labels": GRADE_LABELS, "grades": PERFORMANCE_GRADES,
            "is_manager": g.reviewer.role == svc.GRADE_ROLE,
            "can_edit": g.reviewer.role in ("hr_specialist", "hr_manager"), **kw}


def _scope() -> str | None:
    r = g.reviewer
    return (r.department or "") if r.role == "dept_head" else None


def _terms(raw: str) -> list[str]:
    return [t for t in raw.replace("，", ",").replace("、", ",").split(",") if t.strip()]


def _int_arg(name: str, default: int) -> int:
    try:
        return max(1, min(int(request.args.get(name, default)), 10000))
    except ValueError:
        return default


# ---- search ----------------------------------------------------------------------------------------
@bp.get("/")
@login_required
def search():
    grades = [x for x in request.args.getlist("grade") if x in PERFORMANCE_GRADES]
    if grades and g.reviewer.role != svc.GRADE_ROLE:
        raise Forbidden("grade_forbidden", "只有 HR 经理可以按绩效等级筛选")
    reason = request.args.get("reason_category", "")
    filters = svc.SearchFilters(
        q=request.args.get("q", "").strip()[:100], skills=tuple(_terms(request.args.get("skills", "")[:300])),
        tags=tuple(_terms(request.args.get("tags", "")[:300])),
        department=request.args.get("department", "").strip()[:100] or None,
        reason_category=reason if reason in REASON_CATEGORIES else None, grades=tuple(grades),
        eligible_only=request.args.get("eligible_only") == "1", left_from=_date_arg("left_from"),
        left_to=_date_arg("left_to"))
    page = _int_arg("page", 1)
    result = svc.search_alumni(db(), g.reviewer.company_id, filters, role=g.reviewer.role,
                               scope_department=_scope(), page=page, per_page=20)
    profiles = [svc.profile_view(db(), a, role=g.reviewer.role) for a in result.items]
    pages = max(1, (result.total + 19) // 20)
    base = [(k, v) for k, v in request.args.items(multi=True) if k != "page"]
    export_args = [(k, v) for k, v in base if v and k in ("q", "department", "reason_category", "grade", "left_from",
                                                          "left_to")]
    export_args += [("skill", s) for s in filters.skills] + [("tag", t) for t in filters.tags]
    if filters.eligible_only:
        export_args.append(("eligible_only", "true"))
    return _render("hr/alumni_search.html", **_ctx(
        profiles=profiles, total=result.total, page=page, pages=pages, args=request.args, selected_grades=grades,
        page_url=lambda n: url_for("hr_alumni.search") + "?" + urlencode([*base, ("page", n)]),
        export_query=urlencode(export_args)))


# ---- one profile -------------------------------------------------------------------------------------
@bp.get("/<alumnus_id>")
@login_required
def profile(alumnus_id: str):
    a = svc.get_alumnus(db(), g.reviewer.company_id, alumnus_id, department=_scope())
    return _render("hr/alumnus.html", **_ctx(p=svc.profile_view(db(), a, role=g.reviewer.role)))


@bp.post("/<alumnus_id>")
@login_required
def update_profile(alumnus_id: str):
    a = svc.get_alumnus(db(), g.reviewer.company_id, alumnus_id)
    if g.reviewer.role not in ("hr_specialist", "hr_manager"):
        raise Forbidden("role_forbidden", "只读角色不能修改")
    action = request.form.get("action", "save")
    if action == "rehire":
        svc.mark_rehired(db(), a, actor=g.reviewer.actor, rehired=request.form.get("rehired", "1") == "1")
        flash("已记录返聘" if a.rehired_at else "已撤销返聘记录")
        return redirect(url_for("hr_alumni.profile", alumnus_id=a.id), code=303)
    eligible = {"1": True, "0": False, "": None}.get(request.form.get("rehire_eligible", ""))
    changes = {"skills": _terms(request.form.get("skills", "")[:2000]),
               "tags": _terms(request.form.get("tags", "")[:2000]),
               "notes": request.form.get("notes", "")[:5000], "rehire_eligible": eligible}
    if "performance_grade" in request.form:  # the control is rendered for hr_manager only
        grade = request.form.get("performance_grade", "")
        changes["performance_grade"] = grade or None
    svc.update_alumnus(db(), a, actor=g.reviewer.actor, role=g.reviewer.role, changes=changes)
    flash("人才档案已更新")
    return redirect(url_for("hr_alumni.profile", alumnus_id=a.id), code=303)


# ---- campaigns -----------------------------------------------------------------------------------------
def _campaign_reader() -> None:
    if g.reviewer.role not in ("hr_specialist", "hr_manager", "auditor"):
        raise Forbidden("role_forbidden", "部门负责人不能查看人才库活动")


@bp.get("/campaigns")
@login_required
def campaigns():
    _campaign_reader()
    return _render("hr/alumni_campaigns.html", **_ctx(
        campaigns=out.list_campaigns(db(), g.reviewer.company_id), festival_labels=FESTIVAL_LABELS,
        defaults=runtime().settings))


@bp.post("/campaigns")
@login_required
def create_campaign():
    if g.reviewer.role not in ("hr_specialist", "hr_manager"):
        raise Forbidden("role_forbidden", "只有人事专员或经理可以发起活动")
    purpose = request.form.get("purpose", "")
    if purpose not in [p.value for p in AlumniPurpose] or purpose == AlumniPurpose.JOB_OPENINGS.value:
        raise InvalidInput("alumni_purpose_invalid", "请选择节日问候或公司动态（岗位推荐请在“岗位”页发布）")
    title, body = request.form.get("title", "").strip(), request.form.get("body", "").strip()
    if not title or not body or len(title) > 100 or len(body) > 300:
        raise InvalidInput("validation_failed", "请填写标题（100 字以内）和内容（300 字以内）")
    cap = request.form.get("frequency_cap", "").strip()
    c = out.create_campaign(db(), runtime(), company_id=g.reviewer.company_id, actor=g.reviewer.actor, purpose=purpose,
                            title=title, body=body, frequency_cap=int(cap) if cap.isdigit() else None)
    flash(f"活动已创建，{c.recipients} 位校友将收到消息")
    return redirect(url_for("hr_alumni.campaign", campaign_id=c.id), code=303)


@bp.get("/campaigns/<campaign_id>")
@login_required
def campaign(campaign_id: str):
    _campaign_reader()
    status = request.args.get("status", "")
    c, rows, total = out.list_deliveries(db(), g.reviewer.company_id, campaign_id,
                                         status=status if status in CAMPAIGN_DELIVERY_STATUSES else None,
                                         page=_int_arg("page", 1), per_page=200)
    return _render("hr/alumni_campaign.html", **_ctx(c=c, rows=rows, total=total, delivery_labels=DELIVERY_LABELS,
                                                     delivery_status=status))


# ---- job openings -------------------------------------------------------------------------------------
@bp.get("/openings")
@login_required
def openings():
    _campaign_reader()
    return _render("hr/alumni_openings.html", **_ctx(openings=out.list_job_openings(db(), g.reviewer.company_id)))


@bp.post("/openings")
@login_required
def create_opening():
    if g.reviewer.role not in ("hr_specialist", "hr_manager"):
        raise Forbidden("role_forbidden", "只有人事专员或经理可以发布岗位")
    title = request.form.get("title", "").strip()
    if not title or len(title) > 100:
        raise InvalidInput("validation_failed", "请填写岗位名称（100 字以内）")
    opening, c = out.create_job_opening(
        db(), runtime(), company_id=g.reviewer.company_id, actor=g.reviewer.actor, title=title,
        department=request.form.get("department", "")[:100], description=request.form.get("description", "")[:5000],
        skills=_terms(request.form.get("skills", "")[:2000]), tags=_terms(request.form.get("tags", "")[:2000]),
        notify=request.form.get("notify", "1") == "1")
    flash(f"岗位已发布{f'，已向 {c.recipients} 位匹配的校友发送岗位推荐' if c else ''}")
    return redirect(url_for("hr_alumni.opening", opening_id=opening.id), code=303)


@bp.get("/openings/<opening_id>")
@login_required
def opening(opening_id: str):
    _campaign_reader()
    o = out.get_job_opening(db(), g.reviewer.company_id, opening_id)
    matches = [(svc.profile_view(db(), a, role=g.reviewer.role), m) for a, m in out.opening_matches(db(), o)]
    return _render("hr/alumni_opening.html", **_ctx(o=o, matches=matches, answers=out.opening_answers(db(), o)))


# ---- public: the unsubscribe page ----------------------------------------------------------------------
@public_bp.get("/unsubscribe/<token>")
def unsubscribe_page(token: str):
    try:
        d = svc.delivery_for_token(db(), token)
    except DomainError:
        return Response(render_template("hr/unsubscribe.html", invalid=True), 404, mimetype="text/html")
    subscribed = d.purpose in svc.active_purposes(db(), d.company_id, d.employee_id)
    return Response(render_template("hr/unsubscribe.html", token=token, label=PURPOSE_LABELS[AlumniPurpose(d.purpose)],
                                    subscribed=subscribed), mimetype="text/html")


@public_bp.post("/unsubscribe/<token>")
def unsubscribe_submit(token: str):
    meta = RequestMeta(ip=request.remote_addr or "", user_agent=request.headers.get("User-Agent", ""))
    try:
        _, withdrawn = svc.unsubscribe(db(), token=token, all_purposes=request.form.get("all") == "1", meta=meta)
    except DomainError:
        db().rollback()
        return Response(render_template("hr/unsubscribe.html", invalid=True), 404, mimetype="text/html")
    labels = [PURPOSE_LABELS[AlumniPurpose(p)] for p in withdrawn]
    return Response(render_template("hr/unsubscribe.html", done=True, labels=labels), mimetype="text/html")

