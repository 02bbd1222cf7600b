"""XLSX bombs in importRoster: the declared sheet dimension is ignored, every physical row counts
against the row cap (blank ones too), far-right cells are not read, and the CPU spent is bounded."""

from __future__ import annotations

import io
import time
import zipfile

import pytest

from cases.errors import PayloadTooLarge
from qianli.services.roster import XLSX_MAX_COLUMNS, parse_roster

MAX_BYTES = 5 * 1024 * 1024

CONTENT_TYPES = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">
<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>
<Default Extension="xml" ContentType="application/xml"/>
<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>
<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>
</Types>"""
RELS = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>
</Relationships>"""
WORKBOOK = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">
<sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>"""
WB_RELS = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>
</Relationships>"""


def _is(ref: str, text: str) -> str:
    return f'<c r="{ref}" t="inlineStr"><is><t>{text}</t></is></c>'


HEADER = ["工号", "姓名", "手机号", "入职日期"]


def _row(n: int, values: list[str]) -> str:
    cells = "".join(_is(f"{chr(65 + i)}{n}", v) for i, v in enumerate(values))
    return f'<row r="{n}">{cells}</row>'


def xlsx(rows_xml: str, dimension: str = "A1:D3") -> bytes:
    sheet = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
             '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
             f'<dimension ref="{dimension}"/><sheetData>{rows_xml}</sheetData></worksheet>')
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("[Content_Types].xml", CONTENT_TYPES)
        z.writestr("_rels/.rels", RELS)
        z.writestr("xl/workbook.xml", WORKBOOK)
        z.writestr("xl/_rels/workbook.xml.rels", WB_RELS)
        z.writestr("xl/worksheets/sheet1.xml", sheet)
    return buf.getvalue()


GOOD_ROWS = _row(1, HEADER) + _row(2, ["A001", "张三", "13800138000", "2023-03-01"]) + \
    _row(3, ["A002", "李四", "13800138001", "2024-01-02"])


def _timed(fn):
    started = time.process_time()
    try:
        return fn(), None
    except PayloadTooLarge as exc:
        return None, exc
    finally:
        _timed.cpu = time.process_time() - started


def test_declared_dimension_a1_xfd1048576_is_ignored():
    data = xlsx(GOOD_ROWS, dimension="A1:XFD1048576")
    assert len(data) < 2000  # the reported bomb: a 1.6 kB file
    out, err = _timed(lambda: parse_roster(data, max_bytes=MAX_BYTES, max_rows=20000))
    assert err is None and _timed.cpu < 0.6  # each row used to be padded to 16,384 cells (about 1.4 s)
    fmt, rows = out
    assert fmt == "xlsx" and [n for n, _ in rows] == [2, 3]
    assert rows[0][1]["employee_no"] == "A001" and rows[1][1]["name"] == "李四"


def test_blank_physical_rows_count_against_the_cap():
    blank = "".join(f'<row r="{n}"><c r="A{n}" t="inlineStr"><is><t> </t></is></c></row>' for n in range(4, 200))
    data = xlsx(GOOD_ROWS + blank, dimension="A1:XFD1048576")
    _out, err = _timed(lambda: parse_roster(data, max_bytes=MAX_BYTES, max_rows=50))
    assert err is not None and err.code == "roster_too_many_rows"
    # the same rows fit a cap that leaves room for them
    fmt, rows = parse_roster(data, max_bytes=MAX_BYTES, max_rows=200)
    assert len(rows) == 2


def test_a_far_row_number_cannot_make_a_million_blank_rows():
    """Rows 4..1048575 absent, one cell in row 1048576: the gap counts as rows, and stops at the cap."""
    far = '<row r="1048576"><c r="XFD1048576" t="inlineStr"><is><t>x</t></is></c></row>'
    data = xlsx(GOOD_ROWS + far, dimension="A1:XFD1048576")
    _out, err = _timed(lambda: parse_roster(data, max_bytes=MAX_BYTES, max_rows=20000))
    assert err is not None and err.code == "roster_too_many_rows" and _timed.cpu < 2.0  # was minutes


def test_cells_far_to_the_right_are_not_read():
    """Every row reaching column XFD: each would be a 16,384-cell row; only XLSX_MAX_COLUMNS are read."""
    wide = "".join(f'<row r="{n}">{_is(f"A{n}", f"B{n:05d}")}{_is(f"B{n}", "王五")}{_is(f"C{n}", f"139{n:08d}")}'
                   f'{_is(f"D{n}", "2023-03-01")}<c r="XFD{n}" t="inlineStr"><is><t>x</t></is></c></row>'
                   for n in range(2, 3002))
    data = xlsx(_row(1, HEADER) + wide, dimension="A1:XFD1048576")
    out, err = _timed(lambda: parse_roster(data, max_bytes=MAX_BYTES, max_rows=20000))
    assert err is None and _timed.cpu < 5.0
    fmt, rows = out
    assert len(rows) == 3000 and rows[-1][1]["employee_no"] == "B03001"
    assert XLSX_MAX_COLUMNS < 16384


@pytest.mark.parametrize("max_rows", [3, 5])
def test_data_rows_over_the_cap_still_refused(max_rows):
    rows = _row(1, HEADER) + "".join(_row(n, [f"C{n:03d}", "赵六", f"137{n:08d}", "2023-03-01"]) for n in range(2, 8))
    _out, err = _timed(lambda: parse_roster(xlsx(rows), max_bytes=MAX_BYTES, max_rows=max_rows))
    assert err is not None and err.code == "roster_too_many_rows"


def test_http_import_of_the_bomb_answers_413_at_once(client, factory):
    company = factory.company()
    headers = factory.hr_headers(factory.hr(company, "hr_manager"))
    far = '<row r="1048576"><c r="XFD1048576" t="inlineStr"><is><t>x</t></is></c></row>'
    data = xlsx(GOOD_ROWS + far, dimension="A1:XFD1048576")
    boundary = "qianli-bomb-boundary"
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="bomb.xlsx"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    started = time.process_time()
    r = client.post("/api/v1/hr/roster", headers=headers, data=body,
                    content_type=f"multipart/form-data; boundary={boundary}")
    assert r.status_code == 413 and r.json["code"] == "roster_too_many_rows"
    assert time.process_time() - started < 3.0
