"""Reminder policy: when the employee is told the signed letter is due, and when they are reminded.

Pure functions, no framework (the storage and the sending live in ``qianli.services.reminders``).

- Slot 0 is the "letter due" notice, sent as soon as the case opens. Slot n (n >= 1) is the
  n-th reminder, ``interval`` after the slot before it was scheduled.
- Reminders run only while the case waits for the signed letter (``awaiting_letter``,
  ``returned``). Submitted or under review: paused (a return for revision resumes them).
  Withdrawn, approved or closed: stopped for good.
- Quiet hours (Asia/Shanghai, e.g. 21:00-08:00) move a send to the first minute after them.
  The next slot is counted from the moved time, so "every 24 hours" stays every 24 hours.
- The letter is due by 24:00 (Beijing time) of ``letter_due_date``; from the next day the case
  is overdue: HR gets one digest per HR user per day, and reminding goes on.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from cases.clock import SHANGHAI, beijing_date
from cases.evidence import canonical_json
from cases.states import CaseState

__all__ = ["QuietHours", "ReminderPolicy", "ScheduleDecision", "LETTER_STATES", "PAUSED_STATES",
           "schedule_decision", "is_overdue", "Message", "letter_message", "notification_message",
           "hr_digest_message", "content_digest", "NOTIFICATION_KINDS", "NOTIFICATION_STATES", "notification_due",
           "PROVISIONAL_NOTE"]

LETTER_STATES = frozenset({CaseState.AWAITING_LETTER.value, CaseState.RETURNED.value})
"""The signed letter is awaited: reminders run."""
PAUSED_STATES = frozenset({CaseState.SUBMITTED.value, CaseState.FIRST_APPROVED.value})
"""The letter is in and under review: no reminders, but a return for revision resumes them."""

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def _aware(t: datetime) -> datetime:
    if t.tzinfo is None:
        raise ValueError("aware datetime required")
    return t


@dataclass(frozen=True)
class QuietHours:
    """A daily window [start, end) in Beijing time in which nothing is sent; may cross midnight."""

    start: time
    end: time

    @classmethod
    def parse(cls, spec: str) -> "QuietHours | None":
        """'21:00-08:00' -> QuietHours; '', 'off' or 'none' -> None (no quiet hours). Anything else: ValueError."""
        spec = (spec or "").strip()
        if spec.lower() in ("", "off", "none"):
            return None
        a, sep, b = spec.partition("-")
        ma, mb = _HHMM.match(a.strip()), _HHMM.match(b.strip())
        if not sep or not ma or not mb:
            raise ValueError(f"quiet hours must be 'HH:MM-HH:MM', got {spec!r}")
        start, end = time(int(ma[1]), int(ma[2])), time(int(mb[1]), int(mb[2]))
        if start == end:
            raise ValueError("quiet hours: start and end must differ")
        return cls(start, end)

    def contains(self, t: datetime) -> bool:
        local = _aware(t).astimezone(SHANGHAI).time().replace(tzinfo=None)
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def next_allowed(self, t: datetime) -> datetime:
        """``t`` itself when it is outside the window, else the window's end (Beijing), in UTC."""
        t = _aware(t)
        if not self.contains(t):
            return t.astimezone(timezone.utc)
        local = t.astimezone(SHANGHAI)
        end = datetime.combine(local.date(), self.end, tzinfo=SHANGHAI)
        if end <= local:  # the window crossed midnight and we are before it: it ends tomorrow
            end = datetime.combine(local.date() + timedelta(days=1), self.end, tzinfo=SHANGHAI)
        return end.astimezone(timezone.utc)


@dataclass(frozen=True)
class ReminderPolicy:
    interval: timedelta
    quiet: QuietHours | None = None

    @classmethod
    def from_settings(cls, interval_s: int, quiet_hours: str) -> "ReminderPolicy":
        if interval_s < 1:
            raise ValueError("reminder interval must be at least 1 second")
        return cls(timedelta(seconds=interval_s), QuietHours.parse(quiet_hours))

    def allowed(self, t: datetime) -> datetime:
        return self.quiet.next_allowed(t) if self.quiet else _aware(t).astimezone(timezone.utc)

    def first_send_at(self, opened_at: datetime) -> datetime:
        """The notice (slot 0): at once, unless that is inside quiet hours."""
        return self.allowed(opened_at)

    def next_send_at(self, previous_scheduled_at: datetime) -> datetime:
        """Slot n+1: one interval after slot n was scheduled, moved out of quiet hours."""
        return self.allowed(_aware(previous_scheduled_at) + self.interval)

    def send_times(self, opened_at: datetime, count: int) -> list[datetime]:
        """The first ``count`` scheduled times (slot 0 first), for previews and tests."""
        out = [self.first_send_at(opened_at)]
        while len(out) < count:
            out.append(self.next_send_at(out[-1]))
        return out[:count]


@dataclass(frozen=True)
class ScheduleDecision:
    """What to do with a due schedule row: ``send``, ``pause`` or ``stop``."""

    action: str
    reason: str


def schedule_decision(case_state: str) -> ScheduleDecision:
    if case_state in LETTER_STATES:
        return ScheduleDecision("send", "letter_awaited")
    if case_state in PAUSED_STATES:
        return ScheduleDecision("pause", "letter_submitted")
    return ScheduleDecision("stop", f"case_{case_state}")


def is_overdue(letter_due_date: date, now: datetime) -> bool:
    """Due by 24:00 Beijing time of ``letter_due_date``; overdue from the next day."""
    return beijing_date(_aware(now)) > letter_due_date


# ---- messages ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Message:
    """One message in two renderings: SMS template params (ordered) and subscribe-message data."""

    kind: str
    sms_params: dict[str, str]
    wechat_data: dict[str, str]
    text: str


NOTIFICATION_KINDS = {
    "case_returned": "您的离职申请已被退回修改",
    "agreed_last_day_proposed": "公司提议了新的最后工作日，请确认",
    "withdrawal_consented": "公司已同意您撤回离职申请",
    "withdrawal_declined": "公司未同意撤回，离职申请继续有效",
    "dates_recomputed": "节假日安排已公布，您的离职日期已更新",
    "return_to_work_notice": "公司向您发出返岗通知书",
    "return_notice_reminder": "返岗通知书的期限即将届满",
    "dismissal_notice": "公司向您发出解除劳动合同通知书",
    "absence_withdrawn": "公司已撤回擅自离职的认定",
    "termination_certificate_issued": "公司已为您出具解除劳动合同证明",
}

NOTIFICATION_STATES = {"return_notice_reminder": frozenset({CaseState.NOTICE_SERVED.value})}
"""Kinds sent only while the case is in one of these states (a reminder scheduled ahead is dropped
at send time once the employee answered or the case ended)."""


def notification_due(kind: str, case_state: str, params: dict[str, Any] | None = None,
                     now: datetime | None = None) -> bool:
    """Whether a notification of ``kind`` is still to be sent to a case in ``case_state`` at ``now``:
    a reminder of a deadline (``params["deadline"]``) is not sent once that day has ended (Beijing)."""
    states = NOTIFICATION_STATES.get(kind)
    if states is not None and case_state not in states:
        return False
    deadline = (params or {}).get("deadline")
    if kind == "return_notice_reminder" and deadline and now is not None:
        return beijing_date(_aware(now)) <= date.fromisoformat(str(deadline))
    return True


def _cut(s: str, n: int) -> str:
    """Subscribe-message 'thing' values are limited to 20 characters."""
    return s if len(s) <= n else s[: n - 1] + "…"


def _zh_date(d: date) -> str:
    return f"{d.year}年{d.month}月{d.day}日"


PROVISIONAL_NOTE = "该截止日期所在期间的国务院节假日调休安排尚未公布，为按法定节假日推算的暂定日期，公布后如有调整将另行通知。"


def letter_message(*, slot: int, name: str, letter_due_date: date, now: datetime, provisional: bool = False) -> Message:
    """Slot 0: the notice; later slots: reminders (worded as overdue once the due date has passed).

    A provisional due date (the State Council's arrangement for its period is not published) is
    marked "（暂定）" and explained; an overdue reminder on a provisional date says so."""
    due = _zh_date(letter_due_date) + ("（暂定）" if provisional else "")
    note = PROVISIONAL_NOTE if provisional else ""
    if slot == 0:
        kind, title = "letter_due_notice", "请提交书面辞职信"
        text = (f"{name}，您的离职申请已收到。请于{due}（含）前在小程序内签署并提交书面辞职信；"
                f"提交前我们将每天提醒您。{note}")
    elif is_overdue(letter_due_date, now):
        kind, title = "letter_overdue_reminder", "书面辞职信已逾期"
        basis = "按暂定截止日期计算，" if provisional else ""
        text = (f"{name}，您的书面辞职信应于{due}前提交，{basis}现已逾期。请尽快在小程序内签署并提交（第{slot}次提醒）。"
                f"{note}")
    else:
        kind, title = "letter_reminder", "书面辞职信待提交"
        text = f"{name}，请于{due}（含）前在小程序内签署并提交书面辞职信（第{slot}次提醒）。{note}"
    return Message(kind, {"name": name, "text": text},
                   {"thing1": _cut(title, 20), "date2": letter_due_date.isoformat(),
                    "thing3": _cut("截止日为暂定日期" if provisional else "请在小程序内签署并提交", 20)}, text)


def notification_message(kind: str, *, name: str, params: dict[str, Any]) -> Message:
    if kind not in NOTIFICATION_KINDS:
        raise ValueError(f"unknown notification kind {kind!r}")
    title = NOTIFICATION_KINDS[kind]
    detail = ""
    if kind == "case_returned" and params.get("reason"):
        detail = f"原因：{params['reason']}"
    elif kind == "agreed_last_day_proposed" and params.get("agreed_last_day"):
        detail = f"提议的最后工作日：{_zh_date(date.fromisoformat(str(params['agreed_last_day'])))}"
    elif kind == "dates_recomputed" and params.get("letter_due_date"):
        mark = "（暂定）" if str(params.get("provisional")) == "1" else ""
        detail = f"辞职信截止日：{_zh_date(date.fromisoformat(str(params['letter_due_date'])))}{mark}"
        if params.get("earliest_last_day"):
            detail += f"，最早离职日：{_zh_date(date.fromisoformat(str(params['earliest_last_day'])))}"
    elif kind in ("return_to_work_notice", "return_notice_reminder") and params.get("deadline"):
        detail = f"请于{_zh_date(date.fromisoformat(str(params['deadline'])))}（含）前返岗或在小程序内说明"
    elif kind == "dismissal_notice" and params.get("termination_date"):
        detail = f"劳动合同解除日期：{_zh_date(date.fromisoformat(str(params['termination_date'])))}"
    elif kind == "termination_certificate_issued" and params.get("termination_date"):
        detail = f"劳动合同解除日期：{_zh_date(date.fromisoformat(str(params['termination_date'])))}，可在小程序内下载"
    elif params.get("comment"):
        detail = f"说明：{params['comment']}"
    text = f"{name}，{title}。{detail + '。' if detail else ''}请在小程序内查看。"
    return Message(kind, {"name": name, "text": text},
                   {"thing1": _cut(title, 20), "date2": str(params.get("deadline") or params.get("termination_date") or ""),
                    "thing3": _cut(detail or "请在小程序内查看", 20)}, text)


def hr_digest_message(*, hr_name: str, day: date, cases: list[tuple[Any, ...]]) -> Message:
    """One HR user's daily digest: (employee name, employee number, due date[, provisional]) per overdue case.

    A case whose due date is provisional is marked "（暂定）": it is overdue on the estimated date only."""
    def one(c: tuple[Any, ...]) -> str:
        n, no, d = c[0], c[1], c[2]
        prov = len(c) > 3 and bool(c[3])
        return f"{n}（{no}，应于{_zh_date(d)}{'（暂定）' if prov else ''}前）"

    listed = "；".join(one(c) for c in cases[:10])
    more = f"等共{len(cases)}人" if len(cases) > 10 else f"共{len(cases)}人"
    text = f"{hr_name}，截至{_zh_date(day)}，以下员工逾期未提交书面辞职信，{more}：{listed}。"
    if any(len(c) > 3 and c[3] for c in cases[:10]):
        text += "标“暂定”的截止日期所在期间的节假日安排尚未公布，逾期按暂定日期计算。"
    return Message("hr_overdue_digest", {"name": hr_name, "text": text},
                   {"thing1": "逾期未交辞职信", "date2": day.isoformat(), "thing3": _cut(more, 20)}, text)


def content_digest(channel: str, template: str, content: dict[str, Any]) -> str:
    """SHA-256 (hex) of exactly what a channel was asked to send (recipient excluded)."""
    return hashlib.sha256(canonical_json({"channel": channel, "template": template, "content": content})
                          .encode()).hexdigest()
