"""Schemathesis over the whole committed OpenAPI contract, against the live app.

The app runs in a real werkzeug server on a free loopback port (threaded), on a fresh committed
database, with real Redis. Every operation gets generated requests (bounded: a few examples per
operation, deterministic so CI is stable) with the right credentials for its security scheme
(employee token or HR manager token), and every response must pass: no server error, a declared
status code, a declared content type, and a body that matches its schema.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
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
REPO = Path(__file__).resolve().parents[2]


def _load_boundary_formats() -> None:
    """Register the boundary date strategies (tests/fuzz/formats.py; the CLI run loads it as a hook)."""
    import importlib.util
    import sys

    if "qianli_fuzz_formats" in sys.modules:
        return
    spec = importlib.util.spec_from_file_location("qianli_fuzz_formats", Path(__file__).with_name("formats.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)


_load_boundary_formats()

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
        fresh = create_employee(s, rt, company_id=company.id, employee_no="F002", name="李四", phone="13800138001",
                                national_id="110105199003071239", department="研发部", position="工程师",
                                hire_date=date(2023, 3, 1))
        fresh.wechat_openid = "openid-fuzz-fresh"
        s.flush()
        ids = {"case_id": case.id, "employee_id": emp.id}
        hr_id, company_id, fresh_id = hr.id, company.id, fresh.id

    def tokens() -> dict[str, str]:
        """Fresh credentials for each operation: hrLogout ends an HR session, unbindEmployee the employee's."""
        with session_scope(rt.session_factory) as s:
            epoch = s.get(Employee, ids["employee_id"]).session_epoch or 0
            fresh_epoch = s.get(Employee, fresh_id).session_epoch or 0
            return {"employeeToken": issue_access_token(rt.settings, Principal(
                        "employee", ids["employee_id"], company_id, "openid-fuzz", epoch=epoch))[0],
                    "hrToken": open_hr_session(s, rt.settings, s.get(HrUser, hr_id)).access_token,
                    # an employee without a case, for the stateful run (submitResignation -> the case's operations)
                    "freshEmployeeToken": issue_access_token(rt.settings, Principal(
                        "employee", fresh_id, company_id, "openid-fuzz-fresh", epoch=fresh_epoch))[0]}
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
        except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - collect every operation's failure
            # (schemathesis' FailureGroup is a BaseExceptionGroup), then report them all
            failures.append(f"{operation.label}: {str(exc)[:1500]}")
    assert not failures, "\n\n".join(failures)


# ---- stateful run + boundary values (schemathesis' own runner) -----------------------------------------

# OpenAPI links between operations: what a client does with one answer in the next request. They are
# added to a copy of the contract for this run (the stateful phase follows them with real ids).
CASE_ID = {"path.case_id": "$response.body#/id"}
LINKS: dict[tuple[str, str], dict[str, dict]] = {
    ("submitResignation", "201"): {
        "getMyCase": CASE_ID, "updateMyCaseForm": CASE_ID, "previewLetter": CASE_ID, "withdrawMyCase": CASE_ID,
        "respondToChatNotice": CASE_ID,
        "confirmAgreedLastDay": CASE_ID, "listReminders": CASE_ID, "signLetter": CASE_ID,
        "startLivenessChallenge": {"body.case_id": "$response.body#/id"},
        "createSigningIntent": {"body.case_id": "$response.body#/id"},
        "verifySmsCode": {"body.case_id": "$response.body#/id"},
    },
    ("listMyCases", "200"): {"getMyCase": {"path.case_id": "$response.body#/0/id"}},
    ("startLivenessChallenge", "201"): {"verifyFace": {"path.nonce": "$response.body#/nonce"}},
    ("createSigningIntent", "201"): {"signLetter": {"body.intent_id": "$response.body#/intent_id"}},
    ("listCases", "200"): {op: {"path.case_id": "$response.body#/items/0/id"} for op in (
        "getCase", "approveCase", "returnCase", "consentWithdrawal", "exportDossier", "getSignedLetter")},
    ("recordChatEvidence", "201"): {
        **{op: CASE_ID for op in ("getCase", "approveCase", "returnCase", "exportDossier")},
        **{op: {"path.employee_id": "$response.body#/employee/id"} for op in (
            "getFaceEnrolment", "enrolFace", "unlockFace", "unbindEmployee")}},
    ("getCase", "200"): {op: {"path.employee_id": "$response.body#/employee/id"} for op in (
        "getFaceEnrolment", "unlockFace")},
    ("listAlerts", "200"): {"resolveAlert": {"path.alert_id": "$response.body#/0/id"}},
    ("addHolidayOverride", "201"): {"deleteHolidayOverride": {"path.override_id": "$response.body#/id"}},
    ("listHolidayOverrides", "200"): {"deleteHolidayOverride": {"path.override_id": "$response.body#/0/id"}},
}


def _contract_with_links() -> dict:
    import json

    spec = json.loads(CONTRACT_PATH.read_text())
    by_id = {op["operationId"]: op for methods in spec["paths"].values() for op in methods.values()
             if isinstance(op, dict) and "operationId" in op}
    for (source, status), targets in LINKS.items():
        assert source in by_id, f"LINKS names an operation the contract lacks: {source}"
        response = by_id[source]["responses"][status]
        for target, params in targets.items():
            assert target in by_id, f"LINKS names an operation the contract lacks: {target}"
            link: dict = {"operationId": target}
            path = {k.split(".", 1)[1]: v for k, v in params.items() if k.startswith("path.")}
            body = {k.split(".", 1)[1]: v for k, v in params.items() if k.startswith("body.")}
            if path:
                link["parameters"] = path
            if body:
                link["requestBody"] = body
            response.setdefault("links", {})[f"{source}_to_{target}"] = link
    return spec


STATEFUL_MAX_EXAMPLES = 8  # per operation, coverage and fuzzing phases
STATEFUL_SCENARIOS = 100  # stateful phase: scenarios (each a chain of linked calls)
STATEFUL_MAX_STEPS = 12


def test_stateful_and_boundary_phases(live, tmp_path):
    """schemathesis' runner over the contract with links: the coverage phase (boundary values from
    every schema: dates at the ends of their range, strings and numbers at and past their limits,
    missing and extra fields), a fuzzing phase, and the stateful phase that chains operations
    through the links above. Any server error or answer outside the contract fails."""
    import json
    import subprocess
    import sys

    base_url, fresh_tokens, _ids = live
    tokens = fresh_tokens()
    schema_path = tmp_path / "openapi-with-links.json"
    schema_path.write_text(json.dumps(_contract_with_links(), ensure_ascii=False))
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        "[generation]\n"
        f"max-examples = {STATEFUL_MAX_EXAMPLES}\n"
        "[auth.openapi.employeeToken]\n"
        f'bearer = "{tokens["freshEmployeeToken"]}"\n'
        "[auth.openapi.hrToken]\n"
        f'bearer = "{tokens["hrToken"]}"\n'
        "[phases.stateful]\n"
        f"max-steps = {STATEFUL_MAX_STEPS}\n"
        "[phases.stateful.generation]\n"
        f"max-examples = {STATEFUL_SCENARIOS}\n")
    report = tmp_path / "junit.xml"
    cli = Path(sys.executable).parent / "schemathesis"
    run = subprocess.run(
        [str(cli), "--config-file", str(config), "run", str(schema_path), "--url", base_url,
         "--phases", "coverage,fuzzing,stateful", "--seed", "20261127",
         # the run's credentials must stay valid (test_whole_contract fuzzes these two with fresh ones)
         "--exclude-operation-id", "hrLogout", "--exclude-operation-id", "unbindEmployee",
         "--workers", "1", "--checks", ",".join(c.__name__ for c in CHECKS), "--request-timeout", "60",
         "--suppress-health-check", "all", "--generation-database", "none", "--no-color", "--output-truncate", "false",
         "--report", "junit", "--report-junit-path", str(report)],
        capture_output=True, text=True, timeout=1200, cwd=tmp_path,
        env={**os.environ, "SCHEMATHESIS_HOOKS": "tests.fuzz.formats",
             "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH", "")]))})
    output = run.stdout + run.stderr
    assert "Stateful" in output or "stateful" in output, output[-3000:]
    assert run.returncode == 0, output[-20000:]
