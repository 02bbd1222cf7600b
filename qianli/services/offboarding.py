"""Offboarding: templates per company and departure type, and the handover tasks of a settled case.

* Templates (``cases.offboarding``): the product's default is version 0; each HR edit
  (:func:`update_template`, HR managers) stores a new version, never changing an old one, and the
  tasks record the version that made them.
* :func:`start_offboarding` (final approval of a resignation; h16b calls it for a dismissal with
  ``immediate=True``) turns the current template plus the employee's own handover items into
  tasks with owners and due dates on the company's working-day calendar. Idempotent: a case that
  has tasks keeps them.
* :func:`complete_task` (the owner, or HR on their behalf) records who, when, a note and an
  optional attachment (document store); :func:`cancel_offboarding` (a consented withdrawal)
  cancels the open tasks with a reason. Tasks are never deleted; every step is in the case's
  evidence chain (``offboarding`` view of the dossier).
* Reads: :func:`list_case_tasks` (HR, department-scoped like every case read), :func:`list_my_tasks`
  (the console user's own tasks: assigned to them, or to a role they hold), :func:`employee_tasks`
  (the mini-program: title, group, status and due date only).

Reminders and escalation are in ``qianli.services.offboarding_reminders``. Services never commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, false, func, or_, select
from sqlalchemy.orm import Session

from cases.clock import beijing_date, beijing_today
from cases.departure import DepartureType
from cases.errors import Conflict, Forbidden, InvalidInput, NotFound, PayloadTooLarge, UnsupportedMediaType
from cases.evidence_kinds import EvidenceKind
from cases.offboarding import (DEFAULT_TEMPLATES, DUTY_ROLES, GROUP_LABELS, OWNER_ROLE_LABELS, TASK_STATUS_LABELS,
                               DayKind, OwnerRole, TaskGroup, TaskStatus, TemplateItem, due_date, item_doc,
                               parse_template)
from qianli.db import on_commit, utcnow
from qianli.models import Document, Employee, HrUser, OffboardingTask, OffboardingTemplate, ResignationCase
from qianli.runtime import Runtime
from qianli.services.cases import company_calendar, get_employee_case
from qianli.services.evidence import append_evidence
from qianli.services.review import HR_WRITERS, Reviewer, get_hr_case, sees_employee
from qianli.storage import store_document

__all__ = ["DEPARTURE_TYPES", "TemplateView", "list_templates", "current_template", "update_template",
           "start_offboarding", "cancel_offboarding", "open_tasks", "list_case_tasks", "list_my_tasks",
           "complete_task", "employee_tasks", "task_view", "is_owner", "task_recipients", "Attachment",
           "ATTACHMENT_TYPES", "MAX_ATTACHMENT_BYTES", "MAX_NOTE", "ACTOR", "case_last_day",
           "owner_label", "count_open_tasks", "case_departure_type"]

ACTOR = "system:offboarding"
DEPARTURE_TYPES = tuple(t.value for t in DepartureType)
MAX_NOTE = 1000
MAX_COMMENT = 500
MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024
ATTACHMENT_TYPES = {"application/pdf": (b"%PDF-", "pdf"), "image/png": (b"\x89PNG\r\n\x1a\n", "png"),
                    "image/jpeg": (b"\xff\xd8\xff", "jpg")}
_GROUP_ORDER = {g.value: i for i, g in enumerate(TaskGroup)}


def case_departure_type(case: ResignationCase) -> str:
    return DepartureType(case.departure_type or DepartureType.RESIGNATION.value).value


# ---- templates ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TemplateView:
    departure_type: str
    version: int
    items: tuple[TemplateItem, ...]
    is_default: bool
    updated_at: datetime | None
    updated_by: str | None
    comment: str

    def items_doc(self) -> list[dict[str, Any]]:
        return [item_doc(i) for i in self.items]


def _check_departure_type(departure_type: str) -> str:
    if departure_type not in DEPARTURE_TYPES:
        raise NotFound("departure_type_not_found", "未知的离职类型", details={"allowed": list(DEPARTURE_TYPES)})
    return departure_type


def current_template(session: Session, company_id: str, departure_type: str) -> TemplateView:
    row = session.scalar(select(OffboardingTemplate).where(
        OffboardingTemplate.company_id == company_id, OffboardingTemplate.departure_type == departure_type)
        .order_by(OffboardingTemplate.version.desc()).limit(1))
    if row is None:
        return TemplateView(departure_type, 0, DEFAULT_TEMPLATES[departure_type], True, None, None, "")
    # Stored items were validated when written; users named there may have left since (resolved at use).
    items = parse_template(row.items, known_user_ids={i["owner_user_id"] for i in row.items if i.get("owner_user_id")})
    return TemplateView(departure_type, row.version, items, False, row.created_at, row.created_by, row.comment)


def list_templates(session: Session, company_id: str) -> list[TemplateView]:
    return [current_template(session, company_id, t) for t in DEPARTURE_TYPES]


def _active_user_ids(session: Session, company_id: str) -> set[str]:
    return set(session.scalars(select(HrUser.id).where(HrUser.company_id == company_id, HrUser.active.is_(True))))


def update_template(session: Session, reviewer: Reviewer, departure_type: str, items: Any, *,
                    expected_version: int | None = None, comment: str = "") -> TemplateView:
    """Store a new version of the company's template (HR managers). ``expected_version`` guards against
    overwriting an edit made meanwhile (409 template_version_conflict)."""
    if reviewer.role != "hr_manager":
        raise Forbidden("role_forbidden", "requires role: hr_manager", details={"role": reviewer.role})
    _check_departure_type(departure_type)
    comment = (comment or "").strip()
    if len(comment) > MAX_COMMENT:
        raise InvalidInput("comment_too_long", f"修改说明不能超过 {MAX_COMMENT} 个字")
    parsed = parse_template(items, known_user_ids=_active_user_ids(session, reviewer.company_id))
    current = current_template(session, reviewer.company_id, departure_type)
    if expected_version is not None and expected_version != current.version:
        raise Conflict("template_version_conflict", "模板已被他人修改，请刷新后重试",
                       details={"current_version": current.version})
    row = OffboardingTemplate(company_id=reviewer.company_id, departure_type=departure_type,
                              version=current.version + 1, items=[item_doc(i) for i in parsed], comment=comment,
                              created_by=reviewer.actor)
    session.add(row)
    session.flush()
    return TemplateView(departure_type, row.version, parsed, False, row.created_at, row.created_by, row.comment)


# ---- generating the tasks -------------------------------------------------------------------------------

def case_last_day(case: ResignationCase) -> date:
    return case.agreed_last_day or case.requested_last_day or case.earliest_lawful_last_day


def _employee_items(case: ResignationCase, last_day: date) -> list[tuple[str, TemplateItem, date | None]]:
    """The employee's own handover items (the form): work handover confirmed by the department head."""
    out = []
    for i, raw in enumerate(case.handover_items or []):
        title = str(raw.get("item") or "").strip()[:200]
        if not title:
            continue
        receiver = str(raw.get("owner") or "").strip()
        deadline = raw.get("deadline")
        try:
            day = date.fromisoformat(deadline) if isinstance(deadline, str) and deadline else None
        except ValueError:
            day = None
        # "employee:<n>" cannot clash with a template key ([a-z][a-z0-9_]*).
        item = TemplateItem(f"employee:{i + 1}", TaskGroup.WORK_HANDOVER, title,
                            f"员工填写的交接事项；接收人：{receiver}" if receiver else "员工填写的交接事项",
                            OwnerRole.DEPT_HEAD, None, 0, DayKind.WORKING)
        out.append((item.key, item, day))
    return out


def start_offboarding(session: Session, rt: Runtime, case: ResignationCase, *, actor: str,
                      immediate: bool = False) -> list[OffboardingTask]:
    """Turn the company's current template and the employee's handover items into the case's tasks.

    Idempotent: a case that already has tasks gets them back unchanged. ``immediate``: the
    relationship ends now (a dismissal), deadlines count from today instead of the last day."""
    existing = list(session.scalars(select(OffboardingTask).where(OffboardingTask.case_id == case.id)
                                    .order_by(OffboardingTask.created_at)))
    if existing:
        return existing
    departure_type = case_departure_type(case)
    template = current_template(session, case.company_id, departure_type)
    employee = session.get(Employee, case.employee_id)
    last_day = beijing_today() if immediate else case_last_day(case)
    calendar = company_calendar(session, case.company_id)
    active = _active_user_ids(session, case.company_id)
    tasks: list[OffboardingTask] = []

    def add(key: str, source: str, item: TemplateItem, fixed: date | None) -> None:
        owner_user = item.owner_user_id if item.owner_user_id in active else None
        role = item.owner_role or (None if owner_user else OwnerRole.HR)  # a named user who left: HR owns it
        if fixed is not None:
            due, provisional, offset, kind = fixed, False, (fixed - last_day).days, DayKind.CALENDAR
        else:
            d = due_date(calendar, last_day, item.offset, item.day_kind)
            due, provisional, offset, kind = d.date, d.provisional, item.offset, item.day_kind
        task = OffboardingTask(
            company_id=case.company_id, case_id=case.id, employee_id=case.employee_id, item_key=key, source=source,
            departure_type=departure_type, template_version=template.version, group=item.group.value,
            title=item.title, description=item.description, owner_role=role.value if role else None,
            owner_user_id=owner_user,
            owner_department=employee.department if role == OwnerRole.DEPT_HEAD else None,
            last_day=last_day, offset_days=offset, day_kind=kind.value, due_date=due, due_provisional=provisional,
            status=TaskStatus.OPEN.value, note="", created_by=actor)
        session.add(task)
        tasks.append(task)

    for item in template.items:
        add(item.key, "template", item, None)
    for key, item, fixed in _employee_items(case, last_day):
        add(key, "employee", item, fixed)
    session.flush()
    append_evidence(session, case, actor, EvidenceKind.OFFBOARDING_STARTED, {
        "departure_type": departure_type, "template_version": template.version,
        "template_default": template.is_default, "last_day": last_day.isoformat(), "immediate": immediate,
        "tasks": [{"task_id": t.id, "key": t.item_key, "source": t.source, "group": t.group, "title": t.title,
                   "owner_role": t.owner_role, "owner_user_id": t.owner_user_id,
                   "owner_department": t.owner_department, "due_date": t.due_date.isoformat(),
                   "due_provisional": t.due_provisional, "offset": t.offset_days, "day_kind": t.day_kind}
                  for t in tasks]})
    from qianli.services.offboarding_reminders import enqueue_case_reminders

    case_id = case.id
    on_commit(session, lambda: enqueue_case_reminders(rt, case_id))
    return tasks


def open_tasks(session: Session, case_id: str) -> list[OffboardingTask]:
    """The case's tasks not yet done (nor cancelled), by due date (what a closing record lists)."""
    return list(session.scalars(select(OffboardingTask).where(
        OffboardingTask.case_id == case_id, OffboardingTask.status == TaskStatus.OPEN.value)
        .order_by(OffboardingTask.due_date, OffboardingTask.item_key)))


def cancel_offboarding(session: Session, case: ResignationCase, *, actor: str, reason: str) -> list[OffboardingTask]:
    """Cancel the case's open tasks, visibly: status ``cancelled`` with who, when and why, and one
    evidence entry listing them. Done tasks stay done; nothing is deleted."""
    reason = (reason or "").strip()[:MAX_COMMENT] or "离职申请已撤回"
    now = utcnow()
    cancelled = open_tasks(session, case.id)
    for t in cancelled:
        t.status, t.cancelled_at, t.cancelled_by, t.cancel_reason = TaskStatus.CANCELLED.value, now, actor, reason
    session.flush()
    if cancelled:
        append_evidence(session, case, actor, EvidenceKind.TASKS_CANCELLED, {
            "reason": reason, "tasks": [{"task_id": t.id, "key": t.item_key, "title": t.title} for t in cancelled]},
            occurred_at=now)
    return cancelled


# ---- who owns what --------------------------------------------------------------------------------------

def _user(session: Session, reviewer: Reviewer) -> HrUser:
    return session.get(HrUser, reviewer.id)


def _duties(user: HrUser) -> list[str]:
    return [r for r in (user.task_roles or []) if r in {d.value for d in DUTY_ROLES}]


def _mine_condition(user: HrUser):
    conds = [OffboardingTask.owner_user_id == user.id]
    if user.role in HR_WRITERS:
        conds.append(and_(OffboardingTask.owner_user_id.is_(None), OffboardingTask.owner_role == OwnerRole.HR.value))
    if user.role == "dept_head" and user.department:
        conds.append(and_(OffboardingTask.owner_user_id.is_(None),
                          OffboardingTask.owner_role == OwnerRole.DEPT_HEAD.value,
                          OffboardingTask.owner_department == user.department))
    duties = _duties(user)
    if duties:
        conds.append(and_(OffboardingTask.owner_user_id.is_(None), OffboardingTask.owner_role.in_(duties)))
    return or_(*conds) if conds else false()


def is_owner(user: HrUser, task: OffboardingTask) -> bool:
    if task.owner_user_id is not None:
        return task.owner_user_id == user.id
    role = task.owner_role
    if role == OwnerRole.HR.value:
        return user.role in HR_WRITERS
    if role == OwnerRole.DEPT_HEAD.value:
        return user.role == "dept_head" and bool(user.department) and user.department == task.owner_department
    return role in _duties(user)


def task_recipients(session: Session, task: OffboardingTask, users: list[HrUser] | None = None) -> list[HrUser]:
    """The active console users a reminder about ``task`` goes to (its owner, or the role's members).
    ``users``: the company's active users, when the caller already has them."""
    if users is None:
        users = list(session.scalars(select(HrUser).where(HrUser.company_id == task.company_id,
                                                          HrUser.active.is_(True)).order_by(HrUser.username)))
    owners = [u for u in users if is_owner(u, task)]
    if task.owner_role == OwnerRole.HR.value and task.owner_user_id is None:
        specialists = [u for u in owners if u.role == "hr_specialist"]
        owners = specialists or owners  # HR tasks go to the specialists; managers when there is none
    return owners


# ---- reading --------------------------------------------------------------------------------------------

def owner_label(session: Session, task: OffboardingTask) -> str:
    if task.owner_user_id:
        user = session.get(HrUser, task.owner_user_id)
        return user.display_name if user is not None else task.owner_user_id
    label = OWNER_ROLE_LABELS.get(OwnerRole(task.owner_role), task.owner_role or "")
    if task.owner_role == OwnerRole.DEPT_HEAD.value and task.owner_department:
        return f"{label}（{task.owner_department}）"
    return label


def _overdue(task: OffboardingTask, today: date) -> bool:
    return task.status == TaskStatus.OPEN.value and task.due_date < today


def task_view(session: Session, task: OffboardingTask, *, user: HrUser | None = None,
              today: date | None = None) -> dict[str, Any]:
    today = today or beijing_today()
    doc = session.get(Document, task.document_id) if task.document_id else None
    return {
        "id": task.id, "case_id": task.case_id, "employee_id": task.employee_id, "key": task.item_key,
        "source": task.source, "departure_type": task.departure_type, "template_version": task.template_version,
        "group": task.group, "group_label": GROUP_LABELS[TaskGroup(task.group)], "title": task.title,
        "description": task.description, "owner_role": task.owner_role, "owner_user_id": task.owner_user_id,
        "owner_department": task.owner_department, "owner_label": owner_label(session, task),
        "last_day": task.last_day, "offset": task.offset_days, "day_kind": task.day_kind,
        "due_date": task.due_date, "due_provisional": task.due_provisional, "status": task.status,
        "status_label": TASK_STATUS_LABELS[TaskStatus(task.status)], "overdue": _overdue(task, today),
        "completed_at": task.completed_at, "completed_by": task.completed_by,
        "completed_by_name": task.completed_by_name, "note": task.note,
        "attachment": ({"document_id": doc.id, "filename": doc.filename, "content_type": doc.content_type,
                        "size": doc.size, "sha256": doc.sha256} if doc is not None else None),
        "cancelled_at": task.cancelled_at, "cancelled_by": task.cancelled_by, "cancel_reason": task.cancel_reason,
        "escalated_at": task.escalated_at, "created_at": task.created_at,
        "can_complete": bool(user is not None and task.status == TaskStatus.OPEN.value
                             and (user.role in HR_WRITERS or is_owner(user, task))),
    }


def _sorted(tasks: list[OffboardingTask]) -> list[OffboardingTask]:
    return sorted(tasks, key=lambda t: (_GROUP_ORDER.get(t.group, 99), t.due_date, t.item_key))


def list_case_tasks(session: Session, reviewer: Reviewer, case_id: str) -> list[dict[str, Any]]:
    """A case's tasks for HR (404 for a case this reviewer may not see, as every case read)."""
    case = get_hr_case(session, reviewer, case_id)
    user = _user(session, reviewer)
    tasks = list(session.scalars(select(OffboardingTask).where(OffboardingTask.case_id == case.id)))
    today = beijing_today()
    return [task_view(session, t, user=user, today=today) for t in _sorted(tasks)]


def list_my_tasks(session: Session, reviewer: Reviewer, *, status: str | None = "open",
                  limit: int = 200) -> list[dict[str, Any]]:
    """The console user's tasks: assigned to them by name, or to a role they hold (HR; the head of the
    employee's department; IT/admin/finance duties). Overdue first, then by due date."""
    user = _user(session, reviewer)
    conds = [OffboardingTask.company_id == reviewer.company_id, _mine_condition(user)]
    if status:
        conds.append(OffboardingTask.status == status)
    rows = session.execute(
        select(OffboardingTask, Employee).join(Employee, Employee.id == OffboardingTask.employee_id)
        .where(*conds).order_by(OffboardingTask.due_date, OffboardingTask.case_id, OffboardingTask.item_key)
        .limit(limit)).all()
    today = beijing_today()
    out = []
    for task, emp in rows:
        v = task_view(session, task, user=user, today=today)
        v["employee"] = {"id": emp.id, "name": emp.name, "employee_no": emp.employee_no,
                         "department": emp.department}
        out.append(v)
    return out


# ---- completing -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Attachment:
    data: bytes
    filename: str


def _check_attachment(att: Attachment) -> tuple[str, str]:
    if len(att.data) > MAX_ATTACHMENT_BYTES:
        raise PayloadTooLarge("attachment_too_large", f"附件不能超过 {MAX_ATTACHMENT_BYTES // (1024 * 1024)} MB")
    for ctype, (magic, ext) in ATTACHMENT_TYPES.items():
        if att.data.startswith(magic):
            return ctype, ext
    raise UnsupportedMediaType("attachment_type", "附件须为 PDF、PNG 或 JPEG 文件",
                               details={"accepted": list(ATTACHMENT_TYPES)})


def complete_task(session: Session, rt: Runtime, reviewer: Reviewer, task_id: str, *, note: str = "",
                  attachment: Attachment | None = None) -> dict[str, Any]:
    """Mark a task done: its owner, or HR (hr_specialist, hr_manager) on the owner's behalf (recorded as such)."""
    note = (note or "").strip()
    if len(note) > MAX_NOTE:
        raise InvalidInput("note_too_long", f"备注不能超过 {MAX_NOTE} 个字")
    user = _user(session, reviewer)
    task = session.scalar(select(OffboardingTask).where(OffboardingTask.id == task_id,
                                                        OffboardingTask.company_id == reviewer.company_id)
                          .with_for_update())
    if task is None:
        raise NotFound("task_not_found", "找不到该交接任务")
    owner = is_owner(user, task)
    employee = session.get(Employee, task.employee_id)
    if not owner and not (reviewer.role in HR_WRITERS and sees_employee(reviewer, employee)):
        if sees_employee(reviewer, employee):
            raise Forbidden("task_not_owner", "只有任务负责人或人事可以完成该任务")
        raise NotFound("task_not_found", "找不到该交接任务")
    case = session.scalar(select(ResignationCase).where(ResignationCase.id == task.case_id).with_for_update())
    if task.status != TaskStatus.OPEN.value:
        raise Conflict("task_not_open", "该任务已完成或已取消", details={"status": task.status})
    doc = None
    if attachment is not None:
        ctype, ext = _check_attachment(attachment)
        doc = store_document(session, rt.store, company_id=task.company_id, case_id=task.case_id,
                             employee_id=task.employee_id, kind="task_attachment",
                             filename=f"task-{task.item_key}.{ext}", content_type=ctype, data=attachment.data,
                             created_by=reviewer.actor,
                             meta={"task_id": task.id, "original_filename": attachment.filename[:200]})
    now = utcnow()
    task.status, task.completed_at, task.completed_by = TaskStatus.DONE.value, now, reviewer.actor
    task.completed_by_name, task.note, task.document_id = reviewer.display_name, note, doc.id if doc else None
    session.flush()
    append_evidence(session, case, reviewer.actor, EvidenceKind.TASK_COMPLETED, {
        "task_id": task.id, "key": task.item_key, "group": task.group, "title": task.title,
        "owner_role": task.owner_role, "owner_user_id": task.owner_user_id, "completed_by_name": reviewer.display_name,
        "completed_by_role": reviewer.role, "on_behalf_of_owner": not owner, "note": note,
        "due_date": task.due_date.isoformat(), "on_time": beijing_date(now) <= task.due_date,
        "attachment": ({"document_id": doc.id, "sha256": doc.sha256, "filename": doc.filename,
                        "content_type": doc.content_type, "size": doc.size} if doc is not None else None)},
        occurred_at=now)
    return task_view(session, task, user=user)


# ---- the employee's view --------------------------------------------------------------------------------

def employee_tasks(session: Session, *, employee_id: str, company_id: str, case_id: str) -> list[dict[str, Any]]:
    """What the employee sees of their handover: title, group, status, due date, when done - no notes,
    owners or attachments of the other parties."""
    case = get_employee_case(session, case_id, employee_id=employee_id, company_id=company_id)
    tasks = _sorted(list(session.scalars(select(OffboardingTask).where(OffboardingTask.case_id == case.id))))
    today = beijing_today()
    return [{"id": t.id, "group": t.group, "group_label": GROUP_LABELS[TaskGroup(t.group)], "title": t.title,
             "status": t.status, "status_label": TASK_STATUS_LABELS[TaskStatus(t.status)], "due_date": t.due_date,
             "overdue": _overdue(t, today),
             "completed_on": beijing_date(t.completed_at) if t.completed_at else None} for t in tasks]


def count_open_tasks(session: Session, case_id: str) -> int:
    return int(session.scalar(select(func.count()).select_from(OffboardingTask).where(
        OffboardingTask.case_id == case_id, OffboardingTask.status == TaskStatus.OPEN.value)) or 0)

