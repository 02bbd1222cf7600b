"""exportDepartureAnalytics: every dashboard chart as CSV (UTF-8 with BOM, so Excel reads Chinese) or
XLSX (openpyxl; one sheet per chart plus a 说明 sheet).

Suppressed numbers are written as ``*`` and a note says why; the numbers are exactly those of
getDepartureAnalytics (the same ``DepartureAnalytics`` object), so an export never shows what the
dashboard hides. Text that a spreadsheet would run as a formula (a department named ``=HYPERLINK(...)``)
is written with a leading apostrophe.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from cases.analytics import K_ANONYMITY
from cases.clock import beijing_text
from cases.departure import DEPARTURE_LABELS
from qianli.services.analytics import CHART_IDS, CHART_TITLES, DIMENSION_LABELS, METRIC_KEYS, DepartureAnalytics

__all__ = ["SUPPRESSED", "EXPORT_FORMATS", "chart_table", "export_csv", "export_xlsx", "export_filename",
           "suppression_note", "filters_text"]

SUPPRESSED = "*"
EXPORT_FORMATS = ("csv", "xlsx")
SHARE_COLUMNS = ("letters_overdue_share", "rehire_rate")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def suppression_note(k: int = K_ANONYMITY) -> str:
    return (f"注：{SUPPRESSED} 表示已抑制：该组人数少于 {k} 人，或为防止由合计反推而一并隐藏"
            f"（同一行或列中被隐藏的数字合计至少 {k} 人）。")


def filters_text(a: DepartureAnalytics) -> str:
    q = a.query
    parts = [f"统计期间：{q.start.isoformat()} 至 {q.end.isoformat()}（按离职通知送达日期，北京时间）",
             "粒度：" + ("季度" if q.granularity.value == "quarter" else "月")]
    if a.scope_department:
        parts.append(f"可见范围：{a.scope_department}")
    if q.department:
        parts.append(f"部门：{q.department}")
    if q.departure_type:
        parts.append(f"离职类型：{DEPARTURE_LABELS.get(q.departure_type, q.departure_type)}")
    return "；".join(parts)


def _safe_text(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_START) else value


def chart_table(a: DepartureAnalytics, chart_id: str) -> tuple[str, list[str], list[list[Any]]]:
    """(title, header, body rows) of one chart; suppressed numbers are None."""
    if chart_id == "metrics_by_department":
        m = a.metrics_as_dict()
        header = [DIMENSION_LABELS["department"], *[c["label"] for c in m["columns"]]]
        body = [[r["label"], *r["values"]] for r in m["rows"]]
        body.append([m["overall"]["label"], *m["overall"]["values"]])
        return CHART_TITLES[chart_id], header, body
    c = a.chart(chart_id)
    t = c.table
    header = [DIMENSION_LABELS[c.row_dimension], *[label for _, label in c.columns], "合计"]
    body = [[label, *t.cells[i], t.row_totals[i]] for i, (_, label) in enumerate(c.rows)]
    body.append(["合计", *t.column_totals, t.total])
    return c.title, header, body


def export_csv(a: DepartureAnalytics, chart_id: str) -> bytes:
    """One chart as CSV: header, one line per row, the totals line, a blank line, then the notes."""
    title, header, body = chart_table(a, chart_id)
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow([_safe_text(h) for h in header])
    for row in body:
        w.writerow([_safe_text(v) if isinstance(v, str) else (SUPPRESSED if v is None else v) for v in row])
    w.writerow([])
    w.writerow([f"{title}；{filters_text(a)}"])
    w.writerow([suppression_note(a.k)])
    return out.getvalue().encode("utf-8-sig")


def export_xlsx(a: DepartureAnalytics, chart_ids: list[str] | None = None) -> bytes:
    """The charts (default: all) as one workbook: a 说明 sheet, then one sheet per chart."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font

    ids = chart_ids or list(CHART_IDS)
    wb = Workbook()
    info = wb.active
    info.title = "说明"
    info.append(["离职数据分析"])
    info["A1"].font = Font(bold=True, size=14)
    info.append([filters_text(a)])
    info.append([f"生成时间：{beijing_text(a.generated_at)}（北京时间）"])
    info.append([suppression_note(a.k)])
    info.append(["离职人数：不含已撤回的申请；通知至结案以天计；辞职信逾期比例与人均催办次数仅计辞职（不含擅自离职、协商解除）；"
                 "交接完成：自首个交接任务创建至最后一项完成的天数（任务均已完成或取消的案件）；返聘率：离职人员中已在人才库标记返聘的比例。"])
    info.column_dimensions["A"].width = 110
    for chart_id in ids:
        title, header, body = chart_table(a, chart_id)
        ws = wb.create_sheet(_sheet_title(title))
        ws.append([_safe_text(h) for h in header])
        for cell in ws[1]:
            cell.font = Font(bold=True)
            cell.alignment = Alignment(horizontal="center")
        for row in body:
            ws.append([_safe_text(v) if isinstance(v, str) else (SUPPRESSED if v is None else v) for v in row])
        ws[f"A{ws.max_row}"].font = Font(bold=True)
        if chart_id == "metrics_by_department":
            for col, key in enumerate(METRIC_KEYS, start=2):
                if key in SHARE_COLUMNS:
                    for r in range(2, ws.max_row + 1):
                        ws.cell(row=r, column=col).number_format = "0.0%"
        ws.append([])
        ws.append([suppression_note(a.k)])
        ws.column_dimensions["A"].width = 18
        ws.freeze_panes = "B2"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _sheet_title(title: str) -> str:
    for ch in "[]:*?/\\":
        title = title.replace(ch, "-")
    return title[:31]


def export_filename(a: DepartureAnalytics, chart_id: str | None, fmt: str) -> str:
    q = a.query
    name = chart_id or "all"
    return f"departure-analytics-{name}-{q.start.isoformat()}-{q.end.isoformat()}.{fmt}"
