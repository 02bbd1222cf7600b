"""FastDumpSchema answers exactly what marshmallow's own dump answers (api/fastdump.py)."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from types import SimpleNamespace

import marshmallow as ma
import pytest

from api.cases import CaseDetailSchema, CaseSchema
from api.fastdump import FastDumpSchema
from api.hr_cases import CasePageSchema, HrCaseDetailSchema
from api.reminders import ReminderListSchema

UTC = timezone.utc
T0 = datetime(2026, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)


def both(schema: ma.Schema, obj, many: bool | None = None, monkeypatch=None):
    fast = schema.dump(obj, many=many)
    monkeypatch.setattr(FastDumpSchema, "fast", False)
    try:
        slow = schema.dump(obj, many=many)
    finally:
        monkeypatch.setattr(FastDumpSchema, "fast", True)
    return fast, slow


def _case(**kw):
    base = dict(id=uuid.uuid4().hex, state="awaiting_letter", source="miniprogram", departure_type="resignation",
                notice_arrived_at=T0, arrival_date=date(2026, 3, 4), probation=False, reason_category="career",
                reason_text="理由", requested_last_day=date(2026, 4, 3), earliest_lawful_last_day=date(2026, 4, 3),
                agreed_last_day=None, handover_items=[{"item": "交接", "owner": "", "deadline": None}],
                letter_due_date=date(2026, 3, 11), dates_provisional=True, dates_note="暂定",
                letter_submitted_at=None, created_at=T0, updated_at=T0 + timedelta(seconds=1))
    base.update(kw)
    return base


EMPLOYEE = {"id": "e1", "employee_no": "A001", "name": "张三", "department": "研发", "position": "工程师",
            "hire_date": date(2020, 1, 2), "probation_end": None}


@pytest.mark.parametrize("as_object", [False, True])
def test_case_page_and_detail_match_marshmallow(monkeypatch, as_object):
    wrap = (lambda d: SimpleNamespace(**d)) if as_object else (lambda d: d)
    items = [wrap({**_case(), "employee": wrap(EMPLOYEE), "overdue": bool(i % 2)}) for i in range(5)]
    items.append(wrap({**_case(letter_submitted_at=T0, reason_category=None, requested_last_day=None,
                               dates_note=None, handover_items=[]), "employee": wrap(EMPLOYEE), "overdue": False}))
    page = {"items": items, "total": 6, "page": 1, "page_size": 20}
    fast, slow = both(CasePageSchema(), page, monkeypatch=monkeypatch)
    assert fast == slow and fast["items"][0]["created_at"] == "2026-03-04T05:06:07.123456+00:00"

    timeline = [wrap({"seq": i, "occurred_at": T0, "actor": "system", "action": "case_opened", "payload": {"a": [1]},
                      "digest": "ab" * 32, "redacted": True}) for i in range(3)]
    detail = wrap({**_case(), "employee": wrap(EMPLOYEE), "overdue": True, "timeline": timeline,
                   "chain": {"ok": True, "entries": 3, "first_broken_seq": None, "reason": None, "head_digest": "cd"},
                   "documents": [], "approval": {"chain": ["hr_specialist"], "level": None, "level_role": None,
                                                 "pending_last_day": None, "confirmed_last_day": date(2026, 4, 1)},
                   "withdrawal_requested_at": None, "allowed_actions": ["export_dossier"], "chat_notice": None})
    fast, slow = both(HrCaseDetailSchema(), detail, monkeypatch=monkeypatch)
    assert fast == slow and fast["timeline"][2]["payload"] == {"a": [1]}
    fast, slow = both(CaseDetailSchema(), wrap({**_case(), "timeline": timeline, "chat_notice": None,
                                                "termination_certificate": None}), monkeypatch=monkeypatch)
    assert fast == slow
    fast, slow = both(CaseSchema(many=True), [wrap(_case()), wrap(_case(state="closed"))], monkeypatch=monkeypatch)
    assert fast == slow and len(fast) == 2


def test_missing_attributes_are_left_out_like_marshmallow(monkeypatch):
    partial = {"id": "x", "state": "submitted"}  # most fields absent: marshmallow leaves them out
    fast, slow = both(CaseSchema(), partial, monkeypatch=monkeypatch)
    assert fast == slow == {"id": "x", "state": "submitted"}
    fast, slow = both(CaseSchema(), SimpleNamespace(id=7, state=None), monkeypatch=monkeypatch)
    assert fast == slow == {"id": "7", "state": None}


def test_reminder_list_matches(monkeypatch):
    sched = SimpleNamespace(state="active", next_slot=2, next_due_at=T0, stop_reason=None)
    delivery = dict(slot=1, channel="sms", kind="letter_reminder", status="sent", scheduled_for=T0, started_at=None,
                    finished_at=T0, attempts="2", template=None, content_sha256="00", provider="dev",
                    provider_message_id=None, error_code=None)
    body = {"case_id": "c", "letter_due_date": date(2026, 1, 2), "overdue": False, "due_date_provisional": True,
            "schedule": sched, "deliveries": [delivery, {**delivery, "attempts": 3}]}
    fast, slow = both(ReminderListSchema(), body, monkeypatch=monkeypatch)
    assert fast == slow and fast["deliveries"][0]["attempts"] == 2
    fast, slow = both(ReminderListSchema(), {**body, "schedule": None}, monkeypatch=monkeypatch)
    assert fast == slow and fast["schedule"] is None


class Upper(ma.fields.String):
    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else str(value).upper()


class Edgy(FastDumpSchema):
    renamed = ma.fields.String(data_key="outName")
    sourced = ma.fields.Integer(attribute="raw")
    dotted = ma.fields.String(attribute="inner.name")
    defaulted = ma.fields.String(dump_default="d")
    callable_default = ma.fields.List(ma.fields.String(), dump_default=list)
    custom = Upper()
    method = ma.fields.Method("compute")
    func = ma.fields.Function(lambda o: "f")
    constant = ma.fields.Constant(5)
    amount = ma.fields.Decimal(as_string=True)
    rfc = ma.fields.DateTime(format="rfc")
    stamp = ma.fields.DateTime(format="timestamp")
    strf = ma.fields.Date(format="%Y/%m/%d")
    keyed = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer())
    flag = ma.fields.Boolean()
    maybe_list = ma.fields.List(ma.fields.Date(), allow_none=True)
    load_only_field = ma.fields.String(load_only=True)

    def compute(self, obj):
        return "m"


class Hooked(FastDumpSchema):
    name = ma.fields.String()

    @ma.post_dump
    def shout(self, data, **kwargs):
        return {k: v.upper() for k, v in data.items()}


@pytest.mark.parametrize("obj", [
    {"renamed": "r", "raw": "12", "inner": {"name": "n"}, "custom": "abc", "amount": Decimal("1.50"), "rfc": T0,
     "stamp": T0, "strf": date(2026, 1, 2), "keyed": {"a": "1"}, "flag": 1, "maybe_list": None, "load_only_field": "x"},
    {"renamed": None, "custom": None, "maybe_list": [date(2026, 1, 2)], "flag": None},
    {},
])
def test_edge_fields_match(monkeypatch, obj):
    fast, slow = both(Edgy(), obj, monkeypatch=monkeypatch)
    assert fast == slow
    ns = SimpleNamespace(**{k: v for k, v in obj.items() if k != "inner"},
                         **({"inner": SimpleNamespace(**obj["inner"])} if "inner" in obj else {}))
    fast, slow = both(Edgy(), ns, monkeypatch=monkeypatch)
    assert fast == slow
    fast, slow = both(Edgy(many=True), [obj, obj], monkeypatch=monkeypatch)
    assert fast == slow


def test_only_exclude_and_hooks(monkeypatch):
    fast, slow = both(Edgy(only=("renamed", "flag")), {"renamed": "r", "flag": True, "custom": "c"},
                      monkeypatch=monkeypatch)
    assert fast == slow == {"outName": "r", "flag": True}
    fast, slow = both(Hooked(), {"name": "x"}, monkeypatch=monkeypatch)
    assert fast == slow == {"name": "X"}
    fast, slow = both(Edgy(), None, monkeypatch=monkeypatch)
    assert fast == slow
