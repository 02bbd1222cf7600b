"""Departure analytics rules: periods, suppression of small groups, quantiles (pure, no database)."""

from __future__ import annotations

import random
from datetime import date

import numpy as np
import pytest

from cases.analytics import (K_ANONYMITY, Granularity, mean, months_between, period_key, period_keys, period_label,
                             previous_quarter, protect_series, protect_table, quantile, quarter_bounds, share)

N = None


@pytest.mark.parametrize("start,end,gran,expected", [
    (date(2026, 1, 15), date(2026, 3, 2), "month", ["2026-01", "2026-02", "2026-03"]),
    (date(2025, 11, 30), date(2026, 2, 1), "quarter", ["2025-Q4", "2026-Q1"]),
    (date(2026, 3, 31), date(2026, 4, 1), "quarter", ["2026-Q1", "2026-Q2"]),
    (date(2026, 5, 5), date(2026, 5, 6), "month", ["2026-05"]),
    (date(2025, 12, 1), date(2026, 1, 1), "month", ["2025-12", "2026-01"]),
])
def test_period_keys(start, end, gran, expected):
    assert period_keys(start, end, gran) == expected


@pytest.mark.parametrize("year,month,gran,key,label", [
    (2026, 3, Granularity.MONTH, "2026-03", "2026年3月"),
    (2026, 3, Granularity.QUARTER, "2026-Q1", "2026年第1季度"),
    (2026, 10, "quarter", "2026-Q4", "2026年第4季度"),
    (2026, 12, "month", "2026-12", "2026年12月"),
])
def test_period_key_and_label(year, month, gran, key, label):
    assert period_key(year, month, gran) == key
    assert period_label(key) == label


def test_quarters():
    assert quarter_bounds(2026, 1) == (date(2026, 1, 1), date(2026, 3, 31))
    assert quarter_bounds(2024, 4) == (date(2024, 10, 1), date(2024, 12, 31))
    assert previous_quarter(date(2026, 1, 1)) == (2025, 4)
    assert previous_quarter(date(2026, 7, 1)) == (2026, 2)
    assert previous_quarter(date(2026, 6, 30)) == (2026, 1)
    assert months_between(date(2025, 12, 31), date(2026, 1, 1)) == 2
    with pytest.raises(ValueError):
        quarter_bounds(2026, 5)


@pytest.mark.parametrize("counts,cells,row_totals,col_totals,total", [
    # nothing small: everything published, zeros included
    ([[10, 5], [7, 0]], [[10, 5], [7, 0]], [15, 7], [17, 5], 22),
    # one small cell: its row and its column each hide a second cell, and those pair up
    ([[10, 3, 8], [6, 9, 7]], [[10, N, N], [6, N, N]], [21, 22], [16, 12, 15], 43),
    # a complement that closes a rectangle with the other primary cell is preferred
    ([[20, 1, 30], [25, 40, 2], [30, 30, 30]], [[20, N, N], [25, N, N], [30, 30, 30]], [51, 67, 90], [75, 71, 62], 208),
    # everything small: all cells and small margins hidden; the row total 7 too (else 10 - 7 = 3)
    ([[1, 2], [3, 4]], [[N, N], [N, N]], [N, N], [N, N], 10),
    # a total below k is itself suppressed
    ([[2, 1]], [[N, N]], [N], [N, N], N),
    ([[0, 0], [0, 0]], [[0, 0], [0, 0]], [0, 0], [0, 0], 0),
    # exactly k is published
    ([[5, 0]], [[5, 0]], [5], [5, 0], 5),
])
def test_protect_table_hand_computed(counts, cells, row_totals, col_totals, total):
    p = protect_table(counts)
    assert p.cells == cells
    assert p.row_totals == row_totals
    assert p.column_totals == col_totals
    assert p.total == total


def test_protect_series():
    # 3 is hidden; the next smallest (8) too, so 21 - 10 - 0 leaves 11 for two groups, not 3 for one
    assert protect_series([10, 3, 0, 8]) == ([10, N, 0, N], 21)
    assert protect_series([6, 7, 9]) == ([6, 7, 9], 22)
    assert protect_series([4]) == ([N], N)


def _quantities(counts):
    rows = [sum(r) for r in counts]
    cols = [sum(c) for c in zip(*counts, strict=True)]
    return rows, cols, sum(rows)


def _audit(counts, p, k=K_ANONYMITY):
    """Independent check with numpy: nothing small published, no line exposes a cell, no hidden number derivable."""
    n_rows, n_cols = len(counts), len(counts[0])
    rows, cols, grand = _quantities(counts)
    values = [v for r in counts for v in r] + rows + cols + [grand]
    published = [v for r in p.cells for v in r] + p.row_totals + p.column_totals + [p.total]
    for v, pub in zip(values, published, strict=True):
        assert pub is None or pub == v
        assert pub is None or not 0 < pub < k
    cell = lambda i, j: i * n_cols + j  # noqa: E731
    rt, ct, gt = n_rows * n_cols, n_rows * n_cols + n_rows, n_rows * n_cols + n_rows + n_cols
    lines = [([cell(i, j) for j in range(n_cols)], rt + i) for i in range(n_rows)]
    lines += [([cell(i, j) for i in range(n_rows)], ct + j) for j in range(n_cols)]
    lines += [([rt + i for i in range(n_rows)], gt), ([ct + j for j in range(n_cols)], gt)]
    hidden = [i for i, pub in enumerate(published) if pub is None]
    for members, total in lines:
        if published[total] is None:
            continue
        h = [m for m in members if published[m] is None]
        assert not h or (len(h) >= 2 and sum(values[m] for m in h) >= k), (counts, members)
    if not hidden:
        return
    col = {q: n for n, q in enumerate(hidden)}
    a = np.zeros((len(lines), len(hidden)))
    for r, (members, total) in enumerate(lines):
        for m in members:
            if m in col:
                a[r, col[m]] += 1
        if total in col:
            a[r, col[total]] -= 1
    rank = np.linalg.matrix_rank(a)
    for q, n in col.items():
        e = np.zeros((1, len(hidden)))
        e[0, n] = 1
        assert np.linalg.matrix_rank(np.vstack([a, e])) > rank, f"hidden quantity {q} derivable in {counts}"


@pytest.mark.parametrize("seed", range(60))
def test_protect_table_random_tables_pass_an_independent_audit(seed):
    rng = random.Random(seed)
    n_rows, n_cols = rng.randint(1, 6), rng.randint(1, 7)
    counts = [[rng.choice([0, 0, 1, 2, 3, 4, 5, 6, 8, 12, 30]) for _ in range(n_cols)] for _ in range(n_rows)]
    p = protect_table(counts)
    _audit(counts, p)
    assert p.suppressed_cells >= sum(1 for r in counts for v in r if 0 < v < K_ANONYMITY)


def test_protect_table_rejects_bad_input():
    with pytest.raises(ValueError):
        protect_table([[1, 2], [3]])
    with pytest.raises(ValueError):
        protect_table([[-1]])


@pytest.mark.parametrize("hist,q,expected", [
    ({10: 1, 20: 1}, 0.5, 15.0),
    ({10: 1, 20: 1, 30: 1}, 0.5, 20.0),
    ({1: 4, 100: 1}, 0.5, 1.0),
    ({5: 10}, 0.9, 5.0),
    ([(30, 2), (10, 1), (20, 1)], 0.9, 30.0),
    ({1: 1, 2: 1, 3: 1, 4: 1, 5: 1, 6: 1, 7: 1, 8: 1, 9: 1, 10: 1}, 0.9, 9.1),
    ({}, 0.5, None),
    ({3: 0}, 0.5, None),
])
def test_quantile(hist, q, expected):
    got = quantile(hist, q)
    assert got == pytest.approx(expected) if expected is not None else got is None


def test_quantile_matches_the_sorted_expansion():
    rng = random.Random(7)
    for _ in range(50):
        hist = {rng.randint(0, 90): rng.randint(0, 4) for _ in range(rng.randint(1, 12))}
        expanded = sorted(v for v, c in hist.items() for _ in range(c))
        for q in (0.5, 0.9):
            if expanded:
                assert quantile(hist, q) == pytest.approx(float(np.quantile(expanded, q)))


def test_share_and_mean_are_suppressed_below_k():
    assert share(2, 8) == 0.25
    assert share(1, 4) is None
    assert share(0, 0) is None
    assert mean(17, 5) == 3.4
    assert mean(9, 4) is None
