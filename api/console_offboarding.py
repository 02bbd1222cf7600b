"""HR console pages for offboarding: the templates editor, "my tasks", and a case's task board with the
complete action. Same session, CSRF and error handling as ``api.console`` (whose helpers it uses);
the pages call the same services as the API."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, g, redirect, request, url_for

from cases.departure import DEPARTURE_LABELS
from cases.errors import DomainError, Forbidden, InvalidInput
from cases.offboarding import (DAY_KIND_LABELS, GROUP_LABELS, MAX_ITEMS, OWNER_ROLE_LABELS, TASK_STATUS_LABELS,
                               DayKind, OwnerRole, TaskGroup)
from qianli.services import offboarding as svc
from qianli.services.hr_users import list_hr_users
from qianli.services.review import get_hr_case

from api.console import _domain_error, _headers, _render, _status_of, login_required
from api.context import db, runtime

__all__ = ["bp"]

bp = Blueprint("hr_offboarding", __name__, url_prefix="/hr")
bp.after_request(_headers)
bp.register_error_handler(DomainError, _domain_error)

BLANK_ROWS = 3


def _labels() -> dict[str, Any]:
    return {"group_labels": {g.value: label for g, label in GROUP_LABELS.items()},
            "owner_role_labels": {r.value: label for r, label in OWNER_ROLE_LABELS.items()},
            "day_kind_labels": {k.value: label for k, label in DAY_KIND_LABELS.items()},
            "status_labels": {s.value: label for s, label in TASK_STATUS_LABELS.items()},
            "departure_labels": DEPARTURE_LABELS}


# ---- my tasks and the case's board ------------------------------------------------------------------

@bp.get("/tasks")
@login_required
def my_tasks():
    status = request.args.get("status", "open")
    if status not in ("open", "done", "cancelled", "all"):
        status = "open"
    tasks = svc.list_my_tasks(db(), g.reviewer, status=None if status == "all" else status)
    return _render("hr/my_tasks.html", tasks=tasks, filter_status=status, **_labels())


@bp.get("/cases/<case_id>/tasks")
@login_required
def case_tasks(case_id: str):
    case = get_hr_case(db(), g.reviewer, case_id)
    from qianli.models import Employee

    employee = db().get(Employee, case.employee_id)
    tasks = svc.list_case_tasks(db(), g.reviewer, case_id)
    groups: list[tuple[str, list[dict[str, Any]]]] = []
    for group in TaskGroup:
        rows = [t for t in tasks if t["group"] == group.value]
        if rows:
            groups.append((group.value, rows))
    counts = {s: sum(1 for t in tasks if t["status"] == s) for s in ("open", "done", "cancelled")}
    return _render("hr/case_tasks.html", case=case, employee=employee, groups=groups, counts=counts,
                   overdue=sum(1 for t in tasks if t["overdue"]), **_labels())


def _back(default: str) -> str:
    target = request.form.get("next", "")
    if target.startswith("/hr/") and not target.startswith("//") and "\\" not in target:
        return target
    return default


@bp.post("/tasks/<task_id>/complete")
@login_required
def complete(task_id: str):
    note = request.form.get("note", "")
    if len(note) > svc.MAX_NOTE:
        raise InvalidInput("note_too_long", f"备注不能超过 {svc.MAX_NOTE} 个字")
    attachment = None
    f = request.files.get("attachment")
    if f is not None and f.filename:
        data = f.read(svc.MAX_ATTACHMENT_BYTES + 1)
        if data:
            attachment = svc.Attachment(data, f.filename)
    task = svc.complete_task(db(), runtime(), g.reviewer, task_id, note=note, attachment=attachment)
    flash(f"任务「{task['title']}」已完成")
    return redirect(_back(url_for("hr_offboarding.case_tasks", case_id=task["case_id"])), code=303)


# ---- templates ------------------------------------------------------------------------------------------

def _owner_options() -> list[tuple[str, str]]:
    options = [(f"role:{r.value}", f"角色：{OWNER_ROLE_LABELS[r]}") for r in OwnerRole]
    for u in list_hr_users(db(), g.reviewer.company_id):
        if u.active:
            options.append((f"user:{u.id}", f"指定人员：{u.display_name}（{u.username}）"))
    return options


def _template_render(departure_type: str, status: int = 200, *, rows: list[dict[str, Any]] | None = None,
                     error: str | None = None):
    templates = svc.list_templates(db(), g.reviewer.company_id)
    current = next((t for t in templates if t.departure_type == departure_type), templates[0])
    if rows is None:
        rows = [{**i, "owner": f"user:{i['owner_user_id']}" if i["owner_user_id"] else f"role:{i['owner_role']}"}
                for i in current.items_doc()]
    rows = rows + [{"key": "", "group": "", "title": "", "description": "", "owner": "role:hr", "offset": 0,
                    "day_kind": "working"} for _ in range(BLANK_ROWS)]
    return _render("hr/offboarding_templates.html", status, templates=templates, current=current, rows=rows,
                   owner_options=_owner_options(), groups=[g.value for g in TaskGroup],
                   day_kinds=[k.value for k in DayKind], can_edit=g.reviewer.role == "hr_manager", error=error,
                   **_labels())


@bp.get("/offboarding-templates")
@login_required
def templates():
    departure_type = request.args.get("type", "resignation")
    if departure_type not in svc.DEPARTURE_TYPES:
        departure_type = "resignation"
    return _template_render(departure_type)


def _form_rows() -> list[dict[str, Any]]:
    rows = []
    n = min(int(request.form.get("rows", "0") or 0), MAX_ITEMS + BLANK_ROWS)
    for i in range(n):
        def field(name: str, i: int = i) -> str:
            return request.form.get(f"{name}_{i}", "").strip()

        if field("delete") or not (field("key") or field("title")):
            continue
        offset_raw = field("offset") or "0"
        try:
            offset: Any = int(offset_raw)
        except ValueError:
            offset = offset_raw  # parse_template names the field
        owner = field("owner")
        kind, _, value = owner.partition(":")
        rows.append({"key": field("key"), "group": field("group"), "title": field("title"),
                     "description": field("description"), "owner": owner,
                     "owner_role": value if kind == "role" else None, "owner_user_id": value if kind == "user" else None,
                     "offset": offset, "day_kind": field("day_kind") or "working"})
    return rows


@bp.post("/offboarding-templates/<departure_type>")
@login_required
def save_template(departure_type: str):
    if g.reviewer.role != "hr_manager":
        raise Forbidden("role_forbidden", "只有人事经理可以修改交接模板", details={"role": g.reviewer.role})
    rows = _form_rows()
    items = [{k: r[k] for k in ("key", "group", "title", "description", "owner_role", "owner_user_id", "offset",
                                "day_kind")} for r in rows]
    for item in items:
        if item["owner_user_id"] is None:
            item.pop("owner_user_id")
        else:
            item.pop("owner_role")
    try:
        expected = int(request.form.get("expected_version", ""))
    except ValueError:
        expected = None
    try:
        saved = svc.update_template(db(), g.reviewer, departure_type, items, expected_version=expected,
                                    comment=request.form.get("comment", "")[:500])
    except DomainError as err:
        db().rollback()
        field = (err.details or {}).get("field")
        return _template_render(departure_type, _status_of(err), rows=rows,
                                error=f"{err.message}" + (f"（{field}）" if field and field not in err.message else ""))
    flash(f"模板已保存为第 {saved.version} 版；之后生成的任务使用该版本")
    return redirect(url_for("hr_offboarding.templates", type=departure_type), code=303)

