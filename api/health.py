"""Liveness/readiness: 200 when the database and Redis answer, 503 naming what is down."""

from __future__ import annotations

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import text

from api.context import db, runtime

__all__ = ["blp"]

blp = Blueprint("health", __name__, url_prefix="/", description="Service health")


class HealthSchema(ma.Schema):
    status = ma.fields.String(required=True, metadata={"description": "ok or degraded"})
    database = ma.fields.String(required=True)
    redis = ma.fields.String(required=True)
    environment = ma.fields.String(required=True)


@blp.route("/healthz")
class Health(MethodView):
    @blp.response(200, HealthSchema)
    @blp.alt_response(503, schema=HealthSchema, description="A dependency is down")
    @blp.doc(operationId="getHealth")
    def get(self):
        checks = {}
        try:
            db().execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:  # noqa: BLE001 - health must report, not raise
            checks["database"] = f"down: {type(exc).__name__}"
        try:
            runtime().redis.ping()
            checks["redis"] = "ok"
        except Exception as exc:  # noqa: BLE001
            checks["redis"] = f"down: {type(exc).__name__}"
        ok = all(v == "ok" for v in checks.values())
        body = {"status": "ok" if ok else "degraded", "environment": runtime().settings.env, **checks}
        return body, (200 if ok else 503)
