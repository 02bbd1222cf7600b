"""Probation is judged on the arrival date (Asia/Shanghai), not on the day the letter is signed."""

from datetime import date, datetime, timezone

from qianli.services.cases import open_case

__all__: list[str] = []


def test_probation_judged_on_arrival_date(runtime, db_session, factory):
    co = factory.company()
    # probation ends 30 September 2026 (inclusive)
    in_prob = factory.employee(co, probation_end=date(2026, 9, 30))
    after = factory.employee(co, probation_end=date(2026, 9, 30))
    # 23:30 Beijing on 30 September: still in probation -> 3 days
    c1 = open_case(db_session, runtime.settings, employee=in_prob, source="instant_message",
                   notice_arrived_at=datetime(2026, 9, 30, 15, 30, tzinfo=timezone.utc), actor="hr:x")
    # 00:30 Beijing on 1 October (still 30 September in UTC): probation over -> 30 days
    c2 = open_case(db_session, runtime.settings, employee=after, source="instant_message",
                   notice_arrived_at=datetime(2026, 9, 30, 16, 30, tzinfo=timezone.utc), actor="hr:x")
    db_session.commit()
    assert (c1.arrival_date, c1.probation, c1.earliest_lawful_last_day) == (date(2026, 9, 30), True, date(2026, 10, 3))
    assert (c2.arrival_date, c2.probation, c2.earliest_lawful_last_day) == (date(2026, 10, 1), False, date(2026, 10, 31))
