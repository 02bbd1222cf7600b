"""Leaving without notice (擅自离职), as pure rules: the absence HR confirms, the return-to-work
notice's deadline, the employee's answers, and when an art. 39(2) dismissal may go ahead.

The law (shared/DOMAIN.md, "Leaving without notice"): record the absence, send a written
return-to-work notice with a deadline to the agreed address, then, if the company's rules allow,
dismiss under art. 39(2) (serious breach of the employer's rules) after notifying the union
(art. 43), deliver the written notice and issue the certificate.

* **Absent days** are Chinese working days (statutory holidays and 调休 counted by the company
  calendar): a holiday or a weekend is no absence, a swapped working Saturday is.
* **The deadline** is counted in Chinese working days (default 3, ``QIANLI_RETURN_NOTICE_DEADLINE_DAYS``,
  per company ``return_notice_deadline_days``) after the day the notice is served: the day of
  service is not counted and the period ends at 24:00 (Beijing) of its last day (Civil Code art.
  201, as for the resignation notice). Working days, not calendar days, so that a notice served on
  the eve of the National Day holiday still leaves the employee three days on which they could
  come to work; the notice names the date.
* **Dismissal** needs, in this order: an absconding case served with the notice, the deadline
  passed without a return (the employee's own "I'm back" before the deadline ends the case), the
  handbook clause configured (the rule the dismissal applies, art. 39(2) needs one), the union
  notified (art. 43). The company's absconding approval chain (default HR manager, then the
  department head: the seed's fast track) decides with the same rules as the resignation review.

Standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Iterable

from cases import approval
from cases.approval import ApprovalStatus
from cases.calendar import ChineseCalendar, WorkingDayResult
from cases.errors import Conflict, InvalidInput
from cases.states import CaseAction, CaseState

__all__ = ["DEFAULT_CHAIN", "ANSWERS", "ANSWER_LABELS", "MAX_ABSENT_DAYS", "HandbookClause", "check_absent_days",
           "return_deadline", "deadline_passed", "dismissal_status", "dismissal_blockers", "check_dismissal",
           "answer_action", "ANSWERABLE_STATES", "POSTAL_STATUSES", "NOTICE_KINDS", "UNION_METHODS",
           "ARTICLE_39_2", "ARTICLE_43"]

DEFAULT_CHAIN = ("hr_manager", "dept_head")
"""The absconding approval chain of a company that has not configured one (the seed's fast track)."""

ARTICLE_39_2 = "《中华人民共和国劳动合同法》第三十九条第（二）项"
ARTICLE_43 = "《中华人民共和国劳动合同法》第四十三条"
MAX_ABSENT_DAYS = 60
ANSWERS = ("back", "explanation", "resign")
ANSWER_LABELS = {"back": "我已返岗", "explanation": "我作出说明", "resign": "我辞职"}
ANSWERABLE_STATES = frozenset({CaseState.NOTICE_SERVED.value, CaseState.EXPLANATION_RECEIVED.value,
                               CaseState.DISMISSAL_PENDING.value})
POSTAL_STATUSES = ("sent", "delivered", "returned")
NOTICE_KINDS = ("return_to_work", "dismissal")
UNION_METHODS = ("written", "email", "wecom", "in_person", "other")


@dataclass(frozen=True)
class HandbookClause:
    """The rule of the company's handbook (员工手册) an unexcused absence breaches: its reference
    (e.g. 《员工手册》第五章第十二条) and its wording. The company configures it in its policy."""

    reference: str
    text: str

    @classmethod
    def from_policy(cls, raw: object) -> "HandbookClause | None":
        if not isinstance(raw, dict):
            return None
        ref, text = str(raw.get("reference") or "").strip(), str(raw.get("text") or "").strip()
        return cls(ref, text) if ref and text else None

    @classmethod
    def parse(cls, reference: str, text: str) -> "HandbookClause":
        """A clause HR enters: a reference of 2-100 and a wording of 10-2000 characters."""
        reference, text = (reference or "").strip(), (text or "").strip()
        if not 2 <= len(reference) <= 100:
            raise InvalidInput("invalid_handbook_clause", "规章制度条款编号须为 2 到 100 个字",
                               details={"field": "reference"})
        if not 10 <= len(text) <= 2000:
            raise InvalidInput("invalid_handbook_clause", "规章制度条款内容须为 10 到 2000 个字", details={"field": "text"})
        return cls(reference, text)

    def as_dict(self) -> dict[str, str]:
        return {"reference": self.reference, "text": self.text}


def check_absent_days(days: Iterable[date], *, calendar: ChineseCalendar, today: date,
                      last_seen_on: date | None) -> list[date]:
    """The absent days HR names, sorted: 1 to 60 distinct Chinese working days, none in the future,
    all after the day the employee was last seen. Anything else: InvalidInput with the days at fault."""
    out = sorted(set(days))
    if not out:
        raise InvalidInput("absent_days_required", "请填写缺勤的工作日")
    if len(out) > MAX_ABSENT_DAYS:
        raise InvalidInput("too_many_absent_days", f"缺勤日不能超过 {MAX_ABSENT_DAYS} 天")
    future = [d.isoformat() for d in out if d > today]
    if future:
        raise InvalidInput("absent_day_in_future", "缺勤日不能晚于今天", details={"days": future})
    off = [{"day": d.isoformat(), "kind": calendar.kind(d).value, "reason": calendar.reason(d)}
           for d in out if not calendar.is_working_day(d)]
    if off:
        raise InvalidInput("absent_day_not_working", "休息日、节假日不算缺勤，请只填写工作日（调休上班日算工作日）",
                           details={"days": off})
    if last_seen_on is not None and last_seen_on >= out[0]:
        raise InvalidInput("last_seen_after_absence", "最后出勤日期须早于第一个缺勤日",
                           details={"last_seen_on": last_seen_on.isoformat(), "first_absent_day": out[0].isoformat()})
    return out


def return_deadline(calendar: ChineseCalendar, served_on: date, working_days: int) -> WorkingDayResult:
    """The last day to return or explain: the ``working_days``-th Chinese working day after the day
    of service (not counted); the period ends at 24:00 Beijing time of that day."""
    if not 1 <= working_days <= 30:
        raise ValueError("working_days must be between 1 and 30")
    return calendar.add_working_days(served_on, working_days)


def deadline_passed(deadline: date, today: date) -> bool:
    """The deadline ends at 24:00 of its day: passed from the next Beijing day on."""
    return today > deadline


def answer_action(answer: str, *, state: str, past_deadline: bool) -> CaseAction:
    """The transition an employee's answer makes.

    Before the deadline "I'm back" ends the case (returned_to_work); after it, or while the
    dismissal waits for its second level, it is recorded and goes to HR (explanation_received), who
    may accept it (withdraw) or go on. "I resign" turns the case into an art. 37 resignation unless
    a dismissal is already under approval (then it too goes to HR)."""
    if answer not in ANSWERS:
        raise InvalidInput("absence_answer_invalid", "请选择：已返岗、作出说明或辞职", details={"allowed": list(ANSWERS)})
    if state not in ANSWERABLE_STATES:
        raise Conflict("absence_answer_closed", "该通知已无需答复", details={"state": state})
    pending = state == CaseState.DISMISSAL_PENDING.value
    if answer == "back" and not past_deadline and not pending:
        return CaseAction.RETURN_TO_WORK
    if answer == "resign" and not pending:
        return CaseAction.CONVERT_TO_RESIGNATION
    return CaseAction.EXPLAIN


def dismissal_status(state: str, chain: tuple[str, ...] | None, *, first_approver: str | None) -> ApprovalStatus:
    """The approval chain's position for a dismissal: level 0 once the notice is served (or the
    employee answered), the second level once the first approved (``dismissal_pending``)."""
    chain = tuple(chain or DEFAULT_CHAIN)
    level: int | None = None
    if state in (CaseState.NOTICE_SERVED.value, CaseState.EXPLANATION_RECEIVED.value):
        level = 0
    elif state == CaseState.DISMISSAL_PENDING.value:
        level = min(1, len(chain) - 1)
    return ApprovalStatus(chain, level, chain[level] if level is not None else None,
                          first_approver if state == CaseState.DISMISSAL_PENDING.value else None, None, None)


def dismissal_blockers(*, state: str, deadline: date | None, today: date, clause: HandbookClause | None,
                       union_notified: bool) -> list[str]:
    """Why a dismissal may not go ahead now (stable codes, most fundamental first); empty: it may."""
    out: list[str] = []
    if state == CaseState.CONFIRMED.value or deadline is None:
        out.append("return_notice_not_served")
    elif state not in (CaseState.NOTICE_SERVED.value, CaseState.EXPLANATION_RECEIVED.value,
                       CaseState.DISMISSAL_PENDING.value):
        out.append("case_not_dismissible")
    elif not deadline_passed(deadline, today):
        out.append("deadline_not_passed")
    if clause is None:
        out.append("handbook_clause_missing")
    if not union_notified:
        out.append("union_notification_missing")
    return out


_MESSAGES = {
    "return_notice_not_served": "尚未送达返岗通知书，不能解除劳动合同",
    "case_not_dismissible": "该案件当前状态不能解除劳动合同",
    "deadline_not_passed": "返岗通知书的期限尚未届满，不能解除劳动合同",
    "handbook_clause_missing": "公司尚未设定适用的规章制度条款（员工手册），不能依据劳动合同法第三十九条第（二）项解除",
    "union_notification_missing": "尚未登记通知工会（劳动合同法第四十三条），不能解除劳动合同",
}


def check_dismissal(*, state: str, deadline: date | None, today: date, clause: HandbookClause | None,
                    union_notified: bool) -> None:
    """:func:`dismissal_blockers` as the error to answer with (409, the first reason; all in details)."""
    blockers = dismissal_blockers(state=state, deadline=deadline, today=today, clause=clause,
                                  union_notified=union_notified)
    if blockers:
        details: dict[str, object] = {"blockers": blockers, "state": state}
        if deadline is not None:
            details["deadline"] = deadline.isoformat()
        raise Conflict(blockers[0], _MESSAGES[blockers[0]], details=details)


def check_may_approve(status: ApprovalStatus, *, role: str, actor: str, department: str | None,
                      employee_department: str | None) -> None:
    """The resignation review's rules, applied to the dismissal's chain."""
    approval.check_may_decide(status, role=role, actor=actor, department=department,
                              employee_department=employee_department)
