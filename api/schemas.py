"""Shared marshmallow pieces. Schemas reject unknown fields (marshmallow's default RAISE)."""

from __future__ import annotations

import marshmallow as ma

__all__ = ["StrictSchema", "NonBlank"]


class StrictSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE


def NonBlank(max_len: int):  # noqa: N802 - reads as a validator class at call sites
    return ma.validate.And(ma.validate.Length(min=1, max=max_len),
                           ma.validate.Predicate("strip", error="must not be blank"))
