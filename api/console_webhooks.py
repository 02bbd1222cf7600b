"""HR console pages for outbound webhooks: endpoints (HR managers manage them; a new or rotated
secret is shown once, on the page that answers the form, never stored in a cookie), the delivery
log with replay, and a case's access revocation with the systems' confirmations (权限验证).

Routes live on the console blueprint (``api.console.bp``); this module is imported by it.
"""

from __future__ import annotations

from flask import flash, g, redirect, request, url_for

from cases.errors import Forbidden, InvalidInput
from qianli.models import WEBHOOK_DELIVERY_STATUSES
from qianli.services import revocation as rv
from qianli.services import review as review_svc
from qianli.services import webhooks as wh

from api.console import _render, bp, login_required
from api.context import db, runtime

STATUS_LABELS = {"pending": "待发送/重试中", "succeeded": "已送达", "failed": "失败"}
EVENT_LABELS = {"case.approved": "终审通过", "employee.access_revoke": "回收权限", "employee.payroll_stop": "停发薪资",
                "case.closed": "结案", "webhook.test": "测试消息"}


def _manager_only() -> None:
    if g.reviewer.role != "hr_manager":
        raise Forbidden("role_forbidden", "仅人事经理可管理推送地址")


def _readers_only() -> None:
    if g.reviewer.role not in ("hr_specialist", "hr_manager", "auditor"):
        raise Forbidden("role_forbidden", "无权查看推送设置")


def _writers_only() -> None:
    if g.reviewer.role not in ("hr_specialist", "hr_manager"):
        raise Forbidden("role_forbidden", "仅人事专员或人事经理可操作")


ACTION_LABELS = {"created": "创建", "updated": "修改", "disabled": "停用", "enabled": "启用",
                 "auto_disabled": "持续失败，系统自动停用", "secret_rotated": "轮换密钥", "deleted": "删除"}


def _endpoints_page(status: int = 200, **ctx):
    endpoints = wh.list_endpoints(db(), g.reviewer.company_id)
    histories = {e.id: wh.endpoint_history(db(), e, limit=20) for e in endpoints}
    after = runtime().settings.webhook_disable_after_s
    return _render("hr/webhooks.html", status, endpoints=endpoints, histories=histories, action_labels=ACTION_LABELS,
                   disable_after_days=f"{after / 86400:g}" if after else None,
                   events=wh.SUBSCRIBABLE_EVENTS, event_labels=EVENT_LABELS, descriptions=wh.EVENT_TYPES, **ctx)


@bp.get("/webhooks")
@login_required
def webhooks_page():
    _readers_only()
    return _endpoints_page()


def _form_events() -> list[str]:
    return [e for e in request.form.getlist("event_types") if e]


@bp.post("/webhooks")
@login_required
def webhook_create():
    _manager_only()
    name, url = request.form.get("name", ""), request.form.get("url", "")
    description = request.form.get("description", "")
    if len(name) > 100 or len(url) > 2000 or len(description) > 500:
        raise InvalidInput("validation_failed", "输入过长")
    created = wh.create_endpoint(db(), runtime(), company_id=g.reviewer.company_id, name=name, url=url,
                                 event_types=_form_events(), description=description, actor=g.reviewer.actor)
    return _endpoints_page(201, shown_secret=created.secret, shown_for=created.endpoint)


@bp.post("/webhooks/<endpoint_id>")
@login_required
def webhook_update(endpoint_id: str):
    action = request.form.get("action", "")
    rt, company_id, actor = runtime(), g.reviewer.company_id, g.reviewer.actor
    if action == "test":
        _writers_only()
        wh.send_test_event(db(), rt, company_id, endpoint_id, actor=actor)
        flash("测试消息已排队发送，请在推送记录中查看结果")
        return redirect(url_for("hr_console.webhook_deliveries_page", endpoint_id=endpoint_id), code=303)
    _manager_only()
    if action in ("enable", "disable"):
        wh.update_endpoint(db(), rt, company_id, endpoint_id, actor=actor, enabled=action == "enable")
        flash("推送地址已启用" if action == "enable" else "推送地址已停用")
    elif action == "events":
        wh.update_endpoint(db(), rt, company_id, endpoint_id, actor=actor, event_types=_form_events(),
                           url=request.form.get("url") or None)
        flash("推送地址已更新")
    elif action == "delete":
        wh.delete_endpoint(db(), company_id, endpoint_id, actor=actor)
        flash("推送地址已删除（推送记录保留）")
    elif action == "rotate":
        created = wh.rotate_secret(db(), rt, company_id, endpoint_id, actor=actor)
        return _endpoints_page(200, shown_secret=created.secret, shown_for=created.endpoint, rotated=True)
    else:
        raise InvalidInput("validation_failed", "未知操作")
    return redirect(url_for("hr_console.webhooks_page"), code=303)


@bp.get("/webhooks/deliveries")
@login_required
def webhook_deliveries_page():
    _readers_only()
    status = request.args.get("status") or None
    if status not in (None, *WEBHOOK_DELIVERY_STATUSES):
        raise InvalidInput("validation_failed", "未知状态")
    try:
        page = max(1, min(int(request.args.get("page", "1")), 100000))
    except ValueError:
        raise InvalidInput("validation_failed", "页码须为数字") from None
    endpoint_id = (request.args.get("endpoint_id") or "")[:32] or None
    case_id = (request.args.get("case_id") or "")[:32] or None
    rows, total = wh.list_deliveries(db(), g.reviewer.company_id, endpoint_id=endpoint_id, status=status,
                                     case_id=case_id, page=page, page_size=50)
    return _render("hr/webhook_deliveries.html", rows=rows, total=total, page=page, status=status,
                   endpoint_id=endpoint_id, case_id=case_id, status_labels=STATUS_LABELS, event_labels=EVENT_LABELS,
                   endpoints=wh.list_endpoints(db(), g.reviewer.company_id))


@bp.post("/webhooks/deliveries/<delivery_id>/replay")
@login_required
def webhook_replay(delivery_id: str):
    _writers_only()
    wh.replay_delivery(db(), runtime(), g.reviewer.company_id, delivery_id, actor=g.reviewer.actor)
    flash("已重新排队发送（同一 webhook-id，接收方可去重）")
    return redirect(url_for("hr_console.webhook_deliveries_page"), code=303)


# ---- a case's access revocation (权限验证) ----------------------------------------------------------------

CONFIRMATION_LABELS = {"pending": "未确认", "confirmed": "已确认回收", "failed": "回收失败"}
REVOCATION_LABELS = {"scheduled": "已安排", "sent": "已通知各系统", "cancelled": "已取消"}


@bp.get("/cases/<case_id>/access")
@login_required
def case_access_page(case_id: str):
    case = review_svc.get_hr_case(db(), g.reviewer, case_id)
    status = rv.case_access_status(db(), case)
    rows, _ = wh.list_deliveries(db(), g.reviewer.company_id, case_id=case.id, page_size=100)
    return _render("hr/case_access.html", case=case, last_day=rv.case_last_day(case), **status, deliveries=rows,
                   deadline_h=runtime().settings.revocation_confirm_deadline_s / 3600,
                   confirmation_labels=CONFIRMATION_LABELS, revocation_labels=REVOCATION_LABELS,
                   status_labels=STATUS_LABELS, event_labels=EVENT_LABELS)


@bp.post("/cases/<case_id>/access/revoke-now")
@login_required
def case_revoke_now(case_id: str):
    _writers_only()
    reason = request.form.get("reason", "").strip()
    if not reason:
        raise InvalidInput("reason_required", "请填写立即回收权限的原因")
    case = review_svc.get_hr_case(db(), g.reviewer, case_id, for_update=True)
    rv.revoke_access_now(db(), runtime(), case, actor=g.reviewer.actor, reason=reason)
    flash("已立即通知各系统回收权限并停发薪资")
    return redirect(url_for("hr_console.case_access_page", case_id=case_id), code=303)
