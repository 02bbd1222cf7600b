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

Leaving without notice (擅自离职, departure type ``absconding``) has its own states in the same machine::

    confirmed --serve_return_notice--> notice_served --return_to_work--> returned_to_work
                                           |  ^   +--convert_to_resignation--> converted_to_resignation
                                         explain  |
                                           v  |   (deadline passed, handbook clause, union notified)
                                    explanation_received --approve_dismissal--> dismissal_pending
                                           |                                        |
                                           +--dismiss (one-level chain)--> dismissed <--dismiss--+
                                                                              |
                                                                            close --> closed
    confirmed | notice_served | explanation_received | dismissal_pending --withdraw--> withdrawn

``confirmed``: HR confirmed the departure (the timestamp starts the evidence chain).
``notice_served``: the sealed return-to-work notice (返岗通知书) was served; the employee has until
the deadline to return or explain. ``explanation_received``: the employee explained (or answered
after the deadline): HR decides. ``returned_to_work``: the employee came back before the deadline;
the case ends without dismissal. ``converted_to_resignation``: the employee resigned instead; a
normal art. 37 resignation case carries on. ``dismissal_pending``: the first level of the company's
absconding approval chain approved the art. 39(2) dismissal. ``dismissed``: the sealed dismissal
notice was served. ``withdrawn``: the company withdrew the confirmation (a false alarm, an accepted
explanation). An answer while the dismissal waits for its second level sends the case back to
``explanation_received``.
"""

from __future__ import annotations

from enum import Enum

from cases.errors import InvalidTransition

__all__ = ["CaseState", "CaseAction", "TRANSITIONS", "OPEN_STATES", "ABSCONDING_OPEN_STATES", "ABSCONDING_STATES",
           "ANY_OPEN_STATES", "STATE_LABELS", "next_state", "allowed_actions"]


class CaseState(str, Enum):
    AWAITING_LETTER = "awaiting_letter"
    SUBMITTED = "submitted"
    FIRST_APPROVED = "first_approved"
    RETURNED = "returned"
    APPROVED = "approved"
    CLOSED = "closed"
    WITHDRAWN = "withdrawn"
    # leaving without notice (departure type absconding)
    CONFIRMED = "confirmed"
    NOTICE_SERVED = "notice_served"
    EXPLANATION_RECEIVED = "explanation_received"
    RETURNED_TO_WORK = "returned_to_work"
    CONVERTED_TO_RESIGNATION = "converted_to_resignation"
    DISMISSAL_PENDING = "dismissal_pending"
    DISMISSED = "dismissed"


STATE_LABELS: dict[str, str] = {
    CaseState.AWAITING_LETTER.value: "待提交辞职信", CaseState.SUBMITTED.value: "待审核",
    CaseState.FIRST_APPROVED.value: "一级已审核", CaseState.RETURNED.value: "已退回修改",
    CaseState.APPROVED.value: "已审核通过", CaseState.CLOSED.value: "已结案", CaseState.WITHDRAWN.value: "已撤回",
    CaseState.CONFIRMED.value: "已确认擅自离职", CaseState.NOTICE_SERVED.value: "已送达返岗通知",
    CaseState.EXPLANATION_RECEIVED.value: "员工已答复待处理", CaseState.RETURNED_TO_WORK.value: "已返岗",
    CaseState.CONVERTED_TO_RESIGNATION.value: "已转为辞职", CaseState.DISMISSAL_PENDING.value: "解除待审批",
    CaseState.DISMISSED.value: "已解除劳动合同",
}
"""The zh-CN name of each state, the one wording used by the HR console, the dossier report and messages."""


class CaseAction(str, Enum):
    SUBMIT_LETTER = "submit_letter"
    APPROVE_FIRST = "approve_first"
    APPROVE_FINAL = "approve_final"
    RETURN_FOR_REVISION = "return_for_revision"
    WITHDRAW = "withdraw"
    CLOSE = "close"
    # leaving without notice
    SERVE_RETURN_NOTICE = "serve_return_notice"
    RETURN_TO_WORK = "return_to_work"
    EXPLAIN = "explain"
    CONVERT_TO_RESIGNATION = "convert_to_resignation"
    APPROVE_DISMISSAL = "approve_dismissal"
    DISMISS = "dismiss"


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
    # leaving without notice
    (S.CONFIRMED, A.SERVE_RETURN_NOTICE): S.NOTICE_SERVED,
    (S.NOTICE_SERVED, A.RETURN_TO_WORK): S.RETURNED_TO_WORK,
    (S.EXPLANATION_RECEIVED, A.RETURN_TO_WORK): S.RETURNED_TO_WORK,
    (S.NOTICE_SERVED, A.EXPLAIN): S.EXPLANATION_RECEIVED,
    (S.EXPLANATION_RECEIVED, A.EXPLAIN): S.EXPLANATION_RECEIVED,
    (S.DISMISSAL_PENDING, A.EXPLAIN): S.EXPLANATION_RECEIVED,
    (S.NOTICE_SERVED, A.CONVERT_TO_RESIGNATION): S.CONVERTED_TO_RESIGNATION,
    (S.EXPLANATION_RECEIVED, A.CONVERT_TO_RESIGNATION): S.CONVERTED_TO_RESIGNATION,
    (S.NOTICE_SERVED, A.APPROVE_DISMISSAL): S.DISMISSAL_PENDING,
    (S.EXPLANATION_RECEIVED, A.APPROVE_DISMISSAL): S.DISMISSAL_PENDING,
    (S.NOTICE_SERVED, A.DISMISS): S.DISMISSED,
    (S.EXPLANATION_RECEIVED, A.DISMISS): S.DISMISSED,
    (S.DISMISSAL_PENDING, A.DISMISS): S.DISMISSED,
    (S.DISMISSED, A.CLOSE): S.CLOSED,
    (S.CONFIRMED, A.WITHDRAW): S.WITHDRAWN,
    (S.NOTICE_SERVED, A.WITHDRAW): S.WITHDRAWN,
    (S.EXPLANATION_RECEIVED, A.WITHDRAW): S.WITHDRAWN,
    (S.DISMISSAL_PENDING, A.WITHDRAW): S.WITHDRAWN,
}

OPEN_STATES = frozenset({S.AWAITING_LETTER, S.SUBMITTED, S.FIRST_APPROVED, S.RETURNED})
"""States in which the resignation is still in progress (reminders may run in the letter-less ones)."""

ABSCONDING_OPEN_STATES = frozenset({S.CONFIRMED, S.NOTICE_SERVED, S.EXPLANATION_RECEIVED, S.DISMISSAL_PENDING})
"""States in which a leaving-without-notice case is still in progress (the company may withdraw it)."""

ABSCONDING_STATES = ABSCONDING_OPEN_STATES | {S.RETURNED_TO_WORK, S.CONVERTED_TO_RESIGNATION, S.DISMISSED}
"""Every state only a leaving-without-notice case takes (besides the shared closed and withdrawn)."""

ANY_OPEN_STATES = OPEN_STATES | ABSCONDING_OPEN_STATES
"""An employee has at most one case in these states, whatever its departure type."""


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
