"""Boundary inputs on every operation of the contract, derived from the contract itself: JSON nested
far too deep, a body one byte over the limit, and dates at the ends of the calendar in every date
query parameter. Each must be a 4xx in the error model (a stable ``code``), never a server error.

The schemathesis runs (tests/fuzz/test_schemathesis.py) add extreme dates to every generated
``date``/``date-time`` value too (``tests/fuzz/formats.py``).
"""

from __future__ import annotations

import json

import pytest

from miniprogram_contract import CONTRACT_PATH

DEPTH = 50_000
EXTREME_DATES = ("0001-01-01", "9999-12-31", "1900-02-28", "2100-12-31")
EXTREME_DATETIMES = ("0001-01-01T00:00:00+08:00", "9999-12-31T23:59:59+00:00", "0001-01-01T00:00:00Z")

# Cells known to answer wrongly, with the owner of the fix: accepted as they are, and the test fails
# once one is fixed (remove it then). Keep this empty.
KNOWN_DEFECTS: dict[tuple[str, str], str] = {}


def _operations():
    spec = json.loads(CONTRACT_PATH.read_text())
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            if method in ("get", "post", "put", "patch", "delete"):
                yield path, method.upper(), op


def _concrete(path: str) -> str:
    return path.replace("{", "x").replace("}", "")  # any value: the probes must fail before the lookup


@pytest.fixture
def callers(factory):
    company = factory.company()
    emp = factory.employee(company, openid="openid-boundary")
    hr = factory.hr(company, "hr_manager")
    return {"employeeToken": factory.employee_headers(emp), "hrToken": factory.hr_headers(hr)}


def _headers(op, callers) -> dict[str, str]:
    for requirement in op.get("security", []):
        for scheme in requirement:
            return dict(callers[scheme])
    return {}


class _ServerError:
    """What a 500 would have been (the test app propagates exceptions instead of answering 500)."""

    status_code = 500

    def __init__(self, exc: BaseException):
        self.exc = exc

    def get_json(self, silent: bool = False):
        return None

    def get_data(self, as_text: bool = False) -> str:
        return f"{type(self.exc).__name__}: {str(self.exc)[:150]}"


def _open(client, *args, **kwargs):
    try:
        return client.open(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - an unhandled error is the finding
        return _ServerError(exc)


def _check(results: list[str], fixed: list[str], op_id: str, probe: str, response) -> None:
    body = response.get_json(silent=True) or {}
    bad = not (400 <= response.status_code < 500) or not body.get("code")
    known = KNOWN_DEFECTS.get((op_id, probe))
    if bad and known:
        return
    if known:
        fixed.append(f"{op_id} {probe}: fixed, remove it from KNOWN_DEFECTS ({known})")
    elif bad:
        results.append(f"{op_id} {probe}: {response.status_code} {response.get_data(as_text=True)[:200]}")


def test_deeply_nested_json_is_refused_on_every_json_operation(client, callers):
    wrong: list[str] = []
    fixed: list[str] = []
    deep = "[" * DEPTH + "]" * DEPTH
    tried = 0
    for path, method, op in _operations():
        if "application/json" not in op.get("requestBody", {}).get("content", {}):
            continue
        tried += 1
        response = _open(client, _concrete(path), method=method, data=deep, content_type="application/json",
                               headers=_headers(op, callers))
        _check(wrong, fixed, op["operationId"], "nested_json", response)
    assert tried >= 20
    assert not wrong and not fixed, "\n".join(wrong + fixed)


def test_a_body_over_the_limit_is_413_on_every_operation_with_a_body(client, callers, settings):
    wrong: list[str] = []
    fixed: list[str] = []
    blob = b"a" * (settings.max_request_bytes + 1)
    for path, method, op in _operations():
        content = op.get("requestBody", {}).get("content", {})
        if not content:
            continue
        media = "application/json" if "application/json" in content else next(iter(content))
        response = _open(client, _concrete(path), method=method, data=blob, headers=_headers(op, callers),
                               content_type=media if media != "multipart/form-data" else
                               "multipart/form-data; boundary=b")
        if response.status_code != 413:
            _check(wrong, fixed, op["operationId"], "too_large", response)
            if response.status_code < 500 and (op["operationId"], "too_large") not in KNOWN_DEFECTS:
                wrong.append(f"{op['operationId']} too_large: {response.status_code}, not 413")
        else:
            assert response.get_json()["code"], op["operationId"]
    assert not wrong and not fixed, "\n".join(wrong + fixed)


def test_extreme_dates_in_query_parameters(client, callers):
    wrong: list[str] = []
    fixed: list[str] = []
    tried = 0
    for path, method, op in _operations():
        for param in op.get("parameters", []):
            fmt = param.get("schema", {}).get("format")
            if param["in"] != "query" or fmt not in ("date", "date-time"):
                continue
            values = EXTREME_DATES if fmt == "date" else EXTREME_DATETIMES
            required = {p["name"]: "2024-10-08" for p in op.get("parameters", [])
                        if p["in"] == "query" and p.get("required") and p["name"] != param["name"]}
            for value in values:
                tried += 1
                response = _open(client, _concrete(path), method=method, headers=_headers(op, callers),
                                       query_string={**required, param["name"]: value})
                if response.status_code < 400:
                    continue  # a far date may be valid for a filter; it just must not break anything
                _check(wrong, fixed, op["operationId"], f"{param['name']}={value}", response)
    assert tried >= 8
    assert not wrong and not fixed, "\n".join(wrong + fixed)
