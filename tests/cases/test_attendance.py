"""The early-warning rules (cases/attendance.py): gaps across holidays and 调休, leave, coverage, drops,
episodes and dismissals, strict rule parsing. Pure: the bundled State Council schedules only."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from cases.attendance import (DEFAULT_RULES, AttritionRules, Dismissal, RiskKind, RiskLevel, RuleError, assess,
                              dismissed, parse_rules)
from cases.calendar import ChineseCalendar

CAL = ChineseCalendar()


def days(first: str, last: str) -> list[date]:
    d, end, out = date.fromisoformat(first), date.fromisoformat(last), []
    while d <= end:
        out.append(d)
        d += timedelta(days=1)
    return out


def working(first: str, last: str) -> list[date]:
    return [d for d in days(first, last) if CAL.is_working_day(d)]


def run(through: str, present: list[date], *, leave=(), covered_from="2024-01-01", covered_to="2099-12-31",
        rules: AttritionRules = DEFAULT_RULES, hire: str | None = None):
    lo, hi = date.fromisoformat(covered_from), date.fromisoformat(covered_to)
    return assess(through=date.fromisoformat(through), is_working_day=CAL.is_working_day, clock_in_days=present,
                  leave_days=set(leave), covered=lambda d: lo <= d <= hi, rules=rules,
                  hire_date=date.fromisoformat(hire) if hire else None)


# 2024 National Day: 10-01..10-07 off; Sunday 09-29 and Saturday 10-12 are 调休 working days.
# Present every working day up to and including Sunday 09-29, then gone.
PRESENT_2024 = working("2024-08-01", "2024-09-29")


@pytest.mark.parametrize("through,level,gap", [
    ("2024-09-29", RiskLevel.GREEN, []),                       # clocked in on the 调休 Sunday
    ("2024-09-30", RiskLevel.AMBER, ["2024-09-30"]),            # one working day
    ("2024-10-01", RiskLevel.AMBER, ["2024-09-30"]),            # holidays do not count ...
    ("2024-10-07", RiskLevel.AMBER, ["2024-09-30"]),            # ... for the whole week
    ("2024-10-08", RiskLevel.AMBER, ["2024-09-30", "2024-10-08"]),
    ("2024-10-09", RiskLevel.RED, ["2024-09-30", "2024-10-08", "2024-10-09"]),  # the third working day
])
def test_gap_across_national_day(through, level, gap):
    a = run(through, PRESENT_2024)
    assert a.level == level
    assert [d.isoformat() for d in a.gap_days] == gap
    if level != RiskLevel.GREEN:
        assert a.episode == "gap:2024-09-30" and a.kind == RiskKind.GAP


# 2025: National Day + Mid-Autumn 10-01..10-08 off; Saturday 10-11 is a 调休 working day.
PRESENT_2025 = working("2025-08-01", "2025-10-09")


@pytest.mark.parametrize("through,level,n", [
    ("2025-10-09", RiskLevel.GREEN, 0),
    ("2025-10-10", RiskLevel.AMBER, 1),
    ("2025-10-11", RiskLevel.AMBER, 2),   # the 调休 Saturday is a working day
    ("2025-10-12", RiskLevel.AMBER, 2),   # Sunday is not
    ("2025-10-13", RiskLevel.RED, 3),     # Friday, 调休 Saturday, Monday
])
def test_gap_over_swapped_saturday(through, level, n):
    a = run(through, PRESENT_2025)
    assert (a.level, len(a.gap_days)) == (level, n)
    if n == 3:
        assert [d.isoformat() for d in a.gap_days] == ["2025-10-10", "2025-10-11", "2025-10-13"]
        assert "连续 3 个工作日" in a.reasons[0] and "10月11日" in a.reasons[0]


def test_saturday_counted_as_weekend_would_be_wrong():
    """The same absence with Saturday 10-11 taken as a weekend gives only two days: the calendar matters."""
    naive = assess(through=date(2025, 10, 13), is_working_day=lambda d: d.weekday() < 5 and not
                   date(2025, 10, 1) <= d <= date(2025, 10, 8), clock_in_days=PRESENT_2025, leave_days=(),
                   covered=lambda d: True)
    assert naive.level == RiskLevel.AMBER
    assert run("2025-10-13", PRESENT_2025).level == RiskLevel.RED


def test_leave_closes_the_gap():
    """Approved leave on 10-10 and 10-11: only Monday 10-13 is an absence (amber, not red)."""
    a = run("2025-10-13", PRESENT_2025, leave=[date(2025, 10, 10), date(2025, 10, 11)])
    assert a.level == RiskLevel.AMBER and [d.isoformat() for d in a.gap_days] == ["2025-10-13"]
    full = run("2025-10-13", PRESENT_2025, leave=[date(2025, 10, 10), date(2025, 10, 11), date(2025, 10, 13)])
    assert full.level == RiskLevel.GREEN and full.gap_days == []


def test_leave_inside_run_breaks_consecutive_count():
    # absent 10-10, leave on the 调休 Saturday, absent 10-13 and 10-14: the run after the leave is 2 days
    a = run("2025-10-14", PRESENT_2025, leave=[date(2025, 10, 11)])
    assert a.level == RiskLevel.AMBER and len(a.gap_days) == 2


def test_weekend_clock_in_ends_the_gap():
    present = PRESENT_2025 + [date(2025, 10, 12)]  # came in on Sunday
    a = run("2025-10-13", present)
    assert a.level == RiskLevel.AMBER and [d.isoformat() for d in a.gap_days] == ["2025-10-13"]


def test_uncovered_days_make_no_claim():
    # the data ends on 10-10: the 调休 Saturday and Monday are unknown, only Friday counts
    a = run("2025-10-13", PRESENT_2025, covered_to="2025-10-10")
    assert a.level == RiskLevel.AMBER and len(a.gap_days) == 1
    # a hole in the data inside the run ends it: 10-13 covered again, 10-10 and 10-11 not
    hole = assess(through=date(2025, 10, 13), is_working_day=CAL.is_working_day, clock_in_days=PRESENT_2025,
                  leave_days=(), covered=lambda d: d not in (date(2025, 10, 10), date(2025, 10, 11)))
    assert [d.isoformat() for d in hole.gap_days] == ["2025-10-13"]


def test_hire_date_bounds_the_gap():
    a = run("2025-10-15", [], hire="2025-10-14", rules=AttritionRules(drop_enabled=False))
    assert len(a.gap_days) == 2 and a.level == RiskLevel.AMBER
    b = run("2025-10-15", [], hire="2025-10-16")
    assert b.level == RiskLevel.GREEN


@pytest.mark.parametrize("red,amber,n_absent,level", [
    (3, 1, 0, RiskLevel.GREEN), (3, 1, 2, RiskLevel.AMBER), (3, 1, 3, RiskLevel.RED),
    (5, 1, 4, RiskLevel.AMBER), (5, 1, 5, RiskLevel.RED), (3, 2, 1, RiskLevel.GREEN),
    (3, 0, 2, RiskLevel.GREEN), (1, 0, 1, RiskLevel.RED),
])
def test_thresholds(red, amber, n_absent, level):
    work = working("2025-11-03", "2025-12-12")
    present = work[:len(work) - n_absent]
    rules = AttritionRules(red_consecutive_days=red, amber_consecutive_days=amber, drop_enabled=False)
    assert run("2025-12-12", present, rules=rules).level == level


def test_drop_against_own_pattern():
    """Present every day for 20 working days, then 2 of the last 5 (not consecutive at the end)."""
    work = working("2025-11-03", "2025-12-12")  # 30 working days
    baseline, recent = work[:25], work[25:]
    present = baseline + [recent[0], recent[2], recent[4]]  # 3 of 5: 60% of 100% -> 40% drop: no alert
    assert run("2025-12-12", present).level == RiskLevel.GREEN
    present = baseline + [recent[1], recent[4]]  # 2 of 5: 40% -> a 60% drop, last day present
    a = run("2025-12-12", present)
    assert a.level == RiskLevel.AMBER and a.kind == RiskKind.DROP
    assert a.recent_rate == pytest.approx(0.4) and a.baseline_rate == pytest.approx(1.0)
    assert a.episode == f"drop:{recent[0].isoformat()}" and "下降 60%" in a.reasons[0]
    assert run("2025-12-12", present, rules=AttritionRules(drop_percent=70)).level == RiskLevel.GREEN
    assert run("2025-12-12", present, rules=AttritionRules(drop_enabled=False)).level == RiskLevel.GREEN


def test_drop_needs_history_and_a_pattern():
    work = working("2025-11-03", "2025-12-12")
    assert run("2025-12-12", [work[-4], work[-1]], covered_from=work[-8].isoformat()).kind != RiskKind.DROP
    # someone who clocked in 40% of the time has no pattern to drop from
    sparse = [d for i, d in enumerate(work[:25]) if i % 5 in (0, 1)] + [work[-1]]
    assert run("2025-12-12", sparse).kind != RiskKind.DROP


def test_dismissal_silences_the_episode_not_the_next():
    first = run("2025-10-13", PRESENT_2025)
    dm = Dismissal(first.episode)
    assert dismissed(first, [dm]) == dm
    # the same gap a day later: the same episode, still dismissed
    later = run("2025-10-14", PRESENT_2025)
    assert later.episode == first.episode and dismissed(later, [dm]) == dm
    # back on 10-14 and 10-15, gone again from 10-16: a new gap, a new episode
    again = run("2025-10-20", PRESENT_2025 + [date(2025, 10, 14), date(2025, 10, 15)])
    assert again.level == RiskLevel.RED and again.episode == "gap:2025-10-16"
    assert dismissed(again, [dm]) is None


def test_dismissed_drop_until_a_fresh_window():
    work = working("2025-11-03", "2025-12-31")
    rules = AttritionRules(drop_percent=30)
    present = work[:25] + [work[26], work[29]]
    a = run(work[29].isoformat(), present, rules=rules)
    assert a.kind == RiskKind.DROP
    dm = Dismissal(a.episode, a.drop_window[1])
    # window moved by one day (3 of 5 against 19 of 20): still a drop, overlapping the dismissed window
    b = run(work[30].isoformat(), present + [work[30]], rules=rules)
    assert b.kind == RiskKind.DROP and b.episode != a.episode and dismissed(b, [dm]) == dm
    # five working days later the recent window starts after the dismissed one ended: alerts again
    late = [work[31], work[35]]
    c = run(work[35].isoformat(), present + [work[30]] + late, rules=rules)
    assert c.kind == RiskKind.DROP and c.drop_window[0] > dm.window_last and dismissed(c, [dm]) is None


def test_parse_rules_strict():
    assert parse_rules({}) == DEFAULT_RULES
    assert parse_rules({"red_consecutive_days": 5, "amber_consecutive_days": 2}).red_consecutive_days == 5
    for bad, field in [({"red_consecutive_days": 0}, "red_consecutive_days"),
                       ({"red_consecutive_days": "3"}, "red_consecutive_days"),
                       ({"red_consecutive_days": True}, "red_consecutive_days"),
                       ({"drop_percent": 5}, "drop_percent"), ({"drop_enabled": 1}, "drop_enabled"),
                       ({"red_consecutive_days": 2, "amber_consecutive_days": 2}, "amber_consecutive_days"),
                       ({"surprise": 1}, "surprise"), ({"drop_baseline_days": 3.5}, "drop_baseline_days")]:
        with pytest.raises(RuleError) as exc:
            parse_rules(bad)
        assert field in exc.value.errors
