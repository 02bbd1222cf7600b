"""The year's schedule in one step: validation against the law, recomputation of open cases, evidence,
notifications; the API operations, the CLI, and previewNoticePeriod before and after (issue 14)."""

from __future__ import annotations

import json
from datetime import date

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from cases.errors import InvalidInput
from qianli.models import EvidenceEntry, HrAlert, ReminderDelivery, ResignationCase
from qianli.services.calendar import import_schedule, parse_schedule
from qianli.services.evidence import verify_case_chain
from tests.holidays.conftest import open_case_at

DONE_WHEN = [("2026-12-29", "2027-01-04", "2027-01-04"), ("2027-02-03", "2027-02-12", "2027-02-15"),
             ("2027-09-29", "2027-10-07", "2027-10-09")]


def test_parse_accepts_a_lawful_schedule(schedule_2027):
    p = parse_schedule(schedule_2027)
    assert p.year == 2027 and p.warnings == [] and len(p.holidays) == 7 and len(p.workdays) == 4


@pytest.mark.parametrize("mutate,code", [
    (lambda d: d["holidays"].__setitem__(1, {"name": "春节", "first": "2027-02-06", "last": "2027-02-11"}),
     "schedule_contradicts_law"),  # the eve (5 Feb) is statutory since 2025
    (lambda d: d["holidays"].pop(4), "schedule_contradicts_law"),  # 端午 dropped
    (lambda d: d["workdays"].append({"name": "国庆节", "date": "2027-10-02"}), "schedule_overlap"),
    (lambda d: d["workdays"].append({"name": "国庆节", "date": "2027-10-04"}), "schedule_overlap"),
    (lambda d: d["workdays"].append({"name": "国庆节", "date": "2027-10-11"}), "schedule_workday_not_weekend"),
    (lambda d: d["holidays"].append({"name": "x", "first": "2028-03-01", "last": "2028-03-01"}), "schedule_day_outside_year"),
    (lambda d: d.__setitem__("year", 1999), "schedule_year_out_of_range"),
    (lambda d: d.__setitem__("year", "2027"), "invalid_schedule"),
    (lambda d: d.__setitem__("colour", "red"), "invalid_schedule"),
    (lambda d: d["holidays"].__setitem__(0, {"name": "元旦", "first": "2027-01-03", "last": "2027-01-01"}), "invalid_schedule"),
    (lambda d: d["holidays"].__setitem__(0, {"name": "元旦", "first": "2027-13-01", "last": "2027-01-01"}), "invalid_schedule"),
    (lambda d: d.__setitem__("source", " "), "invalid_schedule"),
])
def test_parse_refuses(schedule_2027, mutate, code):
    mutate(schedule_2027)
    with pytest.raises(InvalidInput) as e:
        parse_schedule(schedule_2027)
    assert e.value.code == code


def test_parse_warns_when_art6_balance_is_off(schedule_2027):
    schedule_2027["workdays"].pop()  # one swapped working day fewer: 14 weekdays off net
    assert "13" in parse_schedule(schedule_2027).warnings[0]


def test_preview_before_and_after_import(client, runtime, db_session, schedule_2027):
    """Issue 14's "Done when", through previewNoticePeriod with no company override."""
    for arrival, provisional_due, _ in DONE_WHEN:
        body = client.get(f"/api/v1/notice/preview?arrival_date={arrival}").json
        assert (body["letter_due_date"], body["provisional"]) == (provisional_due, True)
    import_schedule(db_session, runtime, doc=schedule_2027, company_id=None, actor="operator:test")
    db_session.commit()
    for arrival, _, final_due in DONE_WHEN:
        body = client.get(f"/api/v1/notice/preview?arrival_date={arrival}").json
        assert (body["letter_due_date"], body["provisional"], body["pending_years"]) == (final_due, False, [])
        assert "暂定" not in body["explanation"]


def test_import_recomputes_open_provisional_cases(runtime, db_session, factory, schedule_2027):
    co1, co2 = factory.company(), factory.company()
    hr = factory.hr(co1, "hr_manager")
    cases = [open_case_at(db_session, runtime, factory.employee(co), f"{day}T10:00:00")
             for co, (day, _, _) in zip([co1, co2, co1], DONE_WHEN, strict=True)]
    final = open_case_at(db_session, runtime, factory.employee(co1), "2026-11-20T10:00:00")
    closed = open_case_at(db_session, runtime, factory.employee(co2), "2027-02-03T11:00:00")
    closed.state = "withdrawn"
    db_session.commit()
    assert [c.dates_provisional for c in cases] == [True, True, True] and not final.dates_provisional
    assert [c.letter_due_date.isoformat() for c in cases] == [p for _, p, _ in DONE_WHEN]

    res = import_schedule(db_session, runtime, doc=schedule_2027, company_id=None, actor="operator:cli:all")
    db_session.commit()
    assert {r["case_id"] for r in res.recomputed} == {c.id for c in cases} and res.unchanged == 0
    for c, (_, before, after) in zip(cases, DONE_WHEN, strict=True):
        db_session.refresh(c)
        assert (c.letter_due_date.isoformat(), c.dates_provisional) == (after, False)
        ev = db_session.scalars(select(EvidenceEntry).where(EvidenceEntry.case_id == c.id,
                                                            EvidenceEntry.action == "dates_recomputed")).all()
        assert len(ev) == 1 and ev[0].payload["before"]["letter_due_date"] == before
        assert ev[0].payload["after"] == {"letter_due_date": after, "earliest_lawful_last_day": c.earliest_lawful_last_day.isoformat(),
                                          "dates_provisional": False}
        assert ev[0].payload["schedule_sha256"] == res.schedule.sha256 and ev[0].actor == "operator:cli:all"
        moved = before != after
        notes = db_session.scalars(select(ReminderDelivery).where(ReminderDelivery.case_id == c.id,
                                                                  ReminderDelivery.kind == "dates_recomputed")).all()
        alerts = db_session.scalars(select(HrAlert).where(HrAlert.case_id == c.id, HrAlert.kind == "dates_recomputed")).all()
        assert bool(notes) == moved and len(alerts) == (1 if moved else 0)
        if moved:
            assert notes[0].params["letter_due_date"] == after and after in alerts[0].message
        assert verify_case_chain(db_session, c.id, c.company_id).ok
    # untouched: the final case and the withdrawn one
    for c in (final, closed):
        assert not db_session.scalars(select(EvidenceEntry).where(EvidenceEntry.case_id == c.id,
                                                                  EvidenceEntry.action == "dates_recomputed")).all()
    db_session.refresh(closed)
    assert closed.dates_provisional
    # importing the same year again changes nothing more
    again = import_schedule(db_session, runtime, doc=schedule_2027, company_id=None, actor="operator:cli:all")
    assert again.replaced and again.recomputed == [] and again.unchanged == 0
    del hr


def test_company_import_only_touches_that_company(client, runtime, db_session, factory, schedule_2027):
    co1, co2 = factory.company(), factory.company()
    mgr, spec = factory.hr(co1, "hr_manager"), factory.hr(co1, "hr_specialist")
    c1 = open_case_at(db_session, runtime, factory.employee(co1), "2027-02-03T10:00:00")
    c2 = open_case_at(db_session, runtime, factory.employee(co2), "2027-02-03T10:00:00")
    assert client.post("/api/v1/hr/calendar/schedules", json=schedule_2027,
                       headers=factory.hr_headers(spec)).status_code == 403
    bad = json.loads(json.dumps(schedule_2027))
    bad["holidays"][1]["first"] = "2027-02-06"
    r = client.post("/api/v1/hr/calendar/schedules", json=bad, headers=factory.hr_headers(mgr))
    assert r.status_code == 422 and r.json["code"] == "schedule_contradicts_law" and r.json["details"]["days"] == ["2027-02-05"]
    r = client.post("/api/v1/hr/calendar/schedules", json=schedule_2027, headers=factory.hr_headers(mgr))
    assert r.status_code == 201, r.json
    body = r.json
    assert body["schedule"]["scope"] == "company" and body["replaced"] is False and body["warnings"] == []
    assert [x["case_id"] for x in body["cases_recomputed"]] == [c1.id]
    assert body["cases_recomputed"][0]["moved"] == ["letter_due_date"] and body["cases_recomputed"][0]["notified"]
    db_session.expire_all()
    assert db_session.get(ResignationCase, c1.id).letter_due_date == date(2027, 2, 15)
    assert db_session.get(ResignationCase, c2.id).dates_provisional  # the other company still waits
    # the company's preview uses its schedule; the public one (no company) does not
    code1 = co1.code
    assert client.get(f"/api/v1/notice/preview?arrival_date=2027-02-03&company_code={code1}").json["provisional"] is False
    assert client.get("/api/v1/notice/preview?arrival_date=2027-02-03").json["provisional"] is True
    years = client.get("/api/v1/hr/calendar/schedules", headers=factory.hr_headers(spec)).json
    assert [y["year"] for y in years] == list(range(2020, 2028)) and years[-1]["scope"] == "company"
    assert years[0]["scope"] == "bundled"
    other = client.get("/api/v1/hr/calendar/schedules", headers=factory.hr_headers(factory.hr(co2))).json
    assert [y["year"] for y in other] == list(range(2020, 2027))
    stat = client.get("/api/v1/hr/calendar/statutory/2027", headers=factory.hr_headers(spec)).json
    assert stat["law_version"] == "2024" and len(stat["statutory"]) == 13
    assert client.get("/api/v1/hr/calendar/statutory/1990", headers=factory.hr_headers(spec)).status_code == 422
    r = client.post("/api/v1/hr/calendar/schedules", json={**schedule_2027, "extra": 1}, headers=factory.hr_headers(mgr))
    assert r.status_code == 422


def test_cli_import(runtime, db_session, factory, tmp_path, schedule_2027):
    from qianli.cli.calendar import calendar_group

    co = factory.company(code="acme")
    c = open_case_at(db_session, runtime, factory.employee(co), "2027-09-29T10:00:00")
    path = tmp_path / "2027.json"
    path.write_text(json.dumps(schedule_2027, ensure_ascii=False), encoding="utf-8")
    r = CliRunner().invoke(calendar_group, ["import", str(path)])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["scope"] == "all_companies" and out["cases_recomputed"] == 1
    db_session.expire_all()
    assert db_session.get(ResignationCase, c.id).letter_due_date == date(2027, 10, 9)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    r = CliRunner().invoke(calendar_group, ["import", str(bad)])
    assert r.exit_code == 1 and json.loads(r.output)["code"] == "invalid_schedule"
    r = CliRunner().invoke(calendar_group, ["statutory", "2027"])
    assert r.exit_code == 0 and json.loads(r.output)["estimated_makeup"][0] == {"date": "2027-02-09", "name": "春节补假"}
    r = CliRunner().invoke(calendar_group, ["list"])
    assert [x["year"] for x in json.loads(r.output)][-1] == 2027
