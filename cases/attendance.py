"""Attendance early warning (擅自离职预警): pure rules over an employee's clock-in days.

Standard library only. The service layer loads the facts (which days the employee clocked in, which
days approved leave covers, which days the company's attendance data covers, the company's Chinese
working-day calendar) and calls :func:`assess`; everything that decides red / amber / green lives
here, with table tests (tests/cases/test_attendance.py).

Definitions (the README's "Early warning" section says the same):

- An **evaluable day** is a Chinese working day (statutory holidays are not, 调休 Saturdays/Sundays
  are) on or after the hire date, on or before the evaluation's last day, that the company's
  attendance data covers (an import's or a WeCom pull's date range) and that no approved leave
  covers. A day with a clock-in is *present*; an evaluable day without one is *absent*.
- The **gap** is the run of absent days that ends on the last evaluable day, walking back. It ends at
  the latest clock-in (any day, a weekend included), at a leave day (approved leave is not an
  absence, and the run counts *consecutive* working days), at a working day the data does not
  cover (no claim without data; uncovered days at the end, data not in yet, are skipped) or at
  the hire date. Non-working days without a clock-in are
  skipped. ``gap >= red_consecutive_days`` is red (default 3, the seed's 连续3天未打卡); ``gap >=
  amber_consecutive_days`` (default 1) is amber.
- The **drop** compares the last ``drop_recent_days`` evaluable days (default 5) with the
  ``drop_baseline_days`` evaluable days before them (default 20): with a baseline attendance rate
  ``b`` (present / evaluable) and a recent rate ``r``, a drop of at least ``drop_percent`` percent
  (default 50, the seed's 下降50%以上) - ``r <= b * (1 - drop_percent/100)`` - is amber. It needs a
  full recent window and at least half a baseline window of evaluable days, and a baseline rate
  of at least 50% (someone who rarely clocks in has no pattern to drop from).
- An **episode** is one gap (keyed by its first absent day) or one drop (keyed by the first day of
  its recent window). A red is notified once per episode; a dismissal (false alarm) silences its
  episode only: the same gap growing is the same episode, a new gap after a clock-in is a new one.
  A dismissed drop stays silent until a recent window starts after the dismissed one ended.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from enum import Enum
from typing import Any, Callable, Iterable, Mapping

__all__ = ["RiskLevel", "RISK_LABELS", "RiskKind", "AttritionRules", "DEFAULT_RULES", "RuleError", "parse_rules",
           "Assessment", "assess", "Dismissal", "dismissed", "sort_key", "LOOKBACK_DAYS", "lookback_start", "day_label"]


class RiskLevel(str, Enum):
    RED = "red"
    AMBER = "amber"
    GREEN = "green"


RISK_LABELS = {RiskLevel.RED: "红色（高风险）", RiskLevel.AMBER: "黄色（关注）", RiskLevel.GREEN: "绿色（正常）"}
_ORDER = {RiskLevel.RED: 0, RiskLevel.AMBER: 1, RiskLevel.GREEN: 2}


class RiskKind(str, Enum):
    """What raised an episode."""

    GAP = "gap"    # consecutive working days without a clock-in or leave
    DROP = "drop"  # fewer clock-ins than the employee's own recent pattern


@dataclass(frozen=True)
class AttritionRules:
    """A company's early-warning rules (``Company.policy["attrition_rules"]``)."""

    red_consecutive_days: int = 3
    """Consecutive working days without a clock-in and without leave that make an employee red."""
    amber_consecutive_days: int = 1
    """Fewer days than red, from this many, make an employee amber (0: no amber for short gaps)."""
    drop_enabled: bool = True
    """Whether a drop against the employee's own pattern makes them amber."""
    drop_recent_days: int = 5
    """The recent window, in evaluable working days."""
    drop_baseline_days: int = 20
    """The baseline window before it, in evaluable working days."""
    drop_percent: int = 50
    """How far the recent attendance rate must fall below the baseline rate, in percent."""
    notify_red: bool = True
    """Whether HR and the department head are told of each new red (once per episode)."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


DEFAULT_RULES = AttritionRules()

# Bounds for each integer rule: (min, max).
_BOUNDS = {"red_consecutive_days": (1, 30), "amber_consecutive_days": (0, 29), "drop_recent_days": (1, 30),
           "drop_baseline_days": (5, 120), "drop_percent": (10, 100)}
_BOOLS = ("drop_enabled", "notify_red")


class RuleError(ValueError):
    """Invalid rules: ``errors`` maps each field to its zh-CN problem."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def parse_rules(doc: Mapping[str, Any] | None, *, base: AttritionRules = DEFAULT_RULES) -> AttritionRules:
    """Rules from a (partial) mapping over ``base``; strict: unknown fields, wrong types (a bool is not
    an int, a string is not a number) and values out of range are refused with every problem named."""
    if doc is None:
        return base
    if not isinstance(doc, Mapping):
        raise RuleError({"_": "规则须为对象"})
    errors: dict[str, str] = {}
    values = base.as_dict()
    for key, value in doc.items():
        if key in _BOUNDS:
            lo, hi = _BOUNDS[key]
            if isinstance(value, bool) or not isinstance(value, int):
                errors[key] = "须为整数"
            elif not lo <= value <= hi:
                errors[key] = f"须在 {lo} 至 {hi} 之间"
            else:
                values[key] = value
        elif key in _BOOLS:
            if not isinstance(value, bool):
                errors[key] = "须为 true 或 false"
            else:
                values[key] = value
        else:
            errors[str(key)] = "未知的规则项"
    if not errors and values["amber_consecutive_days"] >= values["red_consecutive_days"]:
        errors["amber_consecutive_days"] = "须小于红色预警天数（red_consecutive_days）"
    if errors:
        raise RuleError(errors)
    return AttritionRules(**values)


# Calendar days looked back: enough for the longest windows (120 + 30 working days) across holidays.
LOOKBACK_DAYS = 240


def lookback_start(through: date, rules: AttritionRules) -> date:
    """The first day whose facts :func:`assess` may need for an evaluation ending on ``through``."""
    need = max(rules.red_consecutive_days, rules.drop_recent_days + rules.drop_baseline_days)
    # working days are at least 5 of every 7 calendar days, minus at most ~11 holidays a year
    return through - timedelta(days=min(LOOKBACK_DAYS, need * 7 // 5 + 30))


def day_label(d: date) -> str:
    return f"{d.month}月{d.day}日"


@dataclass(frozen=True)
class Assessment:
    level: RiskLevel
    reasons: list[str]
    kind: RiskKind | None = None
    episode: str | None = None
    """``gap:<first absent day>`` or ``drop:<first day of the recent window>`` (None when green)."""
    gap_days: list[date] = field(default_factory=list)
    last_clock_in: date | None = None
    recent_rate: float | None = None
    baseline_rate: float | None = None
    drop_window: tuple[date, date] | None = None
    gap_amber: bool = False
    """True when a short gap (not only a drop) is part of an amber."""

    def as_dict(self) -> dict[str, Any]:
        return {"level": self.level.value, "reasons": list(self.reasons),
                "kind": self.kind.value if self.kind else None, "episode": self.episode,
                "gap_days": [d.isoformat() for d in self.gap_days],
                "last_clock_in": self.last_clock_in.isoformat() if self.last_clock_in else None,
                "recent_rate": self.recent_rate, "baseline_rate": self.baseline_rate,
                "drop_window": [d.isoformat() for d in self.drop_window] if self.drop_window else None}


def _rate(days: list[date], present: set[date]) -> float:
    return sum(1 for d in days if d in present) / len(days)


def assess(*, through: date, is_working_day: Callable[[date], bool], clock_in_days: Iterable[date],
           leave_days: Iterable[date], covered: Callable[[date], bool], rules: AttritionRules = DEFAULT_RULES,
           hire_date: date | None = None, start: date | None = None) -> Assessment:
    """Red / amber / green for one employee, evaluating the days up to and including ``through``
    (usually yesterday: today's clock-ins are not all in yet). ``start`` bounds the walk back
    (default :func:`lookback_start`)."""
    present = {d for d in clock_in_days if d <= through}
    leave = set(leave_days)
    start = start or lookback_start(through, rules)
    if hire_date is not None:
        start = max(start, hire_date)
    last_clock_in = max((d for d in present if d >= start), default=None)

    evaluable: list[date] = []  # newest first
    gap: list[date] = []
    gap_open, started = True, False
    d = through
    while d >= start:
        if d in present:
            gap_open, started = False, True
            if is_working_day(d) and covered(d) and d not in leave:
                evaluable.append(d)
        elif is_working_day(d):
            if not covered(d) and not started:
                pass  # the data does not reach this far yet: no claim, keep walking back
            elif d in leave or not covered(d):
                gap_open, started = False, True
            else:
                evaluable.append(d)
                started = True
                if gap_open:
                    gap.append(d)
        d -= timedelta(days=1)
    gap.reverse()

    reasons: list[str] = []
    level, kind, episode = RiskLevel.GREEN, None, None
    n = len(gap)
    days_text = "、".join(day_label(x) for x in gap[:10]) + ("等" if n > 10 else "")
    since = f"，最后打卡 {last_clock_in.isoformat()}" if last_clock_in else "，回溯期内无打卡记录"
    if n >= rules.red_consecutive_days:
        level, kind, episode = RiskLevel.RED, RiskKind.GAP, f"gap:{gap[0].isoformat()}"
        reasons.append(f"连续 {n} 个工作日（{days_text}）未打卡且无请假记录（红色预警阈值 "
                       f"{rules.red_consecutive_days} 天）{since}")
    elif n and rules.amber_consecutive_days and n >= rules.amber_consecutive_days:
        level, kind, episode = RiskLevel.AMBER, RiskKind.GAP, f"gap:{gap[0].isoformat()}"
        reasons.append(f"连续 {n} 个工作日（{days_text}）未打卡且无请假记录{since}")

    recent_rate = baseline_rate = None
    window = None
    r_n, b_n = rules.drop_recent_days, rules.drop_baseline_days
    if rules.drop_enabled and len(evaluable) >= r_n + (b_n + 1) // 2:
        recent = evaluable[:r_n]
        baseline = evaluable[r_n:r_n + b_n]
        recent_rate, baseline_rate = _rate(recent, present), _rate(baseline, present)
        window = (recent[-1], recent[0])
        threshold = baseline_rate * (1 - rules.drop_percent / 100)
        if baseline_rate >= 0.5 and recent_rate <= threshold + 1e-9 and recent_rate < baseline_rate:
            drop = round((1 - recent_rate / baseline_rate) * 100)
            reasons.append(f"近 {len(recent)} 个工作日出勤 {round(recent_rate * len(recent))} 天"
                           f"（{recent_rate:.0%}），此前 {len(baseline)} 个工作日出勤 "
                           f"{round(baseline_rate * len(baseline))} 天（{baseline_rate:.0%}），下降 {drop}%"
                           f"（阈值 {rules.drop_percent}%）")
            if level == RiskLevel.GREEN:
                level, kind, episode = RiskLevel.AMBER, RiskKind.DROP, f"drop:{window[0].isoformat()}"
    if level == RiskLevel.GREEN:
        reasons.append("出勤正常" + (f"，最后打卡 {last_clock_in.isoformat()}" if last_clock_in else ""))
    return Assessment(level=level, reasons=reasons, kind=kind, episode=episode, gap_days=gap,
                      last_clock_in=last_clock_in, recent_rate=recent_rate, baseline_rate=baseline_rate,
                      drop_window=window, gap_amber=kind == RiskKind.GAP and level == RiskLevel.AMBER)


@dataclass(frozen=True)
class Dismissal:
    """A false alarm HR dismissed: the episode it silenced (and, for a drop, its window's last day)."""

    episode: str
    window_last: date | None = None


def dismissed(a: Assessment, dismissals: Iterable[Dismissal]) -> Dismissal | None:
    """The dismissal that silences this assessment's episode, if any."""
    if a.episode is None:
        return None
    for dm in dismissals:
        if dm.episode == a.episode:
            return dm
        if a.kind == RiskKind.DROP and dm.episode.startswith("drop:") and a.drop_window is not None \
                and dm.window_last is not None and a.drop_window[0] <= dm.window_last:
            return dm
    return None


def sort_key(a: Assessment) -> tuple[int, int]:
    return _ORDER[a.level], -len(a.gap_days)
