"""The approval rules as tables: who may decide at which level, and what approving does to the last day."""

from __future__ import annotations

from datetime import date

import pytest

from cases.approval import (ApprovalDecision, ApprovalStatus, approval_status, check_may_decide, decide_approval,
                            default_last_day, refusal_reason)
from cases.errors import Conflict, Forbidden, InvalidInput

TWO = ("hr_specialist", "dept_head")


def status(state="submitted", chain=TWO, first=None, agreement="none", day=None) -> ApprovalStatus:
    return approval_status(state, chain, first_approver=first, agreement=agreement, agreement_day=day)


@pytest.mark.parametrize("state,chain,level,role,final", [
    ("submitted", TWO, 0, "hr_specialist", False),
    ("first_approved", TWO, 1, "dept_head", True),
    ("submitted", ("hr_specialist",), 0, "hr_specialist", True),
    ("first_approved", ("hr_specialist",), 0, "hr_specialist", True),  # chain shortened mid-case
    ("submitted", None, 0, "hr_manager", True),  # no chain configured: the HR manager alone
    ("submitted", (), 0, "hr_manager", True),
    ("awaiting_letter", TWO, None, None, False),
    ("returned", TWO, None, None, False),
    ("approved", TWO, None, None, False),
])
def test_levels(state, chain, level, role, final):
    st = status(state, chain)
    assert (st.level, st.level_role, st.final) == (level, role, final)


def test_agreement_of_this_round():
    assert status(agreement="pending", day=date(2025, 10, 20)).pending_last_day == date(2025, 10, 20)
    assert status(agreement="confirmed", day=date(2025, 10, 20)).confirmed_last_day == date(2025, 10, 20)
    declined = status(agreement="declined", day=date(2025, 10, 20))
    assert declined.pending_last_day is None and declined.confirmed_last_day is None


@pytest.mark.parametrize("state,role,actor,department,employee_department,first,reason", [
    ("submitted", "hr_specialist", "hr:1", None, "研发部", None, None),
    ("submitted", "hr_manager", "hr:9", None, "研发部", None, None),           # any level
    ("submitted", "dept_head", "hr:2", "研发部", "研发部", None, "wrong_approval_level"),
    ("submitted", "auditor", "hr:3", None, "研发部", None, "role_read_only"),
    ("first_approved", "dept_head", "hr:2", "研发部", "研发部", "hr:1", None),
    ("first_approved", "dept_head", "hr:2", "市场部", "研发部", "hr:1", "other_department"),
    ("first_approved", "hr_specialist", "hr:1", None, "研发部", "hr:1", "wrong_approval_level"),
    ("first_approved", "hr_manager", "hr:1", None, "研发部", "hr:1", "same_approver"),  # two people, two levels
    ("first_approved", "hr_manager", "hr:9", None, "研发部", "hr:1", None),
    ("awaiting_letter", "hr_manager", "hr:9", None, "研发部", None, "case_not_under_review"),
    ("approved", "auditor", "hr:3", None, "研发部", None, "case_not_under_review"),
])
def test_who_may_decide(state, role, actor, department, employee_department, first, reason):
    st = status(state, first=first)
    assert refusal_reason(st, role=role, actor=actor, department=department,
                          employee_department=employee_department) == reason


@pytest.mark.parametrize("reason,error,code", [
    ("case_not_under_review", Conflict, "case_not_under_review"),
    ("same_approver", Forbidden, "same_approver"),
    ("wrong_approval_level", Forbidden, "wrong_approval_level"),
])
def test_refusals_are_errors(reason, error, code):
    cases = {"case_not_under_review": ("closed", "hr_manager", "hr:1", None),
             "same_approver": ("first_approved", "hr_manager", "hr:1", "hr:1"),
             "wrong_approval_level": ("submitted", "dept_head", "hr:2", None)}
    state, role, actor, first = cases[reason]
    with pytest.raises(error) as e:
        check_may_decide(status(state, first=first), role=role, actor=actor, department="研发部",
                         employee_department="研发部")
    assert e.value.code == code


ARRIVAL, LAWFUL, ASKED = date(2025, 10, 8), date(2025, 11, 7), date(2025, 11, 30)


@pytest.mark.parametrize("requested,expected", [(None, LAWFUL), (ASKED, ASKED), (date(2025, 11, 1), LAWFUL)])
def test_default_last_day(requested, expected):
    assert default_last_day(requested, LAWFUL) == expected


def decide(st, agreed=None, requested=ASKED, current=None):
    return decide_approval(st, arrival_date=ARRIVAL, earliest_lawful_last_day=LAWFUL, requested_last_day=requested,
                           current_last_day=current, agreed_last_day=agreed)


EARLY, LATER = date(2025, 10, 31), date(2025, 11, 20)
FIRST, FINAL = status("submitted"), status("first_approved", first="hr:1")


@pytest.mark.parametrize("st,agreed,current,expected", [
    # first level: a day within the law is stored; an earlier one is proposed, not stored
    (FIRST, None, None, ApprovalDecision("first_approved")),
    (FIRST, LATER, None, ApprovalDecision("first_approved", last_day=LATER, transition_last_day=LATER)),
    (FIRST, EARLY, None, ApprovalDecision("first_approved", propose=EARLY, transition_last_day=EARLY)),
    (status("submitted", agreement="pending", day=EARLY), EARLY, None,
     ApprovalDecision("first_approved", transition_last_day=EARLY)),  # already proposed: not again
    # final level: the later of asked-for and lawful, or what was agreed
    (FINAL, None, None, ApprovalDecision("approved", last_day=ASKED, transition_last_day=ASKED)),
    (FINAL, None, LATER, ApprovalDecision("approved", last_day=LATER, transition_last_day=LATER)),
    (FINAL, LATER, None, ApprovalDecision("approved", last_day=LATER, transition_last_day=LATER)),
    (FINAL, EARLY, None, ApprovalDecision("awaiting_employee_confirmation", propose=EARLY)),
    (status("first_approved", first="hr:1", agreement="pending", day=EARLY), EARLY, None,
     ApprovalDecision("awaiting_employee_confirmation")),
    (status("first_approved", first="hr:1", agreement="confirmed", day=EARLY), None, None,
     ApprovalDecision("approved", last_day=EARLY, transition_last_day=EARLY, mutual_agreement=True)),
    (status("first_approved", first="hr:1", agreement="confirmed", day=EARLY), EARLY, None,
     ApprovalDecision("approved", last_day=EARLY, transition_last_day=EARLY, mutual_agreement=True)),
    (status("first_approved", first="hr:1", agreement="declined", day=EARLY), None, None,
     ApprovalDecision("approved", last_day=ASKED, transition_last_day=ASKED)),
])
def test_what_approving_decides(st, agreed, current, expected):
    assert decide(st, agreed, current=current) == expected


@pytest.mark.parametrize("st,agreed,requested,error,code", [
    (FIRST, ARRIVAL, ASKED, InvalidInput, "agreed_last_day_too_early"),
    (FIRST, date(2025, 12, 1), ASKED, InvalidInput, "agreed_last_day_after_requested"),
    (FINAL, date(2025, 11, 8), None, InvalidInput, "agreed_last_day_after_requested"),  # asked for nothing: the law's day
    (status("first_approved", first="hr:1", agreement="pending", day=EARLY), None, ASKED, Conflict, "agreement_pending"),
    (status("closed"), None, ASKED, Conflict, "case_not_under_review"),
])
def test_refused_approvals(st, agreed, requested, error, code):
    with pytest.raises(error) as e:
        decide(st, agreed, requested=requested)
    assert e.value.code == code


def test_transitions():
    assert ApprovalDecision("first_approved").transition == "approve_first"
    assert ApprovalDecision("approved").transition == "approve_final"
    assert ApprovalDecision("awaiting_employee_confirmation").transition is None
