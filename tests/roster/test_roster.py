"""Roster import: CSV (UTF-8, BOM, GBK), XLSX, validation, all-or-nothing, updates, limits."""

from __future__ import annotations

import io
import json
from datetime import date, datetime

import openpyxl
import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from qianli.models import Employee
from qianli.services.employees import employee_national_id, employee_phone
from qianli.services.roster import RosterRejected, import_roster, parse_date, valid_national_id

HEADER_ZH = "工号,姓名,部门,职位,入职日期,试用期结束,合同期限,手机号,身份证号,照片"
HEADER_EN = "employee_no,name,department,position,hire_date,probation_end,contract_term,phone,national_id,photo"


def mod11_2(first17: str) -> str:
    """ISO 7064 MOD 11-2 computed iteratively (independent of the implementation under test)."""
    p = 0
    for ch in first17:
        p = ((p + int(ch)) * 2) % 11
    return "0123456789X"[(12 - p) % 11]


def nid(region: str, born: str, serial: str) -> str:
    body = region + born + serial
    return body + mod11_2(body)


ID1 = nid("110105", "19900307", "123")
ID2 = nid("440305", "19951231", "456")
ID3 = nid("310104", "19880101", "789")


def test_checksum_examples():
    assert valid_national_id("11010519491231002X") is None  # the GB 11643 example
    assert valid_national_id(ID1) is None and valid_national_id(ID2) is None
    wrong = ID1[:17] + ("0" if ID1[17] != "0" else "1")
    assert "校验位" in valid_national_id(wrong)
    assert valid_national_id("11010519491331002X") is not None  # month 13
    assert valid_national_id("110105194912310") is not None  # old 15-digit form


@pytest.mark.parametrize("value,expected", [
    ("2024-03-01", date(2024, 3, 1)), ("2024/3/1", date(2024, 3, 1)), ("2024.03.01", date(2024, 3, 1)),
    ("20240301", date(2024, 3, 1)), ("2024年3月1日", date(2024, 3, 1)), ("2024-03-01 00:00:00", date(2024, 3, 1)),
    (45352, date(2024, 3, 1)), (datetime(2024, 3, 1, 0, 0), date(2024, 3, 1)),
])
def test_date_formats(value, expected):
    assert parse_date(value) == expected


@pytest.mark.parametrize("value", ["2024-02-30", "03/01/24", "tomorrow", ""])
def test_bad_dates(value):
    with pytest.raises(ValueError):
        parse_date(value)


def csv_bytes(rows: list[str], header: str = HEADER_ZH, encoding: str = "utf-8", bom: bool = False) -> bytes:
    text = "\r\n".join([header, *rows]) + "\r\n"
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode(encoding)


GOOD = [
    f"A001,李雷,研发部,工程师,2023-03-01,2023-09-01,2023-03-01至2026-02-28,13800138001,{ID1},",
    f"A002,韩梅梅,市场部,经理,2022/7/15,,三年,+86 139-0013-8002,{ID2},",
    "A003,王五,财务部,会计,2021年1月4日,2021年4月4日,,13700138003,,",
]


def count(db_session, company) -> int:
    return db_session.scalar(select(func.count()).select_from(Employee).where(Employee.company_id == company.id))


def emp(db_session, company, no) -> Employee:
    return db_session.scalar(select(Employee).where(Employee.company_id == company.id, Employee.employee_no == no))


@pytest.mark.parametrize("encoding,bom,header", [("utf-8", False, HEADER_ZH), ("utf-8", True, HEADER_ZH),
                                                 ("gbk", False, HEADER_ZH), ("utf-8", False, HEADER_EN)])
def test_csv_import_creates_with_encrypted_personal_data(runtime, db_session, factory, encoding, bom, header):
    company = factory.company()
    report = import_roster(db_session, runtime, company_id=company.id,
                           data=csv_bytes(GOOD, header=header, encoding=encoding, bom=bom))
    assert (report.format, report.rows, report.created, report.updated, report.errors) == ("csv", 3, 3, 0, [])
    e1, e2, e3 = (emp(db_session, company, n) for n in ("A001", "A002", "A003"))
    assert e1.name == "李雷" and e1.department == "研发部" and e1.probation_end == date(2023, 9, 1)
    assert e2.hire_date == date(2022, 7, 15) and e3.hire_date == date(2021, 1, 4)
    assert employee_phone(runtime, e2) == "13900138002"
    assert employee_national_id(runtime, e1) == ID1 and e3.national_id_enc is None
    assert "13800138001" not in e1.phone_enc and ID1 not in (e1.national_id_enc or "")
    assert e1.phone_hash == runtime.lookup("phone", "13800138001")


def test_reimport_updates_by_employee_number(runtime, db_session, factory):
    company = factory.company()
    import_roster(db_session, runtime, company_id=company.id, data=csv_bytes(GOOD))
    changed = [GOOD[0].replace("研发部", "平台部"), GOOD[1].replace("+86 139-0013-8002", "13900138099"), GOOD[2]]
    report = import_roster(db_session, runtime, company_id=company.id, data=csv_bytes(changed))
    assert (report.created, report.updated, report.unchanged) == (0, 2, 1)
    assert sorted(report.updated_numbers) == ["A001", "A002"]
    assert emp(db_session, company, "A001").department == "平台部"
    e2 = emp(db_session, company, "A002")
    assert employee_phone(runtime, e2) == "13900138099" and e2.phone_hash == runtime.lookup("phone", "13900138099")
    assert count(db_session, company) == 3
    again = import_roster(db_session, runtime, company_id=company.id, data=csv_bytes(changed))
    assert (again.created, again.updated, again.unchanged, again.applied) == (0, 0, 3, False)


def test_xlsx_with_date_cells_numbers_and_formula_text(runtime, db_session, factory):
    company = factory.company()
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(HEADER_ZH.split(","))
    ws.append([1001, "=cmd|' /C calc'!A0", "研发部", "@SUM(A1)", datetime(2023, 3, 1), datetime(2023, 6, 1),
               "固定期限", 13800138011, ID1, None])
    ws.append(["B-2", "赵六", "+销售部", "销售", "2020-05-06", None, None, "13800138012", ID2.lower(), "b2.jpg"])
    buf = io.BytesIO()
    wb.save(buf)
    report = import_roster(db_session, runtime, company_id=company.id, data=buf.getvalue())
    assert (report.format, report.created, report.errors) == ("xlsx", 2, [])
    e = emp(db_session, company, "1001")
    assert e.name == "=cmd|' /C calc'!A0" and e.position == "@SUM(A1)"  # stored as text, never evaluated
    assert e.hire_date == date(2023, 3, 1) and e.probation_end == date(2023, 6, 1)
    assert employee_phone(runtime, e) == "13800138011"
    b2 = emp(db_session, company, "B-2")
    assert b2.department == "+销售部" and employee_national_id(runtime, b2) == ID2


def test_bad_rows_change_nothing_and_are_all_reported(runtime, db_session, factory):
    company = factory.company()
    bad_id = ID3[:17] + ("1" if ID3[17] != "1" else "2")
    rows = [
        GOOD[0],
        ",无工号,研发部,工程师,2023-03-01,,,13800138021,,",          # row 3: missing employee number
        "A011,钱七,研发部,工程师,2023-13-01,,,13800138022,,",         # row 4: bad date
        "A012,孙八,研发部,工程师,2023-03-01,,,12345678901,,",         # row 5: bad phone
        f"A013,周九,研发部,工程师,2023-03-01,,,13800138024,{bad_id},",  # row 6: ID checksum
        "A014,吴十,研发部,工程师,2023-03-01,2023-02-01,,13800138025,,",  # row 7: probation before hire
        "A001,李雷二,研发部,工程师,2023-03-01,,,13800138026,,",       # row 8: duplicate number
        "A015,郑一,研发部,工程师,2023-03-01,,,13800138001,,",         # row 9: duplicate phone
        "A016,王二,研发部,工程师,,,,13800138028,,",                   # row 10: missing hire date
    ]
    with pytest.raises(RosterRejected) as exc:
        import_roster(db_session, runtime, company_id=company.id, data=csv_bytes(rows))
    report = exc.value.report
    by_row = {e.row: e for e in report.errors}
    assert sorted(by_row) == [3, 4, 5, 6, 7, 8, 9, 10]
    assert (by_row[3].code, by_row[3].field) == ("required", "employee_no")
    assert by_row[4].code == "invalid_date" and by_row[5].code == "invalid_phone"
    assert by_row[6].code == "invalid_national_id" and "校验位" in by_row[6].message
    assert by_row[7].code == "probation_before_hire"
    assert by_row[8].code == "duplicate_employee_no" and "第 2 行" in by_row[8].message
    assert by_row[9].code == "duplicate_phone" and by_row[10].field == "hire_date"
    assert report.error_rows == 8 and report.valid_rows == 1
    assert count(db_session, company) == 0

    report = import_roster(db_session, runtime, company_id=company.id, data=csv_bytes(rows), good_rows_only=True)
    assert (report.created, report.error_rows, report.applied) == (1, 8, True)
    assert count(db_session, company) == 1


def test_phone_of_another_existing_employee_is_refused(runtime, db_session, factory):
    company = factory.company()
    factory.employee(company, employee_no="OLD1", phone="13800138001")
    with pytest.raises(RosterRejected) as exc:
        import_roster(db_session, runtime, company_id=company.id, data=csv_bytes([GOOD[0]]))
    assert exc.value.report.errors[0].code == "phone_taken"


def test_dry_run_writes_nothing(runtime, db_session, factory):
    company = factory.company()
    report = import_roster(db_session, runtime, company_id=company.id, data=csv_bytes(GOOD), dry_run=True)
    assert (report.created, report.applied) == (3, False) and count(db_session, company) == 0


def test_missing_required_column(runtime, db_session, factory):
    company = factory.company()
    from cases.errors import InvalidInput

    with pytest.raises(InvalidInput) as exc:
        import_roster(db_session, runtime, company_id=company.id, data="工号,姓名\nA1,张三\n".encode())
    assert exc.value.code == "roster_missing_columns" and "手机号" in exc.value.message


# ---- HTTP ------------------------------------------------------------------------------------

def multipart(fields: dict[str, str], data: bytes, filename: str) -> tuple[bytes, str]:
    """A multipart body built in memory (the test client would spool big bodies to an unclosed temp file)."""
    boundary = "qianli-test-boundary-7f3a"
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
             for k, v in fields.items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
                 f"Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def post_roster(client, headers, data: bytes, filename="roster.csv", form=None, **query):
    body, ctype = multipart(form or {}, data, filename)
    return client.post("/api/v1/hr/roster", query_string=query, headers=headers, data=body, content_type=ctype)


def test_http_import_roles_and_company_scope(client, factory, db_session):
    company, other = factory.company(), factory.company()
    spec = factory.hr(company, "hr_specialist")
    r = post_roster(client, factory.hr_headers(spec), csv_bytes(GOOD))
    assert r.status_code == 200, r.json
    assert (r.json["created"], r.json["error_count"], r.json["applied"]) == (3, 0, True)
    assert count(db_session, company) == 3 and count(db_session, other) == 0
    for role in ("dept_head", "auditor"):
        r = post_roster(client, factory.hr_headers(factory.hr(company, role)), csv_bytes(GOOD))
        assert r.status_code == 403
    worker = factory.employee(company)
    assert post_roster(client, factory.employee_headers(worker), csv_bytes(GOOD)).status_code == 403
    manager = factory.hr(company, "hr_manager")
    r = post_roster(client, factory.hr_headers(manager), csv_bytes(GOOD), dry_run="true")
    assert (r.json["unchanged"], r.json["applied"]) == (3, False)


def test_http_bad_rows_422_then_good_rows_only_by_form_flag(client, factory, db_session):
    company = factory.company()
    headers = factory.hr_headers(factory.hr(company, "hr_manager"))
    rows = [GOOD[0], "A020,坏行,研发部,工程师,2023-03-01,,,110,,"]
    r = post_roster(client, headers, csv_bytes(rows, encoding="gbk"))
    assert r.status_code == 422 and r.json["code"] == "roster_has_errors"
    assert r.json["details"]["errors"][0]["row"] == 3 and r.json["details"]["error_count"] == 1
    assert count(db_session, company) == 0
    r = post_roster(client, headers, csv_bytes(rows), form={"good_rows_only": "true"})
    assert r.status_code == 200 and (r.json["created"], r.json["error_count"]) == (1, 1)
    assert count(db_session, company) == 1


def test_http_huge_file_413(client, factory, runtime, db_session):
    company = factory.company()
    headers = factory.hr_headers(factory.hr(company, "hr_manager"))
    big = csv_bytes(GOOD) + b"#" * (runtime.settings.roster_max_bytes + 10)
    r = post_roster(client, headers, big)
    assert r.status_code == 413 and r.json["code"] == "roster_too_large"
    over_request = b"x" * (runtime.settings.max_request_bytes + 10)
    r = post_roster(client, headers, over_request)
    assert r.status_code == 413
    assert count(db_session, company) == 0


def test_too_many_rows_413(client, factory, runtime, db_session):
    from dataclasses import replace

    company = factory.company()
    runtime.settings = replace(runtime.settings, roster_max_rows=2)
    headers = factory.hr_headers(factory.hr(company, "hr_manager"))
    r = post_roster(client, headers, csv_bytes(GOOD))
    assert r.status_code == 413 and r.json["code"] == "roster_too_many_rows"


def test_not_a_roster_is_refused(client, factory):
    company = factory.company()
    headers = factory.hr_headers(factory.hr(company, "hr_manager"))
    r = post_roster(client, headers, b"PK\x03\x04not really a zip", filename="x.xlsx")
    assert r.status_code == 415
    r = post_roster(client, headers, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, filename="x.xls")
    assert r.status_code == 415 and r.json["code"] == "roster_xls_unsupported"
    r = client.post("/api/v1/hr/roster", headers=headers, data={}, content_type="multipart/form-data")
    assert r.status_code == 422


# ---- CLI -------------------------------------------------------------------------------------

def test_cli_import_and_photo_report(runtime, db_session, factory, tmp_path):
    from qianli.cli.hr import roster_group

    company = factory.company(code="acme")
    rows = [GOOD[0].rstrip(",") + ",a001.jpg", GOOD[1], GOOD[2]]
    path = tmp_path / "roster.csv"
    path.write_bytes(csv_bytes(rows, encoding="gbk"))
    r = CliRunner().invoke(roster_group, ["import", str(path), "--company", "acme"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["created"] == 3
    assert out["photos"] == [{"row": 2, "employee_no": "A001", "photo": "a001.jpg", "status": "not_done",
                              "reason": "未指定 --photos 目录"}]
    db_session.expire_all()
    assert count(db_session, company) == 3

    bad = tmp_path / "bad.csv"
    bad.write_bytes(csv_bytes([GOOD[0].replace("A001", "A009").replace("13800138001", "1")]))
    r = CliRunner().invoke(roster_group, ["import", str(bad), "--company", "acme"])
    assert r.exit_code == 1 and json.loads(r.output)["code"] == "roster_has_errors"
    r = CliRunner().invoke(roster_group, ["import", str(path), "--company", "nope"])
    assert r.exit_code != 0


def _multipart_parts(parts: list[tuple[str, str | None, bytes]]) -> tuple[bytes, str]:
    """(name, filename or None for a text field, content) -> a multipart body."""
    boundary = "qianli-test-boundary-9c1d"
    out = b""
    for name, filename, content in parts:
        disp = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out += f"--{boundary}\r\nContent-Disposition: {disp}\r\n\r\n".encode() + content + b"\r\n"
    return out + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


@pytest.mark.parametrize("extra,location", [
    (("photo", "a.jpg", b"\xff\xd8\xff"), "files"),   # an unknown file part
    (("note", None, "hello".encode()), "form"),        # an unknown text field
    (("file", "second.csv", b"A,B\n"), "files"),       # the file twice
    (("dry_run", None, b"true"), None),                # a documented flag: accepted
])
def test_http_unknown_multipart_parts_are_refused(client, factory, db_session, extra, location):
    company = factory.company()
    headers = factory.hr_headers(factory.hr(company, "hr_manager"))
    body, ctype = _multipart_parts([("file", "roster.csv", csv_bytes(GOOD)), extra])
    r = client.post("/api/v1/hr/roster", headers=headers, data=body, content_type=ctype)
    if location is None:
        assert r.status_code == 200 and r.json["dry_run"] is True, r.json
        return
    assert r.status_code == 422 and r.json["code"] == "validation_failed", r.json
    assert extra[0] in r.json["details"][location]
    assert count(db_session, company) == 0


def test_contract_documents_the_roster_parts(client):
    spec = client.get("/openapi.json").json
    schema = spec["components"]["schemas"]["RosterFile"]
    assert schema["additionalProperties"] is False and schema["required"] == ["file"]
    assert set(schema["properties"]) == {"file", "good_rows_only", "dry_run"}


def test_extreme_dates_are_row_errors(db_session, runtime, factory):
    company = factory.company()
    rows = ["A101,甲,研发部,工程师,0001-01-01,,,13800138101,,", "A102,乙,研发部,工程师,2023-03-01,9999-12-31,,13800138102,,"]
    with pytest.raises(RosterRejected) as e:
        import_roster(db_session, runtime, company_id=company.id, data=csv_bytes(rows))
    errs = e.value.report.errors
    assert [(x.row, x.field, x.code) for x in errs] == [(2, "hire_date", "date_out_of_range"),
                                                         (3, "probation_end", "date_out_of_range")]


def test_wecom_userid_column(runtime, db_session, factory):
    """企业微信账号: kept for the WeCom connector (check-ins, messages, disabling); validated, unique."""
    company = factory.company()
    header = HEADER_ZH + ",企业微信账号"
    rows = [GOOD[0] + ",lilei", GOOD[1] + ",", GOOD[2] + ",wangwu@corp"]
    rep = import_roster(db_session, runtime, company_id=company.id, data=csv_bytes(rows, header=header))
    db_session.commit()
    assert rep.created == 3
    assert [emp(db_session, company, n).wecom_userid for n in ("A001", "A002", "A003")] == ["lilei", None, "wangwu@corp"]
    # an empty cell keeps the value; a new value updates it
    rep = import_roster(db_session, runtime, company_id=company.id,
                        data=csv_bytes([GOOD[0] + ",", GOOD[2] + ",wangwu"], header=header))
    assert (rep.updated, rep.unchanged) == (1, 1)
    assert emp(db_session, company, "A001").wecom_userid == "lilei"
    assert emp(db_session, company, "A003").wecom_userid == "wangwu"
    with pytest.raises(RosterRejected) as exc:
        import_roster(db_session, runtime, company_id=company.id,
                      data=csv_bytes([GOOD[1] + ",lilei", GOOD[2] + ",李 雷"], header=header))
    assert sorted((e.row, e.code) for e in exc.value.report.errors) == [(2, "wecom_userid_taken"),
                                                                         (3, "invalid_wecom_userid")]
