"""Every date and date-time input of the contract accepts only 1900-01-01 .. 2100-12-31: extreme values
answer 422 validation_failed naming the field, never a 500 from date arithmetic overflowing."""

from __future__ import annotations

import json
import re

import pytest

from api.schemas import DATE_RANGE_MESSAGE

EXTREMES = {"date": ["0001-01-01", "9999-12-31", "1899-12-31", "2101-01-01"],
            "date-time": ["0001-01-01T00:00:00+08:00", "9999-12-31T23:59:59-08:00", "1899-12-31T23:59:59+00:00",
                          "2100-12-31T23:00:00-08:00"]}


def _resolve(spec, schema):
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _date_inputs(spec):
    """(operationId, method, path, location, body builder, format) for every date input."""
    found = []
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if not isinstance(op, dict):
                continue
            url = re.sub(r"\{[^}]+\}", "x1", path)
            for p in op.get("parameters", []):
                fmt = p.get("schema", {}).get("format")
                if p["in"] == "query" and fmt in EXTREMES:
                    found.append((op["operationId"], method.upper(), url, "query",
                                  lambda v, n=p["name"]: {n: v}, fmt))
            content = (op.get("requestBody") or {}).get("content", {})
            if "application/json" not in content:
                continue
            body = _resolve(spec, content["application/json"]["schema"])
            for name, prop in body.get("properties", {}).items():
                prop = _resolve(spec, prop)
                if prop.get("format") in EXTREMES:
                    found.append((op["operationId"], method.upper(), url, "json", lambda v, n=name: {n: v},
                                  prop["format"]))
                elif prop.get("type") == "array":
                    item = _resolve(spec, prop.get("items", {}))
                    for sub, sp in item.get("properties", {}).items():
                        if _resolve(spec, sp).get("format") in EXTREMES:
                            found.append((op["operationId"], method.upper(), url, "json",
                                          lambda v, n=name, s=sub: {n: [{s: v}]}, _resolve(spec, sp)["format"]))
    return found


def test_every_date_input_of_the_contract_is_bounded(client, factory):
    spec = client.get("/openapi.json").json
    inputs = _date_inputs(spec)
    names = {op for op, *_x in inputs}
    assert {"recordChatEvidence", "listCases", "previewNoticePeriod", "submitResignation"} <= names, names
    company = factory.company()
    callers = [factory.hr_headers(factory.hr(company, "hr_manager")), factory.employee_headers(factory.employee(company))]
    for op, method, url, location, build, fmt in inputs:
        for value in EXTREMES[fmt]:
            for headers in callers:
                if location == "query":
                    r = client.open(url, method=method, query_string=build(value), headers=headers)
                else:
                    r = client.open(url, method=method, json=build(value), headers=headers)
                if r.status_code not in (401, 403):
                    break
            assert r.status_code == 422, (op, value, r.status_code, r.data[:300])
            assert r.json["code"] == "validation_failed", (op, value, r.json)
            assert DATE_RANGE_MESSAGE in json.dumps(r.json), (op, value, r.json)


def test_the_reported_cases(client, factory):
    company = factory.company()
    hr = factory.hr_headers(factory.hr(company, "hr_manager"))
    emp = factory.employee(company, employee_no="C001")
    body = {"employee_no": emp.employee_no, "text": "我要离职", "sender_name": emp.name, "platform": "wecom",
            "sent_at": "0001-01-01T00:00:00+08:00"}
    r = client.post("/api/v1/hr/chat-evidence", json=body, headers=hr)
    assert r.status_code == 422 and r.json["code"] == "validation_failed", r.json
    assert r.json["details"]["json"]["sent_at"] == [DATE_RANGE_MESSAGE]
    for q in ("created_from=0001-01-01", "created_to=9999-12-31", "arrival_from=0001-01-01", "arrival_to=9999-12-31"):
        r = client.get(f"/api/v1/hr/cases?{q}", headers=hr)
        assert r.status_code == 422 and r.json["errors"]["query"][q.split("=")[0]] == [DATE_RANGE_MESSAGE], r.json
    r = client.get("/api/v1/hr/cases?created_from=1900-01-01&created_to=2100-12-31", headers=hr)
    assert r.status_code == 200, r.json
    r = client.get("/api/v1/notice/preview?arrival_date=9999-12-31")
    assert r.status_code == 422 and r.json["errors"]["query"]["arrival_date"] == [DATE_RANGE_MESSAGE]


@pytest.mark.parametrize("day", ["1900-01-01", "2100-12-31", "2026-02-17"])
def test_the_ends_of_the_range_pass_the_schema(client, day):
    """The schema accepts the whole range; an operation may narrow it with its own code (the notice
    calculator knows the calendar of 2008-2098 only), never with a 500."""
    r = client.get(f"/api/v1/notice/preview?arrival_date={day}&probation=true")
    assert r.status_code == 200 or (r.status_code == 422 and r.json["code"] == "arrival_date_out_of_range"), r.json
    if day == "2026-02-17":
        assert r.status_code == 200
