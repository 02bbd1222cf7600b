"""A 2027 schedule for the tests.

It is NOT the State Council's 2027 arrangement (unknown to this repository): a plausible one,
built by the same rules (every statutory day inside a block, swapped working days on weekends,
weekdays off minus swapped working days = 13).
"""

from __future__ import annotations

import copy
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
import time_machine

from cases.clock import SHANGHAI
from qianli.services import cases as case_svc

# tests/fixtures/holidays/schedule-2027-test.json (also used by the permission matrix)
SCHEDULE_2027 = json.loads((Path(__file__).resolve().parents[1] / "fixtures" / "holidays" / "schedule-2027-test.json")
                           .read_text(encoding="utf-8"))


@pytest.fixture
def schedule_2027():
    return copy.deepcopy(SCHEDULE_2027)


def open_case_at(db_session, runtime, employee, beijing: str):
    """Open a case whose notice arrived at ``beijing`` (ISO, Asia/Shanghai), travelling there if needed."""
    at = datetime.fromisoformat(beijing).replace(tzinfo=SHANGHAI).astimezone(timezone.utc)
    with time_machine.travel(at, tick=False):
        c = case_svc.open_case(db_session, runtime.settings, employee=employee, source="instant_message",
                               notice_arrived_at=at, actor="hr:test")
    db_session.commit()
    return c
