"""Schemathesis over the whole committed OpenAPI contract, against the live app.

The app runs in a real werkzeug server on a free loopback port (threaded), on a fresh committed
database, with real Redis. Every operation gets generated requests (bounded: a few examples per
operation, deterministic so CI is stable) with the right credentials for its security scheme
(employee token or HR manager token), and every response must pass: no server error, a declared
status code, a declared content type, and a body that matches its schema.
"""

from __future__ import annotations

import threading
from datetime import date, datetime, timezone

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                               status_code_conformance)
from werkzeug.serving import make_server

from miniprogram_contract import CONTRACT_PATH

pytestmark = pytest.mark.slow

MAX_EXAMPLES = 25
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def _signing_available() -> bool:
    try:
        from signing import pki, tsa  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture
def live(committed_runtime, monkeypatch):
    """The app served over HTTP, with one company, an HR manager, and an employee with a case."""
    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    if not _signing_available():  # until the signing package provides the TSA: a real test PKI
        from qianli.services import dossier as dossier_svc
        from tests.dossier.pki_helpers import make_pki

        services, _ = make_pki()
        monkeypatch.setattr(dossier_svc, "trust_services", lambda rt: services)
    from api.app import create_app
    from qianli.db import session_scope
    from qianli.models import Company
    from qianli.models import Employee, HrUser
    from qianli.services.auth import Principal, create_hr_user, issue_access_token, open_hr_session
    from qianli.services.cases import open_case
    from qianli.services.employees import create_employee

    rt = committed_runtime
    with session_scope(rt.session_factory) as s:
        company = Company(code="fuzz", name="模糊测试有限公司", policy={})
        s.add(company)
        s.flush()
        hr = create_hr_user(s, company_id=company.id, username="manager", display_name="HR 经理",
                            password="correct horse battery", role="hr_manager")
        emp = create_employee(s, rt, company_id=company.id, employee_no="F001", name="张三", phone="13800138000",
                              national_id="11010519491231002X", department="研发部", position="工程师",
                              hire_date=date(2023, 3, 1))
        emp.wechat_openid = "openid-fuzz"
        case = open_case(s, rt.settings, employee=emp, source="miniprogram",
                         notice_arrived_at=datetime(2024, 10, 8, 2, 0, tzinfo=timezone.utc), actor=f"employee:{emp.id}",
                         reason_category="other", reason_text="", requested_last_day=date(2024, 11, 30),
                         handover_items=[])
        ids = {"case_id": case.id, "employee_id": emp.id}
        hr_id, company_id = hr.id, company.id

    def tokens() -> dict[str, str]:
        """Fresh credentials for each operation: hrLogout ends an HR session, unbindEmployee the employee's."""
        with session_scope(rt.session_factory) as s:
            epoch = s.get(Employee, ids["employee_id"]).session_epoch or 0
            return {"employeeToken": issue_access_token(rt.settings, Principal(
                        "employee", ids["employee_id"], company_id, "openid-fuzz", epoch=epoch))[0],
                    "hrToken": open_hr_session(s, rt.settings, s.get(HrUser, hr_id)).access_token}
    app = create_app(rt)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", tokens, ids
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


def _auth_headers(operation, tokens) -> dict[str, str]:
    for requirement in operation.definition.raw.get("security", []):
        for scheme in requirement:
            if scheme in tokens:
                return {"Authorization": f"Bearer {tokens[scheme]}"}
    return {}


def test_whole_contract(live):
    base_url, tokens, ids = live
    schema = schemathesis.openapi.from_path(str(CONTRACT_PATH))
    operations = []
    for result in schema.get_all_operations():
        operations.append(result.ok())
    assert len(operations) >= 15  # the whole document, not a part of it
    failures: list[str] = []
    for operation in operations:
        headers = _auth_headers(operation, tokens())
        known = {name: ids[name] for name in ("case_id", "employee_id") if "{" + name + "}" in operation.path}
        strategies = [operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE)]
        if known:
            strategies.append(operation.as_strategy(GenerationMode.POSITIVE, path_parameters=known))
            strategies.append(operation.as_strategy(GenerationMode.NEGATIVE, path_parameters=known))
        strategy = st.one_of(*strategies)

        @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=strategy)
        def run(case):  # called within this iteration: the loop variable is current
            response = case.call(base_url=base_url, headers=headers, timeout=30)  # noqa: B023
            case.validate_response(response, checks=CHECKS, headers=headers)  # noqa: B023

        try:
            run()
        except Exception as exc:  # noqa: BLE001 - collect every operation's failure, then report them all
            failures.append(f"{operation.label}: {str(exc)[:1500]}")
    assert not failures, "\n\n".join(failures)
