"""The resignation case state machine: states, actions and the only allowed transitions.

::

    awaiting_letter --submit_letter--> submitted --approve_first--> first_approved
          |                               |  \\--approve_final (one-level chain)--\\
          |                               |                                        v
          |                               +--return_for_revision--> returned   approved --close--> closed
          |                                                            |          ^
          |          first_approved --approve_final-------------------+----------/
          |          first_approved --return_for_revision--> returned
          |          returned --submit_letter--> submitted
          +--withdraw--> withdrawn   (from any open state; after notice arrived only with HR consent;
                                      from approved until the last day, with HR consent)

``awaiting_letter``: notice has arrived (form or recorded instant message); the signed letter is
due and reminders run. ``submitted``: the employee's signed letter is in; HR reviews (checks and
records; art. 37 allows no veto). ``first_approved``: HR specialist confirmed; waiting for the
department head. ``returned``: HR sent it back for revision; the employee must sign again.
``approved``: final approval, company countersignature applied. ``closed``: the relationship has
ended (termination certificate stage). ``withdrawn``: the resignation was withdrawn.
"""

from __future__ import annotations

from enum import Enum

from cases.errors import InvalidTransition

__all__ = ["CaseState", "CaseAction", "TRANSITIONS", "OPEN_STATES", "STATE_LABELS", "next_state", "allowed_actions"]


class CaseState(str, Enum):
    AWAITING_LETTER = "awaiting_letter"
    SUBMITTED = "submitted"
    FIRST_APPROVED = "first_approved"
    RETURNED = "returned"
    APPROVED = "approved"
    CLOSED = "closed"
    WITHDRAWN = "withdrawn"


STATE_LABELS: dict[str, str] = {
    CaseState.AWAITING_LETTER.value: "待提交辞职信", CaseState.SUBMITTED.value: "待审核",
    CaseState.FIRST_APPROVED.value: "一级已审核", CaseState.RETURNED.value: "已退回修改",
    CaseState.APPROVED.value: "已审核通过", CaseState.CLOSED.value: "已结案", CaseState.WITHDRAWN.value: "已撤回",
}
"""The zh-CN name of each state, the one wording used by the HR console, the dossier report and messages."""


class CaseAction(str, Enum):
    SUBMIT_LETTER = "submit_letter"
    APPROVE_FIRST = "approve_first"
    APPROVE_FINAL = "approve_final"
    RETURN_FOR_REVISION = "return_for_revision"
    WITHDRAW = "withdraw"
    CLOSE = "close"


S, A = CaseState, CaseAction

TRANSITIONS: dict[tuple[CaseState, CaseAction], CaseState] = {
    (S.AWAITING_LETTER, A.SUBMIT_LETTER): S.SUBMITTED,
    (S.RETURNED, A.SUBMIT_LETTER): S.SUBMITTED,
    (S.SUBMITTED, A.APPROVE_FIRST): S.FIRST_APPROVED,
    (S.SUBMITTED, A.APPROVE_FINAL): S.APPROVED,
    (S.FIRST_APPROVED, A.APPROVE_FINAL): S.APPROVED,
    (S.SUBMITTED, A.RETURN_FOR_REVISION): S.RETURNED,
    (S.FIRST_APPROVED, A.RETURN_FOR_REVISION): S.RETURNED,
    (S.AWAITING_LETTER, A.WITHDRAW): S.WITHDRAWN,
    (S.SUBMITTED, A.WITHDRAW): S.WITHDRAWN,
    (S.FIRST_APPROVED, A.WITHDRAW): S.WITHDRAWN,
    (S.RETURNED, A.WITHDRAW): S.WITHDRAWN,
    # Until the last day the employer may agree that the employee stays (the handover tasks are cancelled).
    (S.APPROVED, A.WITHDRAW): S.WITHDRAWN,
    (S.APPROVED, A.CLOSE): S.CLOSED,
}

OPEN_STATES = frozenset({S.AWAITING_LETTER, S.SUBMITTED, S.FIRST_APPROVED, S.RETURNED})
"""States in which the resignation is still in progress (reminders may run in the letter-less ones)."""


def next_state(state: CaseState | str, action: CaseAction | str) -> CaseState:
    """The state after ``action``, or :class:`InvalidTransition` (HTTP 409) with both named."""
    state, action = CaseState(state), CaseAction(action)
    try:
        return TRANSITIONS[(state, action)]
    except KeyError:
        raise InvalidTransition(
            "case_invalid_transition",
            f"当前状态（{state.value}）不允许此操作（{action.value}）",
            details={"state": state.value, "action": action.value, "allowed": [a.value for a in allowed_actions(state)]},
        ) from None


def allowed_actions(state: CaseState | str) -> list[CaseAction]:
    state = CaseState(state)
    return [a for (s, a) in TRANSITIONS if s == state]
