"""One-time SMS codes for binding and signing, kept in Redis.

Rules (issue 3): 6 digits from ``secrets``; valid ``sms_code_ttl_s``; single use; a new code
replaces the old one for the same (phone, purpose); ``sms_resend_cooldown_s`` between two codes
to a phone for the same purpose (a person who has just bound their account can get the signing
code at once; the per-phone hourly and daily limits count every purpose); ``sms_max_attempts`` wrong entries kill the code; per phone at most
``sms_per_phone_hour``/``sms_per_phone_day`` codes, per client IP ``sms_per_ip_hour``.

Only an HMAC of (secret, phone, purpose, code) is stored, so a Redis dump does not reveal codes,
and a code sent for ``bind`` cannot be replayed for ``sign``. Phones appear in keys only as
keyed hashes. Issuing is one Lua script (limits and write are atomic); verifying uses
WATCH/MULTI so the candidate is compared in Python with ``hmac.compare_digest`` and two
concurrent verifications of the same code cannot both succeed. The code itself is never logged
and never returned to a caller other than the gateway.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis as redis_lib

from cases.errors import InvalidInput, RateLimited
from identity.sms import SmsGateway, mask_phone, normalize_cn_mobile

__all__ = [
    "PURPOSES",
    "SmsCodePolicy",
    "SmsCodeSent",
    "SmsCodeVerified",
    "SmsCodeService",
    "sms_code_secret",
    "sms_code_service_from_settings",
]

log = logging.getLogger(__name__)

PURPOSES = ("bind", "sign")
_PREFIX = "qianli:sms"
_CODE_RE = re.compile(r"^\d{6}$")
_HOUR, _DAY = 3600, 86400


@dataclass(frozen=True)
class SmsCodePolicy:
    """The limits; tests shrink them, production takes them from settings."""

    ttl_s: int = 300
    resend_cooldown_s: int = 60
    max_attempts: int = 5
    per_phone_hour: int = 5
    per_phone_day: int = 10
    per_ip_hour: int = 20

    @classmethod
    def from_settings(cls, settings: Any) -> SmsCodePolicy:
        return cls(ttl_s=settings.sms_code_ttl_s, resend_cooldown_s=settings.sms_resend_cooldown_s,
                   max_attempts=settings.sms_max_attempts, per_phone_hour=settings.sms_per_phone_hour,
                   per_phone_day=settings.sms_per_phone_day, per_ip_hour=settings.sms_per_ip_hour)


@dataclass(frozen=True)
class SmsCodeSent:
    """A code went out. Safe to log and to put in the evidence chain (no code, masked phone)."""

    phone_masked: str
    purpose: str
    expires_in_s: int
    resend_after_s: int
    provider: str
    message_id: str


@dataclass(frozen=True)
class SmsCodeVerified:
    """A code was accepted (and is now spent). Safe for the evidence chain."""

    phone_masked: str
    purpose: str
    verified_at: float
    sent_at: float


# KEYS: code, last-sent, phone log (zset), ip log (zset or ""), ARGV: see _issue().
# Returns {"ok"} or {reason, retry_after_seconds}.
_ISSUE_LUA = """
local now = tonumber(ARGV[1])
local mac = ARGV[2]
local ttl = tonumber(ARGV[3])
local cooldown = tonumber(ARGV[4])
local per_hour = tonumber(ARGV[5])
local per_day = tonumber(ARGV[6])
local per_ip_hour = tonumber(ARGV[7])
local member = ARGV[8]
local last = redis.call('GET', KEYS[2])
if last and now - tonumber(last) < cooldown then
  return {'sms_resend_cooldown', tostring(cooldown - (now - tonumber(last)))}
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - 86400)
local day = redis.call('ZRANGE', KEYS[3], 0, -1, 'WITHSCORES')
if #day / 2 >= per_day then
  return {'sms_phone_daily_limit', tostring(tonumber(day[2]) + 86400 - now)}
end
local in_hour = redis.call('ZRANGEBYSCORE', KEYS[3], now - 3600, '+inf', 'WITHSCORES')
if #in_hour / 2 >= per_hour then
  return {'sms_phone_hourly_limit', tostring(tonumber(in_hour[2]) + 3600 - now)}
end
if KEYS[4] ~= '' then
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now - 3600)
  local ip = redis.call('ZRANGE', KEYS[4], 0, -1, 'WITHSCORES')
  if #ip / 2 >= per_ip_hour then
    return {'sms_ip_hourly_limit', tostring(tonumber(ip[2]) + 3600 - now)}
  end
  redis.call('ZADD', KEYS[4], now, member)
  redis.call('EXPIRE', KEYS[4], 3600 + 60)
end
if ARGV[9] == '1' then
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'mac', mac, 'sent_at', ARGV[1], 'expires_at', string.format('%.6f', now + ttl),
           'attempts', '0', 'state', 'live')
redis.call('EXPIRE', KEYS[1], ttl + 3600)
end
redis.call('SET', KEYS[2], ARGV[1], 'EX', math.max(cooldown, 1))
redis.call('ZADD', KEYS[3], now, member)
redis.call('EXPIRE', KEYS[3], 86400 + 60)
return {'ok', '0'}
"""

_LIMIT_MESSAGES = {
    "sms_resend_cooldown": "验证码发送过于频繁，请稍后再试",
    "sms_phone_hourly_limit": "该手机号本小时验证码次数已达上限",
    "sms_phone_daily_limit": "该手机号今日验证码次数已达上限",
    "sms_ip_hourly_limit": "当前网络请求验证码过于频繁，请稍后再试",
}


class SmsCodeService:
    """Issues and verifies codes. ``clock`` is injectable so limit windows are testable."""

    def __init__(self, redis: Any, gateway: SmsGateway, secret: bytes, policy: SmsCodePolicy | None = None,
                 *, clock: Callable[[], float] = time.time):
        if len(secret) < 16:
            raise ValueError("SMS code HMAC secret must be at least 16 bytes")
        self.redis = redis
        self.gateway = gateway
        self._secret = secret
        self.policy = policy or SmsCodePolicy()
        self.clock = clock
        self._issue = redis.register_script(_ISSUE_LUA)

    # -- keys and MACs -------------------------------------------------------------------
    def _phone_id(self, phone: str) -> str:
        return hmac.new(self._secret, b"phone\x00" + phone.encode(), hashlib.sha256).hexdigest()[:32]

    def _mac(self, phone: str, purpose: str, code: str) -> str:
        msg = "\x00".join(("code", phone, purpose, code)).encode()
        return hmac.new(self._secret, msg, hashlib.sha256).hexdigest()

    def _code_key(self, phone: str, purpose: str) -> str:
        return f"{_PREFIX}:code:{purpose}:{self._phone_id(phone)}"

    @staticmethod
    def _check_purpose(purpose: str) -> None:
        if purpose not in PURPOSES:
            raise InvalidInput("sms_purpose_invalid", "验证码用途不正确", details={"allowed": list(PURPOSES)})

    # -- issuing -------------------------------------------------------------------------
    def _take_quota(self, phone: str, purpose: str, ip: str | None, mac: str | None) -> list[str]:
        """Run the issue script: check limits, count the send, store ``mac`` (unless None). Returns keys."""
        now = self.clock()
        p = self.policy
        pid = self._phone_id(phone)
        keys = [self._code_key(phone, purpose), f"{_PREFIX}:last:{purpose}:{pid}", f"{_PREFIX}:log:phone:{pid}",
                f"{_PREFIX}:log:ip:{ip}" if ip else ""]
        argv = [repr(now), mac or "", p.ttl_s, p.resend_cooldown_s, p.per_phone_hour, p.per_phone_day,
                p.per_ip_hour, f"{now!r}:{secrets.token_hex(4)}", "1" if mac else "0"]
        reason, retry = (x.decode() if isinstance(x, bytes) else str(x) for x in self._issue(keys=keys, args=argv))
        if reason != "ok":
            retry_after = max(1, math.ceil(float(retry) - 1e-6))
            log.info("SMS code refused for %s (%s): %s, retry after %ss", mask_phone(phone), purpose, reason,
                     retry_after)
            raise RateLimited(reason, _LIMIT_MESSAGES[reason], details={"retry_after_s": retry_after})
        return keys

    def consume_quota(self, phone: str, purpose: str, *, ip: str | None = None) -> None:
        """Count a send that is deliberately not made (e.g. details not on the roster) like a real one.

        Callers that answer uniformly use this so neither the answer nor the limits reveal
        whether a code was really sent.
        """
        phone = normalize_cn_mobile(phone)
        self._check_purpose(purpose)
        self._take_quota(phone, purpose, ip, None)

    def send(self, phone: str, purpose: str, *, ip: str | None = None) -> SmsCodeSent:
        """Generate, store and send a code; raise RateLimited with ``retry_after_s`` when over a limit."""
        phone = normalize_cn_mobile(phone)
        self._check_purpose(purpose)
        code = f"{secrets.randbelow(10**6):06d}"
        p = self.policy
        keys = self._take_quota(phone, purpose, ip, self._mac(phone, purpose, code))
        try:
            minutes = str(max(1, p.ttl_s // 60))
            result = self.gateway.send(phone, "code", {"code": code, "minutes": minutes})
        except Exception:
            # Nothing usable was delivered: drop the code and the cooldown so the person can
            # retry at once; the counters stay, so a failing gateway cannot be used to bypass them.
            self.redis.delete(keys[0], keys[1])
            raise
        log.info("SMS code sent to %s for %s via %s (%s)", mask_phone(phone), purpose, result.provider,
                 result.message_id)
        return SmsCodeSent(phone_masked=mask_phone(phone), purpose=purpose, expires_in_s=p.ttl_s,
                           resend_after_s=p.resend_cooldown_s, provider=result.provider,
                           message_id=result.message_id)

    # -- verifying -----------------------------------------------------------------------
    def verify(self, phone: str, purpose: str, code: str) -> SmsCodeVerified:
        """Spend the code or raise InvalidInput/RateLimited with a stable code; never both succeed twice."""
        phone = normalize_cn_mobile(phone)
        self._check_purpose(purpose)
        if not isinstance(code, str) or not _CODE_RE.match(code):
            raise InvalidInput("sms_code_malformed", "验证码应为 6 位数字")
        key = self._code_key(phone, purpose)
        candidate = self._mac(phone, purpose, code)
        while True:
            with self.redis.pipeline() as pipe:
                try:
                    pipe.watch(key)
                    outcome = self._verify_watched(pipe, key, phone, purpose, code, candidate)
                    return outcome
                except redis_lib.WatchError:
                    continue  # someone else touched the code between read and write: re-read

    def _verify_watched(self, pipe: Any, key: str, phone: str, purpose: str, code: str,
                        candidate: str) -> SmsCodeVerified:
        raw = pipe.hgetall(key)
        now = self.clock()
        if not raw:
            pipe.unwatch()
            self._raise_missing(phone, purpose, code)
        rec = {k.decode(): v.decode() for k, v in raw.items()}
        state = rec["state"]
        if state == "used":
            pipe.unwatch()
            raise InvalidInput("sms_code_used", "验证码已使用，请重新获取")
        if state == "dead":
            pipe.unwatch()
            raise RateLimited("sms_code_attempts_exhausted", "验证码错误次数过多，请重新获取",
                              details={"retry_after_s": 0})
        if now >= float(rec["expires_at"]):
            pipe.unwatch()
            raise InvalidInput("sms_code_expired", "验证码已过期，请重新获取")
        if hmac.compare_digest(rec["mac"].encode(), candidate.encode()):
            pipe.multi()
            pipe.hset(key, "state", "used")
            pipe.execute()
            log.info("SMS code verified for %s (%s)", mask_phone(phone), purpose)
            return SmsCodeVerified(phone_masked=mask_phone(phone), purpose=purpose, verified_at=now,
                                   sent_at=float(rec["sent_at"]))
        attempts = int(rec["attempts"]) + 1
        left = self.policy.max_attempts - attempts
        pipe.multi()
        pipe.hset(key, mapping={"attempts": str(attempts), **({"state": "dead"} if left <= 0 else {})})
        pipe.execute()
        log.info("Wrong SMS code for %s (%s), %d tries left", mask_phone(phone), purpose, max(left, 0))
        if left <= 0:
            raise RateLimited("sms_code_attempts_exhausted", "验证码错误次数过多，请重新获取",
                              details={"retry_after_s": 0})
        raise InvalidInput("sms_code_invalid", "验证码不正确", details={"attempts_left": left})

    def _raise_missing(self, phone: str, purpose: str, code: str) -> None:
        """No code for this purpose: say so precisely if the code was issued for another purpose."""
        for other in PURPOSES:
            if other == purpose:
                continue
            mac = self.redis.hget(self._code_key(phone, other), "mac")
            if mac is not None and hmac.compare_digest(mac, self._mac(phone, other, code).encode()):
                raise InvalidInput("sms_code_wrong_purpose", "验证码用途不符，请重新获取")
        raise InvalidInput("sms_code_not_found", "请先获取验证码")


def sms_code_secret(settings: Any) -> bytes:
    """A key of its own for code MACs, derived from the application secret (domain-separated)."""
    return hmac.new(settings.secret_key.encode(), b"qianli/sms-code-mac/v1", hashlib.sha256).digest()


def sms_code_service_from_settings(settings: Any, redis: Any, gateway: SmsGateway | None = None) -> SmsCodeService:
    """The service wired from settings; ``gateway`` defaults to ``sms_gateway_from_settings``."""
    from identity.sms import sms_gateway_from_settings

    return SmsCodeService(redis, gateway or sms_gateway_from_settings(settings, redis), sms_code_secret(settings),
                          SmsCodePolicy.from_settings(settings))
