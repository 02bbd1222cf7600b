"""A 2027 schedule for the tests.

It is NOT the State Council's 2027 arrangement (unknown to this repository): a plausible one,
built by the same rules (every statutory day inside a block, swapped working days on weekends,
weekdays off minus swapped working days = 13).
"""

from __future__ import annotations

import copy
from datetime import datetime, timezone

import pytest
import time_machine

from qianli.services import cases as case_svc

SCHEDULE_2027 = {
    "year": 2027,
    "source": "测试用 2027 年节假日安排（非官方）",
    "holidays": [
        {"name": "元旦", "first": "2027-01-01", "last": "2027-01-03"},
        {"name": "春节", "first": "2027-02-05", "last": "2027-02-11"},
        {"name": "清明节", "first": "2027-04-03", "last": "2027-04-05"},
        {"name": "劳动节", "first": "2027-05-01", "last": "2027-05-05"},
        {"name": "端午节", "first": "2027-06-09", "last": "2027-06-09"},
        {"name": "中秋节", "first": "2027-09-15", "last": "2027-09-15"},
        {"name": "国庆节", "first": "2027-10-01", "last": "2027-10-07"},
    ],
    "workdays": [
        {"name": "春节", "date": "2027-02-20"},
        {"name": "劳动节", "date": "2027-04-25"},
        {"name": "国庆节", "date": "2027-09-26"},
        {"name": "国庆节", "date": "2027-10-09"},
    ],
}


@pytest.fixture
def schedule_2027():
    return copy.deepcopy(SCHEDULE_2027)


def open_case_at(db_session, runtime, employee, beijing: str):
    """Open a case whose notice arrived at ``beijing`` (ISO, Asia/Shanghai), travelling there if needed."""
    at = datetime.fromisoformat(beijing).replace(tzinfo=case_svc.SHANGHAI).astimezone(timezone.utc)
    with time_machine.travel(at, tick=False):
        c = case_svc.open_case(db_session, runtime.settings, employee=employee, source="instant_message",
                               notice_arrived_at=at, actor="hr:test")
    db_session.commit()
    return c
