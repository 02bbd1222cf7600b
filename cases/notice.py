"""Notice rules (Labor Contract Law art. 37; Civil Code art. 137/201).

Arrival day not counted; 30 calendar days (3 in probation). With ``holidays_extend``,
each statutory-holiday day (DayKind.HOLIDAY, not weekends) inside the period is not
counted, so the period grows by one calendar day per such day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from cases.calendar import ChineseCalendar, DayKind
from cases.clock import beijing_date

__all__ = ["NoticeComputation", "compute_notice", "arrival_date_shanghai", "NOTICE_DAYS", "PROBATION_NOTICE_DAYS"]

NOTICE_DAYS = 30
PROBATION_NOTICE_DAYS = 3


@dataclass(frozen=True)
class NoticeComputation:
    earliest_last_day: date
    letter_due_date: date
    notice_days: int
    provisional: bool
    explanation_zh: str


def arrival_date_shanghai(t: datetime) -> date:
    """Calendar date in China of the moment notice entered the system."""
    if t.tzinfo is None:
        raise ValueError("aware datetime required")
    return beijing_date(t)


def compute_notice(arrival: date, probation: bool, *, calendar: ChineseCalendar, holidays_extend: bool,
                   letter_due_working_days: int) -> NoticeComputation:
    notice_days = PROBATION_NOTICE_DAYS if probation else NOTICE_DAYS
    provisional = False
    if holidays_extend:
        d, counted = arrival, 0
        while counted < notice_days:
            d += timedelta(days=1)
            provisional |= not calendar.is_known(d)
            if calendar.kind(d) != DayKind.HOLIDAY:
                counted += 1
        last = d
    else:
        last = arrival + timedelta(days=notice_days)
    due = calendar.add_working_days(arrival, letter_due_working_days)
    provisional |= due.provisional
    text = (f"通知于{arrival.isoformat()}送达，当日不计入；{'试用期' if probation else ''}提前{notice_days}日通知，"
            f"最早可于{last.isoformat()}离职{'（法定节假日顺延）' if holidays_extend else ''}；"
            f"书面辞职信应于{letter_due_working_days}个工作日内、即{due.date.isoformat()}前提交。")
    if provisional:
        text += "部分日期所在年份的节假日安排尚未公布，结果为暂定。"
    return NoticeComputation(last, due.date, notice_days, provisional, text)
