"""Limits checked before anything parses a request: JSON depth (400), request target (414) and
header size (431), all in the JSON error model. gunicorn's own limits: tests/api/test_gunicorn_limits.py."""

from __future__ import annotations

import json
import re

import pytest

from api.limits import json_depth_exceeds


def _json_operations(client) -> list[tuple[str, str, str]]:
    spec = client.get("/openapi.json").json
    out = []
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            content = (op.get("requestBody") or {}).get("content", {}) if isinstance(op, dict) else {}
            if "application/json" in content:
                out.append((method.upper(), re.sub(r"\{[^}]+\}", "x1", path), op["operationId"]))
    return out


def test_depth_scanner():
    assert not json_depth_exceeds(b"[" * 32 + b"]" * 32, 32)
    assert json_depth_exceeds(b"[" * 33 + b"]" * 33, 32)
    assert json_depth_exceeds(b"[" * 50_000, 32)  # unclosed: still refused, without recursion
    assert json_depth_exceeds(b'{"a":' * 40 + b"1" + b"}" * 40, 32)
    # Brackets inside strings (escaped quotes included) are text, not nesting.
    s = json.dumps({"t": "[" * 100 + '\\"{' * 50}).encode()
    assert not json_depth_exceeds(s, 2)
    assert not json_depth_exceeds(json.dumps([[1, [2]], [3], {"a": [4]}] * 500).encode(), 3)
    assert json_depth_exceeds(json.dumps([[1, [2, [3]]]]).encode(), 3)


@pytest.mark.parametrize("body", [b"[" * 50_000 + b"]" * 50_000, b'{"a":' * 30_000 + b"1" + b"}" * 30_000,
                                  b"[" * 100_000])
def test_deep_json_is_400_on_every_json_operation(client, body):
    ops = _json_operations(client)
    assert {"wechatLogin", "submitResignation"} <= {op for *_x, op in ops}
    for method, path, op in ops:
        r = client.open(path, method=method, data=body, content_type="application/json")
        assert r.status_code == 400, (op, r.status_code, r.data[:200])
        assert r.json["code"] == "json_too_deep" and r.json["status"] == 400 and r.json["details"]["limit"] == 32, op


def test_json_at_the_depth_limit_is_parsed_normally(client):
    nested = "[" * 31 + "]" * 31
    r = client.post("/api/v1/wechat/session", data=f'{{"code": {nested}}}', content_type="application/json")
    assert r.status_code == 422 and r.json["code"] == "validation_failed", r.json


def test_long_request_target_is_414(client, settings):
    r = client.get("/api/v1/notice/preview?arrival_date=2026-10-02&pad=" + "a" * settings.max_url_bytes)
    assert r.status_code == 414 and r.mimetype == "application/json"
    assert r.json["code"] == "uri_too_long" and r.json["details"]["limit"] == settings.max_url_bytes
    assert client.get("/healthz?" + "b" * settings.max_url_bytes).json["code"] == "uri_too_long"


def test_large_header_is_431(client, settings):
    r = client.get("/healthz", headers={"X-Padding": "p" * settings.max_header_bytes})
    assert r.status_code == 431 and r.mimetype == "application/json"
    assert r.json["code"] == "request_header_too_large" and r.json["details"]["header"] == "X-Padding"
    assert client.get("/healthz", headers={"X-Padding": "p" * 1000}).status_code == 200
