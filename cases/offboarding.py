"""Offboarding: the handover checklist after a departure is settled, as pure rules.

A *template* (per company and departure type) lists items in groups (:class:`TaskGroup`: work
handover, assets, accounts and access, finance and social insurance). Each item has an owner - a
specific HR console user, or a role (:class:`OwnerRole`: IT, admin, finance, the employee's
department head, HR) - and a deadline relative to the employee's last day: ``offset`` days of
``day_kind`` (:class:`DayKind`): Chinese *working* days on the company calendar (holidays and
swapped working days, 调休, included), or *calendar* days where the law counts them so (Labor
Contract Law art. 50: the personnel file and social insurance are transferred within 15 days).

:func:`parse_template` validates a template document strictly (stable ``code`` per problem);
:func:`due_date` turns an item's offset into a date on a :class:`~cases.calendar.ChineseCalendar`.
:data:`DEFAULT_TEMPLATE` is what ships with the product. Standard library only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from enum import Enum
from typing import Any

from cases.calendar import ChineseCalendar
from cases.departure import DepartureType
from cases.errors import InvalidInput

__all__ = ["TaskGroup", "OwnerRole", "DayKind", "TaskStatus", "GROUP_LABELS", "OWNER_ROLE_LABELS", "DAY_KIND_LABELS",
           "TASK_STATUS_LABELS", "DUTY_ROLES", "TemplateItem", "DEFAULT_TEMPLATE", "DEFAULT_TEMPLATES", "parse_template", "due_date",
           "DueDate", "MAX_ITEMS", "MAX_TITLE", "MAX_DESCRIPTION", "MAX_OFFSET", "KEY_PATTERN", "item_doc"]

MAX_ITEMS = 60
MAX_TITLE = 100
MAX_DESCRIPTION = 1000
MAX_OFFSET = 60
KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,47}$")


class TaskGroup(str, Enum):
    WORK_HANDOVER = "work_handover"
    ASSETS = "assets"
    ACCOUNTS_ACCESS = "accounts_access"
    FINANCE_SOCIAL_INSURANCE = "finance_social_insurance"


GROUP_LABELS: dict[TaskGroup, str] = {
    TaskGroup.WORK_HANDOVER: "工作交接",
    TaskGroup.ASSETS: "资产归还",
    TaskGroup.ACCOUNTS_ACCESS: "账号与权限",
    TaskGroup.FINANCE_SOCIAL_INSURANCE: "财务与社保",
}


class OwnerRole(str, Enum):
    """Who owns a role-owned task: console users with the duty (IT, admin, finance: ``hr_users.task_roles``),
    the head of the employee's department (``dept_head`` users of that department), or HR
    (``hr_specialist`` and ``hr_manager`` users)."""

    IT = "it"
    ADMIN = "admin"
    FINANCE = "finance"
    DEPT_HEAD = "dept_head"
    HR = "hr"


OWNER_ROLE_LABELS: dict[OwnerRole, str] = {
    OwnerRole.IT: "IT", OwnerRole.ADMIN: "行政", OwnerRole.FINANCE: "财务", OwnerRole.DEPT_HEAD: "部门负责人",
    OwnerRole.HR: "人事",
}
DUTY_ROLES = (OwnerRole.IT, OwnerRole.ADMIN, OwnerRole.FINANCE)
"""Roles held as a duty by console users (``hr_users.task_roles``) rather than by their HR role."""


class DayKind(str, Enum):
    WORKING = "working"    # Chinese working days on the company calendar (调休 included)
    CALENDAR = "calendar"  # calendar days (where the law counts them so, e.g. art. 50's 15 days)


DAY_KIND_LABELS: dict[DayKind, str] = {DayKind.WORKING: "工作日", DayKind.CALENDAR: "自然日"}


class TaskStatus(str, Enum):
    OPEN = "open"
    DONE = "done"
    CANCELLED = "cancelled"


TASK_STATUS_LABELS: dict[TaskStatus, str] = {TaskStatus.OPEN: "待办", TaskStatus.DONE: "已完成",
                                             TaskStatus.CANCELLED: "已取消"}


@dataclass(frozen=True)
class TemplateItem:
    """One line of a template. ``offset``: days relative to the last day (negative: before it;
    0: the last day itself). ``owner_user_id`` set: a specific console user owns it, else ``owner_role``."""

    key: str
    group: TaskGroup
    title: str
    description: str
    owner_role: OwnerRole | None
    owner_user_id: str | None
    offset: int
    day_kind: DayKind

    def as_doc(self) -> dict[str, Any]:
        return item_doc(self)


def item_doc(item: TemplateItem) -> dict[str, Any]:
    return {"key": item.key, "group": item.group.value, "title": item.title, "description": item.description,
            "owner_role": item.owner_role.value if item.owner_role else None, "owner_user_id": item.owner_user_id,
            "offset": item.offset, "day_kind": item.day_kind.value}


def _item(key: str, group: TaskGroup, title: str, role: OwnerRole, offset: int, description: str = "",
          day_kind: DayKind = DayKind.WORKING) -> TemplateItem:
    return TemplateItem(key, group, title, description, role, None, offset, day_kind)


_G, _R = TaskGroup, OwnerRole

DEFAULT_TEMPLATE: tuple[TemplateItem, ...] = (
    _item("handover_work", _G.WORK_HANDOVER, "工作交接确认", _R.DEPT_HEAD, 0,
          "部门负责人确认在办工作、文档与客户/项目资料已交接给接收人。"),
    _item("handover_documents", _G.WORK_HANDOVER, "工作文件与资料归档", _R.DEPT_HEAD, -1,
          "员工经手的合同、文件、代码等资料已归档到部门共享位置。"),
    _item("return_equipment", _G.ASSETS, "收回电脑等办公设备", _R.IT, 0, "笔记本电脑、显示器、手机等 IT 设备。"),
    _item("return_badge", _G.ASSETS, "收回工牌、门禁卡与钥匙", _R.ADMIN, 0, "工牌、门禁卡、办公室与柜子钥匙、车位卡。"),
    _item("close_accounts", _G.ACCOUNTS_ACCESS, "关闭邮箱、OA 与业务系统账号", _R.IT, 0,
          "最后工作日下班后停用；确认各系统权限已收回（权限验证）。"),
    _item("revoke_door_access", _G.ACCOUNTS_ACCESS, "停用门禁权限", _R.ADMIN, 0),
    _item("final_pay", _G.FINANCE_SOCIAL_INSURANCE, "结清工资与费用报销、借款", _R.FINANCE, 5,
          "按劳动合同法第五十条，经济补偿（如有）在办结工作交接时支付。"),
    _item("stop_payroll", _G.FINANCE_SOCIAL_INSURANCE, "停止发薪（最后工作日次月起）", _R.FINANCE, 1),
    _item("transfer_file_social_insurance", _G.FINANCE_SOCIAL_INSURANCE, "办理档案和社会保险关系转移手续", _R.HR, 15,
          "劳动合同法第五十条：用人单位应当在解除或者终止劳动合同时出具证明，并在十五日内为劳动者办理档案和社会保险关系转移手续。",
          DayKind.CALENDAR),
)
"""What ships with the product (version 0 of every company's resignation template until HR edits it)."""

DEFAULT_TEMPLATES: dict[str, tuple[TemplateItem, ...]] = {
    DepartureType.RESIGNATION.value: DEFAULT_TEMPLATE,
    DepartureType.AGREEMENT.value: DEFAULT_TEMPLATE,
    # Leaving without notice: no handover from the employee can be confirmed; IT and admin act at once.
    DepartureType.ABSCONDING.value: tuple(i for i in DEFAULT_TEMPLATE if i.group != TaskGroup.WORK_HANDOVER) + (
        _item("handover_reassign", _G.WORK_HANDOVER, "重新分配在办工作", _R.DEPT_HEAD, 0,
              "员工未办理交接：部门负责人清点并重新分配其在办工作。"),),
}


def _bad(code: str, message: str, **details: Any) -> InvalidInput:
    return InvalidInput(code, message, details=details or None)


def _enum(cls: type[Enum], value: Any, where: str, code: str) -> Any:
    try:
        return cls(value)
    except ValueError:
        raise _bad(code, f"{where}: 取值无效", field=where, allowed=[m.value for m in cls]) from None


def _text(value: Any, where: str, max_len: int, *, required: bool) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()) or len(value) > max_len:
        raise _bad("invalid_template_item", f"{where}: 须为{'1-' if required else '至多 '}{max_len} 个字符",
                   field=where)
    return value.strip()


ITEM_FIELDS = frozenset({"key", "group", "title", "description", "owner_role", "owner_user_id", "offset", "day_kind"})


def parse_template(items: Any, *, known_user_ids: frozenset[str] | set[str] = frozenset()) -> tuple[TemplateItem, ...]:
    """Validate a template's items strictly; raises InvalidInput (422) with a stable code and the field.

    ``owner_user_id`` must name one of ``known_user_ids`` (the company's active console users)."""
    if not isinstance(items, list) or not items or len(items) > MAX_ITEMS:
        raise _bad("invalid_template", f"items 须为 1-{MAX_ITEMS} 项的列表", field="items")
    out: list[TemplateItem] = []
    seen: set[str] = set()
    for i, raw in enumerate(items):
        where = f"items[{i}]"
        if not isinstance(raw, dict):
            raise _bad("invalid_template_item", f"{where}: 须为对象", field=where)
        unknown = set(raw) - ITEM_FIELDS
        if unknown:
            raise _bad("invalid_template_item", f"{where}: 未知字段 {', '.join(sorted(unknown))}", field=where,
                       fields=sorted(unknown))
        key = raw.get("key")
        if not isinstance(key, str) or not KEY_PATTERN.match(key):
            raise _bad("invalid_template_item", f"{where}.key: 须为小写字母开头的 1-48 位 [a-z0-9_]", field=f"{where}.key")
        if key in seen:
            raise _bad("duplicate_template_key", f"{where}.key: 与前面的事项重复（{key}）", field=f"{where}.key", key=key)
        seen.add(key)
        group = _enum(TaskGroup, raw.get("group"), f"{where}.group", "invalid_task_group")
        title = _text(raw.get("title"), f"{where}.title", MAX_TITLE, required=True)
        description = _text(raw.get("description"), f"{where}.description", MAX_DESCRIPTION, required=False)
        role_raw, user_id = raw.get("owner_role"), raw.get("owner_user_id")
        if (role_raw is None) == (user_id is None):
            raise _bad("template_owner_required", f"{where}: 须指定负责人：owner_role（角色）或 owner_user_id（具体人员）二选一",
                       field=where)
        role = _enum(OwnerRole, role_raw, f"{where}.owner_role", "invalid_owner_role") if role_raw is not None else None
        if user_id is not None and (not isinstance(user_id, str) or user_id not in known_user_ids):
            raise _bad("template_owner_unknown", f"{where}.owner_user_id: 不是本公司在用的账号", field=f"{where}.owner_user_id")
        offset = raw.get("offset")
        if not isinstance(offset, int) or isinstance(offset, bool) or not -MAX_OFFSET <= offset <= MAX_OFFSET:
            raise _bad("invalid_template_offset", f"{where}.offset: 须为 {-MAX_OFFSET} 到 {MAX_OFFSET} 之间的整数",
                       field=f"{where}.offset", min=-MAX_OFFSET, max=MAX_OFFSET)
        day_kind = _enum(DayKind, raw.get("day_kind", DayKind.WORKING.value), f"{where}.day_kind", "invalid_day_kind")
        out.append(TemplateItem(key, group, title, description, role, user_id, offset, day_kind))
    return tuple(out)


@dataclass(frozen=True)
class DueDate:
    date: date
    provisional: bool  # relied on a day whose holiday arrangement is not yet published


def due_date(calendar: ChineseCalendar, last_day: date, offset: int, day_kind: DayKind) -> DueDate:
    """The deadline ``offset`` days from ``last_day``. Working days: the n-th working day after
    (offset > 0) or before (offset < 0) the last day on the company calendar; 0 is the last day.
    Calendar days: plain date arithmetic (a deadline falling on a rest day stays there, as the law counts)."""
    if day_kind == DayKind.CALENDAR or offset == 0:
        return DueDate(last_day + timedelta(days=offset), False)
    if offset > 0:
        r = calendar.add_working_days(last_day, offset)
        return DueDate(r.date, r.provisional)
    d, counted, provisional = last_day, 0, False
    while counted < -offset:
        d -= timedelta(days=1)
        provisional |= not calendar.is_known(d)
        if calendar.is_working_day(d):
            counted += 1
    return DueDate(d, provisional)
