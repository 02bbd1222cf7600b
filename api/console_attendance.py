"""HR console pages of the attendance early warning: the risk list (离职预警看板, to look at every
morning), dismissing a false alarm, the rules, and the attendance import with a preview.

The routes join the console's blueprint (``api.console.bp``: its login, CSRF, headers and error
page); ``api.console`` imports this module at its end. The import preview keeps the uploaded file
for 30 minutes in Redis under a random token bound to the HR user, so "confirm" imports exactly the
bytes that were previewed without uploading them again.
"""

from __future__ import annotations

import json
import secrets
from datetime import timedelta

from flask import flash, g, redirect, request, url_for

from cases.attendance import RISK_LABELS, RiskLevel
from cases.clock import beijing_today
from cases.errors import DomainError, Forbidden, InvalidInput
from qianli.models import AttendanceImport, Company
from qianli.services import attendance as imports
from qianli.services import attrition as risk_svc
from sqlalchemy import select

from api.console import _render, _status_of, bp, login_required
from api.context import db, runtime

__all__ = ["PREVIEW_TTL_S"]

PREVIEW_TTL_S = 1800
_PREVIEW_KEY = "qianli:attendance:preview:{}"
KIND_LABELS = {"auto": "自动识别", "clock": "打卡记录", "leave": "请假记录（已审批）"}
COVERAGE_LABELS = {"company": "全公司（文件包含期间内所有员工的打卡）", "file": "仅文件中的员工"}
RULE_LABELS = {"red_consecutive_days": "红色预警：连续未打卡工作日数", "amber_consecutive_days": "黄色预警：连续未打卡工作日数（0 为不提示）",
               "drop_enabled": "出勤下降预警", "drop_recent_days": "近期窗口（工作日）", "drop_baseline_days": "对比窗口（工作日）",
               "drop_percent": "出勤率下降阈值（%）", "notify_red": "新的红色预警通知 HR 与部门负责人"}


def _writer() -> None:
    if g.reviewer.role not in ("hr_specialist", "hr_manager"):
        raise Forbidden("role_forbidden", "仅人事专员或人事经理可导入考勤")


# ---- the home page's panel ----------------------------------------------------------------------------

PANEL_ITEMS = 10


@bp.app_template_global()
def attrition_panel() -> dict | None:
    """Red and amber employees for the console's home page (None without attendance data)."""
    reviewer = g.get("reviewer")
    if reviewer is None:
        return None
    risks = risk_svc.evaluate(db(), reviewer.company_id, through=beijing_today() - timedelta(days=1), reviewer=reviewer)
    if not risks.items:
        return None
    flagged = [it for it in risks.items if it.level != RiskLevel.GREEN]
    return {"through": risks.through, "counts": risks.counts(), "items": flagged[:PANEL_ITEMS]}


# ---- the risk list ------------------------------------------------------------------------------------

@bp.get("/attrition")
@login_required
def attrition_page():
    level = request.args.get("level", "")
    risks = risk_svc.evaluate(db(), g.reviewer.company_id, through=beijing_today() - timedelta(days=1),
                              reviewer=g.reviewer)
    items = [it for it in risks.items if not level or it.level.value == level]
    return _render("hr/attrition.html", risks=risks, items=items, level=level, level_labels=RISK_LABELS,
                   levels=[lv.value for lv in RiskLevel])


@bp.post("/attrition/<employee_id>/dismiss")
@login_required
def attrition_dismiss(employee_id: str):
    if g.reviewer.role not in ("hr_specialist", "hr_manager", "dept_head"):
        raise Forbidden("role_forbidden", "审计账号不能处理预警")
    risk_svc.dismiss(db(), g.reviewer, employee_id, reason=request.form.get("reason", ""),
                     episode=request.form.get("episode") or None)
    flash("已标记为误报，同一缺勤期间不再预警")
    return redirect(url_for("hr_console.attrition_page"), code=303)


@bp.route("/attrition/rules", methods=["GET", "POST"])
@login_required
def attrition_rules():
    company = db().get(Company, g.reviewer.company_id)
    error = None
    status = 200
    if request.method == "POST":
        if g.reviewer.role != "hr_manager":
            raise Forbidden("role_forbidden", "仅人事经理可修改预警规则")
        changes: dict = {}
        for key in RULE_LABELS:
            if key in ("drop_enabled", "notify_red"):
                changes[key] = request.form.get(key) == "on"
                continue
            raw = request.form.get(key, "").strip()
            try:
                changes[key] = int(raw)
            except ValueError:
                changes[key] = raw  # refused with the field named by the strict parser
        try:
            risk_svc.set_rules(db(), g.reviewer.company_id, changes, actor=g.reviewer.actor)
            flash("预警规则已保存")
            return redirect(url_for("hr_console.attrition_rules"), code=303)
        except InvalidInput as exc:
            db().rollback()
            error, status = exc, _status_of(exc)
            company = db().get(Company, g.reviewer.company_id)
    rules = risk_svc.company_rules(company)
    return _render("hr/attrition_rules.html", status, rules=rules.as_dict(), labels=RULE_LABELS, error=error)


# ---- the import ---------------------------------------------------------------------------------------

def _recent_imports():
    return list(db().scalars(select(AttendanceImport).where(AttendanceImport.company_id == g.reviewer.company_id)
                             .order_by(AttendanceImport.created_at.desc()).limit(20)))


def _import_render(status: int = 200, **ctx):
    return _render("hr/attendance.html", status, imports=_recent_imports(), kind_labels=KIND_LABELS,
                   coverage_labels=COVERAGE_LABELS, **ctx)


@bp.get("/attendance")
@login_required
def attendance_page():
    return _import_render()


def _flags(form) -> dict:
    kind = form.get("kind", "auto")
    coverage = form.get("coverage", "company")
    if kind not in imports.IMPORT_KINDS or coverage not in imports.COVERAGES:
        raise InvalidInput("validation_failed", "请求参数无效")
    return {"kind": kind, "coverage": coverage, "good_rows_only": form.get("good_rows_only") == "on"}


@bp.post("/attendance/preview")
@login_required
def attendance_preview():
    _writer()
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise InvalidInput("validation_failed", "请选择考勤文件")
    flags = _flags(request.form)
    data = upload.read(runtime().settings.attendance_max_bytes + 1)
    rt = runtime()
    try:
        report = imports.import_attendance(db(), rt, company_id=g.reviewer.company_id, data=data,
                                           filename=upload.filename, dry_run=True, actor=g.reviewer.actor, **flags)
    except imports.AttendanceRejected as exc:
        db().rollback()
        return _import_render(_status_of(exc), report=exc.report, rejected=True, flags=flags)
    token = secrets.token_urlsafe(24)
    meta = json.dumps({"user": g.reviewer.id, "filename": upload.filename[:200], **flags})
    pipe = rt.redis.pipeline()
    pipe.set(_PREVIEW_KEY.format(token), data, ex=PREVIEW_TTL_S)
    pipe.set(_PREVIEW_KEY.format(token) + ":meta", meta, ex=PREVIEW_TTL_S)
    pipe.execute()
    return _import_render(report=report, token=token, flags=flags)


@bp.post("/attendance/confirm")
@login_required
def attendance_confirm():
    _writer()
    token = request.form.get("token", "")
    rt = runtime()
    key = _PREVIEW_KEY.format(token)
    data, meta_raw = rt.redis.mget(key, key + ":meta") if token else (None, None)
    meta = json.loads(meta_raw) if meta_raw else None
    if data is None or meta is None or meta.get("user") != g.reviewer.id:
        raise InvalidInput("attendance_preview_expired", "预览已过期，请重新上传文件")
    try:
        report = imports.import_attendance(db(), rt, company_id=g.reviewer.company_id, data=data,
                                           filename=meta["filename"], kind=meta["kind"], coverage=meta["coverage"],
                                           good_rows_only=meta["good_rows_only"], actor=g.reviewer.actor)
    except DomainError:
        raise
    rt.redis.delete(key, key + ":meta")
    flash(f"已导入：新增 {report.records_created} 条、更新 {report.records_updated} 条打卡记录，"
          f"新增 {report.leaves_created} 条请假记录")
    return redirect(url_for("hr_console.attendance_page"), code=303)
