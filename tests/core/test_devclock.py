"""The development clock offset: shared by every worker of a deployment through Redis, refused in production."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cases import clock
from qianli.services import devclock


@pytest.fixture(autouse=True)
def _reset_clock():
    yield
    clock.set_offset(timedelta(0))


def test_advance_moves_every_app_of_the_deployment(app, runtime, client):
    from api.app import create_app

    before = clock.utcnow()
    r = client.post("/api/v1/dev/clock", json={"advance_days": 31})
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["offset_seconds"] == 31 * 86400 and body["development_only"] is True
    # Another worker process of the same deployment: a fresh app whose clock is still at zero.
    clock.set_offset(timedelta(0))
    other = create_app(runtime).test_client()
    r2 = other.get("/api/v1/dev/clock")
    assert r2.get_json()["offset_seconds"] == 31 * 86400
    assert clock.utcnow() - before >= timedelta(days=31)
    # Each request applies the offset and says so in a header.
    assert other.get("/healthz").headers.get("X-QianLi-Dev-Clock-Offset") == str(31 * 86400)
    # Advancing adds to the offset; setting replaces it.
    assert client.post("/api/v1/dev/clock", json={"advance_days": 1}).get_json()["offset_seconds"] == 32 * 86400
    assert client.post("/api/v1/dev/clock", json={"offset_seconds": 0}).get_json()["offset_seconds"] == 0
    assert "X-QianLi-Dev-Clock-Offset" not in other.get("/healthz").headers


@pytest.mark.parametrize("body", [{}, {"advance_days": "3"}, {"advance_days": True}, {"advance_days": 1, "offset_seconds": 1},
                                  {"offset_seconds": -1}, {"advance_days": -1}, {"offset_seconds": 10 ** 13},
                                  {"tomorrow": 1}, [1]])
def test_bad_bodies_are_refused_and_change_nothing(client, body):
    r = client.post("/api/v1/dev/clock", json=body)
    assert r.status_code == 422, (body, r.status_code, r.get_json())
    assert r.get_json()["code"] in ("dev_clock_body_invalid", "dev_clock_offset_invalid")
    assert client.get("/api/v1/dev/clock").get_json()["offset_seconds"] == 0


def test_loopback_only(client):
    r = client.post("/api/v1/dev/clock", json={"advance_days": 1}, environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert r.status_code == 403 and r.get_json()["code"] == "dev_backend_loopback_only"


def test_production_has_no_clock_and_ignores_redis(runtime, settings, redis_client):
    from dataclasses import replace

    from qianli.runtime import Runtime

    redis_client.set(devclock.REDIS_KEY, str(86400 * 40))
    prod = Runtime(replace(settings, env="production")).override(engine=runtime.engine, redis=redis_client,
                                                               session_factory=runtime.session_factory)
    assert devclock.apply(prod) == 0 and clock.current_offset() == timedelta(0)
    with pytest.raises(Exception) as err:
        devclock.set_offset_seconds(prod, 60)
    assert getattr(err.value, "code", "") == "dev_clock_refused"
    assert redis_client.get(devclock.REDIS_KEY) == str(86400 * 40).encode()  # untouched
    from flask import Flask

    import api.dev

    bare = Flask("prod-check")
    bare.extensions["qianli_runtime"] = prod
    api.dev.register(bare)
    assert not any(r.rule.startswith("/api/v1/dev") for r in bare.url_map.iter_rules())
    dev = Flask("dev-check")
    dev.extensions["qianli_runtime"] = runtime
    api.dev.register(dev)
    assert any(r.rule == "/api/v1/dev/clock" for r in dev.url_map.iter_rules())


def test_redis_down_keeps_the_last_offset(runtime, redis_client):
    import redis as redis_lib

    clock.set_offset(timedelta(seconds=120))
    broken = redis_lib.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    runtime.override(redis=broken)
    try:
        assert devclock.apply(runtime) == 120
    finally:
        runtime.override(redis=redis_client)


def test_rq_jobs_run_at_the_deployment_clock(runtime, redis_client):
    from rq import Queue, SimpleWorker

    from qianli.cli.jobs import observed_worker_class

    redis_client.set(devclock.REDIS_KEY, str(7 * 86400))
    clock.set_offset(timedelta(0))
    q = Queue("devclock-test", connection=redis_client)
    job = q.enqueue(clock.current_offset)
    observed_worker_class(SimpleWorker)([q], connection=redis_client).work(burst=True)
    job.refresh()
    assert job.return_value() == timedelta(days=7)


def test_access_tokens_follow_the_deployment_clock(settings):
    """A token issued after the clock moved is valid (not 'issued in the future'); one issued before expires
    by the moved clock."""
    from cases.errors import Unauthorized
    from qianli.services.auth import Principal, decode_access_token, issue_access_token

    before, _ = issue_access_token(settings, Principal("hr", "u1", "c1", None, session_id="s1"))
    clock.set_offset(timedelta(days=40))
    after, _ = issue_access_token(settings, Principal("hr", "u1", "c1", None, session_id="s1"))
    assert decode_access_token(settings, after).subject_id == "u1"
    with pytest.raises(Unauthorized) as exc:
        decode_access_token(settings, before)
    assert exc.value.code == "token_expired"
    with pytest.raises(Unauthorized) as exc:
        decode_access_token(settings, after + "x")
    assert exc.value.code == "token_invalid"
