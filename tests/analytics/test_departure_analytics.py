"""getDepartureAnalytics against the hand-counted world of conftest.py, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date

import pytest

from tests.analytics.conftest import NOW
from tests.cases.test_analytics import _audit

N = None
REASONS = ["career_development", "compensation", "family", "health", "relocation", "further_study",
           "work_environment", "other", "unspecified"]
MONTHS = ["2026-01", "2026-02", "2026-03", "2026-04", "2026-05", "2026-06"]

# Counted by hand from the table in conftest.py (before suppression).
HAND_REASON_MONTH = {
    "career_development": [4, 3, 0, 6, 0, 0],
    "compensation": [2 + 3, 0, 0, 5, 0, 0],
    "family": [0, 1 + 2, 0, 0, 0, 0],
    "other": [2, 0, 0, 0, 0, 0],
    "unspecified": [0, 0, 0, 1, 0, 0],
}
HAND_DEPT_REASON = {  # departments sorted by name: 市场部, 研发部, 财务部 (code point order)
    "市场部": {"career_development": 6, "compensation": 3, "other": 2},
    "研发部": {"career_development": 7, "compensation": 7, "family": 1, "unspecified": 1},
    "财务部": {"family": 2},
}


def _query(**kw):
    from qianli.services.analytics import make_query

    return make_query(start=kw.pop("start", date(2026, 1, 1)), end=kw.pop("end", date(2026, 6, 30)),
                      today=NOW.date(), **kw)


def _run(db_session, world, role="hr_manager", **kw):
    from qianli.services.analytics import departure_analytics
    from qianli.services.review import get_reviewer

    user = world["users"][role]
    reviewer = get_reviewer(db_session, user.id, user.company_id)
    return departure_analytics(db_session, reviewer, _query(**kw), now=NOW)


def _matrix(rows_by_key, row_keys, n_cols):
    return [list(rows_by_key.get(k, [0] * n_cols)) for k in row_keys]


def test_reason_by_month_matches_the_hand_count_with_small_groups_suppressed(db_session, world):
    a = _run(db_session, world)
    c = a.chart("by_reason_period")
    assert [k for k, _ in c.rows] == REASONS
    assert [k for k, _ in c.columns] == MONTHS
    assert [label for _, label in c.columns][:2] == ["2026年1月", "2026年2月"]
    raw = _matrix(HAND_REASON_MONTH, REASONS, 6)
    t = c.table
    assert t.total == 29
    assert t.column_totals == [11, 6, 0, 12, 0, 0]
    # groups below 5 are never shown: family (3 in February), other (2), the absconding case without reason (1)
    i = REASONS.index
    assert t.cells[i("family")][1] is None and t.row_totals[i("family")] is None
    assert t.cells[i("other")][0] is None and t.row_totals[i("other")] is None
    assert t.cells[i("unspecified")][3] is None and t.row_totals[i("unspecified")] is None
    # every published number is the hand count; empty reasons stay published zeros
    for r, row in enumerate(t.cells):
        for col, v in enumerate(row):
            assert v is None or v == raw[r][col]
    assert t.cells[i("health")] == [0] * 6 and t.row_totals[i("health")] == 0
    _audit(raw, t)  # no published number is small, no hidden one can be computed back


def test_quarters_and_types_hand_computed(db_session, world):
    a = _run(db_session, world, granularity="quarter")
    c = a.chart("by_type_period")
    assert [k for k, _ in c.columns] == ["2026-Q1", "2026-Q2"]
    assert [k for k, _ in c.rows] == ["resignation", "absconding", "agreement"]
    # raw: resignation 15 | 11, absconding 0 | 1, agreement 2 | 0. The 1 and the 2 are hidden; their columns
    # then hide 11 and 15 (else 12 - 11 = 1 and 17 - 15 = 2), and the row totals 26, 1, 2 with them.
    assert c.table.cells == [[N, N], [0, N], [N, 0]]
    assert c.table.row_totals == [N, N, N]
    assert c.table.column_totals == [17, 12]
    assert c.table.total == 29
    reasons = a.chart("by_reason_period").table
    assert reasons.column_totals == [17, 12]


def test_department_tables(db_session, world):
    a = _run(db_session, world)
    c = a.chart("by_department_reason")
    assert [k for k, _ in c.rows] == ["市场部", "研发部", "财务部"]
    raw = [[HAND_DEPT_REASON[d].get(r, 0) for r in REASONS] for d in ("市场部", "研发部", "财务部")]
    t = c.table
    assert t.row_totals[2] is None  # 财务部: 2 people
    assert t.total == 29
    for r, row in enumerate(t.cells):
        for col, v in enumerate(row):
            assert v is None or v == raw[r][col]
    _audit(raw, t)
    by_month = a.chart("by_department_period").table
    _audit([[5, 0, 0, 6, 0, 0], [6, 4, 0, 6, 0, 0], [0, 2, 0, 0, 0, 0]], by_month)


def test_metrics_hand_computed_and_suppressed_with_their_department(db_session, world):
    a = _run(db_session, world)
    rows = {r.key: r for r in a.metrics}
    rd = rows["研发部"]
    assert rd.departures == 16
    assert rd.close_median_days == 35.0  # 30 31 35 40 60
    assert rd.close_p90_days == 52.0  # 40 + 0.6 x (60 - 40)
    assert rd.letters_overdue_share == pytest.approx(4 / 15, abs=1e-4)  # 3 late (one at 00:30 Beijing) + 1 missing
    assert rd.reminders_per_case == pytest.approx(round(4 / 15, 2))  # slots 1,2,3 + slot 1 over 15 resignations
    assert rd.handover_median_days == 3.0  # 2 3 3 5 10 (the case with an open task is not complete)
    assert rd.rehire_rate == 0.125  # 2 of 16
    # 财务部 (2 people) is hidden, and 市场部 with it: 29 - 16 would otherwise give 财务部 away
    assert rows["财务部"].departures is None and rows["财务部"].letters_overdue_share is None
    assert rows["市场部"].departures is None and rows["市场部"].close_median_days is None
    o = a.overall
    assert o.departures == 29
    assert o.close_median_days == 34.0  # 30 31 33 34 35 40 60
    assert o.close_p90_days == 48.0  # 40 + 0.4 x 20
    assert o.letters_overdue_share == pytest.approx(round(5 / 26, 4))
    assert o.reminders_per_case == pytest.approx(round(6 / 26, 2))
    assert o.handover_median_days == 3.0  # 1 2 3 3 4 5 10
    assert o.rehire_rate == pytest.approx(round(3 / 29, 4))
    assert rows["市场部"].rehire_rate is None and rows["市场部"].handover_median_days is None


def test_department_head_sees_only_their_department(db_session, world):
    a = _run(db_session, world, role="dept_head")
    assert a.scope_department == "研发部"
    assert a.overall.departures == 16
    assert [k for k, _ in a.chart("by_department_period").rows] == ["研发部"]
    assert a.chart("by_reason_period").table.total == 16
    # asking for another department gives nothing, not 市场部's numbers
    other = _run(db_session, world, role="dept_head", department="市场部")
    assert other.overall.departures == 0
    assert other.chart("by_reason_period").table.total == 0


def test_filters(db_session, world):
    a = _run(db_session, world, departure_type="resignation")
    assert a.overall.departures == 26
    assert [k for k, _ in a.chart("by_type_period").rows] == ["resignation"]
    m = _run(db_session, world, department="市场部")
    assert m.overall.departures == 11
    assert m.chart("by_reason_period").table.cells[REASONS.index("career_development")][3] == 6
    narrow = _run(db_session, world, start=date(2026, 2, 1), end=date(2026, 2, 28))
    assert narrow.overall.departures == 6
    assert [k for k, _ in narrow.chart("by_reason_period").columns] == ["2026-02"]


def test_foreign_company_sees_none_of_it(db_session, world):
    a = _run(db_session, world, role="foreign")
    assert a.overall.departures is None  # their one case is a group of one
    assert a.chart("by_reason_period").table.total is None


@pytest.mark.parametrize("kw,code", [
    ({"start": date(2026, 5, 1), "end": date(2026, 4, 1)}, "invalid_period"),
    ({"start": date(2020, 1, 1), "end": date(2026, 6, 30)}, "period_too_long"),
    ({"granularity": "week"}, "invalid_granularity"),
    ({"departure_type": "fired"}, "invalid_departure_type"),
])
def test_bad_queries(kw, code):
    from cases.errors import InvalidInput

    with pytest.raises(InvalidInput) as err:
        _query(**kw)
    assert err.value.code == code
