"""Development-only endpoints, outside the API contract. In production they do not exist at all.

``GET/POST /api/v1/dev/clock`` shows or moves the deployment's clock forward (development and test
deployments only, loopback clients only): ``{"advance_days": N}`` adds N days to the current offset,
``{"offset_seconds": S}`` sets it; demos use it to let a deadline pass. Every worker of the deployment
picks it up from Redis at its next request or job (``qianli.services.devclock``).

``GET /api/v1/dev/outbox`` shows the SMS outbox (with codes) so the mini-program can be tried
without a phone. It is registered only when ``QIANLI_ENV`` is not ``production`` *and* the SMS
backend is the development outbox, and it answers loopback clients only (403 ``dev_backend_loopback_only``).
"""

from __future__ import annotations

import logging
import math

from flask import Blueprint, Flask, jsonify, request

from cases.errors import InvalidInput, NotFound
from identity.sms import DevOutboxSmsGateway, normalize_cn_mobile

from api.context import require_loopback_client, runtime

__all__ = ["bp", "register"]

log = logging.getLogger(__name__)

bp = Blueprint("dev", __name__, url_prefix="/api/v1/dev")
clock_bp = Blueprint("dev_clock", __name__, url_prefix="/api/v1/dev")


def _clock_state(seconds: int):
    from cases.clock import beijing_text, utcnow

    return jsonify({"development_only": True, "offset_seconds": seconds, "offset_days": round(seconds / 86400, 4),
                    "now_utc": utcnow().isoformat(), "now_beijing": beijing_text(utcnow())})


@clock_bp.get("/clock")
def get_clock():
    from qianli.services import devclock

    require_loopback_client("dev_clock")
    return _clock_state(devclock.apply(runtime()))


@clock_bp.post("/clock")
def set_clock():
    from qianli.services import devclock

    require_loopback_client("dev_clock")
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or set(body) - {"advance_days", "offset_seconds"} or len(body) != 1:
        raise InvalidInput("dev_clock_body_invalid", 'send exactly one of {"advance_days": N} or {"offset_seconds": S}')
    (key, value), = body.items()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or abs(value) > 1e12:
        raise InvalidInput("dev_clock_body_invalid", f"{key} must be a number")
    rt = runtime()
    base = devclock.offset_seconds(rt) if key == "advance_days" else 0
    seconds = base + int(round(float(value) * (86400 if key == "advance_days" else 1)))
    return _clock_state(devclock.set_offset_seconds(rt, seconds))


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
    if settings.allows_dev_backends:
        app.register_blueprint(clock_bp)
    if settings.env == "production" or settings.sms_backend != "dev":
        return
    log.warning("DEVELOPMENT endpoint /api/v1/dev/outbox is enabled (shows SMS codes). Never in production.")
    app.register_blueprint(bp)
