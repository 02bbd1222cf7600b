"""HR review of a submitted letter, as pure rules: who may decide at which level of the company's
approval chain, and what an approval means for the last working day.

Art. 37 of the Labor Contract Law gives the employer no veto over a lawful notice: "approval" here
is HR confirming the letter and the handover at each level of the chain (``hr_specialist`` then
``dept_head`` of the employee's department, say), the final level countersigning. The last
working day is the later of the one asked for and the lawful one (``earliest_lawful_last_day``),
unless both sides agree on an earlier one (art. 36): HR proposes it, the employee confirms it, and
only then may the final level approve with it.

The service layer (``qianli.services.review``) reads the chain, the case and the evidence, asks
these functions, and writes what they decide. Standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from cases.errors import Conflict, DomainError, Forbidden, InvalidInput
from cases.states import CaseState

__all__ = ["DEFAULT_CHAIN", "ARTICLE_36", "ApprovalStatus", "ApprovalDecision", "approval_level", "approval_status",
           "refusal_reason", "check_may_decide", "default_last_day", "decide_approval"]

DEFAULT_CHAIN = ("hr_manager",)
"""The chain of a company that has not configured one: one level, the HR manager."""

ARTICLE_36 = "劳动合同法第三十六条（协商一致）"


@dataclass(frozen=True)
class ApprovalStatus:
    chain: tuple[str, ...]
    level: int | None  # index of the level waiting for a decision, None when not under review
    level_role: str | None
    first_approver: str | None  # actor who approved the first level (this round)
    pending_last_day: date | None  # an earlier last day (art. 36) waiting for the employee
    confirmed_last_day: date | None  # an earlier last day the employee confirmed (this round)

    @property
    def final(self) -> bool:
        """The level waiting is the chain's last (its approval countersigns)."""
        return self.level is not None and self.level == len(self.chain) - 1


def approval_level(state: str, chain: tuple[str, ...]) -> int | None:
    """The level waiting for a decision in ``state``: 0 when submitted, 1 (or 0 for a one-level chain)
    after the first approval, None when the case is not under review."""
    if state == CaseState.SUBMITTED.value:
        return 0
    if state == CaseState.FIRST_APPROVED.value:
        return min(1, len(chain) - 1)
    return None


def approval_status(state: str, chain: tuple[str, ...] | None, *, first_approver: str | None,
                    agreement: str, agreement_day: date | None) -> ApprovalStatus:
    """``first_approver``: who approved the first level this round (when the case is first_approved);
    ``agreement``: the earlier-last-day agreement of this round, 'pending', 'confirmed', 'declined' or 'none'."""
    chain = tuple(chain or DEFAULT_CHAIN)
    level = approval_level(state, chain)
    return ApprovalStatus(chain, level, chain[level] if level is not None else None, first_approver,
                          agreement_day if agreement == "pending" else None,
                          agreement_day if agreement == "confirmed" else None)


def refusal_reason(status: ApprovalStatus, *, role: str, actor: str, department: str | None,
                   employee_department: str | None) -> str | None:
    """None when this HR user may decide at the waiting level, else why not (a stable code).

    The HR manager may decide at any level; others only at their role's level; a department head
    only for their own department; the two levels of one round need two different people.
    """
    if status.level is None:
        return "case_not_under_review"
    if role == "auditor":
        return "role_read_only"
    if role != "hr_manager" and role != status.level_role:
        return "wrong_approval_level"
    if role == "dept_head" and employee_department != department:
        return "other_department"
    if status.level > 0 and status.first_approver == actor:
        return "same_approver"
    return None


def check_may_decide(status: ApprovalStatus, *, role: str, actor: str, department: str | None,
                     employee_department: str | None) -> None:
    """:func:`refusal_reason` as the error to answer with."""
    reason = refusal_reason(status, role=role, actor=actor, department=department,
                            employee_department=employee_department)
    if reason is not None:
        raise _refusal(reason, status, role)


def _refusal(reason: str, status: ApprovalStatus, role: str) -> DomainError:
    if reason == "case_not_under_review":
        return Conflict(reason, "该离职申请当前不在审核阶段")
    if reason == "same_approver":
        return Forbidden(reason, "两级审核须由不同的人完成")
    return Forbidden(reason, f"当前审核级别需要 {status.level_role} 处理",
                     details={"level": status.level, "level_role": status.level_role, "role": role})


def default_last_day(requested: date | None, earliest_lawful: date) -> date:
    """Without a new agreement the contract ends on the later of the asked-for and the lawful day."""
    return max(requested or earliest_lawful, earliest_lawful)


@dataclass(frozen=True)
class ApprovalDecision:
    outcome: str  # "first_approved", "approved" or "awaiting_employee_confirmation"
    propose: date | None = None  # an earlier last day to propose to the employee now (record it, tell them)
    last_day: date | None = None  # the agreed last day to store (None: leave the case's as it is)
    transition_last_day: date | None = None  # the day the approval's evidence names
    mutual_agreement: bool = False  # the final day is earlier than the law's: art. 36

    @property
    def transition(self) -> str | None:
        """The case action to apply: approve_first, approve_final, or none (waiting for the employee)."""
        return {"first_approved": "approve_first", "approved": "approve_final"}.get(self.outcome)


def decide_approval(status: ApprovalStatus, *, arrival_date: date, earliest_lawful_last_day: date,
                    requested_last_day: date | None, current_last_day: date | None,
                    agreed_last_day: date | None) -> ApprovalDecision:
    """What approving at the waiting level does, with ``agreed_last_day`` if HR named one.

    Raises InvalidInput for a day on or before the notice's arrival or after the employee's own
    request, and Conflict ``agreement_pending`` when the final level approves without a day while an
    earlier one still waits for the employee.
    """
    if status.level is None:
        raise _refusal("case_not_under_review", status, "")
    upper = default_last_day(requested_last_day, earliest_lawful_last_day)
    if agreed_last_day is not None:
        if agreed_last_day <= arrival_date:
            raise InvalidInput("agreed_last_day_too_early", "最后工作日必须晚于提出离职的日期")
        if agreed_last_day > upper:
            raise InvalidInput("agreed_last_day_after_requested", "约定的最后工作日不能晚于员工申请的日期",
                               details={"latest_allowed": upper.isoformat()})
    early = agreed_last_day is not None and agreed_last_day < earliest_lawful_last_day
    propose = None
    store: date | None = None
    if early and status.confirmed_last_day != agreed_last_day:
        if status.pending_last_day != agreed_last_day:
            propose = agreed_last_day
        if status.final:
            return ApprovalDecision("awaiting_employee_confirmation", propose=propose)
    elif not status.final and agreed_last_day is not None and not early:
        store = agreed_last_day
    if not status.final:
        return ApprovalDecision("first_approved", propose=propose, last_day=store, transition_last_day=agreed_last_day)
    if agreed_last_day is None and status.pending_last_day is not None:
        raise Conflict("agreement_pending", "员工尚未确认提前的最后工作日",
                       details={"agreed_last_day": status.pending_last_day.isoformat()})
    last_day = agreed_last_day or status.confirmed_last_day or current_last_day or upper
    return ApprovalDecision("approved", last_day=last_day, transition_last_day=last_day,
                            mutual_agreement=last_day < earliest_lawful_last_day)
