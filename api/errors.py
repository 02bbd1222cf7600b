"""The one error model: ``{code, status, message, errors?, details?}``.

``code`` is our stable machine code (snake_case string, e.g. ``case_invalid_transition``);
``status`` is the HTTP status number; ``message`` is for people (zh-CN where employees read it);
``errors`` carries field-level validation errors; ``details`` carries data about the error.
This is flask-smorest's error shape with ``code`` promoted to a stable application code.
Domain errors are mapped to HTTP statuses here and only here.
"""

from __future__ import annotations

import logging

import marshmallow as ma
from flask import jsonify
from werkzeug.exceptions import HTTPException

from cases import errors as de

__all__ = ["ErrorSchema", "STATUS_BY_ERROR", "HTTP_CODES", "domain_error_response", "http_error_payload"]

log = logging.getLogger("qianli.api")


class ErrorSchema(ma.Schema):
    code = ma.fields.String(required=True, metadata={"description": "Stable machine code, e.g. case_invalid_transition"})
    status = ma.fields.Integer(required=True, metadata={"description": "HTTP status"})
    message = ma.fields.String(required=True, metadata={"description": "Human-readable message (zh-CN for employees)"})
    errors = ma.fields.Dict(metadata={"description": "Field errors, by location then field"})
    details = ma.fields.Dict(metadata={"description": "Data about the error"})


STATUS_BY_ERROR: list[tuple[type[de.DomainError], int]] = [
    (de.InvalidTransition, 409),
    (de.Conflict, 409),
    (de.InvalidInput, 422),
    (de.NotFound, 404),
    (de.Forbidden, 403),
    (de.Unauthorized, 401),
    (de.RateLimited, 429),
    (de.Locked, 423),
    (de.PayloadTooLarge, 413),
    (de.UnsupportedMediaType, 415),
    (de.ServiceUnavailable, 503),
    (de.MalformedRequest, 400),
    (de.UriTooLong, 414),
    (de.HeaderTooLarge, 431),
]

# Codes for errors raised by the HTTP machinery itself (routing, webargs, werkzeug).
HTTP_CODES = {
    400: ("bad_request", "请求格式错误"),
    401: ("unauthorized", "请先登录"),
    403: ("forbidden", "没有权限"),
    404: ("not_found", "资源不存在"),
    405: ("method_not_allowed", "不支持该请求方法"),
    409: ("conflict", "请求与当前状态冲突"),
    413: ("payload_too_large", "请求内容过大"),
    414: ("uri_too_long", "请求地址（含查询参数）过长"),
    415: ("unsupported_media_type", "不支持的内容类型"),
    417: ("expectation_failed", "不支持该 Expect 请求头"),
    422: ("validation_failed", "请求参数无效"),
    429: ("rate_limited", "请求过于频繁"),
    431: ("request_header_too_large", "请求头过大"),
    500: ("internal_error", "服务器内部错误"),
    501: ("not_implemented", "不支持该请求"),
    503: ("service_unavailable", "服务暂不可用"),
}


def domain_error_response(err: de.DomainError):
    status = next((s for cls, s in STATUS_BY_ERROR if isinstance(err, cls)), 400)
    body = {"code": err.code, "status": status, "message": err.message}
    if err.errors:
        body["errors"] = err.errors
    if err.details:
        body["details"] = err.details
    headers = {}
    if status == 429 and "retry_after_s" in err.details:
        headers["Retry-After"] = str(int(err.details["retry_after_s"]))
    resp = jsonify(body)
    resp.status_code = status
    resp.headers.update(headers)
    return resp


def http_error_payload(error: HTTPException) -> tuple[dict, int, dict]:
    status = error.code or 500
    code, message = HTTP_CODES.get(status, (f"http_{status}", error.name))
    payload: dict = {"code": code, "status": status, "message": message}
    headers: dict = {}
    data = getattr(error, "data", None) or {}
    if "message" in data:
        payload["message"] = data["message"]
    errors = data.get("errors") or data.get("messages")
    if errors:
        payload["errors"] = errors
    if status == 400 and errors and "json" in errors and any("Invalid JSON" in str(m) for m in errors.get("json", [])):
        payload["code"], payload["message"] = "malformed_json", "JSON 格式错误"
    if "headers" in data:
        headers = data["headers"]
    if status >= 500:
        log.error("server error %s", status, exc_info=error)
    return payload, status, headers
