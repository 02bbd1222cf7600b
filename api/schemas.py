"""Shared marshmallow pieces. Schemas reject unknown fields (marshmallow's default RAISE).

Every date and date-time an input schema loads must lie in ``DATE_MIN`` .. ``DATE_MAX``
(1900-01-01 .. 2100-12-31, date-times compared as instants): ``0001-01-01T00:00:00+08:00`` or
``9999-12-31`` used to overflow in date arithmetic (500); now they answer 422 ``validation_failed``
naming the field.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any

import marshmallow as ma

__all__ = ["StrictSchema", "NonBlank", "DATE_MIN", "DATE_MAX", "DATE_RANGE_MESSAGE"]

DATE_MIN = date(1900, 1, 1)
DATE_MAX = date(2100, 12, 31)
_DT_MIN = datetime(1900, 1, 1, tzinfo=timezone.utc)
_DT_MAX = datetime(2100, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc)
DATE_RANGE_MESSAGE = f"Must be between {DATE_MIN.isoformat()} and {DATE_MAX.isoformat()}."


def _in_range(value: date) -> bool:
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            return _DT_MIN.replace(tzinfo=None) <= value <= _DT_MAX.replace(tzinfo=None)
        return _DT_MIN <= value <= _DT_MAX  # aware: compared as instants, without converting (no overflow)
    return DATE_MIN <= value <= DATE_MAX


def _out_of_range(value: Any) -> bool:
    if isinstance(value, date):
        return not _in_range(value)
    if isinstance(value, (list, tuple, set)):
        return any(_out_of_range(v) for v in value)
    return False


class StrictSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    @ma.validates_schema(skip_on_field_errors=False)
    def _dates_in_range(self, data: dict[str, Any], **_kw: Any) -> None:
        errors: dict[str, Any] = {}
        for name, value in data.items():
            if _out_of_range(value):
                field = self.fields.get(name)
                key = (field.data_key if field is not None else None) or name
                if isinstance(value, (list, tuple)):  # per item, like marshmallow's own list errors (they merge)
                    errors[key] = {i: [DATE_RANGE_MESSAGE] for i, v in enumerate(value) if _out_of_range(v)}
                else:
                    errors[key] = [DATE_RANGE_MESSAGE]
        if errors:
            raise ma.ValidationError(errors)


def NonBlank(max_len: int):  # noqa: N802 - reads as a validator class at call sites
    return ma.validate.And(ma.validate.Length(min=1, max=max_len),
                           ma.validate.Predicate("strip", error="must not be blank"))
