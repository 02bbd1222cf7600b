"""Notice rules (Labor Contract Law art. 37; Civil Code art. 137/201).

Arrival day not counted; 30 calendar days (3 in probation); probation is judged on the arrival
date (the caller passes whether the employee was in probation on that day).

"Holidays extend the notice" (a company policy, disputed in law). The reading implemented:
only **statutory holidays** extend it, i.e. the days the 《全国年节及纪念日放假办法》 itself makes
holidays for all citizens (13 a year since 2025: 元旦 1, 春节 4, 清明 1, 劳动节 2, 端午 1, 中秋 1,
国庆 3; 11 before). Each such day inside the period is not counted, so the period grows by
one calendar day per statutory day it contains. The rest of a holiday block - weekends, the
art. 6 make-up days, and bridge days paid back by swapped Saturdays (调休) - are rest days, not
statutory holidays, and do not extend it. Because the statutory days follow from the law
alone, the earliest last day never depends on the State Council's yearly arrangement: it is
never provisional. Only the letter due date (counted in working days) can be.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from cases.calendar import ChineseCalendar
from cases.clock import beijing_date
from cases.statutory import FIRST_YEAR, LAST_YEAR

__all__ = ["NoticeComputation", "compute_notice", "arrival_date_shanghai", "NOTICE_DAYS", "PROBATION_NOTICE_DAYS",
           "PROVISIONAL_MARK", "provisional_note"]

NOTICE_DAYS = 30
PROBATION_NOTICE_DAYS = 3
PROVISIONAL_MARK = "（暂定）"


@dataclass(frozen=True)
class NoticeComputation:
    earliest_last_day: date
    letter_due_date: date
    notice_days: int
    provisional: bool
    explanation_zh: str
    # Years whose State Council arrangement is not yet published and could change the due date.
    pending_years: tuple[int, ...] = ()
    # Statutory holidays that extended the period (holidays_extend only).
    extension_days: tuple[date, ...] = ()


def provisional_note(letter_due_date: date) -> str:
    """The caveat shown with a provisional due date (mini-program, console)."""
    return (f"书面辞职信截止日{letter_due_date.isoformat()}{PROVISIONAL_MARK}：所在期间的国务院节假日调休安排尚未公布，"
            "按《全国年节及纪念日放假办法》规定的法定节假日推算（法定节假日不计为工作日）；安排公布后将重新计算并通知您。")


def arrival_date_shanghai(t: datetime) -> date:
    """Calendar date in China of the moment notice entered the system."""
    if t.tzinfo is None:
        raise ValueError("aware datetime required")
    return beijing_date(t)


def compute_notice(arrival: date, probation: bool, *, calendar: ChineseCalendar, holidays_extend: bool,
                   letter_due_working_days: int) -> NoticeComputation:
    notice_days = PROBATION_NOTICE_DAYS if probation else NOTICE_DAYS
    extension: list[date] = []
    d, counted = arrival, 0
    while counted < notice_days:
        d += timedelta(days=1)
        if holidays_extend and calendar.is_statutory(d):
            extension.append(d)
        else:
            counted += 1
    last = d
    due = calendar.add_working_days(arrival, letter_due_working_days)
    pending = tuple(calendar.pending_years_between(arrival, due.date)) if due.provisional else ()
    mark = PROVISIONAL_MARK if due.provisional else ""
    ext = f"（期间{len(extension)}天法定节假日顺延）" if holidays_extend and extension else (
        "（法定节假日顺延，期间无法定节假日）" if holidays_extend else "")
    text = (f"通知于{arrival.isoformat()}送达，当日不计入；{'试用期' if probation else ''}提前{notice_days}日通知，"
            f"最早可于{last.isoformat()}离职{ext}；"
            f"书面辞职信应于{letter_due_working_days}个工作日内、即{due.date.isoformat()}{mark}前提交。")
    if due.provisional and any(not FIRST_YEAR <= y <= LAST_YEAR for y in pending):
        text += (f"所涉年份超出按法律推算法定节假日的范围（{FIRST_YEAR}–{LAST_YEAR}年）且无公布的安排，"
                 "截止日期按周一至周五推算，为暂定日期。")
    elif due.provisional:
        years = "、".join(f"{y}年" for y in pending) or "相关年份"
        text += (f"{years}的节假日调休安排尚未公布，截止日期按法定节假日推算，为暂定日期；"
                 "国务院公布安排后将重新计算并通知您。")
    return NoticeComputation(last, due.date, notice_days, due.provisional, text, pending, tuple(extension))
