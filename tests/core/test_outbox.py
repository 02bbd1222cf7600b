"""The transactional outbox: an event exists exactly when the change it describes committed."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from qianli.models import OutboxEvent
from qianli.services import events


def test_publish_commits_and_rolls_back_with_the_caller(committed_runtime):
    rt = committed_runtime
    from qianli.models import Company

    with rt.session_factory() as s:
        co = Company(code="outbox-co", name="示例", policy={})
        s.add(co)
        s.commit()
        events.publish(s, company_id=co.id, event_type="case.approved", data={"case_id": "x"})
        s.rollback()
        assert s.scalars(select(OutboxEvent)).all() == []
        ev = events.publish(s, company_id=co.id, event_type="case.closed", data={"n": 1})
        s.commit()
    with rt.session_factory() as s2:
        row = s2.get(OutboxEvent, ev.id)
        # handed to delivery in the same transaction (no endpoint subscribed: nothing to send)
        assert row.event_type == "case.closed" and row.data == {"n": 1} and row.dispatched_at is not None


def test_unknown_or_malformed_types_are_refused(db_session, factory):
    co = factory.company()
    for bad in ("case.unknown", "Case.Approved", "approved", ""):
        with pytest.raises(ValueError):
            events.publish(db_session, company_id=co.id, event_type=bad, data={})


def test_hooks_see_each_event_inside_the_transaction(db_session, factory):
    co = factory.company()
    seen = []
    hook = lambda session, event: seen.append((session is db_session, event.event_type))  # noqa: E731
    events.publish_hooks.append(hook)
    try:
        events.publish(db_session, company_id=co.id, event_type="employee.payroll_stop", data={})
    finally:
        events.publish_hooks.remove(hook)
    assert seen == [(True, "employee.payroll_stop")]
