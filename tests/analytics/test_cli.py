"""``qianli analytics export|report`` (operators, the demo)."""

from __future__ import annotations

import json

from click.testing import CliRunner
from openpyxl import load_workbook

from qianli.cli import cli


def test_export_and_report_commands(runtime, world, tmp_path, db_session):
    from qianli.services.analytics_report import stored_report

    r = CliRunner().invoke(cli, ["analytics", "export", str(tmp_path / "a.xlsx"), "--company", "anal-a",
                                 "--from", "2026-01-01", "--to", "2026-06-30"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["departures"] == 29
    assert "部门 × 期间" in load_workbook(tmp_path / "a.xlsx").sheetnames
    r = CliRunner().invoke(cli, ["analytics", "export", str(tmp_path / "a.csv"), "--company", "anal-a"])
    assert r.exit_code != 0 and "--chart" in r.output
    r = CliRunner().invoke(cli, ["analytics", "report", str(tmp_path / "r.pdf"), "--company", "anal-a", "--year", "2026",
                                 "--quarter", "2", "--store"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "r.pdf").read_bytes().startswith(b"%PDF")
    doc = stored_report(db_session, world["a"].id, 2026, 2)
    assert doc is not None and doc.created_by == "system:scheduler"
    r = CliRunner().invoke(cli, ["analytics", "report", str(tmp_path / "r2.pdf"), "--company", "nope"])
    assert r.exit_code != 0 and "no company" in r.output
