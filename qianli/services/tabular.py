"""Reading HR's spreadsheets safely: CSV (UTF-8 with or without BOM, or GB18030/GBK as Excel in China
saves it) and XLSX (read-only, bounded uncompressed size and width, formulas read as their text,
never evaluated). Shared by the roster import and the attendance import; each passes its own
error-code prefix (``roster_too_large``, ``attendance_bad_format``, ...) and zh-CN noun.
"""

from __future__ import annotations

import csv
import io
import zipfile
from typing import Any, Iterator

from cases.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType

__all__ = ["XLSX_MAX_UNCOMPRESSED_FACTOR", "XLSX_MAX_COLUMNS", "decode_csv", "csv_rows", "xlsx_rows", "open_rows"]

# Largest uncompressed XLSX content we open (a small file can inflate enormously).
XLSX_MAX_UNCOMPRESSED_FACTOR = 20
# Columns read from a sheet (cells further right are ignored, whatever the sheet declares).
XLSX_MAX_COLUMNS = 64


def decode_csv(data: bytes, *, prefix: str) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        try:
            return data[3:].decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInput(f"{prefix}_bad_encoding", "无法识别文件编码，请保存为 UTF-8 或 GBK 编码的 CSV") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")  # a superset of GBK/GB2312, what Excel in China writes
    except UnicodeDecodeError:
        raise InvalidInput(f"{prefix}_bad_encoding", "无法识别文件编码，请保存为 UTF-8 或 GBK 编码的 CSV") from None


def csv_rows(data: bytes, *, prefix: str, noun: str) -> Iterator[list[Any]]:
    text = decode_csv(data, prefix=prefix)
    if "\x00" in text:
        raise UnsupportedMediaType(f"{prefix}_bad_format", f"文件不是 CSV 或 XLSX {noun}")
    sample = text[:4096]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    try:
        yield from csv.reader(io.StringIO(text, newline=""), dialect)
    except csv.Error as exc:
        raise InvalidInput(f"{prefix}_bad_csv", f"CSV 格式错误：{exc}") from None


def xlsx_rows(data: bytes, max_bytes: int, *, prefix: str, noun: str) -> Iterator[list[Any]]:
    import openpyxl

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            total = sum(i.file_size for i in zf.infolist())
    except zipfile.BadZipFile:
        raise UnsupportedMediaType(f"{prefix}_bad_format", "XLSX 文件已损坏或不是 Excel 文件") from None
    if total > max_bytes * XLSX_MAX_UNCOMPRESSED_FACTOR:
        raise PayloadTooLarge(f"{prefix}_too_large", f"{noun}文件过大", details={"uncompressed_bytes": total})
    try:
        # data_only=False: a formula is read as its text ("=..."), never as a computed value.
        wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many kinds for malformed files
        raise UnsupportedMediaType(f"{prefix}_bad_format", "无法读取 XLSX 文件",
                                   details={"error": type(exc).__name__}) from None
    try:
        ws = wb.worksheets[0] if wb.worksheets else None
        if ws is None:
            return
        # Never trust the declared <dimension> (A1:XFD1048576 would make openpyxl pad every row to
        # 16,384 cells and yield a million blank rows): read the rows the file really contains, at
        # most XLSX_MAX_COLUMNS wide. Missing rows between two present ones are still yielded (blank)
        # and count against the caller's row cap.
        ws.reset_dimensions()
        for values in ws.iter_rows(max_col=XLSX_MAX_COLUMNS, values_only=True):
            yield list(values)
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many kinds for malformed files
        raise UnsupportedMediaType(f"{prefix}_bad_format", "无法读取 XLSX 文件",
                                   details={"error": type(exc).__name__}) from None
    finally:
        wb.close()


def open_rows(data: bytes, *, max_bytes: int, prefix: str, noun: str) -> tuple[str, Iterator[list[Any]]]:
    """(``csv`` or ``xlsx``, the rows as lists of cell values), after the size, emptiness and old-.xls checks."""
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"{prefix}_too_large", f"{noun}文件过大", details={"max_bytes": max_bytes, "bytes": len(data)})
    if not data.strip():
        raise InvalidInput(f"{prefix}_empty", f"{noun}为空")
    fmt = "xlsx" if data[:4] == b"PK\x03\x04" else "csv"
    if fmt == "csv" and data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        raise UnsupportedMediaType(f"{prefix}_xls_unsupported", "不支持旧版 .xls 文件，请另存为 .xlsx 或 CSV")
    rows = xlsx_rows(data, max_bytes, prefix=prefix, noun=noun) if fmt == "xlsx" else csv_rows(data, prefix=prefix, noun=noun)
    return fmt, rows
