"""HR console pages for leaving without notice (擅自离职): confirm the departure from the employee page,
and on the case page serve the return-to-work notice, record postal deliveries and the union
notification, approve the dismissal, withdraw; the company's handbook clause, deadline and chain.

Routes on the console's blueprint (``api.console.bp``); the same services as the API."""

from __future__ import annotations

import io
from datetime import date, datetime, timezone

from flask import flash, g, redirect, request, send_file, url_for
from werkzeug.wrappers import Response

from cases import absconding as rules
from cases.clock import SHANGHAI
from cases.errors import Forbidden, InvalidInput
from qianli.services import absconding as absence_svc
from qianli.services import company as company_svc
from qianli.services import review as svc

from api.console import _render, bp, login_required
from api.context import db, runtime

__all__ = ["ABSENCE_FLASH", "absence_context"]

ABSENCE_FLASH = {"confirmed": "已确认擅自离职，证据链已开始", "notice_served": "返岗通知书已盖章并送达（小程序、短信、微信消息）",
                 "postal": "已登记邮寄送达", "postal_updated": "已更新邮寄状态", "union": "已登记通知工会",
                 "dismissal_pending": "解除已通过第一级审批，等待下一级", "dismissed": "已解除劳动合同，解除通知书已盖章并送达",
                 "withdrawn": "已撤回擅自离职的认定", "policy": "擅自离职设置已保存"}
POSTAL_STATUS = {"sent": "在途", "delivered": "已签收", "returned": "已退回"}
UNION_METHODS = {"written": "书面", "email": "电子邮件", "wecom": "企业微信", "in_person": "当面", "other": "其他"}
NOTICE_LABELS = {"return_to_work": "返岗通知书", "dismissal": "解除劳动合同通知书"}


def absence_context(case) -> dict | None:
    """The case page's absence section (None for a resignation)."""
    from qianli.models import AbsenceCase

    if db().get(AbsenceCase, case.id) is None:
        return None
    return {"a": absence_svc.absence_detail(db(), runtime(), case), "postal_status": POSTAL_STATUS,
            "union_methods": UNION_METHODS, "notice_labels": NOTICE_LABELS, "answer_labels": rules.ANSWER_LABELS,
            "can_write": g.reviewer.role in svc.HR_WRITERS}


def _back(case_id: str, outcome: str) -> Response:
    flash(ABSENCE_FLASH.get(outcome, outcome))
    return redirect(url_for("hr_console.case_page", case_id=case_id), code=303)


def _local_time(name: str, *, required: bool = True) -> datetime | None:
    """A ``datetime-local`` form field, read as Beijing time."""
    raw = request.form.get(name, "").strip()
    if not raw:
        if required:
            raise InvalidInput("validation_failed", "请填写时间", details={"form": {name: ["required"]}})
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidInput("validation_failed", "时间格式错误", details={"form": {name: ["invalid"]}}) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=SHANGHAI)
    return value.astimezone(timezone.utc)


def _days(raw: str) -> list[date]:
    out = []
    for part in raw.replace("，", ",").replace("、", ",").replace("\n", ",").split(","):
        part = part.strip()
        if not part:
            continue
        try:
            out.append(date.fromisoformat(part))
        except ValueError:
            raise InvalidInput("validation_failed", f"日期格式错误：{part[:20]}（应为 YYYY-MM-DD）") from None
    return out


@bp.post("/employees/<employee_id>/departure")
@login_required
def confirm_departure(employee_id: str):
    emp = svc.get_hr_employee(db(), g.reviewer, employee_id)
    raw_seen = request.form.get("last_seen_on", "").strip()
    try:
        seen = date.fromisoformat(raw_seen) if raw_seen else None
    except ValueError:
        raise InvalidInput("validation_failed", "最后出勤日期格式错误") from None
    case = absence_svc.confirm_departure(db(), runtime(), g.reviewer, employee_id=emp.id,
                                         absent_days=_days(request.form.get("absent_days", "")), last_seen_on=seen,
                                         risk_id=request.form.get("risk_id", "").strip() or None,
                                         note=request.form.get("note", ""))
    return _back(case.id, "confirmed")


@bp.post("/cases/<case_id>/return-notice")
@login_required
def serve_return_notice(case_id: str):
    absence_svc.send_return_notice(db(), runtime(), g.reviewer, case_id)
    return _back(case_id, "notice_served")


@bp.get("/cases/<case_id>/notices/<notice>.pdf")
@login_required
def notice_pdf(case_id: str, notice: str):
    doc = absence_svc.read_notice(db(), runtime(), case_id=case_id, company_id=g.reviewer.company_id, notice=notice,
                                  reviewer=g.reviewer)
    data = absence_svc.notice_bytes(runtime(), doc)
    return send_file(io.BytesIO(data), mimetype="application/pdf", as_attachment=False,
                     download_name=f"{notice}-notice-{case_id}.pdf", max_age=0)


@bp.post("/cases/<case_id>/postal-deliveries")
@login_required
def record_postal(case_id: str):
    absence_svc.record_postal_delivery(db(), runtime(), g.reviewer, case_id,
                                       notice=request.form.get("notice", "return_to_work"),
                                       carrier=request.form.get("carrier", ""),
                                       tracking_no=request.form.get("tracking_no", ""),
                                       address=request.form.get("address", ""), sent_at=_local_time("sent_at"))
    return _back(case_id, "postal")


@bp.post("/cases/<case_id>/postal-deliveries/<delivery_id>")
@login_required
def update_postal(case_id: str, delivery_id: str):
    absence_svc.update_postal_delivery(db(), runtime(), g.reviewer, case_id, delivery_id,
                                       status=request.form.get("status", ""), status_at=_local_time("status_at"),
                                       note=request.form.get("note", ""))
    return _back(case_id, "postal_updated")


@bp.post("/cases/<case_id>/union-notifications")
@login_required
def record_union(case_id: str):
    absence_svc.record_union_notification(
        db(), runtime(), g.reviewer, case_id, union_name=request.form.get("union_name", ""),
        contact_name=request.form.get("contact_name", ""), notified_at=_local_time("notified_at"),
        method=request.form.get("method", ""), response=request.form.get("response", ""),
        objection=request.form.get("objection") == "yes", responded_at=_local_time("responded_at", required=False))
    return _back(case_id, "union")


@bp.post("/cases/<case_id>/dismissal")
@login_required
def dismiss(case_id: str):
    _case, outcome = absence_svc.dismiss_for_absence(db(), runtime(), g.reviewer, case_id,
                                                     comment=request.form.get("comment", ""))
    return _back(case_id, outcome)


@bp.post("/cases/<case_id>/departure-withdrawal")
@login_required
def withdraw_departure(case_id: str):
    absence_svc.withdraw_departure(db(), runtime(), g.reviewer, case_id, reason=request.form.get("reason", ""))
    return _back(case_id, "withdrawn")


@bp.route("/absence-policy", methods=["GET", "POST"])
@login_required
def absence_policy_page():
    company = company_svc.get_company(db(), g.reviewer.company_id)
    if request.method == "POST":
        if g.reviewer.role != "hr_manager":
            raise Forbidden("role_forbidden", "只有人事经理可以修改公司政策")
        changes: dict = {}
        ref, text = request.form.get("clause_reference", "").strip(), request.form.get("clause_text", "").strip()
        changes["absconding_handbook_clause"] = {"reference": ref, "text": text} if (ref or text) else None
        try:
            changes["return_notice_deadline_days"] = int(request.form.get("deadline_days", ""))
        except ValueError:
            raise InvalidInput("invalid_policy", "期限须为 1 到 30 的整数") from None
        changes["absconding_approval_chain"] = [r for r in (request.form.get("level1", ""),
                                                            request.form.get("level2", "")) if r]
        company_svc.update_policy(db(), runtime().settings, company.id, changes)
        flash(ABSENCE_FLASH["policy"])
        return redirect(url_for("hr_console.absence_policy_page"), code=303)
    pol = absence_svc.absence_policy(company, runtime())
    return _render("hr/absence_policy.html", pol=pol, levels=company_svc.APPROVAL_LEVELS,
                   can_edit=g.reviewer.role == "hr_manager")
