"""The Flask application factory.

``create_app()`` wires one Runtime (settings, database, Redis) into Flask + flask-smorest,
installs the error model, the request-size limit, the content-type rule and the
transaction-per-request hooks, and registers every blueprint listed in ``api.blueprints``.
"""

from __future__ import annotations

import importlib
import logging

import redis
from flask import Flask, g, request, send_from_directory
from flask_smorest import Api, Blueprint
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from cases.errors import DomainError, InvalidInput, ServiceUnavailable, UnsupportedMediaType
from qianli.db import SQLITE_LOCK_RETRIES, is_sqlite_lock_error, sqlite_lock_backoff
from qianli.observability import configure_logging
from qianli.runtime import Runtime, get_runtime, set_runtime

from api.auth import SECURITY_SCHEMES
from api.blueprints import BLUEPRINT_MODULES, PLAIN_BLUEPRINT_MODULES
from api.context import finish_request_session
from api.observe import install_request_observation
from api.errors import ErrorSchema, domain_error_response, http_error_payload
from api.limits import check_request_limits
from api.multipart import check_multipart_parts

__all__ = ["create_app", "QianLiApi", "QianLiFlask"]

log = logging.getLogger("qianli.api")

BODY_TYPES = ("application/json", "multipart/form-data", "application/x-www-form-urlencoded")


class QianLiApi(Api):
    ERROR_SCHEMA = ErrorSchema

    def handle_http_exception(self, error: HTTPException):
        return http_error_payload(error)


class QianLiFlask(Flask):
    """Flask with a bounded retry of the view when SQLite answers ``database is locked``.

    Every request is one transaction (api.context). On SQLite, a write transaction takes the lock
    up front and waits its turn (qianli.db); a read-only (GET/HEAD) transaction does not, and if it
    writes after all while another process has written, SQLite refuses at once. The view is then
    re-run from the start as a write transaction, at most SQLITE_LOCK_RETRIES times. Pending ORM
    changes are flushed inside the retried part so that a conflict cannot surface at the commit.
    """

    def dispatch_request(self):
        from api.context import db, finish_request_session

        attempt = 0
        while True:
            try:
                rv = super().dispatch_request()
                if "db" in g and (g.db.new or g.db.dirty or g.db.deleted):
                    db().flush()
                return rv
            except OperationalError as exc:
                if not is_sqlite_lock_error(exc) or attempt >= SQLITE_LOCK_RETRIES:
                    raise
                log.warning("database is locked in %s %s; re-running the request (attempt %d of %d)",
                            request.method, request.path, attempt + 1, SQLITE_LOCK_RETRIES)
                finish_request_session(commit=False)
                g.qianli_write_transaction = True
                sqlite_lock_backoff(attempt)
                attempt += 1


def create_app(rt: Runtime | None = None) -> Flask:
    rt = rt or get_runtime()
    set_runtime(rt)
    settings = rt.settings
    configure_logging(settings.log_level, settings.log_format)
    if settings.is_production:  # fail closed: never serve as a database role that can rewrite the evidence
        from qianli.migrate import check_app_role

        check_app_role(rt.engine)

    app = QianLiFlask("qianli")
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=settings.max_request_bytes,
        MAX_FORM_MEMORY_SIZE=settings.max_request_bytes,
        API_TITLE="QianLi 签离 API",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="/docs",
        OPENAPI_SWAGGER_UI_URL="/docs-static/",
        API_SPEC_OPTIONS={
            "info": {"description": "Backend of the QianLi mini-program and HR console. "
                                    "Errors: {code, status, message, errors?, details?} with a stable string code. "
                                    "Limits: dates and date-times 1900-01-01..2100-12-31 (else 422 validation_failed); "
                                    f"JSON nesting depth {settings.max_json_depth} (400 json_too_deep); request target "
                                    f"{settings.max_url_bytes} bytes (414 uri_too_long); header field "
                                    f"{settings.max_header_bytes} bytes (431 request_header_too_large); "
                                    "unknown multipart parts are refused (422 validation_failed)."},
            "servers": [{"url": settings.public_base_url}],
            "components": {"securitySchemes": SECURITY_SCHEMES},
        },
    )
    app.extensions["qianli_runtime"] = rt
    if settings.trusted_proxies:
        # Behind N reverse proxies the socket address is the last proxy's: take the client address
        # and scheme that the proxies appended (not the host: links use QIANLI_PUBLIC_BASE_URL).
        # Only N hops are trusted; a client's own X-Forwarded-For entries beyond them are ignored.
        n = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n)  # type: ignore[method-assign]
    # Unknown query parameters are refused like unknown body fields (webargs excludes them by default).
    Blueprint.ARGUMENTS_PARSER.DEFAULT_UNKNOWN_BY_LOCATION = {
        **Blueprint.ARGUMENTS_PARSER.DEFAULT_UNKNOWN_BY_LOCATION, "query": None, "querystring": None}
    api = QianLiApi(app)
    app.extensions["qianli_api"] = api

    install_request_observation(app)  # first: its after_request runs last (after the commit)

    @app.errorhandler(DomainError)
    def _domain_error(err: DomainError):
        return domain_error_response(err)

    @app.errorhandler(OperationalError)
    @app.errorhandler(InterfaceError)
    def _database_error(err: DBAPIError):
        # The database went away (restart, failover) or stayed locked past the busy timeout and the
        # retries: the request did nothing (its transaction is rolled back); the client may retry.
        log.warning("database unavailable: %s", err.orig)
        code = "database_busy" if is_sqlite_lock_error(err) else "database_unavailable"
        return _unavailable(code, "数据库暂时不可用，请稍后重试")

    @app.errorhandler(redis.exceptions.ConnectionError)
    @app.errorhandler(redis.exceptions.TimeoutError)
    def _redis_error(err: redis.exceptions.RedisError):
        log.warning("redis unavailable: %s", err)
        return _unavailable("redis_unavailable", "服务暂时不可用，请稍后重试")

    if settings.allows_dev_backends:
        from qianli.services import devclock

        @app.before_request
        def _dev_clock():
            # Development/test only: every worker follows the deployment's clock offset (POST /api/v1/dev/clock).
            g.qianli_dev_clock_offset = devclock.apply(app.extensions["qianli_runtime"])

        @app.after_request
        def _dev_clock_header(response):
            offset = g.get("qianli_dev_clock_offset", 0)
            if offset:
                response.headers["X-QianLi-Dev-Clock-Offset"] = str(offset)
            return response

    @app.before_request
    def _request_limits():
        # First: nothing below may parse a body nested deeper than the limit (RecursionError).
        check_request_limits(request, max_url_bytes=settings.max_url_bytes, max_header_bytes=settings.max_header_bytes,
                             max_json_depth=settings.max_json_depth)

    @app.before_request
    def _content_type_rule():
        if request.method in ("POST", "PUT", "PATCH") and request.path.startswith("/api/"):
            has_body = (request.content_length or 0) > 0 or request.headers.get("Transfer-Encoding")
            if has_body and request.mimetype not in BODY_TYPES:
                raise UnsupportedMediaType("unsupported_media_type", "请求内容类型不受支持",
                                           details={"content_type": request.mimetype, "accepted": list(BODY_TYPES)})

    @app.before_request
    def _no_nul_characters():
        # U+0000 is never meaningful in our inputs and PostgreSQL text cannot hold it: refuse it up
        # front (path, query, form fields, JSON strings) instead of failing in the database.
        where = _nul_location()
        if where:
            raise InvalidInput("nul_character", "请求中含有不允许的空字符（U+0000）", details={"location": where})

    @app.before_request
    def _no_unknown_multipart_parts():
        check_multipart_parts(app, request)

    @app.after_request
    def _finish_transaction(response):
        finish_request_session(commit=response.status_code < 400)
        return response

    @app.teardown_request
    def _cleanup(_exc):
        finish_request_session(commit=False)

    import swagger_ui_bundle

    @app.route("/docs-static/<path:filename>")
    def _swagger_static(filename: str):
        return send_from_directory(swagger_ui_bundle.swagger_ui_path, filename)

    for module_name in BLUEPRINT_MODULES:
        module = importlib.import_module(module_name)
        api.register_blueprint(module.blp)
    for module_name in PLAIN_BLUEPRINT_MODULES:
        module = importlib.import_module(module_name)
        register = getattr(module, "register", None)
        register(app) if register else app.register_blueprint(module.bp)
    return app


def _unavailable(code: str, message: str):
    resp = domain_error_response(ServiceUnavailable(code, message, details={"retry_after_s": 2}))
    resp.headers["Retry-After"] = "2"
    return resp


def _has_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def _nul_location() -> str | None:
    if "\x00" in request.path:
        return "path"
    if any(_has_nul(k) or _has_nul(v) for k, v in request.args.items(multi=True)):
        return "query"
    if request.method in ("POST", "PUT", "PATCH"):
        if request.mimetype in ("multipart/form-data", "application/x-www-form-urlencoded") and any(
                _has_nul(k) or _has_nul(v) for k, v in request.form.items(multi=True)):
            return "form"
        if request.is_json and _has_nul(request.get_json(silent=True)):
            return "json"
    return None
