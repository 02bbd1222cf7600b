"""Helpers for the attendance tests: export-shaped files (WeCom, DingTalk, time clocks) and a company."""

from __future__ import annotations

import io
from datetime import date, timedelta

import openpyxl

from cases.calendar import ChineseCalendar

CAL = ChineseCalendar()


def working_days(first: date, last: date) -> list[date]:
    out, d = [], first
    while d <= last:
        if CAL.is_working_day(d):
            out.append(d)
        d += timedelta(days=1)
    return out


def csv_bytes(lines: list[str], *, encoding: str = "utf-8", bom: bool = False) -> bytes:
    text = "\r\n".join(lines) + "\r\n"
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode(encoding)


def xlsx_bytes(rows: list[list]) -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    for r in rows:
        ws.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def wecom_daily(rows: list[tuple[str, str, date, str, str, str]]) -> list[str]:
    """WeCom 打卡日报 shape: a title line, then 姓名/工号/部门/日期/上班打卡时间/下班打卡时间/打卡结果."""
    out = ["上下班打卡_日报,统计时间：2025-09-01 至 2025-10-31,,,,,",
           "姓名,工号,部门,日期,上班打卡时间,下班打卡时间,打卡结果"]
    for name, no, day, t_in, t_out, result in rows:
        out.append(f"{name},{no},研发部,{day.strftime('%Y/%m/%d')} 星期{'一二三四五六日'[day.weekday()]},{t_in},{t_out},{result}")
    return out


