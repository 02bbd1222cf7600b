"""listReminders through the HTTP API: the employee's own case, HR scoped to company and department."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

from rq import Queue, SimpleWorker

from qianli.services.reminders import QUEUE


def _form():
    return {"reason_category": "career_development", "reason_text": "个人职业发展",
            "requested_last_day": (date.today() + timedelta(days=60)).isoformat(),
            "handover_items": [{"item": "代码仓库权限", "owner": "李四"}]}


def test_list_reminders_employee_and_hr(client, factory, runtime):
    runtime.settings = replace(runtime.settings, quiet_hours="")
    co, other_co = factory.company(), factory.company()
    emp, stranger = factory.employee(co), factory.employee(co)
    r = client.post("/api/v1/cases", json=_form(), headers=factory.employee_headers(emp))
    assert r.status_code == 201, r.json
    case_id = r.json["id"]
    url = f"/api/v1/cases/{case_id}/reminders"

    mine = client.get(url, headers=factory.employee_headers(emp))
    assert mine.status_code == 200, mine.json
    assert mine.json["schedule"]["state"] == "active" and mine.json["schedule"]["next_slot"] == 1
    assert [(d["slot"], d["channel"], d["status"]) for d in mine.json["deliveries"]] == [(0, "sms", "pending")]

    # a real rq worker (in this process) sends the queued notice; the list then shows it sent
    SimpleWorker([Queue(QUEUE, connection=runtime.redis)], connection=runtime.redis).work(burst=True, logging_level="WARNING")
    sent = client.get(url, headers=factory.employee_headers(emp)).json["deliveries"][0]
    assert sent["status"] == "sent" and sent["provider"] == "dev" and len(sent["content_sha256"]) == 64
    assert sent["kind"] == "letter_due_notice" and sent["attempts"] == 1

    assert client.get(url, headers=factory.employee_headers(stranger)).status_code == 404
    assert client.get(url, headers=factory.hr_headers(factory.hr(co, "auditor"))).status_code == 200
    assert client.get(url, headers=factory.hr_headers(factory.hr(co, "dept_head", department="研发部"))).status_code == 200
    assert client.get(url, headers=factory.hr_headers(factory.hr(co, "dept_head", department="市场部"))).status_code == 404
    assert client.get(url, headers=factory.hr_headers(factory.hr(other_co, "hr_manager"))).status_code == 404
    assert client.get(url).status_code == 401
