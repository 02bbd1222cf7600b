"""The year's holiday schedule in one step: validate it against the law, store it, recompute open cases.

When the State Council publishes next year's arrangement (国务院办公厅关于部分节假日安排的通知),
the operator (for all companies, ``qianli calendar import``) or a company's HR manager (for
that company, ``importHolidaySchedule``) enters it once as a structured document::

    {"year": 2027, "source": "国务院办公厅关于2027年部分节假日安排的通知（国办发明电〔2026〕…号）",
     "holidays": [{"name": "元旦", "first": "2027-01-01", "last": "2027-01-03"}, ...],
     "workdays": [{"name": "春节", "date": "2027-02-20"}, ...]}

It is refused when it contradicts the law: a statutory holiday outside every holiday block or
made a working day, a swapped working day that is not a Saturday or Sunday, blocks that overlap.
Every open case whose dates were provisional is then recomputed with the new calendar; a change
is recorded in the case's evidence chain (``dates_recomputed``), and when the letter due date or
the earliest last day moves, the employee is notified (SMS / subscribe message) and HR gets an
alert.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cases.calendar import ChineseCalendar, DayKind, Schedule
from cases.errors import InvalidInput
from cases.evidence import canonical_json
from cases.evidence_kinds import EvidenceKind
from cases.holidays_data import SCHEDULES
from cases.states import OPEN_STATES
from cases.statutory import FIRST_YEAR, LAST_YEAR, statutory_count, statutory_days
from qianli import config_cache
from qianli.models import Company, Employee, HolidayOverride, HolidaySchedule, ResignationCase
from qianli.services.evidence import append_evidence

__all__ = ["ParsedSchedule", "ImportResult", "parse_schedule", "company_calendar", "import_schedule",
           "list_schedules", "MAX_BLOCKS", "statutory_preview"]

MAX_BLOCKS = 40
MAX_NAME = 40
MAX_SOURCE = 300


@dataclass(frozen=True)
class ParsedSchedule:
    year: int
    source: str
    holidays: list[tuple[str, str, str]]
    workdays: list[tuple[str, str]]
    warnings: list[str]

    @property
    def schedule(self) -> Schedule:
        return (self.holidays, self.workdays)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(canonical_json({"year": self.year, "holidays": self.holidays,
                                              "workdays": self.workdays}).encode()).hexdigest()


@dataclass
class ImportResult:
    schedule: HolidaySchedule
    replaced: bool
    warnings: list[str]
    recomputed: list[dict[str, Any]] = field(default_factory=list)
    unchanged: int = 0


def _bad(code: str, message: str, **details: Any) -> InvalidInput:
    return InvalidInput(code, message, details=details or None)


def _day(value: Any, where: str) -> date:
    if not isinstance(value, str):
        raise _bad("invalid_schedule", f"{where}: 日期须为 YYYY-MM-DD 字符串", field=where)
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise _bad("invalid_schedule", f"{where}: 日期格式错误（{value[:20]}）", field=where) from None


def _name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME:
        raise _bad("invalid_schedule", f"{where}: 名称须为 1-{MAX_NAME} 个字符", field=where)
    return value.strip()


def parse_schedule(doc: Any) -> ParsedSchedule:
    """Validate a schedule document (shape and law); raises InvalidInput with a stable code."""
    if not isinstance(doc, dict):
        raise _bad("invalid_schedule", "节假日安排须为 JSON 对象")
    unknown = set(doc) - {"year", "source", "holidays", "workdays"}
    if unknown:
        raise _bad("invalid_schedule", f"未知字段：{', '.join(sorted(unknown))}", fields=sorted(unknown))
    year = doc.get("year")
    if not isinstance(year, int) or isinstance(year, bool):
        raise _bad("invalid_schedule", "year 须为整数", field="year")
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise _bad("schedule_year_out_of_range", f"年份须在 {FIRST_YEAR}-{LAST_YEAR} 之间", min=FIRST_YEAR, max=LAST_YEAR)
    source = doc.get("source")
    if not isinstance(source, str) or not source.strip() or len(source) > MAX_SOURCE:
        raise _bad("invalid_schedule", f"source（通知名称与文号）须为 1-{MAX_SOURCE} 个字符", field="source")
    raw_h, raw_w = doc.get("holidays"), doc.get("workdays", [])
    if not isinstance(raw_h, list) or not raw_h or len(raw_h) > MAX_BLOCKS:
        raise _bad("invalid_schedule", f"holidays 须为 1-{MAX_BLOCKS} 项的列表", field="holidays")
    if not isinstance(raw_w, list) or len(raw_w) > MAX_BLOCKS:
        raise _bad("invalid_schedule", f"workdays 须为至多 {MAX_BLOCKS} 项的列表", field="workdays")
    # The arrangement of a year may reach into the neighbouring weeks (a 元旦 block starting 30 December).
    lo, hi = date(year - 1, 12, 1), date(year + 1, 1, 31)
    holidays: list[tuple[str, str, str]] = []
    off: dict[date, str] = {}
    for i, h in enumerate(raw_h):
        where = f"holidays[{i}]"
        if not isinstance(h, dict) or set(h) - {"name", "first", "last"}:
            raise _bad("invalid_schedule", f"{where}: 须为 {{name, first, last}}", field=where)
        name, first, last = _name(h.get("name"), where), _day(h.get("first"), where), _day(h.get("last"), where)
        if last < first or (last - first).days > 15:
            raise _bad("invalid_schedule", f"{where}: 放假区间须为 1-16 天且 last 不早于 first", field=where)
        if first < lo or last > hi:
            raise _bad("schedule_day_outside_year", f"{where}: 日期须在 {lo} 至 {hi} 之间", field=where)
        d = first
        while d <= last:
            if d in off:
                raise _bad("schedule_overlap", f"{d.isoformat()} 出现在两个放假区间中", day=d.isoformat())
            off[d] = name
            d += timedelta(days=1)
        holidays.append((name, first.isoformat(), last.isoformat()))
    workdays: list[tuple[str, str]] = []
    for i, w in enumerate(raw_w):
        where = f"workdays[{i}]"
        if not isinstance(w, dict) or set(w) - {"name", "date"}:
            raise _bad("invalid_schedule", f"{where}: 须为 {{name, date}}", field=where)
        name, d = _name(w.get("name"), where), _day(w.get("date"), where)
        if not lo <= d <= hi:
            raise _bad("schedule_day_outside_year", f"{where}: 日期须在 {lo} 至 {hi} 之间", field=where)
        if d in off:
            raise _bad("schedule_overlap", f"{d.isoformat()} 既是放假日又是调休上班日", day=d.isoformat())
        if d.weekday() < 5:
            raise _bad("schedule_workday_not_weekend", f"{d.isoformat()} 不是周六或周日，不能作为调休上班日",
                       day=d.isoformat())
        if d.isoformat() in {x[1] for x in workdays}:
            raise _bad("schedule_overlap", f"{d.isoformat()} 重复出现", day=d.isoformat())
        workdays.append((name, d.isoformat()))
    missing = [s for s in statutory_days(year) if s.day not in off]
    if missing:
        raise _bad("schedule_contradicts_law",
                   "以下法定节假日不在任何放假区间内（《全国年节及纪念日放假办法》规定的假日不能安排为工作日）：" +
                   "、".join(f"{s.day.isoformat()}（{s.name}）" for s in missing),
                   days=[s.day.isoformat() for s in missing])
    warnings: list[str] = []
    weekday_off = sum(1 for d in off if d.weekday() < 5)
    expected = statutory_count(year)
    if weekday_off - len(workdays) != expected:
        warnings.append(f"放假的工作日（{weekday_off} 天）减调休上班日（{len(workdays)} 天）为 {weekday_off - len(workdays)} 天，"
                        f"与法定节假日天数 {expected} 天（含周末补假）不符；请核对通知原文。")
    return ParsedSchedule(year, source.strip(), sorted(holidays, key=lambda h: h[1]), sorted(workdays, key=lambda w: w[1]),
                          warnings)


def _schedules_for(session: Session, company_id: str | None) -> dict[int, Schedule]:
    """Imported schedules that apply to a company: global ones, then the company's own (which win)."""
    rows = session.scalars(select(HolidaySchedule).where(
        (HolidaySchedule.company_id.is_(None)) | (HolidaySchedule.company_id == company_id)
        if company_id else HolidaySchedule.company_id.is_(None)))
    out: dict[int, Schedule] = {}
    for r in sorted(rows, key=lambda r: (r.company_id is not None, r.imported_at)):
        out[r.year] = ([tuple(h) for h in r.holidays], [tuple(w) for w in r.workdays])
    return out


def company_calendar(session: Session, company_id: str | None) -> ChineseCalendar:
    """The company's calendar (or the national one for None). Built once per process and deployment
    change (qianli.config_cache): a ChineseCalendar is never mutated after it is built."""
    return config_cache.cached(session, ("calendar", company_id), lambda: _load_calendar(session, company_id))


def _load_calendar(session: Session, company_id: str | None) -> ChineseCalendar:
    schedules = _schedules_for(session, company_id)
    if company_id is None:
        return ChineseCalendar(schedules=schedules)
    rows = session.scalars(select(HolidayOverride).where(HolidayOverride.company_id == company_id))
    return ChineseCalendar(overrides={r.day: DayKind.HOLIDAY if r.kind == "holiday" else DayKind.SWAPPED_WORKDAY
                                      for r in rows}, schedules=schedules)


def list_schedules(session: Session, company_id: str | None) -> list[dict[str, Any]]:
    """Every published year that applies to the company: bundled, imported for all, imported for it."""
    out: dict[int, dict[str, Any]] = {
        y: {"year": y, "scope": "bundled", "source": f"国务院办公厅关于{y}年部分节假日安排的通知",
            "holidays": [list(h) for h in SCHEDULES[y][0]], "workdays": [list(w) for w in SCHEDULES[y][1]],
            "imported_at": None, "imported_by": None, "sha256": None} for y in SCHEDULES}
    q = select(HolidaySchedule).where(HolidaySchedule.company_id.is_(None) if company_id is None else
                                      (HolidaySchedule.company_id.is_(None)) | (HolidaySchedule.company_id == company_id))
    for r in sorted(session.scalars(q), key=lambda r: (r.company_id is not None, r.imported_at)):
        out[r.year] = {"year": r.year, "scope": "company" if r.company_id else "all_companies", "source": r.source,
                       "holidays": r.holidays, "workdays": r.workdays, "imported_at": r.imported_at,
                       "imported_by": r.imported_by, "sha256": r.sha256}
    return [out[y] for y in sorted(out)]


def statutory_preview(year: int) -> dict[str, Any]:
    """What the law alone says about ``year`` (for an operator preparing the import)."""
    from cases.statutory import estimated_makeup_days, law_version

    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise _bad("schedule_year_out_of_range", f"年份须在 {FIRST_YEAR}-{LAST_YEAR} 之间", min=FIRST_YEAR, max=LAST_YEAR)
    return {"year": year, "law_version": law_version(year),
            "statutory": [{"date": s.day.isoformat(), "name": s.name} for s in statutory_days(year)],
            "estimated_makeup": [{"date": s.day.isoformat(), "name": s.name} for s in estimated_makeup_days(year)]}


def import_schedule(session: Session, rt: Any, *, doc: Any, company_id: str | None, actor: str) -> ImportResult:
    """Store the year's schedule (replacing an earlier import of the same scope and year) and
    recompute every open case it can affect. Side effects (messages) go out after commit."""
    parsed = parse_schedule(doc)
    existing = session.scalars(select(HolidaySchedule).where(
        HolidaySchedule.year == parsed.year,
        HolidaySchedule.company_id.is_(None) if company_id is None else HolidaySchedule.company_id == company_id)).all()
    for row in existing:
        session.delete(row)
    session.flush()
    row = HolidaySchedule(company_id=company_id, year=parsed.year, holidays=[list(h) for h in parsed.holidays],
                          workdays=[list(w) for w in parsed.workdays], source=parsed.source, sha256=parsed.sha256,
                          imported_by=actor)
    session.add(row)
    session.flush()
    result = ImportResult(row, bool(existing), parsed.warnings)
    _recompute_open_cases(session, rt, result, company_id=company_id, actor=actor)
    return result


def _recompute_open_cases(session: Session, rt: Any, result: ImportResult, *, company_id: str | None,
                          actor: str) -> None:
    from cases.notice import compute_notice
    from qianli.services.alerts import raise_alert
    from qianli.services.cases import company_policy

    q = select(ResignationCase).where(ResignationCase.state.in_([s.value for s in OPEN_STATES]),
                                      ResignationCase.dates_provisional.is_(True))
    if company_id is not None:
        q = q.where(ResignationCase.company_id == company_id)
    calendars: dict[str, ChineseCalendar] = {}
    sched = result.schedule
    for case in session.scalars(q.order_by(ResignationCase.company_id, ResignationCase.arrival_date)).all():
        cal = calendars.get(case.company_id)
        if cal is None:
            cal = calendars[case.company_id] = company_calendar(session, case.company_id)
        policy = company_policy(session.get(Company, case.company_id), rt.settings)
        n = compute_notice(case.arrival_date, case.probation, calendar=cal,
                           holidays_extend=policy.holidays_extend_notice,
                           letter_due_working_days=policy.letter_due_working_days)
        old = {"letter_due_date": case.letter_due_date.isoformat(),
               "earliest_lawful_last_day": case.earliest_lawful_last_day.isoformat(),
               "dates_provisional": case.dates_provisional}
        new = {"letter_due_date": n.letter_due_date.isoformat(),
               "earliest_lawful_last_day": n.earliest_last_day.isoformat(), "dates_provisional": n.provisional}
        if old == new:
            result.unchanged += 1
            continue
        moved = [k for k in ("letter_due_date", "earliest_lawful_last_day") if old[k] != new[k]]
        case.letter_due_date, case.earliest_lawful_last_day = n.letter_due_date, n.earliest_last_day
        case.dates_provisional = n.provisional
        session.flush()
        append_evidence(session, case, actor, EvidenceKind.DATES_RECOMPUTED, {
            "reason": "holiday_schedule_published", "schedule_year": sched.year, "schedule_source": sched.source,
            "schedule_sha256": sched.sha256, "schedule_scope": "company" if sched.company_id else "all_companies",
            "before": old, "after": new, "moved": moved, "explanation": n.explanation_zh})
        entry = {"case_id": case.id, "company_id": case.company_id, "before": old, "after": new, "moved": moved,
                 "notified": False}
        if moved:
            _tell(session, rt, case, n, moved, actor, raise_alert)
            entry["notified"] = True
        result.recomputed.append(entry)


def _tell(session: Session, rt: Any, case: ResignationCase, n: Any, moved: list[str], actor: str, raise_alert: Any) -> None:
    from qianli.services.reminders import notify_employee

    final = "" if n.provisional else "（已按国务院公布的安排确定）"
    notify_employee(session, rt, case, "dates_recomputed", {
        "letter_due_date": n.letter_due_date.isoformat(), "earliest_last_day": n.earliest_last_day.isoformat(),
        "provisional": "1" if n.provisional else "0"})
    emp = session.get(Employee, case.employee_id)
    who = f"{emp.name}（{emp.employee_no}）" if emp else case.employee_id
    parts = []
    if "letter_due_date" in moved:
        parts.append(f"书面辞职信截止日改为{n.letter_due_date.isoformat()}")
    if "earliest_lawful_last_day" in moved:
        parts.append(f"最早离职日改为{n.earliest_last_day.isoformat()}")
    raise_alert(session, company_id=case.company_id, kind="dates_recomputed", case_id=case.id,
                employee_id=case.employee_id, actor=actor,
                message=f"节假日安排公布后，{who}的{'、'.join(parts)}{final}",
                payload={"letter_due_date": n.letter_due_date.isoformat(),
                         "earliest_last_day": n.earliest_last_day.isoformat(), "provisional": n.provisional})
