"""Attendance import: WeCom / DingTalk / time-clock shapes, GBK, UTF-8 (BOM) and XLSX, all-or-nothing,
idempotent re-import, leave files, coverage."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest
from sqlalchemy import func, select

from cases.errors import InvalidInput, UnsupportedMediaType
from qianli.models import (AttendanceCoverage, AttendanceImport, AttendanceLeave, AttendanceRecord, Document)
from qianli.services.attendance import AttendanceRejected, import_attendance
from tests.attendance.support import csv_bytes, wecom_daily, xlsx_bytes

D = date


def count(session, model, company) -> int:
    return session.scalar(select(func.count()).select_from(model).where(model.company_id == company.id))


def records(session, emp) -> dict[date, AttendanceRecord]:
    return {r.day: r for r in session.scalars(select(AttendanceRecord).where(AttendanceRecord.employee_id == emp.id))}


WECOM = wecom_daily([
    ("李雷", "A001", D(2025, 9, 29), "08:58", "18:05", "正常"),
    ("李雷", "A001", D(2025, 9, 30), "09:12", "18:01", "迟到"),
    ("李雷", "A001", D(2025, 10, 9), "--", "--", "未打卡"),
    ("韩梅梅", "A002", D(2025, 9, 29), "08:50", "", "缺卡"),
    ("韩梅梅", "A002", D(2025, 9, 30), "", "", "请假"),
    ("韩梅梅", "A002", D(2025, 10, 9), "09:00", "18:00", "正常"),
])


@pytest.mark.parametrize("encoding,bom", [("utf-8", False), ("utf-8", True), ("gbk", False)])
def test_wecom_daily_csv(runtime, db_session, world, encoding, bom):
    co, a, b = world
    rep = import_attendance(db_session, runtime, company_id=co.id, data=csv_bytes(WECOM, encoding=encoding, bom=bom),
                            filename="打卡日报.csv", actor="hr:test")
    db_session.commit()
    assert rep.kind == "clock" and rep.format == "csv" and rep.applied and rep.error_rows == 0
    assert (rep.records_created, rep.leaves_created) == (6, 1)
    assert (rep.first_day, rep.last_day) == (D(2025, 9, 29), D(2025, 10, 9))
    ra = records(db_session, a)
    assert ra[D(2025, 9, 29)].present and not ra[D(2025, 10, 9)].present
    first = ra[D(2025, 9, 30)].first_clock_at
    assert first.astimezone(timezone.utc) == datetime(2025, 9, 30, 1, 12, tzinfo=timezone.utc)  # 09:12 Beijing
    assert records(db_session, b)[D(2025, 9, 29)].present  # a missing clock-out is still a clock-in
    leave = db_session.scalars(select(AttendanceLeave).where(AttendanceLeave.employee_id == b.id)).one()
    assert (leave.first_day, leave.last_day, leave.leave_type) == (D(2025, 9, 30), D(2025, 9, 30), "请假")
    imp = db_session.get(AttendanceImport, rep.import_id)
    doc = db_session.get(Document, imp.document_id)
    assert doc.kind == "attendance_import" and doc.sha256 == rep.sha256 == imp.sha256
    assert ra[D(2025, 9, 29)].import_id == imp.id and ra[D(2025, 9, 29)].source_sha256 == rep.sha256
    cov = db_session.scalars(select(AttendanceCoverage).where(AttendanceCoverage.company_id == co.id)).one()
    assert (cov.employee_id, cov.first_day, cov.last_day) == (None, D(2025, 9, 29), D(2025, 10, 9))


def test_reimport_is_idempotent(runtime, db_session, world):
    co, a, _ = world
    data = csv_bytes(WECOM)
    first = import_attendance(db_session, runtime, company_id=co.id, data=data)
    db_session.commit()
    again = import_attendance(db_session, runtime, company_id=co.id, data=data)
    db_session.commit()
    assert (again.records_created, again.records_updated, again.records_unchanged) == (0, 0, 6)
    assert (again.leaves_created, again.leaves_unchanged) == (0, 1)
    assert again.previous_import_id == first.import_id
    assert count(db_session, AttendanceRecord, co) == 6 and count(db_session, AttendanceLeave, co) == 1
    assert count(db_session, AttendanceCoverage, co) == 1


def test_later_file_adds_a_clock_in_and_never_removes_one(runtime, db_session, world):
    co, a, _ = world
    import_attendance(db_session, runtime, company_id=co.id, data=csv_bytes(WECOM))
    db_session.commit()
    # a time clock's raw punches: 10-09 had a punch after all; 09-29 says nothing new
    punches = csv_bytes(["部门,姓名,考勤号码,日期时间,机器号", "研发部,李雷,A001,2025/10/9 9:03:12,1",
                         "研发部,李雷,A001,2025/10/9 18:30:00,1", "研发部,李雷,A001,2025-09-29 08:58,1"])
    rep = import_attendance(db_session, runtime, company_id=co.id, data=punches, coverage="file")
    db_session.commit()
    assert (rep.records_created, rep.records_updated, rep.records_unchanged) == (0, 1, 1)
    ra = records(db_session, a)
    assert ra[D(2025, 10, 9)].present
    # the WeCom file's absence for 10-09 imported again does not take the clock-in away
    import_attendance(db_session, runtime, company_id=co.id, data=csv_bytes(WECOM))
    db_session.commit()
    assert records(db_session, a)[D(2025, 10, 9)].present


def test_dingtalk_xlsx_matched_by_name(runtime, db_session, world):
    co, a, b = world
    data = xlsx_bytes([["每日统计", None, None], ["统计日期：2025-10-09 至 2025-10-10"],
                       ["姓名", "考勤组", "部门", "UserId", "日期", "上班1打卡时间", "上班1打卡结果", "下班1打卡时间"],
                       ["李雷", "默认", "研发部", "u1", datetime(2025, 10, 9), "09:01", "正常", "18:00"],
                       ["李雷", "默认", "研发部", "u1", "25-10-10", None, None, None],
                       ["韩梅梅", "默认", "研发部", "u2", "2025-10-10 星期五", "", "旷工", ""]])
    with pytest.raises(AttendanceRejected) as exc:  # "25-10-10" is not a date
        import_attendance(db_session, runtime, company_id=co.id, data=data)
    errs = exc.value.report.errors
    assert [(e.row, e.code) for e in errs] == [(5, "invalid_date")]
    assert count(db_session, AttendanceRecord, co) == 0 and count(db_session, AttendanceImport, co) == 0
    rep = import_attendance(db_session, runtime, company_id=co.id, data=data, good_rows_only=True)
    assert rep.format == "xlsx" and rep.records_created == 2 and rep.error_rows == 1
    assert records(db_session, a)[D(2025, 10, 9)].present and not records(db_session, b)[D(2025, 10, 10)].present


def test_bad_file_writes_nothing(runtime, db_session, world):
    co, *_ = world
    lines = WECOM + ["王五,Z999,研发部,2025/10/09,09:00,18:00,正常",   # not on the roster
                     "李雷,A001,研发部,2025/10/10,25:00,18:00,正常",   # not a time
                     "=cmd|'/C calc'!A0,A001,研发部,2025/10/13,09:00,,正常"]  # a formula is text: fine, A001 wins
    with pytest.raises(AttendanceRejected) as exc:
        import_attendance(db_session, runtime, company_id=co.id, data=csv_bytes(lines))
    rep = exc.value.report
    assert sorted((e.row, e.code) for e in rep.errors) == [(9, "employee_not_found"), (10, "invalid_time")]
    assert exc.value.code == "attendance_has_errors" and rep.error_rows == 2
    for model in (AttendanceRecord, AttendanceLeave, AttendanceImport, AttendanceCoverage, Document):
        assert count(db_session, model, co) == 0


def test_dry_run_previews_without_writing(runtime, db_session, world):
    co, *_ = world
    rep = import_attendance(db_session, runtime, company_id=co.id, data=csv_bytes(WECOM), dry_run=True)
    assert rep.dry_run and not rep.applied and rep.records_created == 6 and rep.import_id is None
    assert rep.preview[0] == {"row": 3, "employee_no": "A001", "day": "2025-09-29", "present": True,
                              "times": ["08:58", "18:05"], "result": "正常", "leave": None}
    assert count(db_session, AttendanceRecord, co) == 0 and count(db_session, AttendanceImport, co) == 0


def test_leave_file(runtime, db_session, world):
    co, a, b = world
    lines = ["审批编号,姓名,工号,部门,请假类型,开始时间,结束时间,时长,审批状态",
             "202510090001,李雷,A001,研发部,年假,2025-10-09 09:00,2025-10-10 18:00,2天,已通过",
             "202510090002,韩梅梅,A002,研发部,事假,2025-10-13 上午,2025-10-13 上午,0.5天,审批中",
             "202510090003,韩梅梅,A002,研发部,病假,2025/10/14,2025/10/15,2天,审批通过"]
    data = csv_bytes(lines, encoding="gbk")
    rep = import_attendance(db_session, runtime, company_id=co.id, data=data)
    db_session.commit()
    assert rep.kind == "leave" and rep.leaves_created == 2 and rep.skipped_rows == 1
    assert rep.skipped == [{"row": 3, "employee_no": "A002", "status": "审批中"}]
    got = {(lv.employee_id, lv.first_day, lv.last_day) for lv in db_session.scalars(select(AttendanceLeave))}
    assert got == {(a.id, D(2025, 10, 9), D(2025, 10, 10)), (b.id, D(2025, 10, 14), D(2025, 10, 15))}
    assert count(db_session, AttendanceCoverage, co) == 0  # leave says nothing about clock-ins
    again = import_attendance(db_session, runtime, company_id=co.id, data=data)
    assert (again.leaves_created, again.leaves_unchanged) == (0, 2)


def test_leave_rows_validated(runtime, db_session, world):
    co, *_ = world
    lines = ["姓名,工号,请假类型,开始时间,结束时间,审批状态",
             "李雷,A001,年假,2025-10-10 09:00,2025-10-09 18:00,已通过",
             "李雷,A001,年假,2025-10-10,2025-10-11,也许"]
    with pytest.raises(AttendanceRejected) as exc:
        import_attendance(db_session, runtime, company_id=co.id, data=csv_bytes(lines))
    assert [(e.row, e.code) for e in exc.value.report.errors] == [(2, "end_before_start"), (3, "unknown_status")]


@pytest.mark.parametrize("data,code,error", [
    (b"", "attendance_empty", InvalidInput),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, "attendance_xls_unsupported", UnsupportedMediaType),
    (b"PK\x03\x04garbage", "attendance_bad_format", UnsupportedMediaType),
    ("名字,时间\r\n李雷,09:00\r\n".encode(), "attendance_missing_columns", InvalidInput),
    (b"\xff\xfe\xfa\xfb\xfc" * 10, "attendance_bad_encoding", InvalidInput),
])
def test_unreadable_files(runtime, db_session, world, data, code, error):
    co, *_ = world
    with pytest.raises(error) as exc:
        import_attendance(db_session, runtime, company_id=co.id, data=data)
    assert exc.value.code == code


def test_row_limit(runtime, db_session, world):
    from dataclasses import replace

    from cases.errors import PayloadTooLarge

    co, *_ = world
    runtime.settings = replace(runtime.settings, attendance_max_rows=3)
    with pytest.raises(PayloadTooLarge) as exc:
        import_attendance(db_session, runtime, company_id=co.id, data=csv_bytes(WECOM))
    assert exc.value.code == "attendance_too_many_rows"


def test_cli_import_and_risks(runtime, db_session, world, tmp_path):
    import json

    from click.testing import CliRunner

    from qianli.cli.attendance import attendance_group

    co, a, _ = world
    path = tmp_path / "日报.csv"
    path.write_bytes(csv_bytes(WECOM, encoding="gbk"))
    r = CliRunner().invoke(attendance_group, ["import", str(path), "--company", co.code])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["records_created"] == 6
    bad = tmp_path / "bad.csv"
    bad.write_bytes(csv_bytes(WECOM + ["无名,Z9,研发部,2025/10/10,09:00,18:00,正常"]))
    r = CliRunner().invoke(attendance_group, ["import", str(bad), "--company", co.code])
    assert r.exit_code == 1 and json.loads(r.output)["code"] == "attendance_has_errors"
    r = CliRunner().invoke(attendance_group, ["risks", "--company", co.code, "--day", "2025-10-10"])
    out = json.loads(r.output)
    assert r.exit_code == 0 and out["through"] == "2025-10-09"
    lilei = next(i for i in out["items"] if i["employee_no"] == "A001")
    assert lilei["level"] == "amber" and lilei["gap_days"] == ["2025-10-09"]
    r = CliRunner().invoke(attendance_group, ["import", str(path), "--company", "nope"])
    assert r.exit_code != 0
