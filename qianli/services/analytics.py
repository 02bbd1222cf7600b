"""Departure analytics for HR: who leaves, from which department, why, how, and how fast.

Counting rule. A *departure* is a case that was not withdrawn (nor an absconding case that ended in a
return to work or was converted to a resignation: ``NOT_DEPARTURES``), counted in the period (Beijing
month or quarter) of its notice's arrival (``arrival_date``, a Beijing date), whatever its state:
open, approved or closed. The numbers are grouped in SQL (one ``GROUP BY`` per figure, never a
loop over cases) and handed to the pure rules in ``cases.analytics`` as group counts; every
published table goes through ``protect_table`` (groups of fewer than 5 people suppressed, with
complementary suppression), and every per-department figure is suppressed with its department.

Figures per department (and for everyone in scope):

* departures;
* time from notice to close: median and 90th percentile, in whole days from the notice's arrival
  to the case's ``case_close`` evidence entry (closed cases only);
* letters overdue: among resignations whose letter due date has passed or whose letter arrived,
  the share whose signed letter arrived after its due date (Beijing date) or has not arrived;
* reminders per resignation: letter reminders sent (delivery slots >= 1, each slot once whatever
  the channels; slot 0 is the initial notice, not a reminder);
* handover completion: median whole days from the first offboarding task's creation (the start of
  the handover) to the last task's completion, over cases whose tasks are all done or cancelled
  (at least one done);
* rehire rate: the share of departures whose alumni profile is marked re-hired (``rehired_at``).

A department head sees only their department (``review.department_scope``), like every HR read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Integer, and_, case as sql_case, cast, distinct, extract, func, or_, select
from sqlalchemy.orm import Session

from cases.analytics import (K_ANONYMITY, MAX_PERIOD_MONTHS, Granularity, Protected, months_between, period_key,
                             period_keys, period_label, protect_series, protect_table, quantile, share, mean)
from cases.clock import beijing_today, utcnow
from cases.departure import DEPARTURE_LABELS, DepartureType
from cases.errors import InvalidInput
from cases.evidence_kinds import EvidenceKind
from cases.offboarding import TaskStatus
from cases.reasons import REASON_CATEGORIES, UNSPECIFIED_REASON, reason_label
from cases.states import CaseState
from qianli.models import Alumnus, Employee, EvidenceEntry, OffboardingTask, ReminderDelivery, ResignationCase
from qianli.services.review import Reviewer, department_scope

__all__ = ["AnalyticsQuery", "ChartTable", "MetricsRow", "DepartureAnalytics", "CHART_IDS", "CHART_TITLES",
           "NO_DEPARTMENT", "default_query", "make_query", "departure_analytics", "company_analytics",
           "visible_departments", "METRIC_KEYS", "METRIC_LABELS", "DIMENSION_LABELS"]

NO_DEPARTMENT = "未分配部门"
CHART_TITLES = {
    "by_reason_period": "离职原因 × 期间",
    "by_department_period": "部门 × 期间",
    "by_department_reason": "部门 × 离职原因",
    "by_type_period": "离职类型 × 期间",
    "metrics_by_department": "各部门效率指标",
}
CHART_IDS = tuple(CHART_TITLES)
DIMENSION_LABELS = {"reason": "离职原因", "department": "部门", "period": "期间", "departure_type": "离职类型",
                    "metric": "指标"}
METRIC_LABELS = {
    "departures": "离职人数",
    "close_median_days": "通知至结案中位数（天）",
    "close_p90_days": "通知至结案 P90（天）",
    "letters_overdue_share": "辞职信逾期比例",
    "reminders_per_case": "人均催办次数",
    "handover_median_days": "交接完成中位数（天）",
    "rehire_rate": "返聘率",
}
METRIC_KEYS = tuple(METRIC_LABELS)


# ---- the question -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class AnalyticsQuery:
    start: date
    end: date
    granularity: Granularity = Granularity.MONTH
    department: str | None = None
    departure_type: str | None = None


def default_query(today: date | None = None) -> AnalyticsQuery:
    """The last twelve months up to today (Beijing), monthly."""
    today = today or beijing_today()
    y, m = today.year, today.month - 11
    if m <= 0:
        y, m = y - 1, m + 12
    return AnalyticsQuery(date(y, m, 1), today)


def make_query(*, start: date | None, end: date | None, granularity: str | None = None,
               department: str | None = None, departure_type: str | None = None,
               today: date | None = None) -> AnalyticsQuery:
    """Validate and fill in defaults (a missing start: eleven months before the end's month)."""
    default = default_query(today)
    end = end or default.end
    if start is None:
        y, m = end.year, end.month - 11
        if m <= 0:
            y, m = y - 1, m + 12
        start = date(y, m, 1)
    if start > end:
        raise InvalidInput("invalid_period", "开始日期不能晚于结束日期",
                           details={"from": start.isoformat(), "to": end.isoformat()})
    if months_between(start, end) > MAX_PERIOD_MONTHS:
        raise InvalidInput("period_too_long", f"统计期间最长 {MAX_PERIOD_MONTHS} 个月",
                           details={"max_months": MAX_PERIOD_MONTHS})
    try:
        gran = Granularity(granularity or Granularity.MONTH.value)
    except ValueError:
        raise InvalidInput("invalid_granularity", "统计粒度只能是 month 或 quarter") from None
    if departure_type is not None and departure_type not in {t.value for t in DepartureType}:
        raise InvalidInput("invalid_departure_type", "离职类型无效",
                           details={"allowed": [t.value for t in DepartureType]})
    dept = department.strip() if department else None
    return AnalyticsQuery(start, end, gran, dept or None, departure_type)


# ---- the answer ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ChartTable:
    """One chart's numbers as published (None: suppressed)."""

    id: str
    title: str
    row_dimension: str
    column_dimension: str
    rows: list[tuple[str, str]]  # (key, label)
    columns: list[tuple[str, str]]
    table: Protected

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "title": self.title, "kind": "counts",
            "row_dimension": self.row_dimension, "column_dimension": self.column_dimension,
            "columns": [{"key": k, "label": v} for k, v in self.columns],
            "rows": [{"key": k, "label": v, "values": self.table.cells[i], "total": self.table.row_totals[i]}
                     for i, (k, v) in enumerate(self.rows)],
            "column_totals": self.table.column_totals,
            "total": self.table.total,
            "suppressed_cells": self.table.suppressed_cells,
        }


@dataclass(frozen=True)
class MetricsRow:
    key: str
    label: str
    departures: int | None
    close_median_days: float | None
    close_p90_days: float | None
    letters_overdue_share: float | None
    reminders_per_case: float | None
    handover_median_days: float | None = None
    rehire_rate: float | None = None

    def values(self) -> list[float | int | None]:
        return [getattr(self, k) for k in METRIC_KEYS]


@dataclass(frozen=True)
class DepartureAnalytics:
    query: AnalyticsQuery
    generated_at: datetime
    charts: list[ChartTable]
    metrics: list[MetricsRow]
    overall: MetricsRow
    scope_department: str | None = None
    k: int = K_ANONYMITY
    periods: list[str] = field(default_factory=list)

    def chart(self, chart_id: str) -> ChartTable:
        return next(c for c in self.charts if c.id == chart_id)

    def metrics_as_dict(self) -> dict[str, Any]:
        return {"id": "metrics_by_department", "title": CHART_TITLES["metrics_by_department"], "kind": "metrics",
                "row_dimension": "department", "column_dimension": "metric",
                "columns": [{"key": k, "label": METRIC_LABELS[k]} for k in METRIC_KEYS],
                "rows": [{"key": r.key, "label": r.label, "values": r.values()} for r in self.metrics],
                "overall": {"key": self.overall.key, "label": self.overall.label, "values": self.overall.values()}}

    def as_dict(self) -> dict[str, Any]:
        q = self.query
        return {
            "from": q.start, "to": q.end, "granularity": q.granularity.value, "department": q.department,
            "departure_type": q.departure_type, "scope_department": self.scope_department,
            "date_basis": "notice_arrival", "k_threshold": self.k, "generated_at": self.generated_at,
            "periods": [{"key": p, "label": period_label(p)} for p in self.periods],
            "summary": {"departures": self.overall.departures,
                        **{k: getattr(self.overall, k) for k in METRIC_KEYS if k != "departures"}},
            "charts": [c.as_dict() for c in self.charts] + [self.metrics_as_dict()],
        }


# ---- SQL ----------------------------------------------------------------------------------------------

def _beijing_date(session: Session, column):
    """The Beijing calendar date of a UTC timestamp column, in SQL (China keeps no daylight saving)."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.timezone("Asia/Shanghai", column), type_=ResignationCase.arrival_date.type)
    return func.date(column, "+8 hours")


def _whole_days(session: Session, later, earlier):
    """Whole days (floor) between two UTC timestamp columns, in SQL."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.floor(extract("epoch", later - earlier) / 86400), Integer)
    return cast(func.julianday(later) - func.julianday(earlier), Integer)


NOT_DEPARTURES = (CaseState.WITHDRAWN.value, CaseState.RETURNED_TO_WORK.value,
                  CaseState.CONVERTED_TO_RESIGNATION.value)
"""States of cases that are no departure: withdrawn resignations, absconding employees who came back,
and absconding cases converted to a resignation (the resignation case they opened counts instead)."""


def _conditions(scope, q: AnalyticsQuery) -> list:
    conds = [scope, ResignationCase.state.not_in(NOT_DEPARTURES),
             ResignationCase.arrival_date >= q.start, ResignationCase.arrival_date <= q.end]
    if q.department:
        conds.append(Employee.department == q.department)
    if q.departure_type:
        conds.append(ResignationCase.departure_type == q.departure_type)
    return conds


def _cases(conds: list):
    return select().select_from(ResignationCase).join(Employee, Employee.id == ResignationCase.employee_id).where(*conds)


# ---- assembling -----------------------------------------------------------------------------------------

def _chart(chart_id: str, row_dim: str, col_dim: str, rows: list[tuple[str, str]], cols: list[tuple[str, str]],
           counts: dict[tuple[str, str], int]) -> ChartTable:
    matrix = [[counts.get((r, c), 0) for c, _ in cols] for r, _ in rows]
    return ChartTable(chart_id, CHART_TITLES[chart_id], row_dim, col_dim, rows, cols, protect_table(matrix))


def _analytics(session: Session, company_id: str, scope, q: AnalyticsQuery, *, scope_department: str | None,
               now: datetime | None) -> DepartureAnalytics:
    now = now or utcnow()
    today = beijing_today(now)
    conds = _conditions(scope, q)
    dept_col = Employee.department
    reason_col = func.coalesce(ResignationCase.reason_category, UNSPECIFIED_REASON)
    year_col, month_col = extract("year", ResignationCase.arrival_date), extract("month", ResignationCase.arrival_date)

    # The cube: department x reason x type x month, counted in SQL.
    cube = session.execute(
        _cases(conds).add_columns(dept_col, reason_col, ResignationCase.departure_type, year_col, month_col,
                                  func.count())
        .group_by(dept_col, reason_col, ResignationCase.departure_type, year_col, month_col)).all()
    periods = period_keys(q.start, q.end, q.granularity)
    by_reason_period: dict[tuple[str, str], int] = {}
    by_dept_period: dict[tuple[str, str], int] = {}
    by_dept_reason: dict[tuple[str, str], int] = {}
    by_type_period: dict[tuple[str, str], int] = {}
    dept_totals: dict[str, int] = {}
    for dept, reason, dtype, year, month, n in cube:
        d = dept or ""
        p = period_key(int(year), int(month), q.granularity)
        for acc, key in ((by_reason_period, (reason, p)), (by_dept_period, (d, p)), (by_dept_reason, (d, reason)),
                         (by_type_period, (dtype, p))):
            acc[key] = acc.get(key, 0) + n
        dept_totals[d] = dept_totals.get(d, 0) + n

    reasons = [(r, reason_label(r)) for r in (*REASON_CATEGORIES, UNSPECIFIED_REASON)]
    types = [(t.value, DEPARTURE_LABELS[t.value]) for t in DepartureType]
    if q.departure_type:
        types = [t for t in types if t[0] == q.departure_type]
    depts = [(d, d or NO_DEPARTMENT) for d in sorted(dept_totals)]
    if q.department and not depts:
        depts = [(q.department, q.department)]
    period_cols = [(p, period_label(p)) for p in periods]
    charts = [
        _chart("by_reason_period", "reason", "period", reasons, period_cols, by_reason_period),
        _chart("by_department_period", "department", "period", depts, period_cols, by_dept_period),
        _chart("by_department_reason", "department", "reason", depts, reasons, by_dept_reason),
        _chart("by_type_period", "departure_type", "period", types, period_cols, by_type_period),
    ]
    metrics, overall = _metrics(session, company_id, conds, depts, dept_totals, today)
    return DepartureAnalytics(q, now, charts, metrics, overall, scope_department=scope_department, periods=periods)


def _metrics(session: Session, company_id: str, conds: list, depts: list[tuple[str, str]], dept_totals: dict[str, int],
             today: date) -> tuple[list[MetricsRow], MetricsRow]:
    dept_col = Employee.department
    # Notice to close: a histogram of whole days per department.
    closed = (select(EvidenceEntry.case_id, func.min(EvidenceEntry.occurred_at).label("closed_at"))
              .where(EvidenceEntry.company_id == company_id, EvidenceEntry.action == EvidenceKind.CASE_CLOSE.value)
              .group_by(EvidenceEntry.case_id).subquery())
    days = _whole_days(session, closed.c.closed_at, ResignationCase.notice_arrived_at)
    close_hist: dict[str, dict[int, int]] = {}
    for dept, d, n in session.execute(
            _cases(conds).join(closed, closed.c.case_id == ResignationCase.id)
            .add_columns(dept_col, days, func.count()).group_by(dept_col, days)).all():
        h = close_hist.setdefault(dept or "", {})
        h[int(d)] = h.get(int(d), 0) + n

    # Letters overdue and reminders: resignations only (the other departure types have no letter).
    resignation = [*conds, ResignationCase.departure_type == DepartureType.RESIGNATION.value]
    submitted_day = _beijing_date(session, ResignationCase.letter_submitted_at)
    decidable = or_(ResignationCase.letter_submitted_at.is_not(None), ResignationCase.letter_due_date < today)
    late = or_(and_(ResignationCase.letter_submitted_at.is_not(None), submitted_day > ResignationCase.letter_due_date),
               and_(ResignationCase.letter_submitted_at.is_(None), ResignationCase.letter_due_date < today))
    letters: dict[str, tuple[int, int]] = {
        dept or "": (int(n_late or 0), int(n_due or 0)) for dept, n_late, n_due in session.execute(
            _cases([*resignation, decidable]).add_columns(dept_col, func.sum(sql_case((late, 1), else_=0)), func.count())
            .group_by(dept_col)).all()}
    sent = (select(ReminderDelivery.case_id, func.count(distinct(ReminderDelivery.slot)).label("n"))
            .where(ReminderDelivery.company_id == company_id, ReminderDelivery.status == "sent",
                   ReminderDelivery.slot >= 1)
            .group_by(ReminderDelivery.case_id).subquery())
    reminders: dict[str, tuple[int, int]] = {
        dept or "": (int(total or 0), int(n or 0)) for dept, total, n in session.execute(
            _cases(resignation).outerjoin(sent, sent.c.case_id == ResignationCase.id)
            .add_columns(dept_col, func.sum(func.coalesce(sent.c.n, 0)), func.count()).group_by(dept_col)).all()}

    # Handover: per case, first task created -> last task completed, once nothing is open.
    open_n = func.sum(sql_case((OffboardingTask.status == TaskStatus.OPEN.value, 1), else_=0))
    done_n = func.sum(sql_case((OffboardingTask.status == TaskStatus.DONE.value, 1), else_=0))
    handed = (select(OffboardingTask.case_id, func.min(OffboardingTask.created_at).label("started"),
                     func.max(OffboardingTask.completed_at).label("finished"))
              .where(OffboardingTask.company_id == company_id).group_by(OffboardingTask.case_id)
              .having(and_(open_n == 0, done_n > 0)).subquery())
    h_days = _whole_days(session, handed.c.finished, handed.c.started)
    handover_hist: dict[str, dict[int, int]] = {}
    for dept, d, n in session.execute(
            _cases(conds).join(handed, handed.c.case_id == ResignationCase.id)
            .add_columns(dept_col, h_days, func.count()).group_by(dept_col, h_days)).all():
        h = handover_hist.setdefault(dept or "", {})
        h[int(d)] = h.get(int(d), 0) + n
    # Rehires: departures whose alumni profile is marked re-hired.
    rehired: dict[str, int] = {
        dept or "": int(n or 0) for dept, n in session.execute(
            _cases([*conds, Alumnus.rehired_at.is_not(None)]).join(Alumnus, Alumnus.case_id == ResignationCase.id)
            .add_columns(dept_col, func.count(distinct(ResignationCase.id))).group_by(dept_col)).all()}

    published, _ = protect_series([dept_totals.get(d, 0) for d, _ in depts])

    def row(key: str, label: str, departures: int | None, keys: list[str]) -> MetricsRow:
        if departures is None:
            return MetricsRow(key, label, None, None, None, None, None)
        hist = _merge([close_hist.get(k, {}) for k in keys])
        hand = _merge([handover_hist.get(k, {}) for k in keys])
        n_closed = sum(hist.values())
        n_late = sum(letters.get(k, (0, 0))[0] for k in keys)
        n_due = sum(letters.get(k, (0, 0))[1] for k in keys)
        r_total = sum(reminders.get(k, (0, 0))[0] for k in keys)
        r_cases = sum(reminders.get(k, (0, 0))[1] for k in keys)
        enough = n_closed >= K_ANONYMITY
        med, p90 = (quantile(hist, 0.5), quantile(hist, 0.9)) if enough else (None, None)
        hand_med = quantile(hand, 0.5) if sum(hand.values()) >= K_ANONYMITY else None
        return MetricsRow(key, label, departures, None if med is None else round(med, 1),
                          None if p90 is None else round(p90, 1), share(n_late, n_due), mean(r_total, r_cases),
                          None if hand_med is None else round(hand_med, 1),
                          share(sum(rehired.get(k, 0) for k in keys), departures))

    rows = [row(d, label, published[i], [d]) for i, (d, label) in enumerate(depts)]
    total = sum(dept_totals.values())
    overall = row("all", "全部", total if total >= K_ANONYMITY or total == 0 else None, list(dept_totals))
    return rows, overall


def _merge(histograms: list[dict[int, int]]) -> dict[int, int]:
    out: dict[int, int] = {}
    for h in histograms:
        for v, c in h.items():
            out[v] = out.get(v, 0) + c
    return out


# ---- entry points -----------------------------------------------------------------------------------------

def departure_analytics(session: Session, reviewer: Reviewer, q: AnalyticsQuery, *,
                        now: datetime | None = None) -> DepartureAnalytics:
    """getDepartureAnalytics: the reviewer's scope (a department head: their department only)."""
    scope_dept = reviewer.department if reviewer.role == "dept_head" else None
    return _analytics(session, reviewer.company_id,
                      and_(department_scope(reviewer), ResignationCase.company_id == reviewer.company_id),
                      q, scope_department=scope_dept, now=now)


def visible_departments(session: Session, reviewer: Reviewer) -> list[str]:
    """The departments this reviewer may filter by (the console's suggestions)."""
    return [d for d in session.scalars(select(Employee.department).distinct().where(department_scope(reviewer))
                                       .order_by(Employee.department)) if d]


def company_analytics(session: Session, company_id: str, q: AnalyticsQuery, *,
                      now: datetime | None = None) -> DepartureAnalytics:
    """The whole company (the scheduled quarterly report)."""
    return _analytics(session, company_id, and_(Employee.company_id == company_id,
                                                ResignationCase.company_id == company_id), q,
                      scope_department=None, now=now)
