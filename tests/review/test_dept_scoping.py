"""A department head sees their own department's cases and employees only, in every operation: the
one scoping rule (qianli.services.review.get_hr_case / get_hr_employee / department_scope). A head of
another department used to export the dossier and download the signed letter of a case that getCase
answered 404 for."""

from __future__ import annotations

import re

from qianli.services import reminders as reminder_svc


def _ops_on(spec, *params: str):
    """(operationId, method, path template) of every operation whose path names one of ``params``."""
    for path, ops in spec["paths"].items():
        names = set(re.findall(r"\{([^}]+)\}", path))
        if not names or not names <= set(params):
            continue
        for method, op in ops.items():
            if isinstance(op, dict) and "operationId" in op:
                yield op["operationId"], method.upper(), path


def test_every_case_and_employee_operation_is_scoped_to_the_department(client, world, runtime, db_session):
    case, emp = world.case(department="研发部", signed=True)
    reminder_svc.on_case_opened(db_session, runtime, case)
    db_session.commit()
    spec = client.get("/openapi.json").json
    ops = list(_ops_on(spec, "case_id", "employee_id"))
    names = {op for op, *_x in ops}
    assert {"getCase", "exportDossier", "getSignedLetter", "listReminders", "getFaceEnrolment", "approveCase",
            "returnCase"} <= names, names
    seen_by_own_head = set()
    for op, method, path in ops:
        url = path.replace("{case_id}", case.id).replace("{employee_id}", emp.id)
        kw = {"json": {}} if method in ("POST", "PUT", "PATCH") else {}
        theirs = client.open(url, method=method, headers=world.h(world.other_head), **kw)
        assert theirs.status_code in (403, 404, 422), (op, theirs.status_code, theirs.data[:200])
        if method == "GET":
            mine = client.open(url, method=method, headers=world.h(world.head))
            if mine.status_code == 200:
                seen_by_own_head.add(op)
                # What the head of the case's department can read, the other head gets as "not found".
                assert theirs.status_code == 404, (op, theirs.status_code)
                assert theirs.json["code"] in ("case_not_found", "employee_not_found"), (op, theirs.json)
    assert {"getCase", "exportDossier", "getSignedLetter", "listReminders", "getFaceEnrolment"} <= seen_by_own_head


def test_the_reported_operations(client, world):
    case, emp = world.case(department="研发部", signed=True)
    for url in (f"/api/v1/hr/cases/{case.id}/dossier", f"/api/v1/cases/{case.id}/letter", f"/api/v1/hr/cases/{case.id}",
                f"/api/v1/hr/employees/{emp.id}/face"):
        r = client.get(url, headers=world.h(world.other_head))
        assert r.status_code == 404, (url, r.status_code)
        for user in (world.head, world.manager, world.auditor, world.spec):
            assert client.get(url, headers=world.h(user)).status_code == 200, (url, user.role)
    listed = client.get("/api/v1/hr/cases", headers=world.h(world.other_head)).json
    assert case.id not in {c["id"] for c in listed["items"]}
