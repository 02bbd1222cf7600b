"""Offboarding templates: the shipped default, strict validation of an edit, versions."""

from __future__ import annotations

from datetime import date

import pytest

from cases.calendar import ChineseCalendar
from cases.errors import InvalidInput
from cases.offboarding import (DEFAULT_TEMPLATE, GROUP_LABELS, OWNER_ROLE_LABELS, DayKind, OwnerRole, TaskGroup,
                               due_date, parse_template)

GOOD = {"key": "return_laptop", "group": "assets", "title": "收回电脑", "owner_role": "it", "offset": 0}


def test_every_group_and_role_has_a_chinese_label():
    assert set(GROUP_LABELS) == set(TaskGroup) and set(OWNER_ROLE_LABELS) == set(OwnerRole)


def test_default_template_covers_every_group_and_the_art50_transfer():
    assert {i.group for i in DEFAULT_TEMPLATE} == set(TaskGroup)
    transfer = next(i for i in DEFAULT_TEMPLATE if i.key == "transfer_file_social_insurance")
    assert (transfer.offset, transfer.day_kind, transfer.owner_role) == (15, DayKind.CALENDAR, OwnerRole.HR)
    assert "十五日内" in transfer.description
    # The shipped template passes the same validation as an edit.
    assert parse_template([i.as_doc() for i in DEFAULT_TEMPLATE]) == DEFAULT_TEMPLATE


@pytest.mark.parametrize("items,code", [
    ([], "invalid_template"),
    ("x", "invalid_template"),
    ([{**GOOD, "colour": "red"}], "invalid_template_item"),
    ([{**GOOD, "key": "Bad Key"}], "invalid_template_item"),
    ([GOOD, {**GOOD, "title": "again"}], "duplicate_template_key"),
    ([{**GOOD, "group": "party"}], "invalid_task_group"),
    ([{**GOOD, "title": "  "}], "invalid_template_item"),
    ([{**GOOD, "title": "x" * 101}], "invalid_template_item"),
    ([{k: v for k, v in GOOD.items() if k != "owner_role"}], "template_owner_required"),
    ([{**GOOD, "owner_user_id": "u1"}], "template_owner_required"),
    ([{**GOOD, "owner_role": "ceo"}], "invalid_owner_role"),
    ([{**GOOD, "owner_role": None, "owner_user_id": "nobody"}], "template_owner_unknown"),
    ([{**GOOD, "offset": 61}], "invalid_template_offset"),
    ([{**GOOD, "offset": True}], "invalid_template_offset"),
    ([{**GOOD, "offset": 1.5}], "invalid_template_offset"),
    ([{**GOOD, "day_kind": "lunar"}], "invalid_day_kind"),
])
def test_bad_templates_are_refused_with_a_stable_code(items, code):
    with pytest.raises(InvalidInput) as exc:
        parse_template(items, known_user_ids={"u1"})
    assert exc.value.code == code


def test_due_dates_count_chinese_working_days_across_holidays_and_swapped_days():
    cal = ChineseCalendar()
    last = date(2026, 9, 30)  # Wednesday before 国庆节 (10-01..10-07; 调休 workdays 09-20 Sun and 10-10 Sat)
    wd = DayKind.WORKING
    assert due_date(cal, last, 0, wd).date == last
    assert due_date(cal, last, 1, wd).date == date(2026, 10, 8)
    assert due_date(cal, last, 3, wd).date == date(2026, 10, 10)  # the Saturday is a working day
    assert due_date(cal, last, 5, wd).date == date(2026, 10, 13)
    assert due_date(cal, last, -3, wd).date == date(2026, 9, 24)  # back across 中秋节 (09-25..09-27)
    assert due_date(cal, last, -7, wd).date == date(2026, 9, 20)  # the swapped Sunday counts
    assert due_date(cal, last, 15, DayKind.CALENDAR).date == date(2026, 10, 15)
    assert not due_date(cal, last, 5, wd).provisional


def test_due_date_in_an_unpublished_year_is_provisional():
    cal = ChineseCalendar()
    assert due_date(cal, date(2027, 9, 30), 3, DayKind.WORKING).provisional


def test_list_shows_the_default_until_edited_then_versions(client, oworld):
    h = oworld.h(oworld.manager)
    r = client.get("/api/v1/hr/offboarding-templates", headers=h)
    assert r.status_code == 200
    res = next(t for t in r.json["templates"] if t["departure_type"] == "resignation")
    assert res["version"] == 0 and res["is_default"] is True and len(res["items"]) == len(DEFAULT_TEMPLATE)
    items = res["items"][:3] + [{"key": "badge", "group": "assets", "title": "收回工牌", "owner_user_id": oworld.it.id,
                                 "offset": -1, "day_kind": "working"}]
    url = "/api/v1/hr/offboarding-templates/resignation"
    r = client.put(url, json={"items": items, "expected_version": 0, "comment": "精简"}, headers=h)
    assert r.status_code == 200, r.json
    assert r.json["version"] == 1 and r.json["is_default"] is False and r.json["comment"] == "精简"
    assert r.json["items"][-1]["owner_user_id"] == oworld.it.id
    # A stale edit is refused; the current version is named.
    r = client.put(url, json={"items": items, "expected_version": 0}, headers=h)
    assert r.status_code == 409 and r.json["code"] == "template_version_conflict"
    assert r.json["details"]["current_version"] == 1
    r = client.put(url, json={"items": items}, headers=h)
    assert r.status_code == 200 and r.json["version"] == 2
    # Other companies still have the default.
    other = oworld.f.company()
    mgr = oworld.f.hr(other, "hr_manager")
    r = client.get("/api/v1/hr/offboarding-templates", headers=oworld.f.hr_headers(mgr))
    assert next(t for t in r.json["templates"] if t["departure_type"] == "resignation")["version"] == 0


def test_edit_errors_over_http(client, oworld, db_session):
    h = oworld.h(oworld.manager)
    url = "/api/v1/hr/offboarding-templates/resignation"
    r = client.put(url, json={"items": [{**GOOD, "offset": 99}]}, headers=h)
    assert r.status_code == 422 and r.json["code"] == "invalid_template_offset"
    assert r.json["details"]["field"] == "items[0].offset"
    # A user of another company (or a deactivated one) cannot own a task.
    other = oworld.f.hr(oworld.f.company(), "hr_specialist")
    r = client.put(url, json={"items": [{**GOOD, "owner_role": None, "owner_user_id": other.id}]}, headers=h)
    assert r.status_code == 422 and r.json["code"] == "template_owner_unknown"
    r = client.put("/api/v1/hr/offboarding-templates/sabbatical", json={"items": [GOOD]}, headers=h)
    assert r.status_code == 404 and r.json["code"] == "departure_type_not_found"
    r = client.put(url, json={"items": [GOOD]}, headers=oworld.h(oworld.spec))
    assert r.status_code == 403
    r = client.put(url, json={"items": [GOOD], "extra": 1}, headers=h)
    assert r.status_code == 422
    # Nothing half-written.
    from sqlalchemy import func, select

    from qianli.models import OffboardingTemplate

    assert db_session.scalar(select(func.count()).select_from(OffboardingTemplate)) == 0
