"""Observability: request ids and JSON logs, /metrics (access, content, multiprocess under gunicorn),
/healthz per dependency, and the RQ dashboard behind the HR manager's console login."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import redis as redis_lib
import requests
from prometheus_client import REGISTRY

from tests.conftest import REDIS_BASE, REDIS_DB
from tests.signing_support import sign_case

REPO = Path(__file__).resolve().parents[2]


def _app(runtime, **settings):
    from api.app import create_app

    if settings:
        runtime.settings = replace(runtime.settings, **settings)
    app = create_app(runtime)
    app.testing = True
    return app


def _sample(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# ---- request ids and logs --------------------------------------------------------------------------

def test_every_response_has_a_fresh_request_id_and_an_untrusted_one_is_ignored(client):
    a = client.get("/healthz")
    b = client.get("/api/v1/hr/cases")  # an error answer (401) carries it too
    c = client.get("/healthz", headers={"X-Request-ID": "from-the-outside-123"})
    ids = [r.headers.get("X-Request-ID") for r in (a, b, c)]
    assert b.status_code == 401
    assert all(i and re.fullmatch(r"[0-9a-f]{32}", i) for i in ids), ids
    assert len(set(ids)) == 3 and "from-the-outside-123" not in ids


def test_a_trusted_incoming_request_id_is_adopted_when_well_formed(runtime):
    client = _app(runtime, trust_request_id=True).test_client()
    assert client.get("/healthz", headers={"X-Request-ID": "lb-7f3a:01"}).headers["X-Request-ID"] == "lb-7f3a:01"
    for bad in ("has space", "x" * 129, 'quote"', "-starts-with-dash"):
        got = client.get("/healthz", headers={"X-Request-ID": bad}).headers["X-Request-ID"]
        assert got != bad and re.fullmatch(r"[0-9a-f]{32}", got)


def test_log_lines_are_json_with_the_request_id(runtime, capsys):
    import logging

    app = _app(runtime, log_level="INFO", log_format="json")

    @app.get("/_test/log")
    def _log_something():
        logging.getLogger("qianli.test").warning("inside the view: %s", "签离")
        return {"ok": True}

    client = app.test_client()
    capsys.readouterr()
    response = client.get("/_test/log")
    rid = response.headers["X-Request-ID"]
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    records = [json.loads(ln) for ln in lines]  # every line is one JSON object
    assert records and all(r["request_id"] == rid for r in records), lines
    view = next(r for r in records if r["logger"] == "qianli.test")
    assert view["message"] == "inside the view: 签离" and view["level"] == "WARNING" and "time" in view
    access = next(r for r in records if r["logger"] == "qianli.access")
    assert (access["method"], access["path"], access["status"]) == ("GET", "/_test/log", 200)
    assert access["duration_ms"] >= 0
    logging.getLogger("qianli.test").warning("outside any request")
    outside = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert outside["request_id"] == "-"


# ---- /metrics ---------------------------------------------------------------------------------------

def test_metrics_loopback_only_without_a_token(client):
    ok = client.get("/metrics")
    assert ok.status_code == 200 and ok.mimetype == "text/plain"
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code == 403
    proxied = client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    assert proxied.status_code == 403 and proxied.get_json()["code"] == "metrics_loopback_only"


def test_metrics_with_a_token_need_it_from_anywhere(runtime):
    client = _app(runtime, metrics_token="s" * 24).test_client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer " + "t" * 24}).status_code == 401
    got = client.get("/metrics", headers={"Authorization": "Bearer " + "s" * 24},
                     environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert got.status_code == 200


def test_metrics_token_too_short_is_refused_by_settings(tmp_path):
    from qianli.settings import SettingsError, load_settings

    with pytest.raises(SettingsError, match="QIANLI_METRICS_TOKEN"):
        load_settings({"QIANLI_ENV": "test", "QIANLI_VAR_DIR": str(tmp_path), "QIANLI_METRICS_TOKEN": "short"})


def test_request_latency_by_operation_id(client):
    before = _sample("qianli_http_request_duration_seconds_count", operation="getHealth", method="GET", status="200")
    before_401 = _sample("qianli_http_request_duration_seconds_count", operation="listCases", method="GET",
                         status="401")
    for _ in range(3):
        client.get("/healthz")
    client.get("/api/v1/hr/cases")
    client.get("/no/such/path")
    assert _sample("qianli_http_request_duration_seconds_count", operation="getHealth", method="GET",
                   status="200") == before + 3
    assert _sample("qianli_http_request_duration_seconds_count", operation="listCases", method="GET",
                   status="401") == before_401 + 1
    assert _sample("qianli_http_request_duration_seconds_count", operation="unmatched", method="GET",
                   status="404") >= 1
    text = client.get("/metrics").get_data(as_text=True)
    assert re.search(r'^qianli_http_request_duration_seconds_count\{[^}]*operation="getHealth"[^}]*\} [1-9]', text, re.M)


def test_every_contract_operation_has_its_operation_id_as_label(app):
    from api.observe import _operation_ids

    table = _operation_ids(app)
    spec = app.extensions["qianli_api"].spec.to_dict()
    documented = {op["operationId"] for methods in spec["paths"].values() for m, op in methods.items()
                  if m in ("get", "post", "put", "patch", "delete")}
    assert documented == set(table.values())


def test_rq_queue_depth_failures_and_reminder_deliveries(runtime, client):
    from rq import Queue

    from qianli.cli.jobs import count_job_failure, observed_worker_class
    from jobs.reminders import deliver_reminder
    from rq import SimpleWorker

    q = Queue("reminders", connection=runtime.redis)
    q.enqueue("builtins.len", [1, 2])
    q.enqueue("builtins.len", [3])
    text = client.get("/metrics").get_data(as_text=True)
    assert 'qianli_rq_jobs{queue="reminders",state="queued"} 2.0' in text
    assert "qianli_rq_redis_up 1.0" in text

    failures = _sample("qianli_rq_job_failures_total", queue="obs-test", func="builtins.int")
    bad = Queue("obs-test", connection=runtime.redis)
    bad.enqueue("builtins.int", "not a number")
    worker = observed_worker_class(SimpleWorker)([bad], connection=runtime.redis, exception_handlers=[count_job_failure])
    worker.work(burst=True)
    assert _sample("qianli_rq_job_failures_total", queue="obs-test", func="builtins.int") == failures + 1
    text = client.get("/metrics").get_data(as_text=True)
    assert 'qianli_rq_jobs{queue="obs-test",state="failed"} 1.0' in text

    missing = _sample("qianli_reminder_deliveries_total", channel="sms", result="missing")
    assert deliver_reminder("no-such-case", 1, "sms")["status"] == "missing"
    assert _sample("qianli_reminder_deliveries_total", channel="sms", result="missing") == missing + 1
    assert 'qianli_reminder_deliveries_total{channel="sms",result="missing"}' in client.get("/metrics").get_data(
        as_text=True)


def test_worker_job_logs_carry_the_job_id(runtime, capsys):
    from rq import Queue, SimpleWorker

    from qianli.cli.jobs import observed_worker_class
    from qianli.observability import configure_logging

    configure_logging("WARNING", "json")
    q = Queue("obs-log", connection=runtime.redis)
    job = q.enqueue("tests.api.test_observability._log_in_a_job")
    capsys.readouterr()
    observed_worker_class(SimpleWorker)([q], connection=runtime.redis).work(burst=True)
    lines = [json.loads(ln) for ln in capsys.readouterr().err.splitlines() if ln.startswith("{")]
    mine = [r for r in lines if r["logger"] == "qianli.test.job"]
    assert mine and mine[0]["request_id"] == f"job:{job.id}"


def _log_in_a_job():
    import logging

    logging.getLogger("qianli.test.job").warning("working")
    return 1


def test_signing_duration_is_measured(runtime, db_session, factory):
    from datetime import date, datetime, timedelta, timezone

    from qianli.services import cases as case_svc

    before = _sample("qianli_signing_duration_seconds_count", kind="employee", result="ok")
    company = factory.company()
    emp = factory.employee(company)
    case = case_svc.open_case(db_session, runtime.settings, employee=emp, source="miniprogram",
                              notice_arrived_at=datetime.now(timezone.utc), actor=f"employee:{emp.id}",
                              reason_category="other", reason_text="", handover_items=[],
                              requested_last_day=date.today() + timedelta(days=40))
    db_session.commit()
    sign_case(db_session, runtime, case, emp)
    assert _sample("qianli_signing_duration_seconds_count", kind="employee", result="ok") == before + 1
    assert _sample("qianli_signing_duration_seconds_sum", kind="employee", result="ok") > 0


# ---- /healthz -----------------------------------------------------------------------------------------

def test_healthz_names_each_dependency(client):
    r = client.get("/healthz")
    body = r.get_json()
    assert r.status_code == 200
    assert {k: body[k] for k in ("status", "database", "redis", "storage")} == {
        "status": "ok", "database": "ok", "redis": "ok", "storage": "ok"}
    assert isinstance(body["workers"], int)


def test_healthz_503_when_redis_is_down(runtime):
    app = _app(runtime)
    runtime.override(redis=redis_lib.Redis(host="127.0.0.1", port=_free_port(), socket_connect_timeout=1))
    body = app.test_client().get("/healthz")
    assert body.status_code == 503
    data = body.get_json()
    assert data["status"] == "degraded" and data["redis"].startswith("down: ") and data["database"] == "ok"
    assert data["workers"] is None


def test_healthz_503_when_the_database_is_down(runtime, tmp_path):
    from qianli.db import make_engine

    app = _app(runtime)
    runtime.override(engine=make_engine(f"sqlite:///{tmp_path / 'missing-dir' / 'x.db'}"))
    data = app.test_client().get("/healthz")
    assert data.status_code == 503 and data.get_json()["database"].startswith("down: ")
    assert data.get_json()["redis"] == "ok"


def test_healthz_503_when_storage_is_unusable(runtime, tmp_path):
    blocker = tmp_path / "var"
    blocker.mkdir()
    (blocker / "documents").write_text("a file where the documents directory should be")
    app = _app(runtime, var_dir=blocker)
    data = app.test_client().get("/healthz").get_json()
    assert data["storage"].startswith("down: ") and data["status"] == "degraded"


# ---- the RQ dashboard ----------------------------------------------------------------------------------

def _console_cookie(client, factory, user) -> None:
    client.set_cookie("qianli_hr", factory.hr_headers(user)["Authorization"][7:], path="/")


def test_rq_dashboard_for_the_hr_manager_only(app, factory, runtime):
    from rq import Queue

    Queue("reminders", connection=runtime.redis).enqueue("builtins.len", [1])
    company = factory.company()
    anonymous = app.test_client()
    r = anonymous.get("/hr/rq/")
    assert r.status_code == 303 and "/hr/login" in r.headers["Location"]
    for role in ("hr_specialist", "auditor", "dept_head"):
        c = app.test_client()
        _console_cookie(c, factory, factory.hr(company, role))
        assert c.get("/hr/rq/").status_code == 403, role
        assert c.get("/hr/rq/0/data/queues.json").status_code == 403, role
    manager = app.test_client()
    _console_cookie(manager, factory, factory.hr(company, "hr_manager"))
    page = manager.get("/hr/rq/")
    assert page.status_code == 200 and b"RQ" in page.data
    queues = manager.get("/hr/rq/0/data/queues.json").get_json()
    assert any(q["name"] == "reminders" and q["count"] == 1 for q in queues["queues"])
    same_origin = {"Origin": "http://localhost"}
    assert manager.post("/hr/rq/queue/reminders/queued/empty", headers=same_origin).status_code == 403
    assert manager.post("/hr/rq/requeue/reminders", headers={"Origin": "http://evil.example"}).status_code == 403
    assert manager.post("/hr/rq/requeue/reminders", headers=same_origin).status_code == 200
    assert Queue("reminders", connection=runtime.redis).count == 1  # nothing was emptied


def test_dashboard_and_metrics_are_not_in_the_contract(app):
    paths = app.extensions["qianli_api"].spec.to_dict()["paths"]
    assert not any(p.startswith("/hr/rq") or p == "/metrics" for p in paths)


# ---- multiprocess: gunicorn with two workers ---------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _histogram_count(text: str, operation: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith("qianli_http_request_duration_seconds_count{") and f'operation="{operation}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def _workers(master_pid: int) -> set[str]:
    return set(Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split())


@pytest.mark.slow
def test_metrics_add_up_every_gunicorn_worker(tmp_path, redis_client):
    """Two gunicorn workers (config/gunicorn.conf.py): /metrics gives the same total whichever worker
    answers, and requests counted by workers that have since been replaced (SIGHUP) stay counted."""
    var = tmp_path / "var"
    port = _free_port()
    env = {**os.environ, "QIANLI_ENV": "development", "QIANLI_VAR_DIR": str(var),
           "DATABASE_URL": f"sqlite:///{var / 'qianli.db'}", "REDIS_URL": f"{REDIS_BASE}/{REDIS_DB}",
           "QIANLI_LOG_LEVEL": "INFO", "QIANLI_BIND": f"127.0.0.1:{port}"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    bin_dir = Path(sys.executable).parent
    subprocess.run([str(bin_dir / "qianli"), "db", "upgrade"], env=env, cwd=REPO, check=True, capture_output=True,
                   timeout=120)
    log_path = tmp_path / "gunicorn.log"
    base = f"http://127.0.0.1:{port}"
    n = 30
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([str(bin_dir / "gunicorn"), "-c", "config/gunicorn.conf.py", "--workers", "2",
                                 "api.wsgi:app"], env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            deadline = time.monotonic() + 90
            while True:
                try:
                    if requests.get(f"{base}/metrics", timeout=2).status_code == 200 and len(_workers(proc.pid)) == 2:
                        break
                except requests.RequestException:
                    pass
                assert proc.poll() is None and time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.3)

            def total() -> set[float]:
                return {_histogram_count(requests.get(f"{base}/metrics", timeout=10).text, "getHealth")
                        for _ in range(6)}

            before = total()
            assert len(before) == 1
            for _ in range(n):
                assert requests.get(f"{base}/healthz", timeout=10).status_code == 200
            assert total() == {next(iter(before)) + n}
            old = _workers(proc.pid)
            os.kill(proc.pid, signal.SIGHUP)  # gunicorn replaces every worker
            deadline = time.monotonic() + 90
            while not (len(_workers(proc.pid)) == 2 and not (_workers(proc.pid) & old)):
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.3)
            assert total() == {next(iter(before)) + n}  # counted by processes that are gone
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(30)
    records = [json.loads(ln) for ln in log_path.read_text().splitlines() if ln.strip()]  # every line is JSON
    assert any(r["logger"].startswith("gunicorn") for r in records)
    access = [r for r in records if r["logger"] == "qianli.access" and r["path"] == "/healthz"]
    assert len(access) == n and all(re.fullmatch(r"[0-9a-f]{32}", r["request_id"]) for r in access)
