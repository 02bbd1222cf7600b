"""The analytics API: JSON, CSV and XLSX exports with the dashboard's numbers, and the quarterly report PDF."""

from __future__ import annotations

import csv
import io
import shutil
import subprocess

import pytest

BASE = "/api/v1/hr/analytics/departures"
Q = "from=2026-01-01&to=2026-06-30"


@pytest.fixture
def headers(factory, world):
    return {role: factory.hr_headers(u) for role, u in world["users"].items()}


def test_json_matches_the_service_and_marks_suppressed_as_null(client, headers):
    r = client.get(f"{BASE}?{Q}&granularity=quarter", headers=headers["hr_specialist"])
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["from"] == "2026-01-01" and body["to"] == "2026-06-30" and body["k_threshold"] == 5
    assert body["date_basis"] == "notice_arrival"
    assert [p["key"] for p in body["periods"]] == ["2026-Q1", "2026-Q2"]
    assert body["summary"]["departures"] == 29
    charts = {c["id"]: c for c in body["charts"]}
    assert set(charts) == {"by_reason_period", "by_department_period", "by_department_reason", "by_type_period",
                           "metrics_by_department"}
    types = charts["by_type_period"]
    assert [r["values"] for r in types["rows"]] == [[None, None], [0, None], [None, 0]]
    assert types["column_totals"] == [17, 12] and types["total"] == 29
    metrics = charts["metrics_by_department"]
    rd = next(r for r in metrics["rows"] if r["key"] == "研发部")
    assert rd["values"][:3] == [16, 35.0, 52.0]
    assert metrics["overall"]["values"][0] == 29


def test_department_head_and_errors(client, headers):
    r = client.get(f"{BASE}?{Q}", headers=headers["dept_head"])
    assert r.status_code == 200
    assert r.get_json()["summary"]["departures"] == 16
    assert r.get_json()["scope_department"] == "研发部"
    bad = client.get(f"{BASE}?from=2026-05-01&to=2026-04-01", headers=headers["hr_manager"])
    assert bad.status_code == 422 and bad.get_json()["code"] == "invalid_period"
    bad = client.get(f"{BASE}?granularity=week", headers=headers["hr_manager"])
    assert bad.status_code == 422
    bad = client.get(f"{BASE}?bogus=1", headers=headers["hr_manager"])
    assert bad.status_code == 422
    csv_without_chart = client.get(f"{BASE}/export?{Q}&format=csv", headers=headers["hr_manager"])
    assert csv_without_chart.status_code == 422 and csv_without_chart.get_json()["code"] == "chart_required"


def test_csv_export_has_a_bom_and_the_dashboard_numbers(client, headers):
    r = client.get(f"{BASE}/export?{Q}&format=csv&chart=by_reason_period", headers=headers["auditor"])
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in r.headers["Content-Disposition"]
    assert r.data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(r.data.decode("utf-8-sig"))))
    assert rows[0] == ["离职原因", "2026年1月", "2026年2月", "2026年3月", "2026年4月", "2026年5月", "2026年6月", "合计"]
    by_label = {row[0]: row[1:] for row in rows[1:] if row}
    assert by_label["家庭原因"][1] == "*" and by_label["家庭原因"][-1] == "*"
    assert by_label["健康原因"] == ["0"] * 7
    assert by_label["合计"] == ["11", "6", "0", "12", "0", "0", "29"]
    assert any("已抑制" in "".join(row) for row in rows)
    # the same numbers as the JSON
    chart = next(c for c in client.get(f"{BASE}?{Q}", headers=headers["auditor"]).get_json()["charts"]
                 if c["id"] == "by_reason_period")
    for row in chart["rows"]:
        assert by_label[row["label"]][:-1] == ["*" if v is None else str(v) for v in row["values"]]


def test_xlsx_export_every_chart(client, headers):
    from openpyxl import load_workbook

    r = client.get(f"{BASE}/export?{Q}&format=xlsx", headers=headers["hr_manager"])
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    wb = load_workbook(io.BytesIO(r.data))
    assert wb.sheetnames == ["说明", "离职原因 × 期间", "部门 × 期间", "部门 × 离职原因", "离职类型 × 期间", "各部门效率指标"]
    ws = wb["部门 × 期间"]
    rows = [[c.value for c in row] for row in ws.iter_rows()]
    assert rows[0][0] == "部门"
    total_row = next(row for row in rows if row[0] == "合计")
    assert total_row[1:8] == [11, 6, 0, 12, 0, 0, 29]
    fin = next(row for row in rows if row[0] == "财务部")
    assert fin[2] == "*" and fin[7] == "*"
    metrics = [[c.value for c in row] for row in wb["各部门效率指标"].iter_rows()]
    rd = next(row for row in metrics if row[0] == "研发部")
    assert rd[1:4] == [16, 35, 52]
    assert wb["各部门效率指标"].cell(row=2, column=5).number_format == "0.0%"
    one = client.get(f"{BASE}/export?{Q}&format=xlsx&chart=by_type_period", headers=headers["hr_manager"])
    assert load_workbook(io.BytesIO(one.data)).sheetnames == ["说明", "离职类型 × 期间"]


def test_export_neutralises_formulas_in_department_names(client, factory, db_session, world, headers):
    from qianli.models import Employee

    for emp in db_session.query(Employee).filter(Employee.department == "市场部"):
        emp.department = "=HYPERLINK(\"http://x\")"
    db_session.commit()
    r = client.get(f"{BASE}/export?{Q}&format=csv&chart=by_department_period", headers=headers["hr_manager"])
    text = r.data.decode("utf-8-sig")
    assert "'=HYPERLINK" in text
    assert "\n=HYPERLINK" not in text and not text.startswith("=")


def _pdftotext(data: bytes, tmp_path) -> str:
    assert shutil.which("pdftotext"), "poppler-utils (pdftotext) missing"
    p = tmp_path / "r.pdf"
    p.write_bytes(data)
    return subprocess.run(["pdftotext", "-layout", str(p), "-"], check=True, capture_output=True, text=True).stdout


def _chart_colours(data: bytes, tmp_path) -> set[tuple[int, int, int]]:
    """The ECharts palette colours found on the report's rendered pages (the charts' bars)."""
    from PIL import Image

    from qianli.services.analytics_report import PALETTE

    p = tmp_path / "c.pdf"
    p.write_bytes(data)
    subprocess.run(["pdftoppm", "-r", "40", "-png", str(p), str(tmp_path / "page")], check=True)
    found: set[tuple[int, int, int]] = set()
    for png in sorted(tmp_path.glob("page*.png")):
        img = Image.open(png).convert("RGB")
        colours = {c for _, c in img.getcolors(maxcolors=1 << 20)}
        found |= {c for c in PALETTE if c in colours}
    return found


def test_report_pdf_on_demand(client, headers, tmp_path):
    r = client.get(f"{BASE}/report?year=2026&quarter=1", headers=headers["hr_manager"])
    assert r.status_code == 200, r.data[:300]
    assert r.headers["Content-Type"] == "application/pdf"
    assert r.headers["X-Report-Source"] == "generated"
    text = _pdftotext(r.data, tmp_path)
    for expected in ("2026年第1季度离职分析报告", "分析科技有限公司", "本期离职人数：17 人", "离职原因分布", "各部门离职人数",
                     "各月离职人数", "效率指标", "口径说明", "少于 5 人"):
        assert expected in text, expected
    assert len(_chart_colours(r.data, tmp_path)) >= 2  # bars drawn in the dashboard's colours
    head = client.get(f"{BASE}/report?year=2026&quarter=1", headers=headers["dept_head"])
    assert head.status_code == 200
    head_text = _pdftotext(head.data, tmp_path)
    assert "（研发部）" in head_text and "本期离职人数：10 人" in head_text
    assert client.get(f"{BASE}/report?year=2099&quarter=1", headers=headers["hr_manager"]).status_code == 422
    assert client.get(f"{BASE}/report?year=2026", headers=headers["hr_manager"]).status_code == 422
