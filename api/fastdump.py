"""A faster ``Schema.dump`` with marshmallow's exact output, for the read path's big responses.

marshmallow serializes value by value through several layers of calls per field
(``Field.serialize`` -> ``get_value`` -> ``Schema.get_attribute`` -> ``utils.get_value`` ->
``_serialize``): dumping a page of 20 cases (about 900 values) took about a third of a
``listCases`` request's CPU. ``FastDumpSchema`` compiles each schema instance once into a list of
``(attribute, output key, converter)`` and applies it in one loop. The converters are marshmallow's
own semantics for the field classes the API uses (String, Integer, Boolean, Date, DateTime,
AwareDateTime, Dict, List, Nested); anything else - another field class, a field or schema that
overrides ``serialize``/``get_value``/``get_attribute``, dump hooks, ``dump_default``, a dotted
``attribute`` - goes through marshmallow's own ``serialize`` for that field (or the whole schema),
so the result is always what ``marshmallow.Schema.dump`` returns (tests/api/test_fastdump.py
compares them). The schema stays the single description of the response (OpenAPI, the contract).
"""

from __future__ import annotations

from typing import Any, Callable

import marshmallow as ma
from marshmallow import fields as f
from marshmallow import utils
from marshmallow.decorators import POST_DUMP, PRE_DUMP

__all__ = ["FastDumpSchema"]

_missing = utils.missing
_ensure_text = utils.ensure_text_type
_get_value_for_key = utils._get_value_for_key  # noqa: SLF001 - marshmallow's own accessor, for exact semantics

Converter = Callable[[Any, str, Any], Any]


def _string(value, _attr, _obj):
    if value is None:
        return None
    return value if type(value) is str else _ensure_text(value)


def _passthrough(value, _attr, _obj):
    return value


def _converter(field: Any) -> Converter:  # Any: the attributes read depend on the field class
    """A function (value, attr, obj) -> serialized value equivalent to ``field._serialize``."""
    impl = type(field)._serialize
    if impl is f.Field._serialize:  # Boolean, Raw: the value as it is
        return _passthrough
    if impl is f.String._serialize:
        return _string
    if impl is f.Number._serialize and not field.as_string and type(field)._format_num is f.Number._format_num:
        num_type = field.num_type

        def number(value, _attr, _obj):
            return None if value is None else num_type(value)
        return number
    if impl is f._TemporalField._serialize:  # noqa: SLF001 - Date, DateTime, AwareDateTime, NaiveDateTime
        fmt = field.SERIALIZATION_FUNCS.get(field.format or field.DEFAULT_FORMAT)
        if fmt is not None:
            def temporal(value, _attr, _obj):
                return None if value is None else fmt(value)
            return temporal
    if impl is f.Mapping._serialize and field.key_field is None and field.value_field is None:
        mapping_type = field.mapping_type

        def mapping(value, _attr, _obj):
            return None if value is None else mapping_type(value)
        return mapping
    if impl is f.List._serialize:
        inner = _converter(field.inner)

        def listing(value, attr, obj):
            return None if value is None else [inner(each, attr, obj) for each in value]
        return listing
    if impl is f.Nested._serialize:
        schema = field.schema
        many = bool(schema.many or field.many)
        dump = schema.dump

        def nested(value, _attr, _obj):
            return None if value is None else dump(value, many=many)
        return nested
    return field._serialize  # noqa: SLF001 - any other field: its own conversion


class FastDumpSchema(ma.Schema):
    """``dump`` compiled once per schema instance; output identical to ``marshmallow.Schema.dump``."""

    fast = True
    """False: marshmallow's own ``_serialize`` (the reference the tests compare with)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._fast_plan: list[tuple[str, str, str, Converter | None, f.Field]] | None = None
        self._fast_ok = (not self._hooks[PRE_DUMP] and not self._hooks[POST_DUMP]
                         and type(self).get_attribute is ma.Schema.get_attribute)

    def _compile(self) -> list[tuple[str, str, str, Converter | None, f.Field]]:
        plan = []
        for attr_name, field in self.dump_fields.items():
            key = field.data_key if field.data_key is not None else attr_name
            source = attr_name if field.attribute is None else field.attribute
            simple = (field._CHECK_ATTRIBUTE and field.dump_default is _missing and "." not in source  # noqa: SLF001
                      and type(field).serialize is f.Field.serialize and type(field).get_value is f.Field.get_value)
            # converter None: marshmallow's own field.serialize(attr_name, obj, accessor=self.get_attribute)
            plan.append((attr_name, source, key, _converter(field) if simple else None, field))
        return plan

    def _serialize(self, obj: Any, *, many: bool = False):
        if not (self._fast_ok and self.fast):
            return super()._serialize(obj, many=many)
        plan = self._fast_plan
        if plan is None:
            plan = self._fast_plan = self._compile()
        if many and obj is not None:
            return [self._one(plan, each) for each in obj]
        return self._one(plan, obj)

    def _one(self, plan, obj):
        ret = self.dict_class()
        is_dict = type(obj) is dict
        plain = not is_dict and not hasattr(obj, "__getitem__")
        for attr_name, source, key, convert, field in plan:
            if convert is None:
                value = field.serialize(attr_name, obj, accessor=self.get_attribute)
                if value is not _missing:
                    ret[key] = value
                continue
            if is_dict:
                value = obj.get(source, _missing)
                if value is _missing:
                    value = getattr(obj, source, _missing)
            elif plain:
                value = getattr(obj, source, _missing)
            else:
                value = _get_value_for_key(obj, source, _missing)
            if value is _missing:
                continue
            # the two commonest conversions inline (a call per value is most of the cost)
            if convert is _passthrough:
                ret[key] = value
            elif convert is _string:
                ret[key] = value if value is None or type(value) is str else _ensure_text(value)
            else:
                ret[key] = convert(value, attr_name, obj)
        return ret
