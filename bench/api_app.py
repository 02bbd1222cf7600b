"""The API as ``make run`` serves it (``api.wsgi:app``) plus one trivial flask-smorest operation,
``GET /bench/ping`` (a schema, no database, no Redis), that bench/api.py measures as the ceiling:
the cost of gunicorn, Flask, flask-smorest, the request observation (request id, access log line,
Prometheus histogram) and the session teardown that every operation pays. Used by bench/api.py
only; the served application is otherwise unchanged.

    gunicorn -c config/gunicorn.conf.py --pythonpath bench 'api_app:app'
"""

from __future__ import annotations

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint

from api.wsgi import app

__all__ = ["app"]

blp = Blueprint("bench", __name__, url_prefix="/bench", description="Benchmark ceiling")


class PingSchema(ma.Schema):
    ok = ma.fields.Boolean(required=True)
    service = ma.fields.String(required=True)


@blp.route("/ping")
class Ping(MethodView):
    @blp.response(200, PingSchema)
    @blp.doc(operationId="benchPing")
    def get(self):
        return {"ok": True, "service": "qianli"}


app.extensions["qianli_api"].register_blueprint(blp)
