"""Liveness/readiness: each dependency's state; 200 when all answer, 503 naming what is down."""

from __future__ import annotations

import logging
from typing import Callable

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import text

from qianli.db import READ_ONLY

from api.context import runtime

__all__ = ["blp", "dependency_states"]

log = logging.getLogger(__name__)
blp = Blueprint("health", __name__, url_prefix="/", description="Service health")

STATE_DESCRIPTION = "ok, or 'down: <error type>'"


class HealthSchema(ma.Schema):
    status = ma.fields.String(required=True, metadata={"description": "ok (every dependency answers) or degraded"})
    database = ma.fields.String(required=True, metadata={"description": f"SQL database: {STATE_DESCRIPTION}"})
    redis = ma.fields.String(required=True, metadata={"description": f"Redis (queues, codes, limits): {STATE_DESCRIPTION}"})
    storage = ma.fields.String(required=True, metadata={"description": f"Document storage (local directory or S3 "
                                                                       f"bucket): {STATE_DESCRIPTION}"})
    workers = ma.fields.Integer(allow_none=True, required=True, metadata={
        "description": "RQ workers registered in Redis (informational: 0 means reminders wait; null when Redis is down)"})
    environment = ma.fields.String(required=True)


def _probe(check: Callable[[], object]) -> str:
    try:
        check()
        return "ok"
    except Exception as exc:  # noqa: BLE001 - health must report, not raise
        log.warning("health check failed: %s: %s", type(exc).__name__, exc)
        return f"down: {type(exc).__name__}"


def _database() -> None:
    with runtime().engine.connect() as conn:
        conn.execution_options(**READ_ONLY)  # SQLite: a probe neither takes nor waits for the write lock
        conn.execute(text("SELECT 1"))


def dependency_states() -> dict[str, str]:
    rt = runtime()
    return {"database": _probe(_database), "redis": _probe(rt.redis.ping),
            "storage": _probe(lambda: rt.store.check())}


@blp.route("/healthz")
class Health(MethodView):
    @blp.response(200, HealthSchema)
    @blp.alt_response(503, schema=HealthSchema, description="A dependency is down")
    @blp.doc(operationId="getHealth", summary="Each dependency's state (database, redis, storage)")
    def get(self):
        checks = dependency_states()
        workers = None
        if checks["redis"] == "ok":
            from rq import Worker

            try:
                workers = Worker.count(connection=runtime().redis)
            except Exception:  # noqa: BLE001
                workers = None
        ok = all(v == "ok" for v in checks.values())
        body = {"status": "ok" if ok else "degraded", "environment": runtime().settings.env, "workers": workers, **checks}
        return body, (200 if ok else 503)
