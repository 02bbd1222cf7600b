"""The development clock offset: lets a demo driving a running service make a deadline pass.

A development or test deployment may move its clock forward (never back past zero) with
``POST /api/v1/dev/clock``. The offset lives in Redis so that every gunicorn worker, RQ worker and the
scheduler of that deployment sees the same time: each request, job and sweep round first calls
:func:`apply`. In production none of this runs: :func:`set_offset_seconds` refuses and :func:`apply`
leaves the clock alone, whatever Redis holds.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import redis

from cases import clock
from cases.errors import Conflict, InvalidInput
from qianli.runtime import Runtime

__all__ = ["REDIS_KEY", "MAX_OFFSET_S", "apply", "set_offset_seconds", "offset_seconds"]

log = logging.getLogger(__name__)

REDIS_KEY = "qianli:dev:clock_offset_s"
MAX_OFFSET_S = 5 * 366 * 86400  # five years: far enough for any statutory deadline


def _allowed(rt: Runtime) -> bool:
    return rt.settings.allows_dev_backends


def offset_seconds(rt: Runtime) -> int:
    """The offset stored for this deployment (0 in production or when none is set)."""
    if not _allowed(rt):
        return 0
    raw = rt.redis.get(REDIS_KEY)
    try:
        value = int(raw) if raw is not None else 0
    except ValueError:
        return 0
    return value if 0 <= value <= MAX_OFFSET_S else 0


def apply(rt: Runtime) -> int:
    """Set this process's clock offset from Redis; returns the offset in seconds (always 0 in production)."""
    if not _allowed(rt):
        return 0
    try:
        seconds = offset_seconds(rt)
    except redis.exceptions.RedisError:  # Redis down: keep the offset this process last saw
        return int(clock.current_offset().total_seconds())
    clock.set_offset(timedelta(seconds=seconds))
    return seconds


def set_offset_seconds(rt: Runtime, seconds: int) -> int:
    """Store a new offset for the whole deployment and apply it in this process."""
    if not _allowed(rt):
        raise Conflict("dev_clock_refused", "生产环境不允许调整时钟")
    if not 0 <= seconds <= MAX_OFFSET_S:
        raise InvalidInput("dev_clock_offset_invalid", f"offset must be between 0 and {MAX_OFFSET_S} seconds",
                           details={"offset_seconds": seconds})
    rt.redis.set(REDIS_KEY, str(seconds))
    clock.set_offset(timedelta(seconds=seconds))
    log.warning("DEVELOPMENT clock offset set to %s s (%.2f days): every worker of this deployment now runs late",
                seconds, seconds / 86400)
    return seconds
