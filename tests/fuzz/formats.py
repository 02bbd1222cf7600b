"""Boundary values for generated dates: schemathesis' ``date`` and ``date-time`` formats produce,
besides ordinary values, the ends of the calendar (0001-01-01, 9999-12-31), the ends of the range
the API accepts, leap days and far time zones.

Imported by the in-process fuzz test and loaded by the schemathesis CLI run
(``SCHEMATHESIS_HOOKS=tests.fuzz.formats``).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import schemathesis
from hypothesis import strategies as st

EDGE_DATES = ("0001-01-01", "9999-12-31", "1899-12-31", "1900-01-01", "2100-12-31", "2101-01-01", "2024-02-29",
              "1970-01-01")
EDGE_DATETIMES = ("0001-01-01T00:00:00+08:00", "9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z",
                  "9999-12-31T23:59:59-12:00", "1900-01-01T00:00:00+14:00", "2024-02-29T23:59:59.999999+08:00")
_ZONES = st.sampled_from([timezone.utc, timezone(timedelta(hours=8)), timezone(timedelta(hours=-12)),
                          timezone(timedelta(hours=14))])

DATES = st.one_of(st.sampled_from(EDGE_DATES),
                  st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)).map(date.isoformat))
DATETIMES = st.one_of(st.sampled_from(EDGE_DATETIMES),
                      st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),
                                   timezones=_ZONES).map(lambda d: d.isoformat()))

schemathesis.openapi.format("date", DATES)
schemathesis.openapi.format("date-time", DATETIMES)
