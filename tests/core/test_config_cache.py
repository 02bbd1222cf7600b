"""qianli.config_cache: companies and calendars are read once per process, and never served stale
after a committed change, whichever process made it."""

from __future__ import annotations

from datetime import date

import pytest
import redis as redis_lib
from sqlalchemy import event, text

from cases.calendar import DayKind
from qianli import config_cache
from qianli.db import session_scope
from qianli.models import Company, HolidayOverride
from qianli.services.calendar import company_calendar
from qianli.services.cases import company_config_by_code, preview_notice

DAY = date(2031, 3, 5)  # a Wednesday


@pytest.fixture
def company(committed_runtime) -> str:
    with session_scope(committed_runtime.session_factory) as s:
        c = Company(code="cache-co", name="缓存公司", policy={"letter_due_working_days": 3})
        s.add(c)
        s.flush()
        return c.id


@pytest.fixture
def queries(committed_runtime):
    counter = [0]

    def _count(_conn, _cursor, statement, *_a):
        if statement.lstrip().upper().startswith("SELECT"):
            counter[0] += 1

    event.listen(committed_runtime.engine, "after_cursor_execute", _count)
    yield counter
    event.remove(committed_runtime.engine, "after_cursor_execute", _count)


def _kind(rt, company_id: str) -> DayKind:
    with session_scope(rt.session_factory) as s:
        return company_calendar(s, company_id).kind(DAY)


def test_a_second_read_does_not_touch_the_database(committed_runtime, company, queries):
    rt = committed_runtime
    assert _kind(rt, company) == DayKind.WORKING
    first = queries[0]
    assert first > 0
    assert _kind(rt, company) == DayKind.WORKING
    with session_scope(rt.session_factory) as s:
        cfg = company_config_by_code(s, "cache-co")
        assert cfg is not None and cfg.policy["letter_due_working_days"] == 3
        assert company_config_by_code(s, "cache-co") is cfg
    assert queries[0] == first + 1  # one SELECT: the company, the first time; the calendar came from the cache


def test_a_committed_write_in_this_process_is_seen_at_once(committed_runtime, company):
    rt = committed_runtime
    assert _kind(rt, company) == DayKind.WORKING
    generation = int(rt.redis.get(config_cache.GENERATION_KEY) or 0)
    with session_scope(rt.session_factory) as s:
        s.add(HolidayOverride(company_id=company, day=DAY, kind="holiday"))
    assert _kind(rt, company) == DayKind.HOLIDAY
    assert int(rt.redis.get(config_cache.GENERATION_KEY)) == generation + 1  # the other processes are told


def test_a_write_by_another_process_is_seen_through_the_redis_generation(committed_runtime, company):
    rt = committed_runtime
    assert _kind(rt, company) == DayKind.WORKING
    # Another process's commit: the row arrives without this process's ORM seeing it, the counter moves.
    with rt.engine.begin() as conn:
        conn.execute(text("INSERT INTO holiday_overrides (id, company_id, day, kind, note, created_at) "
                          "VALUES ('x1', :c, :d, 'holiday', '', CURRENT_TIMESTAMP)"), {"c": company, "d": DAY})
    assert _kind(rt, company) == DayKind.WORKING  # no counter change yet: the cached calendar is kept
    rt.redis.incr(config_cache.GENERATION_KEY)
    assert _kind(rt, company) == DayKind.HOLIDAY


def test_an_uncommitted_write_is_seen_by_its_own_transaction_only(committed_runtime, company):
    rt = committed_runtime
    assert _kind(rt, company) == DayKind.WORKING
    s = rt.session_factory()
    try:
        s.add(HolidayOverride(company_id=company, day=DAY, kind="holiday"))
        s.flush()
        assert company_calendar(s, company).kind(DAY) == DayKind.HOLIDAY  # its own write, not the cache
        assert _kind(rt, company) == DayKind.WORKING  # others still see the committed state
        s.rollback()
    finally:
        s.close()
    assert _kind(rt, company) == DayKind.WORKING


def test_policy_changes_reach_the_notice_preview(committed_runtime, company):
    rt = committed_runtime
    with session_scope(rt.session_factory) as s:
        before = preview_notice(s, rt.settings, company_id=company, arrival=date(2031, 3, 3), probation=False)
    with session_scope(rt.session_factory) as s:
        s.get(Company, company).policy = {"letter_due_working_days": 10}
    with session_scope(rt.session_factory) as s:
        after = preview_notice(s, rt.settings, company_id=company, arrival=date(2031, 3, 3), probation=False)
    assert (after.letter_due_date - before.letter_due_date).days >= 7


def test_without_redis_every_read_goes_to_the_database(committed_runtime, company, queries):
    rt = committed_runtime
    live = rt.redis
    dead = redis_lib.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    rt.override(redis=dead)
    try:
        _kind(rt, company)
        n = queries[0]
        _kind(rt, company)
        assert queries[0] > n  # nothing cached while the counter cannot be read
    finally:
        rt.override(redis=live)
