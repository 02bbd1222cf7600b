"""Roster import: HR's own spreadsheet (CSV or XLSX) into the employee table.

One entry point, :func:`import_roster`. The file is parsed (CSV as UTF-8 with or without BOM,
or GB18030/GBK as Excel in China saves it; XLSX read-only with bounded size), every row is
validated (required fields, dates, mainland mobile numbers, the GB 11643 ID checksum, duplicates
inside the file and against other employees, probation end after hire date), and then:

- with no bad rows, every row is applied (created or updated by employee number);
- with bad rows, nothing changes (:class:`RosterRejected`, carrying the report) unless
  ``good_rows_only`` is set, in which case the good rows are applied and the bad ones reported;
- ``dry_run`` validates and counts without writing.

Cell values are taken as text, never evaluated: a cell like ``=cmd|'/C calc'!A0`` is a string
(stored as such where the field accepts free text). Phone and national ID numbers go through
:func:`qianli.services.employees.set_personal_data` (encrypted, keyed hash).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cases.errors import DomainError, InvalidInput, PayloadTooLarge
from qianli.crypto import normalize_phone
from cases.states import ANY_OPEN_STATES
from qianli.models import Employee, ResignationCase
from qianli.runtime import Runtime
from qianli.services.faces import enrol_reference
from qianli.services.tabular import XLSX_MAX_COLUMNS, open_rows  # noqa: F401 - XLSX_MAX_COLUMNS re-exported
from qianli.services.employees import (PHONE_RE, create_employee, employee_national_id, employee_phone,
                                       set_personal_data)

__all__ = ["COLUMNS", "RowError", "RosterRow", "RosterReport", "RosterRejected", "parse_roster", "validate_rows",
           "import_roster", "parse_date", "valid_national_id"]

# Canonical field -> accepted header spellings (compared after stripping spaces, case-folded).
COLUMNS: dict[str, tuple[str, ...]] = {
    "employee_no": ("工号", "员工编号", "员工号", "employee_no", "employee number", "employee_number"),
    "name": ("姓名", "name"),
    "department": ("部门", "department"),
    "position": ("职位", "岗位", "position"),
    "hire_date": ("入职日期", "hire_date", "hire date"),
    "probation_end": ("试用期结束", "试用期结束日期", "试用期截止", "probation_end", "probation end"),
    "contract_term": ("合同期限", "contract_term", "contract term"),
    "phone": ("手机号", "手机号码", "手机", "phone", "mobile"),
    "national_id": ("身份证号", "身份证号码", "national_id", "national id"),
    "photo": ("照片", "photo"),
    "wecom_userid": ("企业微信账号", "企业微信ID", "企业微信userid", "wecom_userid", "wecom userid"),
}
REQUIRED = ("employee_no", "name", "phone", "hire_date")
MAX_LEN = {"employee_no": 64, "name": 100, "department": 100, "position": 100, "contract_term": 100, "photo": 200,
           "wecom_userid": 64}
WECOM_USERID_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")  # WeCom's userid alphabet
EMPLOYEE_NO_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
# Rows allowed above the data besides max_rows (a title, the header, blank lines).
ROWS_ABOVE_DATA = 10
MAX_REPORTED_ERRORS = 1000

FIELD_LABELS = {"employee_no": "工号", "name": "姓名", "department": "部门", "position": "职位", "hire_date": "入职日期",
                "probation_end": "试用期结束", "contract_term": "合同期限", "phone": "手机号", "national_id": "身份证号",
                "photo": "照片", "wecom_userid": "企业微信账号"}


@dataclass
class RowError:
    row: int  # 1-based row number in the file, the header being row 1
    code: str
    message: str
    field: str | None = None
    employee_no: str | None = None


@dataclass
class RosterRow:
    row: int
    employee_no: str
    name: str
    phone: str
    hire_date: date
    department: str = ""
    position: str = ""
    probation_end: date | None = None
    contract_term: str = ""
    national_id: str | None = None
    photo: str = ""
    wecom_userid: str | None = None  # None: the file does not say (an existing value is kept)


@dataclass
class RosterReport:
    format: str
    rows: int = 0
    valid_rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)
    error_rows: int = 0
    applied: bool = False
    dry_run: bool = False
    good_rows_only: bool = False
    photos: list[dict[str, Any]] = field(default_factory=list)
    created_numbers: list[str] = field(default_factory=list)
    updated_numbers: list[str] = field(default_factory=list)
    # Phone changes are identity events (qianli.services.identity_trust): announced to the old number,
    # usable for signing after the employee confirms or the cooling period ends.
    phone_changes: list[dict[str, Any]] = field(default_factory=list)
    # Valid rows, kept for the caller (e.g. the CLI enrolling photos); not part of the answer.
    valid: list[RosterRow] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("valid")
        d["error_count"] = self.error_rows
        d["errors"] = [asdict(e) for e in self.errors[:MAX_REPORTED_ERRORS]]
        d["errors_truncated"] = len(self.errors) > MAX_REPORTED_ERRORS
        return d


class RosterRejected(InvalidInput):
    """The file has bad rows and HR did not ask for the good rows only: nothing was changed."""

    def __init__(self, report: RosterReport):
        super().__init__("roster_has_errors", f"花名册有 {report.error_rows} 行错误，未导入任何数据",
                         details=report.as_dict())
        self.report = report


# ---- parsing -----------------------------------------------------------------------------------

def _header_key(h: Any) -> str:
    return re.sub(r"[\s\u3000*＊]+", "", str(h or "")).casefold()


_HEADER_INDEX = {_header_key(alias): canon for canon, aliases in COLUMNS.items() for alias in aliases}


def _map_header(header: list[Any]) -> dict[int, str]:
    mapping: dict[int, str] = {}
    seen: dict[str, int] = {}
    unknown = []
    for i, h in enumerate(header):
        key = _header_key(h)
        if not key:
            continue
        canon = _HEADER_INDEX.get(key)
        if canon is None:
            unknown.append(str(h))
            continue
        if canon in seen:
            raise InvalidInput("roster_duplicate_column", f"列“{h}”重复", details={"column": str(h)})
        seen[canon] = i
        mapping[i] = canon
    missing = [c for c in REQUIRED if c not in seen]
    if missing:
        raise InvalidInput("roster_missing_columns", "花名册缺少必需的列：" + "、".join(FIELD_LABELS[c] for c in missing),
                           details={"missing": missing, "unknown": unknown[:20],
                                    "accepted": {k: list(v) for k, v in COLUMNS.items()}})
    return mapping


def parse_roster(data: bytes, *, max_bytes: int, max_rows: int) -> tuple[str, list[tuple[int, dict[str, Any]]]]:
    """(format, [(row number, {field: raw value})]); blank rows skipped. Bounded in bytes and rows:
    at most ``max_rows`` data rows, and at most ``max_rows + ROWS_ABOVE_DATA`` rows in all, blank
    ones included."""
    fmt, rows_iter = open_rows(data, max_bytes=max_bytes, prefix="roster", noun="花名册")
    mapping: dict[int, str] | None = None
    out: list[tuple[int, dict[str, Any]]] = []
    for number, values in enumerate(rows_iter, start=1):
        blank = not any(v is not None and str(v).strip() for v in values)
        # every physical row counts, blank ones included (blank padding must not be free to read)
        if number > max_rows + ROWS_ABOVE_DATA or (not blank and mapping is not None and len(out) >= max_rows):
            raise PayloadTooLarge("roster_too_many_rows", f"花名册超过 {max_rows} 行",
                                  details={"max_rows": max_rows})
        if blank:
            continue
        if mapping is None:
            mapping = _map_header(values)
            continue
        out.append((number, {canon: values[i] if i < len(values) else None for i, canon in mapping.items()}))
    if mapping is None:
        raise InvalidInput("roster_empty", "花名册为空")
    return fmt, out


# ---- values ------------------------------------------------------------------------------------

_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y%m%d", "%Y年%m月%d日", "%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M:%S",
                 "%Y/%m/%d %H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S")
EXCEL_EPOCH = date(1899, 12, 30)


# The API's range for every date (api/schemas.py): outside it, date arithmetic overflows.
ROSTER_DATE_MIN = date(1900, 1, 1)
ROSTER_DATE_MAX = date(2100, 12, 31)


def parse_date(value: Any) -> date:
    """A date from an Excel date cell, an Excel serial number, or text in the common formats."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if 1 <= value < 2958466:  # Excel serial (1900 date system) up to 9999-12-31
            return EXCEL_EPOCH + timedelta(days=int(value))
        raise ValueError("not a date")
    text = str(value).strip().replace("／", "/").replace("－", "-")
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise ValueError("not a date")


_ID_WEIGHTS = [2 ** (17 - i) % 11 for i in range(17)]
_ID_CHECK = "10X98765432"


def valid_national_id(value: str) -> str | None:
    """None if valid (18 characters, a real birth date, GB 11643 mod 11-2 check digit), else the reason."""
    if len(value) != 18 or not value[:17].isdigit() or not (value[17].isdigit() or value[17] == "X"):
        return "身份证号应为18位（最后一位可为X）"
    try:
        born = datetime.strptime(value[6:14], "%Y%m%d").date()
    except ValueError:
        return "身份证号中的出生日期无效"
    if born.year < 1900 or born > date.today():
        return "身份证号中的出生日期无效"
    total = sum(int(d) * w for d, w in zip(value[:17], _ID_WEIGHTS, strict=False))
    if _ID_CHECK[total % 11] != value[17]:
        return "身份证号校验位错误"
    return None


def _text(value: Any) -> str:
    """Cell value as text: integral floats lose their '.0' (Excel numbers), nothing is evaluated."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat(sep=" ")
    return str(value).strip()


def _validate_row(number: int, raw: dict[str, Any]) -> tuple[RosterRow | None, list[RowError]]:
    errs: list[RowError] = []
    emp_no = _text(raw.get("employee_no"))

    def bad(fieldname: str, code: str, message: str) -> None:
        errs.append(RowError(number, code, f"{FIELD_LABELS[fieldname]}：{message}", fieldname, emp_no or None))

    values: dict[str, Any] = {}
    for f in ("employee_no", "name", "department", "position", "contract_term", "photo", "wecom_userid"):
        v = _text(raw.get(f))
        if any(ord(ch) < 32 and ch not in "\t" for ch in v):
            bad(f, "control_characters", "含有控制字符")
        if len(v) > MAX_LEN[f]:
            bad(f, "too_long", f"超过 {MAX_LEN[f]} 个字符")
        values[f] = v
    for f in REQUIRED:
        if raw.get(f) is None or not _text(raw.get(f)):
            bad(f, "required", "必填")
    if emp_no and not EMPLOYEE_NO_RE.match(emp_no):
        bad("employee_no", "invalid_employee_no", "只能包含字母、数字、点、下划线和连字符")
    if values["wecom_userid"] and not WECOM_USERID_RE.match(values["wecom_userid"]):
        bad("wecom_userid", "invalid_wecom_userid", "只能包含字母、数字和 _-@.（1-64 个字符）")
    values["wecom_userid"] = values["wecom_userid"] or None
    photo = values["photo"]
    if photo and (photo != photo.split("/")[-1].split("\\")[-1] or photo.startswith(".")):
        bad("photo", "invalid_photo_name", "只能是文件名，不能包含路径")

    phone = normalize_phone(_text(raw.get("phone")))
    if _text(raw.get("phone")) and not PHONE_RE.match(phone):
        bad("phone", "invalid_phone", "不是有效的中国大陆手机号")
    values["phone"] = phone

    nid = _text(raw.get("national_id")).replace(" ", "").upper()
    if nid:
        reason = valid_national_id(nid)
        if reason:
            bad("national_id", "invalid_national_id", reason)
    values["national_id"] = nid or None

    for f in ("hire_date", "probation_end"):
        v = raw.get(f)
        values[f] = None
        if v is None or not _text(v):
            continue
        try:
            values[f] = parse_date(v)
        except ValueError:
            bad(f, "invalid_date", f"无法识别的日期“{_text(v)[:40]}”（示例：2024-03-01）")
            continue
        if not ROSTER_DATE_MIN <= values[f] <= ROSTER_DATE_MAX:
            bad(f, "date_out_of_range", f"日期须在 {ROSTER_DATE_MIN.isoformat()} 至 {ROSTER_DATE_MAX.isoformat()} 之间")
            values[f] = None
    if values["hire_date"] and values["probation_end"] and values["probation_end"] <= values["hire_date"]:
        bad("probation_end", "probation_before_hire", "试用期结束日期必须晚于入职日期")
    if errs:
        return None, errs
    return RosterRow(row=number, **values), []


def validate_rows(rows: list[tuple[int, dict[str, Any]]]) -> tuple[list[RosterRow], list[RowError]]:
    """Per-row checks, then duplicates inside the file (employee number, phone, national ID)."""
    valid: list[RosterRow] = []
    errors: list[RowError] = []
    first_seen: dict[tuple[str, str], int] = {}
    for number, raw in rows:
        row, errs = _validate_row(number, raw)
        if row is not None:
            for key, label in (("employee_no", "工号"), ("phone", "手机号"), ("national_id", "身份证号"),
                               ("wecom_userid", "企业微信账号")):
                value = getattr(row, key)
                if not value:
                    continue
                seen = first_seen.setdefault((key, value), number)
                if seen != number:
                    errs.append(RowError(number, f"duplicate_{key}", f"{label}与第 {seen} 行重复", key, row.employee_no))
        if errs:
            errors.extend(errs)
        elif row is not None:
            valid.append(row)
    return valid, errors


# ---- applying ----------------------------------------------------------------------------------

def _differences(rt: Runtime, emp: Employee, row: RosterRow) -> tuple[dict[str, Any], bool, bool]:
    plain = {f: getattr(row, f) for f in ("name", "department", "position", "hire_date", "probation_end", "contract_term")}
    if row.wecom_userid is not None:
        plain["wecom_userid"] = row.wecom_userid
    changed = {f: v for f, v in plain.items() if getattr(emp, f) != v}
    phone_changed = employee_phone(rt, emp) != row.phone
    nid_changed = row.national_id is not None and employee_national_id(rt, emp) != row.national_id
    return changed, phone_changed, nid_changed


def import_roster(session: Session, rt: Runtime, *, company_id: str, data: bytes, good_rows_only: bool = False,
                  dry_run: bool = False, actor: str = "system:roster", source: str = "roster_import") -> RosterReport:
    """Validate and apply a roster file for one company. Raises RosterRejected (nothing written)
    when rows are bad and ``good_rows_only`` is not set. Flushes, never commits.

    A changed phone number is an identity change made by ``actor``: refused for an employee with a
    case in progress (row error ``phone_change_case_open``), otherwise recorded and announced (see
    qianli.services.identity_trust.change_phone)."""
    from qianli.services.identity_trust import change_phone

    open_case_employees = set(session.scalars(select(ResignationCase.employee_id).where(
        ResignationCase.company_id == company_id, ResignationCase.state.in_([st.value for st in ANY_OPEN_STATES]))))
    s = rt.settings
    fmt, raw_rows = parse_roster(data, max_bytes=s.roster_max_bytes, max_rows=s.roster_max_rows)
    valid, errors = validate_rows(raw_rows)
    report = RosterReport(format=fmt, rows=len(raw_rows), dry_run=dry_run, good_rows_only=good_rows_only)

    existing = {e.employee_no: e for e in session.scalars(select(Employee).where(Employee.company_id == company_id))}
    by_phone = {e.phone_hash: e.employee_no for e in existing.values()}
    by_nid = {e.national_id_hash: e.employee_no for e in existing.values() if e.national_id_hash}
    by_wecom = {e.wecom_userid: e.employee_no for e in existing.values() if e.wecom_userid}
    plan: list[tuple[RosterRow, Employee | None]] = []
    for row in valid:
        owner = by_phone.get(rt.lookup("phone", row.phone))
        if owner is not None and owner != row.employee_no:
            errors.append(RowError(row.row, "phone_taken", f"手机号：已属于员工 {owner}", "phone", row.employee_no))
            continue
        current = existing.get(row.employee_no)
        if current is not None and current.id in open_case_employees \
                and current.phone_hash != rt.lookup("phone", row.phone):
            errors.append(RowError(row.row, "phone_change_case_open",
                                   "手机号：该员工有进行中的离职申请，手机号是签署要素，办结前不能更改", "phone",
                                   row.employee_no))
            continue
        if row.national_id:
            owner = by_nid.get(rt.lookup("national_id", row.national_id))
            if owner is not None and owner != row.employee_no:
                errors.append(RowError(row.row, "national_id_taken", f"身份证号：已属于员工 {owner}", "national_id",
                                       row.employee_no))
                continue
        if row.wecom_userid:
            owner = by_wecom.get(row.wecom_userid)
            if owner is not None and owner != row.employee_no:
                errors.append(RowError(row.row, "wecom_userid_taken", f"企业微信账号：已属于员工 {owner}",
                                       "wecom_userid", row.employee_no))
                continue
        plan.append((row, existing.get(row.employee_no)))
    errors.sort(key=lambda e: (e.row, e.field or ""))
    report.errors = errors
    report.error_rows = len({e.row for e in errors})
    report.valid_rows = len(plan)
    report.valid = [row for row, _ in plan]
    if errors and not good_rows_only:
        raise RosterRejected(report)

    for row, emp in plan:
        if emp is None:
            report.created += 1
            report.created_numbers.append(row.employee_no)
            if not dry_run:
                created = create_employee(session, rt, company_id=company_id, employee_no=row.employee_no,
                                          name=row.name, phone=row.phone, national_id=row.national_id,
                                          department=row.department, position=row.position, hire_date=row.hire_date,
                                          probation_end=row.probation_end, contract_term=row.contract_term)
                created.wecom_userid = row.wecom_userid
            continue
        changed, phone_changed, nid_changed = _differences(rt, emp, row)
        if not (changed or phone_changed or nid_changed):
            report.unchanged += 1
            continue
        report.updated += 1
        report.updated_numbers.append(row.employee_no)
        if phone_changed:
            report.phone_changes.append({"employee_no": row.employee_no, "row": row.row})
        if not dry_run:
            for f, v in changed.items():
                setattr(emp, f, v)
            set_personal_data(rt, emp, national_id=row.national_id if nid_changed else None)
            if phone_changed:
                ch = change_phone(session, rt, emp, row.phone, actor=actor, source=source)
                if ch is not None:
                    report.phone_changes[-1].update(change_id=ch.id, usable_from=ch.usable_from.isoformat())
    if not dry_run:
        session.flush()
        report.applied = bool(report.created or report.updated)
    return report


# ---- reference photos --------------------------------------------------------------------------

def photos_not_enrolled(report: RosterReport, reason: str) -> None:
    """Mark every row's photo as not enrolled (e.g. over HTTP, where only the roster file comes)."""
    report.photos = [{"row": r.row, "employee_no": r.employee_no, "photo": r.photo, "status": "not_done",
                      "reason": reason} for r in report.valid if r.photo]


def enrol_photos(session: Session, rt: Runtime, report: RosterReport, photos_dir, *, company_id: str,
                 actor: str) -> None:
    """Enrol the reference face of each valid row that names a photo file inside ``photos_dir``."""
    from pathlib import Path

    rows = [r for r in report.valid if r.photo]
    root = Path(photos_dir).resolve()
    results = []
    for r in rows:
        result = {"row": r.row, "employee_no": r.employee_no, "photo": r.photo}
        path = (root / r.photo).resolve()
        if root not in path.parents or not path.is_file():
            results.append({**result, "status": "failed", "reason": "照片文件不存在"})
            continue
        if path.stat().st_size > rt.settings.max_request_bytes:
            results.append({**result, "status": "failed", "reason": "照片文件过大"})
            continue
        emp = session.scalar(select(Employee).where(Employee.company_id == company_id,
                                                    Employee.employee_no == r.employee_no))
        if emp is None:  # dry run: nothing was created
            results.append({**result, "status": "not_done", "reason": "dry run"})
            continue
        try:
            with session.begin_nested():
                enrol_reference(session, rt, emp, path.read_bytes(), actor=actor)
        except DomainError as exc:  # each photo's failure is reported, the rest go on
            results.append({**result, "status": "failed", "reason": f"{exc.code}: {exc.message}"})
            continue
        except Exception as exc:  # noqa: BLE001 - so is an unexpected one (a decoder crash)
            results.append({**result, "status": "failed", "reason": f"{type(exc).__name__}: {exc}"})
            continue
        results.append({**result, "status": "enrolled", "reason": None})
    report.photos = results
