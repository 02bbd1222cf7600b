"""Every answer of the deployment is the JSON error model, also those gunicorn gives before the
application sees the request: a real gunicorn started as ``make run`` starts it."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest
import requests

from tests.live_gunicorn import REPO, running_gunicorn, service_env

pytestmark = pytest.mark.slow


def _raw(base_url: str, request: bytes) -> tuple[int, dict[str, str], bytes]:
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(request)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def _is_error_model(r: requests.Response, status: int, code: str) -> None:
    assert r.status_code == status, (r.status_code, r.text[:300])
    assert r.headers["Content-Type"].startswith("application/json"), r.text[:300]
    body = r.json()
    assert body["code"] == code and body["status"] == status and body["message"], body


def test_make_run_and_readme_use_the_gunicorn_config():
    run = (REPO / "scripts" / "run-dev.sh").read_text()
    assert re.search(r"gunicorn -c config/gunicorn\.conf\.py .*--workers 2", run)
    readme = (REPO / "README.md").read_text()
    assert re.search(r"(^|\s)gunicorn -c config/gunicorn\.conf\.py .*'api\.wsgi:app'", readme, re.M)


def test_oversize_requests_get_the_json_error_model(runtime, tmp_path: Path):
    s = runtime.settings
    with running_gunicorn(service_env(runtime), tmp_path, workers=2) as server:
        base = server.base_url
        # The application's limits (below gunicorn's): 414 / 431 with details.
        r = requests.get(f"{base}/api/v1/notice/preview?arrival_date=2026-10-02&q=" + "a" * (s.max_url_bytes + 10))
        _is_error_model(r, 414, "uri_too_long")
        assert r.json()["details"]["limit"] == s.max_url_bytes
        r = requests.get(f"{base}/healthz", headers={"X-Big": "h" * 10_000})
        _is_error_model(r, 431, "request_header_too_large")
        # Past gunicorn's own limits (request line 8190 bytes, header field 32 kB): still JSON, not HTML.
        r = requests.get(f"{base}/api/v1/cases?q=" + "a" * 10_240)
        _is_error_model(r, 414, "uri_too_long")
        r = requests.get(f"{base}/api/v1/cases", headers={"X-Big": "h" * 40_000})
        _is_error_model(r, 431, "request_header_too_large")
        r = requests.get(f"{base}/healthz", headers={f"X-H{i}": "v" for i in range(120)})
        _is_error_model(r, 431, "request_header_too_large")
        # A request gunicorn cannot parse at all.
        status, headers, body = _raw(base, b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")
        assert status == 400 and headers["content-type"] == "application/json" and b'"code": "bad_request"' in body
        status, headers, body = _raw(base, b"NOT A REQUEST\r\n\r\n")
        assert status == 400 and headers["content-type"] == "application/json"
        # An ordinary request is unaffected.
        assert requests.get(f"{base}/api/v1/notice/preview?arrival_date=2026-10-02").status_code == 200
