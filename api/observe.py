"""Per-request observation: the request id, the latency histogram and one JSON access-log line.

The request id is the incoming ``X-Request-ID`` when ``QIANLI_TRUST_REQUEST_ID`` is on and the
value is well formed, else a fresh random one; it is on every log line written while the request
runs and in the response's ``X-Request-ID`` header (errors included).
"""

from __future__ import annotations

import logging
import time

from flask import Flask, g, request

from qianli.observability import REQUEST_LATENCY, new_request_id, request_id_var, valid_request_id

__all__ = ["install_request_observation", "REQUEST_ID_HEADER", "operation_label"]

REQUEST_ID_HEADER = "X-Request-ID"
access_log = logging.getLogger("qianli.access")


def _operation_ids(app: Flask) -> dict[tuple[str, str], str]:
    """(endpoint, METHOD) -> operationId, from the views' flask-smorest documentation."""
    table: dict[tuple[str, str], str] = {}
    for rule in app.url_map.iter_rules():
        view = app.view_functions.get(rule.endpoint)
        cls = getattr(view, "view_class", None)
        for method in rule.methods or ():
            fn = getattr(cls, method.lower(), None) if cls is not None else view
            op = (getattr(fn, "_apidoc", None) or {}).get("manual_doc", {}).get("operationId")
            if op:
                table[(rule.endpoint, method)] = op
    return table


def operation_label(app: Flask) -> str:
    """The metric label of this request: its operationId, else its endpoint, else 'unmatched'."""
    table = app.extensions.get("qianli_operation_ids")
    if table is None:
        table = app.extensions["qianli_operation_ids"] = _operation_ids(app)
    endpoint = request.endpoint
    if endpoint is None:
        return "unmatched"
    return table.get((endpoint, request.method), endpoint)


def install_request_observation(app: Flask) -> None:
    trust = app.extensions["qianli_runtime"].settings.trust_request_id

    @app.before_request
    def _start():
        incoming = request.headers.get(REQUEST_ID_HEADER)
        rid = incoming if trust and valid_request_id(incoming) else new_request_id()
        g.request_id = rid
        g.request_id_token = request_id_var.set(rid)
        g.request_started = time.perf_counter()

    @app.after_request
    def _finish(response):
        rid = g.get("request_id")
        if rid is None:  # a response made before our before_request ran (e.g. another hook failed first)
            rid = g.request_id = new_request_id()
        response.headers[REQUEST_ID_HEADER] = rid
        started = g.get("request_started")
        elapsed = time.perf_counter() - started if started is not None else 0.0
        op = operation_label(app)
        REQUEST_LATENCY.labels(op, request.method, str(response.status_code)).observe(elapsed)
        access_log.info("%s %s %s", request.method, request.path, response.status_code, extra={
            "request_id": rid, "operation": op, "method": request.method, "path": request.path,
            "status": response.status_code, "duration_ms": round(elapsed * 1000, 2),
            "remote_addr": request.remote_addr, "user_agent": request.headers.get("User-Agent", "")[:200]})
        return response

    @app.teardown_request
    def _reset(_exc):
        token = g.pop("request_id_token", None)
        if token is not None:
            try:
                request_id_var.reset(token)
            except ValueError:  # set in another context (should not happen with sync views)
                request_id_var.set(None)
