"""Development-only endpoints, outside the API contract. In production they do not exist at all.

``GET /api/v1/dev/outbox`` shows the SMS outbox (with codes) so the mini-program can be tried
without a phone. It is registered only when ``QIANLI_ENV`` is not ``production`` *and* the SMS
backend is the development outbox, and it answers loopback clients only (403 ``dev_backend_loopback_only``).
"""

from __future__ import annotations

import logging

from flask import Blueprint, Flask, jsonify, request

from cases.errors import InvalidInput, NotFound
from identity.sms import DevOutboxSmsGateway, normalize_cn_mobile

from api.context import require_loopback_client, runtime

__all__ = ["bp", "register"]

log = logging.getLogger(__name__)

bp = Blueprint("dev", __name__, url_prefix="/api/v1/dev")


@bp.get("/outbox")
def outbox():
    require_loopback_client("sms_outbox")
    gateway = runtime().sms_gateway
    if not isinstance(gateway, DevOutboxSmsGateway):  # register() makes this unreachable; belt and braces
        raise NotFound("not_found", "not found")
    phone = request.args.get("phone")
    try:
        limit = int(request.args.get("limit", "20"))
    except ValueError:
        raise InvalidInput("limit_invalid", "limit must be an integer") from None
    if not 1 <= limit <= 200:
        raise InvalidInput("limit_invalid", "limit must be between 1 and 200")
    messages = gateway.messages(phone=normalize_cn_mobile(phone) if phone else None, limit=limit)
    return jsonify({"development_only": True, "messages": [m.as_dict() for m in messages]})


def register(app: Flask) -> None:
    settings = app.extensions["qianli_runtime"].settings
    if settings.env == "production" or settings.sms_backend != "dev":
        return
    log.warning("DEVELOPMENT endpoint /api/v1/dev/outbox is enabled (shows SMS codes). Never in production.")
    app.register_blueprint(bp)
