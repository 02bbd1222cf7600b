"""Operator endpoints outside the mini-program contract: ``/metrics`` and the RQ dashboard.

``/metrics`` (Prometheus text format): with ``QIANLI_METRICS_TOKEN`` set, callers must send
``Authorization: Bearer <token>``; without it, only direct loopback clients may read it (a request
that carries X-Forwarded-For or Forwarded came through a proxy and is refused).

``/hr/rq/`` is rq-dashboard (queues, workers, jobs) for the HR manager logged in to the HR console
(cookie ``qianli_hr``); other roles get 403, no login goes to the login page. It is read-mostly:
requeueing a failed job is allowed (deliveries are idempotent), deleting jobs or emptying and
compacting queues is refused, and any POST must come from the console's own origin.
"""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from flask import Blueprint, Flask, Response, redirect, request, url_for
from prometheus_client import CONTENT_TYPE_LATEST

from cases.errors import Forbidden, Unauthorized
from qianli.observability import render_metrics
from qianli.services.auth import decode_access_token, resolve_principal
from qianli.services.review import get_reviewer

from api.auth import HR_COOKIE
from api.context import db, runtime

__all__ = ["register", "DASHBOARD_PREFIX"]

DASHBOARD_PREFIX = "/hr/rq"
PROMETHEUS_CONTENT_TYPE = CONTENT_TYPE_LATEST
LOOPBACK = ("127.0.0.1", "::1", "::ffff:127.0.0.1")
_REFUSED_DASHBOARD_POSTS = ("/delete", "/empty", "/compact")

bp = Blueprint("ops", __name__)


@bp.get("/metrics")
def metrics():
    token = runtime().settings.metrics_token
    if token:
        header = request.headers.get("Authorization", "")
        given = header[7:].strip() if header.lower().startswith("bearer ") else ""
        if not given or not hmac.compare_digest(given.encode(), token.encode()):
            raise Unauthorized("metrics_token_required", "/metrics needs Authorization: Bearer <QIANLI_METRICS_TOKEN>")
    elif request.remote_addr not in LOOPBACK or request.headers.get("X-Forwarded-For") \
            or request.headers.get("Forwarded"):
        raise Forbidden("metrics_loopback_only", "/metrics answers loopback clients only (or set QIANLI_METRICS_TOKEN)")
    return Response(render_metrics(runtime().redis, runtime().settings.prometheus_multiproc_dir), 200, content_type=PROMETHEUS_CONTENT_TYPE,
                    headers={"Cache-Control": "no-store"})


def _dashboard_guard():
    """Runs before every rq-dashboard view: the HR manager's console session, same-origin POSTs."""
    if request.blueprint != "rq_dashboard":
        return None
    token = request.cookies.get(HR_COOKIE)
    principal = None
    if token:
        try:
            principal = resolve_principal(db(), decode_access_token(runtime().settings, token))  # a live session
        except Unauthorized:
            principal = None
    if principal is None or principal.kind != "hr":
        return redirect(url_for("hr_console.login", next=DASHBOARD_PREFIX + "/"), code=303)
    reviewer = get_reviewer(db(), principal.subject_id, principal.company_id)  # 403 when deactivated
    if reviewer.role != "hr_manager":
        raise Forbidden("role_forbidden", "the job dashboard is for the HR manager", details={"role": reviewer.role})
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        origin = request.headers.get("Origin") or request.headers.get("Referer") or ""
        if urlsplit(origin).netloc != request.host:
            raise Forbidden("csrf_failed", "cross-origin request refused")
        if any(request.path.endswith(suffix) or f"{suffix}/" in request.path for suffix in _REFUSED_DASHBOARD_POSTS):
            raise Forbidden("dashboard_read_only", "deleting jobs or emptying queues is not allowed: reminder jobs "
                                                   "are evidence; requeue failed jobs instead")
    return None


def register(app: Flask) -> None:
    app.register_blueprint(bp)
    from rq_dashboard.web import blueprint as dashboard, setup_rq_connection

    app.config.setdefault("RQ_DASHBOARD_REDIS_URL", runtime_redis_url(app))
    app.config.setdefault("RQ_DASHBOARD_DISABLE_DELETE", True)
    setup_rq_connection(app)
    app.before_request(_dashboard_guard)
    app.register_blueprint(dashboard, url_prefix=DASHBOARD_PREFIX)


def runtime_redis_url(app: Flask) -> str:
    return app.extensions["qianli_runtime"].settings.redis_url
