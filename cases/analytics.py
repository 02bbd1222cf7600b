"""Departure analytics as pure rules: reporting periods in Beijing time, small-group suppression
(k-anonymity with complementary suppression) and percentiles from histograms. Standard library only.

The service (``qianli.services.analytics``) groups cases in SQL and hands this module group counts,
never rows; everything here is arithmetic on those counts, so it is table-tested without a database.

Suppression rule (what a published table guarantees). A table has cells, a total per row, a total
per column and a grand total; every one of them is a *quantity*. A *line* is a set of quantities
whose sum is another quantity: each row (its cells sum to the row total), each column, the row
totals (summing to the grand total) and the column totals.

1. Primary suppression: any quantity counting between 1 and ``k - 1`` people is suppressed.
2. Complementary suppression, line by line: in every line whose total is published, the suppressed
   members are either none, or at least two that together count at least ``k`` people. While a line
   breaks this, a published non-zero member is suppressed too: preferably one whose other line
   already hides something (that pairs the two lines up, fewer cells are lost), then the smallest,
   then the first; with no such member, the line's total is suppressed.
3. Audit: the published numbers and the lines form linear equations in the suppressed quantities;
   any suppressed quantity they determine exactly (Gaussian elimination over the rationals) gets
   another complementary suppression in one of its lines, and steps 2-3 repeat until none is
   determined.

So subtracting published numbers from published totals never yields a suppressed number, and never
isolates fewer than ``k`` people within a line: the most anyone learns is that some suppressed
cells together hold ``>= k`` people. Zero cells stay published (they say nobody is in that group).
Not covered: bounds from non-negativity across several lines, linear combinations across several
different tables, and differencing two differently filtered queries (README, Analytics).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from datetime import date, timedelta
from enum import Enum
from typing import Iterable, Mapping, Sequence

__all__ = ["K_ANONYMITY", "Granularity", "month_key", "quarter_key", "period_key", "period_label", "period_keys",
           "quarter_of", "quarter_bounds", "previous_quarter", "Protected", "protect_table", "protect_series",
           "quantile", "share", "mean", "MAX_PERIOD_MONTHS", "months_between"]

K_ANONYMITY = 5
"""Groups of fewer people than this are never published."""

MAX_PERIOD_MONTHS = 60
"""The longest analysis period (five years of monthly columns)."""


class Granularity(str, Enum):
    MONTH = "month"
    QUARTER = "quarter"


# ---- periods (Beijing dates) ---------------------------------------------------------------------------

def quarter_of(month: int) -> int:
    return (month - 1) // 3 + 1


def month_key(year: int, month: int) -> str:
    return f"{year:04d}-{month:02d}"


def quarter_key(year: int, quarter: int) -> str:
    return f"{year:04d}-Q{quarter}"


def period_key(year: int, month: int, granularity: Granularity | str) -> str:
    """The column key of a case counted in ``year``-``month``: ``2026-03`` or ``2026-Q1``."""
    if Granularity(granularity) is Granularity.QUARTER:
        return quarter_key(year, quarter_of(month))
    return month_key(year, month)


def period_label(key: str) -> str:
    """zh-CN: ``2026-03`` -> 2026年3月, ``2026-Q1`` -> 2026年第1季度."""
    year, _, rest = key.partition("-")
    if rest.startswith("Q"):
        return f"{int(year)}年第{int(rest[1:])}季度"
    return f"{int(year)}年{int(rest)}月"


def months_between(start: date, end: date) -> int:
    """How many calendar months ``start`` .. ``end`` touch (both inclusive; 1 for the same month)."""
    return (end.year - start.year) * 12 + end.month - start.month + 1


def period_keys(start: date, end: date, granularity: Granularity | str) -> list[str]:
    """Every period key from ``start`` to ``end`` (inclusive), in order, without gaps."""
    keys: list[str] = []
    y, m = start.year, start.month
    while (y, m) <= (end.year, end.month):
        k = period_key(y, m, granularity)
        if not keys or keys[-1] != k:
            keys.append(k)
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return keys


def quarter_bounds(year: int, quarter: int) -> tuple[date, date]:
    """First and last day of a quarter."""
    if quarter not in (1, 2, 3, 4):
        raise ValueError(f"quarter must be 1-4, not {quarter}")
    first = date(year, 3 * quarter - 2, 1)
    nxt = date(year + 1, 1, 1) if quarter == 4 else date(year, 3 * quarter + 1, 1)
    return first, nxt - timedelta(days=1)


def previous_quarter(today: date) -> tuple[int, int]:
    """(year, quarter) of the quarter before the one ``today`` is in."""
    q = quarter_of(today.month)
    return (today.year - 1, 4) if q == 1 else (today.year, q - 1)


# ---- suppression ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Protected:
    """A table as published: ``None`` marks a suppressed number."""

    cells: list[list[int | None]]
    row_totals: list[int | None]
    column_totals: list[int | None]
    total: int | None
    primary: int
    """Quantities suppressed because they count 1 to k-1 people."""
    complementary: int
    """Quantities suppressed only so that the primary ones cannot be computed back."""

    @property
    def suppressed_cells(self) -> int:
        return sum(v is None for row in self.cells for v in row)


def protect_table(counts: Sequence[Sequence[int]], k: int = K_ANONYMITY) -> Protected:
    """Apply the module's suppression rule to a rows x columns table of counts (margins computed here)."""
    n_rows = len(counts)
    n_cols = len(counts[0]) if n_rows else 0
    if any(len(r) != n_cols for r in counts):
        raise ValueError("ragged table")
    if any(v < 0 for r in counts for v in r):
        raise ValueError("negative count")
    # Quantities: cells row-major, then row totals, then column totals, then the grand total.
    values: list[int] = [int(v) for r in counts for v in r]
    row_tot = len(values)
    values += [sum(r) for r in counts]
    col_tot = len(values)
    values += [sum(counts[i][j] for i in range(n_rows)) for j in range(n_cols)]
    grand = len(values)
    values.append(sum(values[row_tot:col_tot]))

    def cell(i: int, j: int) -> int:
        return i * n_cols + j

    lines: list[tuple[list[int], int]] = []
    lines += [([cell(i, j) for j in range(n_cols)], row_tot + i) for i in range(n_rows)]
    lines += [([cell(i, j) for i in range(n_rows)], col_tot + j) for j in range(n_cols)]
    lines.append(([row_tot + i for i in range(n_rows)], grand))
    lines.append(([col_tot + j for j in range(n_cols)], grand))

    suppressed = [0 < v < k for v in values]
    primary = sum(suppressed)

    lines_of: dict[int, list[int]] = {}
    for n, (members, total) in enumerate(lines):
        for q in (*members, total):
            lines_of.setdefault(q, []).append(n)

    def closes_cycle(q: int, current: int) -> bool:
        """``q`` also sits in another line that already hides something (hiding it pairs two lines up)."""
        return any(n != current and any(suppressed[m] for m in lines[n][0]) for n in lines_of[q])

    def complement(line_no: int) -> bool:
        """Hide one more quantity of this line; False when nothing is left to hide."""
        members, total = lines[line_no]
        candidates = [m for m in members if not suppressed[m] and values[m] > 0]
        if candidates:
            suppressed[min(candidates, key=lambda m: (not closes_cycle(m, line_no), values[m], m))] = True
            return True
        if not suppressed[total]:
            suppressed[total] = True
            return True
        return False

    while True:
        changed = False
        for n, (members, total) in enumerate(lines):
            if suppressed[total]:
                continue
            hidden = [m for m in members if suppressed[m]]
            if hidden and (len(hidden) < 2 or sum(values[m] for m in hidden) < k):
                complement(n)
                changed = True
        if changed:
            continue
        exposed = _determined(lines, suppressed)
        if not exposed:
            break
        # Add an unknown to an equation an exposed quantity is in: first where it is a member, then
        # where it is the total; failing that (only zeros left around it), hide the grand total.
        tries = [n for q in exposed for n in sorted(lines_of[q], key=lambda n: lines[n][1] == q)]  # noqa: B023
        if not any(complement(n) for n in tries):
            if suppressed[grand]:
                break  # everything that could be hidden is hidden
            suppressed[grand] = True

    def out(i: int) -> int | None:
        return None if suppressed[i] else values[i]

    return Protected(
        cells=[[out(cell(i, j)) for j in range(n_cols)] for i in range(n_rows)],
        row_totals=[out(row_tot + i) for i in range(n_rows)],
        column_totals=[out(col_tot + j) for j in range(n_cols)],
        total=out(grand),
        primary=primary,
        complementary=sum(suppressed) - primary,
    )


def _determined(lines: list[tuple[list[int], int]], suppressed: list[bool]) -> list[int]:
    """The suppressed quantities the published ones determine exactly (sorted)."""
    unknowns = sorted({q for members, total in lines for q in (*members, total) if suppressed[q]})
    col = {q: i for i, q in enumerate(unknowns)}
    rows: list[list[Fraction]] = []
    for members, total in lines:
        coeffs = [Fraction(0)] * len(unknowns)
        for m in members:
            if suppressed[m]:
                coeffs[col[m]] += 1
        if suppressed[total]:
            coeffs[col[total]] -= 1
        if any(coeffs):
            rows.append(coeffs)
    # Reduced row echelon form; an unknown is determined iff its pivot row has no other non-zero entry.
    pivots: list[tuple[int, int]] = []
    r = 0
    for c in range(len(unknowns)):
        pr = next((i for i in range(r, len(rows)) if rows[i][c] != 0), None)
        if pr is None:
            continue
        rows[r], rows[pr] = rows[pr], rows[r]
        lead = rows[r][c]
        rows[r] = [v / lead for v in rows[r]]
        for i in range(len(rows)):
            if i != r and rows[i][c] != 0:
                f = rows[i][c]
                rows[i] = [a - f * b for a, b in zip(rows[i], rows[r], strict=True)]
        pivots.append((r, c))
        r += 1
        if r == len(rows):
            break
    return sorted(unknowns[c] for r, c in pivots if sum(1 for v in rows[r] if v != 0) == 1)


def protect_series(values: Sequence[int], k: int = K_ANONYMITY) -> tuple[list[int | None], int | None]:
    """A list of counts with its total, protected as a one-row table: (published values, published total)."""
    p = protect_table([list(values)], k)
    return p.cells[0], p.total


# ---- statistics -----------------------------------------------------------------------------------------

def quantile(histogram: Mapping[int, int] | Iterable[tuple[int, int]], q: float) -> float | None:
    """The ``q`` quantile (0..1) of the values a histogram {value: count} describes, by linear
    interpolation between the two nearest ranks (PostgreSQL's ``percentile_cont``, numpy's default).
    None for an empty histogram."""
    if not 0 <= q <= 1:
        raise ValueError("q must be within 0..1")
    pairs = sorted((histogram.items() if isinstance(histogram, Mapping) else histogram))
    pairs = [(v, c) for v, c in pairs if c > 0]
    n = sum(c for _, c in pairs)
    if n == 0:
        return None
    pos = (n - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)

    def at(rank: int) -> int:
        seen = 0
        for v, c in pairs:
            seen += c
            if rank < seen:
                return v
        return pairs[-1][0]

    a, b = at(lo), at(hi)
    return a + (b - a) * (pos - lo)


def share(part: int, whole: int, k: int = K_ANONYMITY) -> float | None:
    """part / whole rounded to 4 places; None (suppressed) when ``whole`` counts fewer than k people."""
    if whole < k or whole <= 0:
        return None
    return round(part / whole, 4)


def mean(total: float, count: int, k: int = K_ANONYMITY) -> float | None:
    """total / count rounded to 2 places; None (suppressed) when ``count`` is fewer than k people."""
    if count < k or count <= 0:
        return None
    return round(total / count, 2)
