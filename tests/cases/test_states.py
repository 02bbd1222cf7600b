import pytest

from cases.errors import InvalidTransition
from cases.states import (ABSCONDING_OPEN_STATES, ANY_OPEN_STATES, OPEN_STATES, STATE_LABELS, TRANSITIONS, CaseAction,
                          CaseState, allowed_actions, next_state)


def test_happy_path_two_level_approval():
    s = CaseState.AWAITING_LETTER
    for action, expected in [(CaseAction.SUBMIT_LETTER, CaseState.SUBMITTED),
                             (CaseAction.APPROVE_FIRST, CaseState.FIRST_APPROVED),
                             (CaseAction.APPROVE_FINAL, CaseState.APPROVED),
                             (CaseAction.CLOSE, CaseState.CLOSED)]:
        s = next_state(s, action)
        assert s == expected


def test_return_then_resubmit():
    s = next_state(CaseState.SUBMITTED, CaseAction.RETURN_FOR_REVISION)
    assert s == CaseState.RETURNED
    assert next_state(s, CaseAction.SUBMIT_LETTER) == CaseState.SUBMITTED


@pytest.mark.parametrize("state", list(CaseState))
@pytest.mark.parametrize("action", list(CaseAction))
def test_every_pair_is_either_allowed_or_a_409_with_data(state, action):
    if (state, action) in TRANSITIONS:
        assert next_state(state, action) == TRANSITIONS[(state, action)]
    else:
        with pytest.raises(InvalidTransition) as exc:
            next_state(state, action)
        assert exc.value.code == "case_invalid_transition"
        assert exc.value.details["state"] == state.value
        assert exc.value.details["action"] == action.value


def test_terminal_states_allow_nothing():
    assert allowed_actions(CaseState.CLOSED) == []
    assert allowed_actions(CaseState.WITHDRAWN) == []


def test_withdraw_possible_from_every_open_state_and_approved_only():
    # approved: until the last day, with the employer's consent (qianli.services.review.withdrawable)
    for s in CaseState:
        assert ((s, CaseAction.WITHDRAW) in TRANSITIONS) == (s in ANY_OPEN_STATES or s == CaseState.APPROVED)
    assert not OPEN_STATES & ABSCONDING_OPEN_STATES


def test_every_state_has_a_chinese_label():
    assert set(STATE_LABELS) == {s.value for s in CaseState}
    assert len(set(STATE_LABELS.values())) == len(STATE_LABELS)


def test_approved_case_cannot_be_returned_or_resubmitted():
    for a in (CaseAction.RETURN_FOR_REVISION, CaseAction.SUBMIT_LETTER):
        with pytest.raises(InvalidTransition):
            next_state(CaseState.APPROVED, a)
