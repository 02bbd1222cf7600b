"""Attendance import: clock-in records and approved leave from the files HR already has.

One entry point, :func:`import_attendance`. The file (CSV in UTF-8, UTF-8 with BOM or GBK, or XLSX;
:mod:`qianli.services.tabular` reads it with the roster's limits) is one of two kinds, told apart by
its header (or named by ``kind``):

- **clock-in** files: WeCom (企业微信) 打卡日报 / 打卡记录, DingTalk (钉钉) 每日统计 / 打卡明细, and the
  raw punch logs of common time clocks (ZKTeco-style 考勤号码 + 日期时间). One row per employee and
  day (with the first / last clock-in times or a result such as 正常 / 未打卡 / 旷工), or one row per
  punch (aggregated per day). A result that says the day was approved leave or a business trip
  (请假, 年假, 出差, 外出 ...) records that day as leave.
- **leave** files: 请假类型, 开始时间, 结束时间 and, when present, 审批状态 (rows not approved are
  skipped and counted; without the column every row is taken as approved, which the report says).

Employees are matched by 工号 (employee number); a file without that column is matched by 姓名 when
the name is unique in the company (and 部门 when given). Headers are found in the first rows (the
title rows of the exports are skipped) and mapped by aliases (:data:`CLOCK_COLUMNS`, :data:`LEAVE_COLUMNS`).
Cell values are text, never evaluated.

Safety as the roster: size and row limits, every row validated, and then all or nothing (422
``attendance_has_errors`` with every row's problem, nothing written) unless ``good_rows_only``;
``dry_run`` validates and reports (with a preview) without writing. Re-importing the same records
changes nothing: one record per employee and day (merged: present wins, earliest and latest times),
one leave per employee, type and period. The file itself is stored (document kind
``attendance_import``) and each record names its import and the file's SHA-256: the evidence an
absconding case later relies on.

Coverage: a clock-in file speaks for the days from its first to its last date. By default
(``coverage="company"``) for every employee of the company (the exports of WeCom and DingTalk list
the whole company); ``coverage="file"`` limits it to the employees in the file. The early warning
makes no claim about days no source covers.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from cases.clock import SHANGHAI, beijing_today
from cases.errors import InvalidInput, PayloadTooLarge
from qianli.db import new_id
from qianli.models import (AttendanceCoverage, AttendanceImport, AttendanceLeave, AttendanceRecord, Employee)
from qianli.runtime import Runtime
from qianli.services.roster import parse_date
from qianli.storage import store_document
from qianli.services.tabular import open_rows

__all__ = ["CLOCK_COLUMNS", "LEAVE_COLUMNS", "AttendanceReport", "AttendanceRejected", "AttendanceRowError",
           "import_attendance", "record_coverage", "DayPunches", "apply_day_records", "IMPORT_KINDS", "COVERAGES"]

IMPORT_KINDS = ("auto", "clock", "leave")
COVERAGES = ("company", "file")
PREFIX = "attendance"
NOUN = "考勤文件"
HEADER_SEARCH_ROWS = 10  # rows above the header (export titles, statistics period) that are skipped
MAX_REPORTED_ERRORS = 1000
PREVIEW_ROWS = 20
EARLIEST_DAY = date(2000, 1, 1)

# Canonical field -> header spellings (compared without spaces, case-folded). WeCom, DingTalk and
# time clocks name the same thing differently; numbered columns (上班1打卡时间) are the first shift's.
_COMMON: dict[str, tuple[str, ...]] = {
    "employee_no": ("工号", "员工工号", "员工编号", "员工号", "人员编号", "考勤号码", "考勤号", "登记号码", "employee_no",
                    "employee number", "employeeno", "empno"),
    "name": ("姓名", "员工姓名", "人员姓名", "name"),
    "department": ("部门", "所属部门", "department"),
}
CLOCK_COLUMNS: dict[str, tuple[str, ...]] = {
    **_COMMON,
    "day": ("日期", "考勤日期", "打卡日期", "工作日期", "date", "day"),
    "punch": ("打卡时间", "日期时间", "考勤时间", "刷卡时间", "签到时间点", "时间", "checkin_time", "punch_time", "datetime"),
    "clock_in": ("上班打卡时间", "上班1打卡时间", "上班时间", "签到时间", "最早", "最早打卡", "最早打卡时间", "首次打卡",
                 "首次打卡时间", "clock_in", "clock in"),
    "clock_out": ("下班打卡时间", "下班1打卡时间", "下班时间", "签退时间", "最晚", "最晚打卡", "最晚打卡时间", "末次打卡",
                  "末次打卡时间", "clock_out", "clock out"),
    "result": ("打卡结果", "上班1打卡结果", "上班打卡结果", "打卡状态", "考勤结果", "考勤概况", "考勤状态", "状态", "result",
               "status"),
    "count": ("打卡次数", "punches"),
}
LEAVE_COLUMNS: dict[str, tuple[str, ...]] = {
    **_COMMON,
    "leave_type": ("请假类型", "假期类型", "假别", "休假类型", "leave_type", "leave type"),
    "start": ("开始时间", "请假开始时间", "开始日期", "start", "start_time", "starts_at"),
    "end": ("结束时间", "请假结束时间", "结束日期", "end", "end_time", "ends_at"),
    "status": ("审批状态", "审批结果", "状态", "approval_status", "status"),
}
FIELD_LABELS = {"employee_no": "工号", "name": "姓名", "department": "部门", "day": "日期", "punch": "打卡时间",
                "clock_in": "上班打卡时间", "clock_out": "下班打卡时间", "result": "打卡结果", "count": "打卡次数",
                "leave_type": "请假类型", "start": "开始时间", "end": "结束时间", "status": "审批状态"}

_APPROVED = ("已通过", "通过", "审批通过", "同意", "已同意", "已批准", "批准", "完成", "已完成", "approved", "agree")
_NOT_APPROVED = ("审批中", "待审批", "已拒绝", "拒绝", "驳回", "已驳回", "已撤销", "撤销", "撤回", "已撤回", "已取消",
                 "取消", "rejected", "pending", "cancelled", "canceled")
# A day's result that means approved absence (WeCom / DingTalk show these only for approved requests).
_EXCUSED_RE = re.compile(r"请假|年假|事假|病假|婚假|产假|陪产假|丧假|调休假|出差|外出|公出|哺乳假|育儿假")
_ABSENT_RE = re.compile(r"未打卡|缺卡|旷工|无打卡|没有打卡|absent|missing")
_WEEKDAY_SUFFIX = re.compile(r"\s*(星期|周|礼拜)[一二三四五六日天]\s*$")
_NO_TIME = {"", "-", "--", "—", "无", "未打卡", "缺卡", "null", "none"}


@dataclass
class AttendanceRowError:
    row: int
    code: str
    message: str
    field: str | None = None
    employee_no: str | None = None


@dataclass
class AttendanceReport:
    format: str
    kind: str
    coverage: str
    rows: int = 0
    valid_rows: int = 0
    error_rows: int = 0
    errors: list[AttendanceRowError] = field(default_factory=list)
    skipped_rows: int = 0  # leave rows not approved
    skipped: list[dict[str, Any]] = field(default_factory=list)
    leave_assumed_approved: bool = False
    employees: int = 0
    first_day: date | None = None
    last_day: date | None = None
    records_created: int = 0
    records_updated: int = 0
    records_unchanged: int = 0
    leaves_created: int = 0
    leaves_unchanged: int = 0
    applied: bool = False
    dry_run: bool = False
    good_rows_only: bool = False
    import_id: str | None = None
    sha256: str = ""
    previous_import_id: str | None = None
    preview: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["error_count"] = self.error_rows
        d["errors"] = [asdict(e) for e in self.errors[:MAX_REPORTED_ERRORS]]
        d["errors_truncated"] = len(self.errors) > MAX_REPORTED_ERRORS
        d["skipped"] = self.skipped[:MAX_REPORTED_ERRORS]
        for k in ("first_day", "last_day"):
            d[k] = d[k].isoformat() if d[k] else None
        return d


class AttendanceRejected(InvalidInput):
    """Bad rows and HR did not ask for the good rows only: nothing was written."""

    def __init__(self, report: AttendanceReport):
        super().__init__("attendance_has_errors", f"考勤文件有 {report.error_rows} 行错误，未导入任何数据",
                         details=report.as_dict())
        self.report = report


# ---- parsing -------------------------------------------------------------------------------------

def _key(h: Any) -> str:
    return re.sub(r"[\s\u3000*＊:：()（）]+", "", str(h or "")).casefold()


def _index(columns: dict[str, tuple[str, ...]]) -> dict[str, str]:
    return {_key(a): canon for canon, aliases in columns.items() for a in aliases}


_CLOCK_INDEX = _index(CLOCK_COLUMNS)
_LEAVE_INDEX = _index(LEAVE_COLUMNS)


def _map(values: list[Any], index: dict[str, str]) -> dict[str, int]:
    """canonical field -> column; the first column of a field wins (numbered shifts: the first)."""
    out: dict[str, int] = {}
    for i, h in enumerate(values):
        canon = index.get(_key(h))
        if canon is not None and canon not in out:
            out[canon] = i
    return out


def _header_kind(values: list[Any], want: str) -> tuple[str, dict[str, int]] | None:
    """(kind, mapping) when the row is a usable header of the wanted kind."""
    has_person = lambda m: "employee_no" in m or "name" in m  # noqa: E731
    if want in ("auto", "leave"):
        m = _map(values, _LEAVE_INDEX)
        if has_person(m) and "start" in m and "end" in m and ("leave_type" in m or want == "leave"):
            return "leave", m
    if want in ("auto", "clock"):
        m = _map(values, _CLOCK_INDEX)
        if has_person(m) and ("day" in m or "punch" in m):
            return "clock", m
    return None


def _missing_columns(kind: str) -> InvalidInput:
    need = ("工号或姓名、请假类型、开始时间、结束时间" if kind == "leave" else
            "工号或姓名、日期（或打卡时间）" if kind == "clock" else
            "打卡文件：工号或姓名、日期（或打卡时间）；请假文件：工号或姓名、请假类型、开始时间、结束时间")
    return InvalidInput("attendance_missing_columns", f"找不到表头，考勤文件须包含：{need}",
                        details={"accepted": {"clock": {k: list(v) for k, v in CLOCK_COLUMNS.items()},
                                              "leave": {k: list(v) for k, v in LEAVE_COLUMNS.items()}}})


def _parse(data: bytes, *, max_bytes: int, max_rows: int, kind: str) -> tuple[str, str, list[tuple[int, dict[str, Any]]]]:
    fmt, rows_iter = open_rows(data, max_bytes=max_bytes, prefix=PREFIX, noun=NOUN)
    mapping: dict[str, int] | None = None
    found = kind
    seen_rows = False
    out: list[tuple[int, dict[str, Any]]] = []
    for number, values in enumerate(rows_iter, start=1):
        blank = not any(v is not None and str(v).strip() for v in values)
        if number > max_rows + HEADER_SEARCH_ROWS or (not blank and mapping is not None and len(out) >= max_rows):
            raise PayloadTooLarge("attendance_too_many_rows", f"考勤文件超过 {max_rows} 行", details={"max_rows": max_rows})
        if blank:
            continue
        seen_rows = True
        if mapping is None:
            hit = _header_kind(values, kind)
            if hit is None:
                if number >= HEADER_SEARCH_ROWS:
                    raise _missing_columns(kind)
                continue
            found, mapping = hit
            continue
        out.append((number, {canon: values[i] if i < len(values) else None for canon, i in mapping.items()}))
    if mapping is None:
        raise _missing_columns(kind) if seen_rows else InvalidInput("attendance_empty", "考勤文件为空")
    return fmt, found, out


# ---- values --------------------------------------------------------------------------------------

def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    return str(value).strip()


def _day(value: Any) -> date:
    if isinstance(value, (datetime, date)) or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return parse_date(value)
    text = _WEEKDAY_SUFFIX.sub("", _text(value))
    return parse_date(text)


_TIME_RE = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")


def _clock_times(value: Any, day: date | None) -> list[datetime]:
    """Times in a cell, as aware Asia/Shanghai datetimes: "09:01", "09:01:30", "2025-10-09 09:01",
    an Excel time (fraction of a day) or datetime, several separated by commas / spaces / newlines.
    Raises ValueError for text that is not a time (and not one of the "no time" words)."""
    if value is None:
        return []
    if isinstance(value, datetime):
        return [value.replace(tzinfo=SHANGHAI) if value.tzinfo is None else value]
    if isinstance(value, time):
        if day is None:
            raise ValueError("time without a date")
        return [datetime.combine(day, value, SHANGHAI)]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if day is None or not 0 <= value < 1:
            raise ValueError("not a time")
        seconds = round(float(value) * 86400)
        return [datetime.combine(day, time.min, SHANGHAI) + timedelta(seconds=seconds)]
    text = _text(value)
    if text.casefold() in _NO_TIME:
        return []
    out: list[datetime] = []
    tokens = [t for t in re.split(r"[,，;；\n\r]+", text) if t.strip()]
    for token in tokens:
        token = token.strip()
        if token.casefold() in _NO_TIME:
            continue
        token = re.sub(r"\s*[(（].*?[)）]\s*$", "", token)  # "09:01（外勤）"
        m = _TIME_RE.match(token)
        if m:
            if day is None:
                raise ValueError("time without a date")
            h, mi, se = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
            if h > 23 or mi > 59 or se > 59:
                raise ValueError("not a time")
            out.append(datetime.combine(day, time(h, mi, se), SHANGHAI))
            continue
        # a full date and time
        parts = token.replace("T", " ").split()
        if len(parts) >= 2 and _TIME_RE.match(parts[-1]):
            d = _day(" ".join(parts[:-1]))
            out.extend(_clock_times(parts[-1], d))
            continue
        raise ValueError("not a time")
    return out


_HALF_DAY = re.compile(r"\s*(上午|下午|AM|PM)\s*$", re.IGNORECASE)


def _leave_bound(value: Any, *, start: bool) -> datetime:
    """A leave's start or end: a date and time, or a date (the whole day), or a date with 上午/下午
    (DingTalk's half days: the morning ends and the afternoon starts at 12:00)."""
    if isinstance(value, datetime) or (isinstance(value, str) and _TIME_RE.search(value.strip().split()[-1]
                                                                                     if value.strip() else "")):
        got = _clock_times(value, None)
        if len(got) == 1:
            return got[0]
        raise ValueError("not one time")
    text = _text(value) if not isinstance(value, (date, int, float)) else value
    half = None
    if isinstance(text, str):
        m = _HALF_DAY.search(text)
        if m:
            half, text = m.group(1).upper(), text[:m.start()]
    d = _day(text)
    if half in ("上午", "AM"):
        return datetime.combine(d, time.min if start else time(12, 0), SHANGHAI)
    if half in ("下午", "PM"):
        return datetime.combine(d, time(12, 0) if start else time(23, 59, 59), SHANGHAI)
    return datetime.combine(d, time.min if start else time(23, 59, 59), SHANGHAI)


@dataclass
class _Row:
    row: int
    employee_id: str
    employee_no: str
    day: date | None = None
    punches: list[datetime] = field(default_factory=list)
    result: str = ""
    present: bool = False
    excused: str = ""  # a result meaning approved leave / a trip that day
    leave_type: str = ""
    starts_at: datetime | None = None
    ends_at: datetime | None = None


def _match_employees(session: Session, company_id: str) -> tuple[dict[str, Employee], dict[str, list[Employee]]]:
    emps = list(session.scalars(select(Employee).where(Employee.company_id == company_id)))
    by_name: dict[str, list[Employee]] = defaultdict(list)
    for e in emps:
        by_name[e.name.strip()].append(e)
    return {e.employee_no: e for e in emps}, by_name


def _validate(rows: list[tuple[int, dict[str, Any]]], kind: str, employees: dict[str, Employee],
              by_name: dict[str, list[Employee]], today: date) -> tuple[list[_Row], list[AttendanceRowError],
                                                                      list[dict[str, Any]], bool]:
    valid: list[_Row] = []
    errors: list[AttendanceRowError] = []
    skipped: list[dict[str, Any]] = []
    assumed = False
    latest = today + timedelta(days=1)
    for number, raw in rows:
        emp_no = _text(raw.get("employee_no"))
        name = _text(raw.get("name"))
        errs: list[AttendanceRowError] = []

        def bad(f: str, code: str, message: str, errs: list[AttendanceRowError] = errs, number: int = number,
                emp_no: str = emp_no) -> None:
            errs.append(AttendanceRowError(number, code, f"{FIELD_LABELS[f]}：{message}", f, emp_no or None))

        for f, v in raw.items():
            t = _text(v)
            if len(t) > 200:
                bad(f, "too_long", "超过 200 个字符")
            elif any(ord(ch) < 32 and ch not in "\t\r\n" for ch in t):
                bad(f, "control_characters", "含有控制字符")
        emp: Employee | None = None
        if "employee_no" in raw and emp_no:
            emp = employees.get(emp_no)
            if emp is None:
                bad("employee_no", "employee_not_found", f"花名册中没有工号 {emp_no[:64]}")
        elif name:
            candidates = by_name.get(name, [])
            dept = _text(raw.get("department"))
            if dept and len(candidates) > 1:
                candidates = [e for e in candidates if e.department == dept]
            if not candidates:
                bad("name", "employee_not_found", f"花名册中没有员工“{name[:40]}”")
            elif len(candidates) > 1:
                bad("name", "ambiguous_name", f"花名册中有多名员工叫“{name[:40]}”，请在文件中加入工号列")
            else:
                emp = candidates[0]
        else:
            bad("employee_no" if "employee_no" in raw else "name", "required", "必填")
        r = _Row(number, emp.id if emp else "", emp.employee_no if emp else emp_no)

        if kind == "clock":
            r.result = _text(raw.get("result"))[:100]
            day_raw = raw.get("day")
            if day_raw is not None and _text(day_raw):
                try:
                    r.day = _day(day_raw)
                except ValueError:
                    bad("day", "invalid_date", f"无法识别的日期“{_text(day_raw)[:40]}”（示例：2025-10-09）")
            for f in ("punch", "clock_in", "clock_out"):
                v = raw.get(f)
                if v is None or not _text(v):
                    continue
                try:
                    got = _clock_times(v, r.day)
                except ValueError:
                    bad(f, "invalid_time", f"无法识别的时间“{_text(v)[:40]}”（示例：09:01 或 2025-10-09 09:01）")
                    continue
                if f == "punch" and got and r.day is None:
                    r.day = got[0].astimezone(SHANGHAI).date()
                r.punches.extend(got)
            if r.day is None and not any(e.field == "day" for e in errs):
                bad("day", "required", "必填（或在打卡时间中给出日期）")
            count = _text(raw.get("count"))
            if count and not count.isdigit():
                bad("count", "invalid_number", "须为非负整数")
            if r.day is not None and not EARLIEST_DAY <= r.day <= latest:
                bad("day", "date_out_of_range", f"日期须在 {EARLIEST_DAY.isoformat()} 至 {latest.isoformat()} 之间")
            r.present = bool(r.punches) or (count.isdigit() and int(count) > 0)
            excused = _EXCUSED_RE.search(r.result) if not r.present and r.result else None
            if excused is not None:
                r.excused = excused.group(0)
        else:
            r.leave_type = _text(raw.get("leave_type"))[:50] or "请假"
            status = _text(raw.get("status"))
            if "status" not in raw:
                assumed = True
            elif not status:
                bad("status", "required", "必填")
            elif status.casefold() in _NOT_APPROVED or any(w in status for w in ("拒绝", "撤销", "驳回", "审批中", "撤回")):
                skipped.append({"row": number, "employee_no": r.employee_no, "status": status[:40]})
                continue
            elif status.casefold() not in _APPROVED and not any(w in status for w in ("通过", "同意", "批准")):
                bad("status", "unknown_status", f"无法识别的审批状态“{status[:40]}”（示例：已通过、审批中、已拒绝）")
            for f in ("start", "end"):
                v = raw.get(f)
                if v is None or not _text(v):
                    bad(f, "required", "必填")
                    continue
                try:
                    setattr(r, "starts_at" if f == "start" else "ends_at", _leave_bound(v, start=f == "start"))
                except ValueError:
                    bad(f, "invalid_datetime", f"无法识别的时间“{_text(v)[:40]}”（示例：2025-10-09 09:00）")
            if r.starts_at and r.ends_at:
                if r.ends_at < r.starts_at:
                    bad("end", "end_before_start", "结束时间早于开始时间")
                elif (r.ends_at - r.starts_at).days > 366:
                    bad("end", "leave_too_long", "请假期间超过一年")
                elif not EARLIEST_DAY <= r.starts_at.date() <= date(2100, 12, 31) or r.ends_at.date() > date(2100, 12, 31):
                    bad("start", "date_out_of_range", "日期超出范围")
        if errs:
            errors.extend(errs)
        else:
            valid.append(r)
    return valid, errors, skipped, assumed


# ---- applying ------------------------------------------------------------------------------------

@dataclass
class DayPunches:
    """What one source says about one employee's day."""

    employee_id: str
    day: date
    present: bool
    first: datetime | None
    last: datetime | None
    result: str
    row: int | None


def _aggregate(rows: Iterable[_Row]) -> list[DayPunches]:
    by: dict[tuple[str, date], list[_Row]] = defaultdict(list)
    for r in rows:
        assert r.day is not None
        by[(r.employee_id, r.day)].append(r)
    out = []
    for (emp_id, day), rs in sorted(by.items()):
        punches = sorted(p for r in rs for p in r.punches)
        present = any(r.present for r in rs)
        results = "；".join(dict.fromkeys(r.result for r in rs if r.result))[:100]
        out.append(DayPunches(emp_id, day, present, punches[0] if punches else None,
                              punches[-1] if punches else None, results, rs[0].row))
    return out


def _utc(t: datetime | None) -> datetime | None:
    from datetime import timezone

    return t.astimezone(timezone.utc) if t is not None else None


def apply_day_records(session: Session, *, company_id: str, days: list[DayPunches], imp: AttendanceImport,
                      dry_run: bool = False) -> tuple[int, int, int]:
    """Merge per-day facts into attendance_records: (created, updated, unchanged). A clock-in is never
    taken away by a later source (present wins; the earliest first and the latest last time)."""
    if not days:
        return 0, 0, 0
    emp_ids = sorted({d.employee_id for d in days})
    lo, hi = min(d.day for d in days), max(d.day for d in days)
    existing: dict[tuple[str, date], AttendanceRecord] = {}
    for i in range(0, len(emp_ids), 500):
        for rec in session.scalars(select(AttendanceRecord).where(
                AttendanceRecord.company_id == company_id, AttendanceRecord.employee_id.in_(emp_ids[i:i + 500]),
                AttendanceRecord.day >= lo, AttendanceRecord.day <= hi)):
            existing[(rec.employee_id, rec.day)] = rec
    created = updated = unchanged = 0
    for d in days:
        first, last = _utc(d.first), _utc(d.last)
        rec = existing.get((d.employee_id, d.day))
        if rec is None:
            created += 1
            if not dry_run:
                session.add(AttendanceRecord(company_id=company_id, employee_id=d.employee_id, day=d.day,
                                             present=d.present, first_clock_at=first, last_clock_at=last,
                                             result=d.result, source=imp.source, import_id=imp.id,
                                             source_sha256=imp.sha256, source_row=d.row))
            continue
        new_first = min([t for t in (rec.first_clock_at, first) if t is not None], default=None)
        new_last = max([t for t in (rec.last_clock_at, last) if t is not None], default=None)
        new_present = rec.present or d.present
        result = rec.result if rec.present and not d.present else (d.result or rec.result)
        if (new_first, new_last, new_present, result) == (rec.first_clock_at, rec.last_clock_at, rec.present,
                                                            rec.result):
            unchanged += 1
            continue
        updated += 1
        if not dry_run:
            rec.first_clock_at, rec.last_clock_at, rec.present, rec.result = new_first, new_last, new_present, result
            rec.source, rec.import_id, rec.source_sha256, rec.source_row = imp.source, imp.id, imp.sha256, d.row
    return created, updated, unchanged


def record_coverage(session: Session, *, company_id: str, employee_ids: Iterable[str | None], first: date, last: date,
                    import_id: str) -> None:
    """Mark [first, last] covered for each scope (None: the whole company), merging with an overlapping
    or adjacent range of the same scope."""
    for emp_id in employee_ids:
        scope = AttendanceCoverage.employee_id.is_(None) if emp_id is None else AttendanceCoverage.employee_id == emp_id
        near = list(session.scalars(select(AttendanceCoverage).where(
            AttendanceCoverage.company_id == company_id, scope,
            AttendanceCoverage.first_day <= last + timedelta(days=1),
            AttendanceCoverage.last_day >= first - timedelta(days=1))))
        if not near:
            session.add(AttendanceCoverage(company_id=company_id, employee_id=emp_id, first_day=first, last_day=last,
                                           import_id=import_id))
            continue
        keep = near[0]
        keep.first_day = min([first, *(c.first_day for c in near)])
        keep.last_day = max([last, *(c.last_day for c in near)])
        keep.import_id = import_id
        for other in near[1:]:
            session.delete(other)
    session.flush()


def _apply_leaves(session: Session, *, company_id: str, leaves: list[_Row], imp: AttendanceImport,
                  dry_run: bool) -> tuple[int, int]:
    if not leaves:
        return 0, 0
    emp_ids = sorted({r.employee_id for r in leaves})
    have = set()
    for i in range(0, len(emp_ids), 500):
        for lv in session.scalars(select(AttendanceLeave).where(AttendanceLeave.company_id == company_id,
                                                                AttendanceLeave.employee_id.in_(emp_ids[i:i + 500]))):
            have.add((lv.employee_id, lv.leave_type, _utc(lv.starts_at), _utc(lv.ends_at)))
    created = unchanged = 0
    for r in leaves:
        assert r.starts_at is not None and r.ends_at is not None
        k = (r.employee_id, r.leave_type, _utc(r.starts_at), _utc(r.ends_at))
        if k in have:
            unchanged += 1
            continue
        have.add(k)
        created += 1
        if not dry_run:
            session.add(AttendanceLeave(company_id=company_id, employee_id=r.employee_id, leave_type=r.leave_type,
                                        starts_at=_utc(r.starts_at), ends_at=_utc(r.ends_at),
                                        first_day=r.starts_at.astimezone(SHANGHAI).date(),
                                        last_day=r.ends_at.astimezone(SHANGHAI).date(), source=imp.source,
                                        import_id=imp.id, source_sha256=imp.sha256, source_row=r.row))
    return created, unchanged


def _preview(kind: str, rows: list[_Row]) -> list[dict[str, Any]]:
    out = []
    for r in rows[:PREVIEW_ROWS]:
        if kind == "clock":
            out.append({"row": r.row, "employee_no": r.employee_no, "day": r.day.isoformat() if r.day else None,
                        "present": r.present, "times": [p.astimezone(SHANGHAI).strftime("%H:%M") for p in sorted(r.punches)],
                        "result": r.result, "leave": r.excused or None})
        else:
            out.append({"row": r.row, "employee_no": r.employee_no, "leave_type": r.leave_type,
                        "start": r.starts_at.astimezone(SHANGHAI).isoformat() if r.starts_at else None,
                        "end": r.ends_at.astimezone(SHANGHAI).isoformat() if r.ends_at else None})
    return out


def import_attendance(session: Session, rt: Runtime, *, company_id: str, data: bytes, filename: str = "",
                      kind: str = "auto", coverage: str = "company", good_rows_only: bool = False,
                      dry_run: bool = False, actor: str = "system:attendance") -> AttendanceReport:
    """Validate and apply one attendance file. Raises :class:`AttendanceRejected` (nothing written)
    when rows are bad and ``good_rows_only`` is not set. Flushes, never commits."""
    if kind not in IMPORT_KINDS:
        raise InvalidInput("validation_failed", "kind 须为 auto、clock 或 leave", details={"kind": kind})
    if coverage not in COVERAGES:
        raise InvalidInput("validation_failed", "coverage 须为 company 或 file", details={"coverage": coverage})
    s = rt.settings
    fmt, found, raw_rows = _parse(data, max_bytes=s.attendance_max_bytes, max_rows=s.attendance_max_rows, kind=kind)
    employees, by_name = _match_employees(session, company_id)
    valid, errors, skipped, assumed = _validate(raw_rows, found, employees, by_name, beijing_today())
    digest = hashlib.sha256(data).hexdigest()
    report = AttendanceReport(format=fmt, kind=found, coverage=coverage, rows=len(raw_rows), dry_run=dry_run,
                              good_rows_only=good_rows_only, sha256=digest, skipped=skipped,
                              skipped_rows=len(skipped), leave_assumed_approved=assumed and found == "leave")
    errors.sort(key=lambda e: (e.row, e.field or ""))
    report.errors, report.error_rows = errors, len({e.row for e in errors})
    report.valid_rows = len(valid)
    report.preview = _preview(found, valid)
    report.employees = len({r.employee_id for r in valid})
    report.previous_import_id = session.scalar(select(AttendanceImport.id).where(
        AttendanceImport.company_id == company_id, AttendanceImport.sha256 == digest)
        .order_by(AttendanceImport.created_at.desc()).limit(1))
    if errors and not good_rows_only:
        raise AttendanceRejected(report)
    if not valid:
        raise InvalidInput("attendance_no_rows", "考勤文件中没有可导入的记录", details=report.as_dict())

    if found == "clock":
        clock_days = list(valid)
        report.first_day = min(r.day for r in clock_days if r.day)
        report.last_day = max(r.day for r in clock_days if r.day)
        leave_rows = [_Row(r.row, r.employee_id, r.employee_no, leave_type=r.excused,
                           starts_at=datetime.combine(r.day, time.min, SHANGHAI),
                           ends_at=datetime.combine(r.day, time(23, 59, 59), SHANGHAI))
                      for r in valid if r.excused and r.day]
    else:
        clock_days, leave_rows = [], valid
        report.first_day = min(r.starts_at.astimezone(SHANGHAI).date() for r in valid if r.starts_at)
        report.last_day = max(r.ends_at.astimezone(SHANGHAI).date() for r in valid if r.ends_at)

    imp = AttendanceImport(id=new_id(), company_id=company_id, source="file", filename=filename[:200], format=fmt,
                           sha256=digest, size=len(data), actor=actor,
                           first_day=report.first_day if found == "clock" else None,
                           last_day=report.last_day if found == "clock" else None)
    if not dry_run:
        doc = store_document(session, rt.store, company_id=company_id, kind="attendance_import",
                             filename=(filename or f"attendance.{fmt}")[:200],
                             content_type="text/csv" if fmt == "csv" else
                             "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                             data=data, created_by=actor, meta={"kind": found})
        imp.document_id = doc.id
        session.add(imp)
        session.flush()
    report.records_created, report.records_updated, report.records_unchanged = apply_day_records(
        session, company_id=company_id, days=_aggregate(clock_days), imp=imp, dry_run=dry_run)
    report.leaves_created, report.leaves_unchanged = _apply_leaves(session, company_id=company_id, leaves=leave_rows,
                                                                   imp=imp, dry_run=dry_run)
    if not dry_run:
        if found == "clock" and report.first_day and report.last_day:
            scopes: list[str | None] = [None] if coverage == "company" else sorted({r.employee_id for r in valid})
            record_coverage(session, company_id=company_id, employee_ids=scopes, first=report.first_day,
                            last=report.last_day, import_id=imp.id)
        report.import_id = imp.id
        imp.summary = {k: v for k, v in report.as_dict().items()
                       if k in ("kind", "coverage", "rows", "valid_rows", "error_count", "skipped_rows", "employees",
                                "records_created", "records_updated", "records_unchanged", "leaves_created",
                                "leaves_unchanged", "leave_assumed_approved", "good_rows_only")}
        session.flush()
        report.applied = True
    return report


def leave_days(session: Session, company_id: str, employee_ids: list[str], first: date, last: date) -> dict[str, set[date]]:
    """employee -> the days in [first, last] approved leave touches."""
    out: dict[str, set[date]] = defaultdict(set)
    q = select(AttendanceLeave.employee_id, AttendanceLeave.first_day, AttendanceLeave.last_day).where(
        AttendanceLeave.company_id == company_id, AttendanceLeave.first_day <= last, AttendanceLeave.last_day >= first)
    if len(employee_ids) < 500:
        q = q.where(AttendanceLeave.employee_id.in_(employee_ids))
    for emp_id, lo, hi in session.execute(q):
        d = max(lo, first)
        while d <= min(hi, last):
            out[emp_id].add(d)
            d += timedelta(days=1)
    return out


def coverage_ranges(session: Session, company_id: str, first: date, last: date) -> dict[str | None, list[tuple[date, date]]]:
    out: dict[str | None, list[tuple[date, date]]] = defaultdict(list)
    for emp_id, lo, hi in session.execute(select(AttendanceCoverage.employee_id, AttendanceCoverage.first_day,
                                                 AttendanceCoverage.last_day).where(
            AttendanceCoverage.company_id == company_id, AttendanceCoverage.first_day <= last,
            AttendanceCoverage.last_day >= first)):
        out[emp_id].append((lo, hi))
    return out

