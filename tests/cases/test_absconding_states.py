"""Leaving without notice: the absconding states of the case machine (table tests) and the pure rules
of cases.absconding (absent days, the deadline in Chinese working days, answers, dismissal checks)."""

from __future__ import annotations

from datetime import date

import pytest

from cases import absconding as ab
from cases.calendar import ChineseCalendar
from cases.errors import Conflict, Forbidden, InvalidInput, InvalidTransition
from cases.states import (ABSCONDING_OPEN_STATES, ABSCONDING_STATES, OPEN_STATES, TRANSITIONS, CaseAction as A,
                          CaseState as S, allowed_actions, next_state)

# (state, action) -> next state, written out: every move of an absconding case, and nothing else.
ABSCONDING_TABLE = {
    (S.CONFIRMED, A.SERVE_RETURN_NOTICE): S.NOTICE_SERVED,
    (S.CONFIRMED, A.WITHDRAW): S.WITHDRAWN,
    (S.NOTICE_SERVED, A.RETURN_TO_WORK): S.RETURNED_TO_WORK,
    (S.NOTICE_SERVED, A.EXPLAIN): S.EXPLANATION_RECEIVED,
    (S.NOTICE_SERVED, A.CONVERT_TO_RESIGNATION): S.CONVERTED_TO_RESIGNATION,
    (S.NOTICE_SERVED, A.APPROVE_DISMISSAL): S.DISMISSAL_PENDING,
    (S.NOTICE_SERVED, A.DISMISS): S.DISMISSED,
    (S.NOTICE_SERVED, A.WITHDRAW): S.WITHDRAWN,
    (S.EXPLANATION_RECEIVED, A.RETURN_TO_WORK): S.RETURNED_TO_WORK,
    (S.EXPLANATION_RECEIVED, A.EXPLAIN): S.EXPLANATION_RECEIVED,
    (S.EXPLANATION_RECEIVED, A.CONVERT_TO_RESIGNATION): S.CONVERTED_TO_RESIGNATION,
    (S.EXPLANATION_RECEIVED, A.APPROVE_DISMISSAL): S.DISMISSAL_PENDING,
    (S.EXPLANATION_RECEIVED, A.DISMISS): S.DISMISSED,
    (S.EXPLANATION_RECEIVED, A.WITHDRAW): S.WITHDRAWN,
    (S.DISMISSAL_PENDING, A.EXPLAIN): S.EXPLANATION_RECEIVED,
    (S.DISMISSAL_PENDING, A.DISMISS): S.DISMISSED,
    (S.DISMISSAL_PENDING, A.WITHDRAW): S.WITHDRAWN,
    (S.DISMISSED, A.CLOSE): S.CLOSED,
}


@pytest.mark.parametrize("state", sorted(ABSCONDING_STATES, key=lambda s: s.value))
@pytest.mark.parametrize("action", list(A))
def test_absconding_table(state, action):
    expected = ABSCONDING_TABLE.get((state, action))
    if expected is None:
        with pytest.raises(InvalidTransition):
            next_state(state, action)
    else:
        assert next_state(state, action) == expected


def test_the_table_is_all_the_machine_has_for_absconding_states():
    machine = {k: v for k, v in TRANSITIONS.items() if k[0] in ABSCONDING_STATES}
    assert machine == ABSCONDING_TABLE


def test_the_two_machines_do_not_mix():
    resignation_actions = {A.SUBMIT_LETTER, A.APPROVE_FIRST, A.APPROVE_FINAL, A.RETURN_FOR_REVISION}
    for s in ABSCONDING_STATES:
        assert not resignation_actions & set(allowed_actions(s))
    for s in OPEN_STATES:
        assert not {A.SERVE_RETURN_NOTICE, A.DISMISS, A.APPROVE_DISMISSAL, A.EXPLAIN} & set(allowed_actions(s))


def test_outcomes_are_terminal():
    assert allowed_actions(S.RETURNED_TO_WORK) == [] and allowed_actions(S.CONVERTED_TO_RESIGNATION) == []
    assert allowed_actions(S.DISMISSED) == [A.CLOSE]
    assert not ABSCONDING_OPEN_STATES & {S.RETURNED_TO_WORK, S.CONVERTED_TO_RESIGNATION, S.DISMISSED}


# ---- absent days and the deadline (National Day 2026: 1-7 Oct off, Sat 10 Oct a working day) -----------

CAL = ChineseCalendar()


def test_national_day_2026_as_the_calendar_has_it():
    assert not CAL.is_working_day(date(2026, 10, 7)) and CAL.is_working_day(date(2026, 10, 10))  # 调休 Saturday


def test_absent_days_must_be_working_days():
    days = ab.check_absent_days([date(2026, 10, 9), date(2026, 10, 8), date(2026, 10, 10)], calendar=CAL,
                                today=date(2026, 10, 12), last_seen_on=date(2026, 9, 30))
    assert days == [date(2026, 10, 8), date(2026, 10, 9), date(2026, 10, 10)]
    with pytest.raises(InvalidInput) as exc:
        ab.check_absent_days([date(2026, 10, 6), date(2026, 10, 8)], calendar=CAL, today=date(2026, 10, 12),
                             last_seen_on=None)
    assert exc.value.code == "absent_day_not_working" and exc.value.details["days"][0]["day"] == "2026-10-06"
    for kwargs, code in [({"days": []}, "absent_days_required"),
                         ({"days": [date(2026, 10, 13)]}, "absent_day_in_future"),
                         ({"days": [date(2026, 10, 8)], "last_seen_on": date(2026, 10, 8)}, "last_seen_after_absence")]:
        with pytest.raises(InvalidInput) as exc:
            ab.check_absent_days(kwargs["days"], calendar=CAL, today=date(2026, 10, 12),
                                 last_seen_on=kwargs.get("last_seen_on"))
        assert exc.value.code == code


@pytest.mark.parametrize("served,days,deadline", [
    (date(2026, 10, 12), 3, date(2026, 10, 15)),   # Mon -> Thu
    (date(2026, 10, 15), 3, date(2026, 10, 20)),   # Thu -> Fri, (weekend), Mon, Tue
    (date(2026, 9, 29), 3, date(2026, 10, 9)),     # Tue before the holiday: 30 Sep, (1-7 Oct), 8, 9 Oct
    (date(2026, 10, 8), 2, date(2026, 10, 10)),    # the swapped working Saturday counts
])
def test_deadline_in_chinese_working_days(served, days, deadline):
    assert ab.return_deadline(CAL, served, days).date == deadline
    assert not ab.deadline_passed(deadline, deadline) and ab.deadline_passed(deadline, date.fromordinal(deadline.toordinal() + 1))


# ---- answers --------------------------------------------------------------------------------------

@pytest.mark.parametrize("answer,state,late,action", [
    ("back", "notice_served", False, A.RETURN_TO_WORK),
    ("back", "explanation_received", False, A.RETURN_TO_WORK),
    ("back", "notice_served", True, A.EXPLAIN),            # after the deadline HR decides
    ("back", "dismissal_pending", False, A.EXPLAIN),
    ("explanation", "notice_served", False, A.EXPLAIN),
    ("explanation", "notice_served", True, A.EXPLAIN),
    ("resign", "notice_served", True, A.CONVERT_TO_RESIGNATION),
    ("resign", "explanation_received", False, A.CONVERT_TO_RESIGNATION),
    ("resign", "dismissal_pending", True, A.EXPLAIN),      # a dismissal under approval: HR decides
])
def test_answer_action(answer, state, late, action):
    assert ab.answer_action(answer, state=state, past_deadline=late) == action


def test_answers_refused():
    with pytest.raises(InvalidInput):
        ab.answer_action("maybe", state="notice_served", past_deadline=False)
    for state in ("confirmed", "dismissed", "returned_to_work", "withdrawn"):
        with pytest.raises(Conflict) as exc:
            ab.answer_action("back", state=state, past_deadline=False)
        assert exc.value.code == "absence_answer_closed"


# ---- dismissal --------------------------------------------------------------------------------------

CLAUSE = ab.HandbookClause("《员工手册》第五章第十二条", "连续旷工三个工作日以上的，属严重违纪。")


@pytest.mark.parametrize("state,deadline,today,clause,union,blockers", [
    ("notice_served", date(2026, 10, 15), date(2026, 10, 16), CLAUSE, True, []),
    ("explanation_received", date(2026, 10, 15), date(2026, 10, 16), CLAUSE, True, []),
    ("notice_served", date(2026, 10, 15), date(2026, 10, 15), CLAUSE, True, ["deadline_not_passed"]),
    ("notice_served", date(2026, 10, 15), date(2026, 10, 16), None, True, ["handbook_clause_missing"]),
    ("notice_served", date(2026, 10, 15), date(2026, 10, 16), CLAUSE, False, ["union_notification_missing"]),
    ("confirmed", None, date(2026, 10, 16), None, False,
     ["return_notice_not_served", "handbook_clause_missing", "union_notification_missing"]),
    ("returned_to_work", date(2026, 10, 15), date(2026, 10, 16), CLAUSE, True, ["case_not_dismissible"]),
])
def test_dismissal_blockers(state, deadline, today, clause, union, blockers):
    assert ab.dismissal_blockers(state=state, deadline=deadline, today=today, clause=clause,
                                 union_notified=union) == blockers
    if blockers:
        with pytest.raises(Conflict) as exc:
            ab.check_dismissal(state=state, deadline=deadline, today=today, clause=clause, union_notified=union)
        assert exc.value.code == blockers[0] and exc.value.details["blockers"] == blockers


def test_dismissal_chain_levels_and_who_may_decide():
    status = ab.dismissal_status("notice_served", None, first_approver=None)
    assert status.chain == ("hr_manager", "dept_head") and status.level == 0 and status.level_role == "hr_manager"
    ab.check_may_approve(status, role="hr_manager", actor="hr:m", department=None, employee_department="研发部")
    with pytest.raises(Forbidden):
        ab.check_may_approve(status, role="hr_specialist", actor="hr:s", department=None, employee_department="研发部")
    second = ab.dismissal_status("dismissal_pending", None, first_approver="hr:m")
    assert second.level == 1 and second.final
    ab.check_may_approve(second, role="dept_head", actor="hr:h", department="研发部", employee_department="研发部")
    for role, actor, dept in [("dept_head", "hr:h2", "市场部"), ("hr_manager", "hr:m", None)]:
        with pytest.raises(Forbidden):
            ab.check_may_approve(second, role=role, actor=actor, department=dept, employee_department="研发部")
    one = ab.dismissal_status("notice_served", ("hr_manager",), first_approver=None)
    assert one.final


def test_handbook_clause_parsing():
    assert ab.HandbookClause.from_policy({"reference": "第5条", "text": "x" * 12}) == ab.HandbookClause("第5条", "x" * 12)
    assert ab.HandbookClause.from_policy({"reference": "", "text": "x"}) is None
    assert ab.HandbookClause.from_policy(None) is None
    with pytest.raises(InvalidInput):
        ab.HandbookClause.parse("第5条", "太短")


def test_deadline_reminders_stop_with_the_state_or_the_deadline():
    from datetime import datetime, timezone

    from cases.reminders import notification_due

    params = {"deadline": "2026-10-15"}
    before = datetime(2026, 10, 15, 15, 59, tzinfo=timezone.utc)  # 23:59 Beijing on the deadline
    after = datetime(2026, 10, 15, 16, 0, tzinfo=timezone.utc)    # 00:00 Beijing the day after
    assert notification_due("return_notice_reminder", "notice_served", params, before)
    assert not notification_due("return_notice_reminder", "notice_served", params, after)
    assert not notification_due("return_notice_reminder", "returned_to_work", params, before)
    assert notification_due("case_returned", "returned", {}, after)
