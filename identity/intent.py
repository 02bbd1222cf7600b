"""The signing intent: a single-use, short-lived proof that the SMS (purpose ``sign``) and the
face (with liveness) factors both passed for (employee, case) within a window, bound to the
SHA-256 of the letter to be signed. Kept in Redis; no flask.

Keys: ``qianli:factor:{employee}:{case}:{sms|face}`` (JSON {at, evidence}, TTL = window) and
``qianli:intent:{id}`` (hash, TTL = intent lifetime). Consumption is one Lua script: the
binding is checked and the key deleted atomically, so an intent is spent exactly once.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from cases.errors import Forbidden, InvalidInput

__all__ = ["FACTORS", "SigningIntent", "record_factor", "issue_signing_intent", "consume_signing_intent",
           "check_signing_intent", "spend_signing_intent", "restore_signing_intent"]

FACTORS = ("sms", "face")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class SigningIntent:
    id: str
    expires_at: datetime


def _fkey(employee_id: str, case_id: str, factor: str) -> str:
    return f"qianli:factor:{employee_id}:{case_id}:{factor}"


def _ikey(intent_id: str) -> str:
    return f"qianli:intent:{intent_id}"


def record_factor(redis, employee_id: str, case_id: str, factor: str, evidence: dict[str, Any],
                  *, ttl_s: int = 3600, now: float | None = None) -> None:
    """Record that ``factor`` passed now for (employee, case); issue_signing_intent applies the window."""
    if factor not in FACTORS:
        raise ValueError(f"unknown factor {factor!r}")
    at = time.time() if now is None else now
    redis.set(_fkey(employee_id, case_id, factor), json.dumps({"at": at, "evidence": evidence}, default=str),
              ex=max(1, int(ttl_s)))


def issue_signing_intent(redis, settings, *, employee_id: str, case_id: str, letter_sha256: str,
                         now: float | None = None) -> SigningIntent:
    letter_sha256 = (letter_sha256 or "").lower()
    if not _SHA256.match(letter_sha256):
        raise InvalidInput("letter_sha256_invalid", "文件摘要格式错误")
    t = time.time() if now is None else now
    window = settings.signing_intent_window_s
    factors: dict[str, dict[str, Any]] = {}
    for f in FACTORS:
        raw = redis.get(_fkey(employee_id, case_id, f))
        if raw is not None:
            rec = json.loads(raw)
            if 0 <= t - float(rec["at"]) <= window:
                factors[f] = rec
    missing = [f for f in FACTORS if f not in factors]
    if missing:
        raise Forbidden("signing_factors_missing", "请先完成短信验证码和人脸核验", details={"missing": missing})
    intent_id = secrets.token_urlsafe(24)
    ttl = int(settings.signing_intent_ttl_s)
    evidence = {"factors": factors, "issued_at": t, "letter_sha256": letter_sha256}
    pipe = redis.pipeline(transaction=True)
    pipe.hset(_ikey(intent_id), mapping={"employee_id": employee_id, "case_id": case_id,
                                         "letter_sha256": letter_sha256,
                                         "evidence": json.dumps(evidence, default=str)})
    pipe.expire(_ikey(intent_id), ttl)
    for f in FACTORS:  # spent: the next intent needs fresh factors
        pipe.delete(_fkey(employee_id, case_id, f))
    pipe.execute()
    return SigningIntent(id=intent_id, expires_at=datetime.fromtimestamp(t + ttl, timezone.utc))


_CONSUME = """
local h = redis.call('HGETALL', KEYS[1])
if #h == 0 then return {0} end
local m = {}
for i = 1, #h, 2 do m[h[i]] = h[i + 1] end
if m['employee_id'] ~= ARGV[1] or m['case_id'] ~= ARGV[2] or m['letter_sha256'] ~= ARGV[3] then return {1} end
redis.call('DEL', KEYS[1])
return {2, m['evidence']}
"""


_CHECK = """
local h = redis.call('HGETALL', KEYS[1])
if #h == 0 then return {0} end
local m = {}
for i = 1, #h, 2 do m[h[i]] = h[i + 1] end
if m['employee_id'] ~= ARGV[1] or m['case_id'] ~= ARGV[2] or m['letter_sha256'] ~= ARGV[3] then return {1} end
return {2, m['evidence']}
"""


def _intent_result(res) -> dict[str, Any]:
    status = int(res[0])
    if status == 0:
        raise Forbidden("signing_intent_invalid", "签署授权无效或已过期，请重新核验身份")
    if status == 1:
        raise Forbidden("signing_intent_mismatch", "签署授权与本次签署不符")
    ev = res[1].decode() if isinstance(res[1], bytes) else res[1]
    return json.loads(ev)


def check_signing_intent(redis, intent_id: str, *, employee_id: str, case_id: str,
                         letter_sha256: str) -> dict[str, Any]:
    """Like :func:`consume_signing_intent` but the intent is not spent: the signing spends it with
    :func:`spend_signing_intent` once its transaction has committed, so a signing that dies half-way
    (a killed process) leaves the intent usable for the retry. Single use still holds: the case
    row is locked while signing, and a signed case cannot be signed again."""
    if not intent_id or len(intent_id) > 128:
        raise Forbidden("signing_intent_invalid", "签署授权无效或已过期，请重新核验身份")
    return _intent_result(redis.eval(_CHECK, 1, _ikey(intent_id), employee_id, case_id, (letter_sha256 or "").lower()))


def spend_signing_intent(redis, intent_id: str) -> None:
    redis.delete(_ikey(intent_id))


def consume_signing_intent(redis, intent_id: str, *, employee_id: str, case_id: str,
                           letter_sha256: str) -> dict[str, Any]:
    """Spend the intent once; returns its evidence. Unknown/expired/used -> ``signing_intent_invalid``;
    another employee, case or letter -> ``signing_intent_mismatch`` (the intent is not spent)."""
    if not intent_id or len(intent_id) > 128:
        raise Forbidden("signing_intent_invalid", "签署授权无效或已过期，请重新核验身份")
    return _intent_result(redis.eval(_CONSUME, 1, _ikey(intent_id), employee_id, case_id, (letter_sha256 or "").lower()))


def restore_signing_intent(redis, settings, intent_id: str, *, employee_id: str, case_id: str, letter_sha256: str,
                           evidence: dict[str, Any], now: float | None = None) -> bool:
    """Put a spent intent back after the signing failed, for what remains of its lifetime (``evidence``
    is what :func:`consume_signing_intent` returned). False when its lifetime is over: nothing restored."""
    t = time.time() if now is None else now
    remaining = int(float(evidence.get("issued_at") or 0) + settings.signing_intent_ttl_s - t)
    if remaining <= 0:
        return False
    pipe = redis.pipeline(transaction=True)
    pipe.hset(_ikey(intent_id), mapping={"employee_id": employee_id, "case_id": case_id,
                                         "letter_sha256": letter_sha256,
                                         "evidence": json.dumps(evidence, default=str)})
    pipe.expire(_ikey(intent_id), remaining)
    pipe.execute()
    return True
