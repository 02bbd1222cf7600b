"""One-time SMS codes for binding and signing, kept in Redis.

Rules (issues 3 and 13): 6 digits from ``secrets``; valid ``sms_code_ttl_s``; single use; a new
code replaces the old one for the same (phone, purpose); ``sms_max_attempts`` wrong entries kill
the code. Every send is counted in *buckets*, each purpose with a budget of its own (a flood of
bind requests cannot use up the codes an employee needs to sign):

- per phone: ``sms_per_phone_hour`` / ``sms_per_phone_day``, plus ``sms_resend_cooldown_s``
  between two codes for the same purpose;
- per client IP: ``sms_per_ip_hour`` (the IP after ``QIANLI_TRUSTED_PROXIES``);
- per WeChat openid: ``sms_per_openid_hour`` / ``sms_per_openid_day``;
- per employee: ``sms_per_employee_hour`` / ``sms_per_employee_day``.

Bind requests come from people who have not proved anything yet, so :meth:`charge_requester`
charges the *requester* (IP, openid, a cooldown per requester and phone) and only a genuine
roster match is charged to the phone and the employee, quietly (:meth:`send_quietly`), so the
answer never tells a stranger whether the details matched. Wrong bind guesses are counted per
requester (:meth:`check_failures`, :meth:`record_failure`).

Only an HMAC of (secret, phone, purpose, code) is stored, so a Redis dump does not reveal codes,
and a code is only ever compared with the code of its own purpose: a guess with the code sent
for another purpose is an ordinary wrong guess. Phones and openids appear in keys only as keyed
hashes. Issuing is one Lua script (limits and write are atomic); verifying uses WATCH/MULTI so
the candidate is compared in Python with ``hmac.compare_digest`` and two concurrent
verifications of the same code cannot both succeed. The code itself is never logged and never
returned to a caller other than the gateway.
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
    per_openid_hour: int = 5
    per_openid_day: int = 10
    per_employee_hour: int = 5
    per_employee_day: int = 10
    failures_per_openid_hour: int = 10
    failures_per_ip_hour: int = 50

    @classmethod
    def from_settings(cls, settings: Any) -> SmsCodePolicy:
        return cls(ttl_s=settings.sms_code_ttl_s, resend_cooldown_s=settings.sms_resend_cooldown_s,
                   max_attempts=settings.sms_max_attempts, per_phone_hour=settings.sms_per_phone_hour,
                   per_phone_day=settings.sms_per_phone_day, per_ip_hour=settings.sms_per_ip_hour,
                   per_openid_hour=settings.sms_per_openid_hour, per_openid_day=settings.sms_per_openid_day,
                   per_employee_hour=settings.sms_per_employee_hour, per_employee_day=settings.sms_per_employee_day,
                   failures_per_openid_hour=settings.bind_failures_per_openid_hour,
                   failures_per_ip_hour=settings.bind_failures_per_ip_hour)


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


# KEYS[1]: code hash ('' = store nothing), KEYS[2]: cooldown key ('' = none), KEYS[3..]: bucket zsets.
# ARGV: now, mac, ttl, cooldown, member, mode ('charge' or 'check'), then per bucket: window, limit, reason.
# Returns {"ok", "0"} or {reason, retry_after_seconds}; nothing is written unless every check passes.
_ISSUE_LUA = """
local now = tonumber(ARGV[1])
local cooldown = tonumber(ARGV[4])
if KEYS[2] ~= '' then
  local last = redis.call('GET', KEYS[2])
  if last and now - tonumber(last) < cooldown then
    return {'sms_resend_cooldown', tostring(cooldown - (now - tonumber(last)))}
  end
end
local n = #KEYS - 2
for i = 1, n do
  local key = KEYS[2 + i]
  local base = 7 + 3 * (i - 1)
  local window = tonumber(ARGV[base])
  local limit = tonumber(ARGV[base + 1])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - 86400)
  if redis.call('ZCOUNT', key, now - window, '+inf') >= limit then
    local oldest = redis.call('ZRANGEBYSCORE', key, now - window, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
    return {ARGV[base + 2], tostring(tonumber(oldest[2]) + window - now)}
  end
end
if ARGV[6] == 'check' then
  return {'ok', '0'}
end
for i = 1, n do
  redis.call('ZADD', KEYS[2 + i], now, ARGV[5])
  redis.call('EXPIRE', KEYS[2 + i], 86400 + 60)
end
if KEYS[1] ~= '' then
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'mac', ARGV[2], 'sent_at', ARGV[1],
             'expires_at', string.format('%.6f', now + tonumber(ARGV[3])), 'attempts', '0', 'state', 'live')
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]) + 3600)
end
if KEYS[2] ~= '' then
  redis.call('SET', KEYS[2], ARGV[1], 'EX', math.max(cooldown, 1))
end
return {'ok', '0'}
"""

_LIMIT_MESSAGES = {
    "sms_resend_cooldown": "验证码发送过于频繁，请稍后再试",
    "sms_phone_hourly_limit": "该手机号本小时验证码次数已达上限",
    "sms_phone_daily_limit": "该手机号今日验证码次数已达上限",
    "sms_ip_hourly_limit": "当前网络请求验证码过于频繁，请稍后再试",
    "sms_openid_hourly_limit": "当前微信账号本小时请求验证码次数已达上限",
    "sms_openid_daily_limit": "当前微信账号今日请求验证码次数已达上限",
    "sms_employee_hourly_limit": "本小时验证码次数已达上限，请稍后再试",
    "sms_employee_daily_limit": "今日验证码次数已达上限，请明天再试",
    "bind_attempts_exhausted": "绑定尝试次数过多，请稍后再试",
}

Bucket = tuple[str, int, int, str]  # (zset key, window seconds, limit, refusal code)


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
    def _hash_id(self, kind: str, value: str) -> str:
        return hmac.new(self._secret, kind.encode() + b"\x00" + value.encode(), hashlib.sha256).hexdigest()[:32]

    def _phone_id(self, phone: str) -> str:
        return self._hash_id("phone", phone)

    def _mac(self, phone: str, purpose: str, code: str) -> str:
        msg = "\x00".join(("code", phone, purpose, code)).encode()
        return hmac.new(self._secret, msg, hashlib.sha256).hexdigest()

    def _code_key(self, phone: str, purpose: str) -> str:
        return f"{_PREFIX}:code:{purpose}:{self._phone_id(phone)}"

    @staticmethod
    def _check_purpose(purpose: str) -> None:
        if purpose not in PURPOSES:
            raise InvalidInput("sms_purpose_invalid", "验证码用途不正确", details={"allowed": list(PURPOSES)})

    @staticmethod
    def check_format(code: Any) -> None:
        if not isinstance(code, str) or not _CODE_RE.match(code):
            raise InvalidInput("sms_code_malformed", "验证码应为 6 位数字")

    # -- buckets -------------------------------------------------------------------------
    def _phone_buckets(self, phone: str, purpose: str) -> list[Bucket]:
        key, p = f"{_PREFIX}:log:phone:{purpose}:{self._phone_id(phone)}", self.policy
        return [(key, _HOUR, p.per_phone_hour, "sms_phone_hourly_limit"),
                (key, _DAY, p.per_phone_day, "sms_phone_daily_limit")]

    def _requester_buckets(self, purpose: str, ip: str | None, openid: str | None,
                           employee_id: str | None = None) -> list[Bucket]:
        p, out = self.policy, []
        if ip:
            out.append((f"{_PREFIX}:log:ip:{purpose}:{ip}", _HOUR, p.per_ip_hour, "sms_ip_hourly_limit"))
        if openid:
            key = f"{_PREFIX}:log:openid:{purpose}:{self._hash_id('openid', openid)}"
            out += [(key, _HOUR, p.per_openid_hour, "sms_openid_hourly_limit"),
                    (key, _DAY, p.per_openid_day, "sms_openid_daily_limit")]
        if employee_id:
            key = f"{_PREFIX}:log:employee:{purpose}:{employee_id}"
            out += [(key, _HOUR, p.per_employee_hour, "sms_employee_hourly_limit"),
                    (key, _DAY, p.per_employee_day, "sms_employee_daily_limit")]
        return out

    def _failure_buckets(self, purpose: str, ip: str | None, openid: str | None) -> list[Bucket]:
        p, out = self.policy, []
        if ip:
            out.append((f"{_PREFIX}:fail:ip:{purpose}:{ip}", _HOUR, p.failures_per_ip_hour,
                        "bind_attempts_exhausted"))
        if openid:
            out.append((f"{_PREFIX}:fail:openid:{purpose}:{self._hash_id('openid', openid)}", _HOUR,
                        p.failures_per_openid_hour, "bind_attempts_exhausted"))
        return out

    def _run(self, buckets: list[Bucket], *, code_key: str = "", cooldown_key: str = "", mac: str = "",
             mode: str = "charge") -> tuple[str, int] | None:
        """Check (and in 'charge' mode count) ``buckets``; return (refusal code, retry after s) or None."""
        now = self.clock()
        p = self.policy
        keys = [code_key, cooldown_key, *(b[0] for b in buckets)]
        argv: list[Any] = [repr(now), mac, p.ttl_s, p.resend_cooldown_s, f"{now!r}:{secrets.token_hex(4)}", mode]
        for _key, window, limit, reason in buckets:
            argv += [window, limit, reason]
        reason, retry = (x.decode() if isinstance(x, bytes) else str(x) for x in self._issue(keys=keys, args=argv))
        if reason == "ok":
            return None
        return reason, max(1, math.ceil(float(retry) - 1e-6))

    @staticmethod
    def _refuse(refused: tuple[str, int], what: str) -> RateLimited:
        reason, retry_after = refused
        log.info("SMS code refused (%s): %s, retry after %ss", what, reason, retry_after)
        return RateLimited(reason, _LIMIT_MESSAGES[reason], details={"retry_after_s": retry_after})

    # -- issuing -------------------------------------------------------------------------
    def send(self, phone: str, purpose: str, *, ip: str | None = None, openid: str | None = None,
             employee_id: str | None = None) -> SmsCodeSent:
        """Generate, store and send a code; raise RateLimited with ``retry_after_s`` when over a limit.

        Counts the send for the phone (this purpose) and for every requester detail given.
        """
        phone = normalize_cn_mobile(phone)
        self._check_purpose(purpose)
        buckets = self._phone_buckets(phone, purpose) + self._requester_buckets(purpose, ip, openid, employee_id)
        sent = self._send(phone, purpose, buckets)
        if isinstance(sent, tuple):
            raise self._refuse(sent, f"{mask_phone(phone)}, {purpose}")
        return sent

    def send_quietly(self, phone: str, purpose: str, *, employee_id: str | None = None) -> SmsCodeSent | None:
        """Send unless the phone's or the employee's budget (or the phone's cooldown) says no: then None.

        For answers that must not depend on whether a code really went out (binding).
        Gateway errors still raise.
        """
        phone = normalize_cn_mobile(phone)
        self._check_purpose(purpose)
        sent = self._send(phone, purpose, self._phone_buckets(phone, purpose)
                          + self._requester_buckets(purpose, None, None, employee_id))
        if isinstance(sent, tuple):
            log.info("SMS code not sent to %s (%s): %s", mask_phone(phone), purpose, sent[0])
            return None
        return sent

    def _send(self, phone: str, purpose: str, buckets: list[Bucket]) -> SmsCodeSent | tuple[str, int]:
        code = f"{secrets.randbelow(10**6):06d}"
        p = self.policy
        code_key = self._code_key(phone, purpose)
        cooldown_key = f"{_PREFIX}:last:{purpose}:{self._phone_id(phone)}"
        refused = self._run(buckets, code_key=code_key, cooldown_key=cooldown_key,
                            mac=self._mac(phone, purpose, code))
        if refused:
            return refused
        try:
            minutes = str(max(1, p.ttl_s // 60))
            result = self.gateway.send(phone, "code", {"code": code, "minutes": minutes})
        except Exception:
            # Nothing usable was delivered: drop the code and the cooldown so the person can
            # retry at once; the counters stay, so a failing gateway cannot be used to bypass them.
            self.redis.delete(code_key, cooldown_key)
            raise
        log.info("SMS code sent to %s for %s via %s (%s)", mask_phone(phone), purpose, result.provider,
                 result.message_id)
        return SmsCodeSent(phone_masked=mask_phone(phone), purpose=purpose, expires_in_s=p.ttl_s,
                           resend_after_s=p.resend_cooldown_s, provider=result.provider,
                           message_id=result.message_id)

    def charge_requester(self, phone: str, purpose: str, *, ip: str | None, openid: str | None) -> None:
        """Count a request against the requester (IP, openid, a cooldown per requester and phone).

        Raises RateLimited; whether the details match the roster plays no part, so the answer is
        the same for every phone and no stranger can spend a victim's phone budget.
        """
        phone = normalize_cn_mobile(phone)
        self._check_purpose(purpose)
        who = openid or ip or "-"
        cooldown_key = f"{_PREFIX}:last:{purpose}:req:{self._hash_id('requester', who + chr(0) + phone)}"
        refused = self._run(self._requester_buckets(purpose, ip, openid), cooldown_key=cooldown_key)
        if refused:
            raise self._refuse(refused, f"requester, {purpose}")

    # -- wrong guesses per requester -----------------------------------------------------
    def check_failures(self, purpose: str, *, ip: str | None, openid: str | None) -> None:
        """Raise RateLimited ``bind_attempts_exhausted`` when the requester has guessed wrong too often."""
        refused = self._run(self._failure_buckets(purpose, ip, openid), mode="check")
        if refused:
            raise self._refuse(refused, f"failures, {purpose}")

    def record_failure(self, purpose: str, *, ip: str | None, openid: str | None) -> None:
        now = self.clock()
        member = f"{now!r}:{secrets.token_hex(4)}"
        with self.redis.pipeline() as pipe:
            for key, _window, _limit, _reason in self._failure_buckets(purpose, ip, openid):
                pipe.zadd(key, {member: now})
                pipe.expire(key, _DAY + 60)
            pipe.execute()

    # -- verifying -----------------------------------------------------------------------
    def verify(self, phone: str, purpose: str, code: str) -> SmsCodeVerified:
        """Spend the code or raise InvalidInput/RateLimited with a stable code; never both succeed twice."""
        phone = normalize_cn_mobile(phone)
        self._check_purpose(purpose)
        self.check_format(code)
        return self._verify_key(self._code_key(phone, purpose), phone, purpose, code)

    def verify_decoy(self, phone: str, purpose: str, code: str) -> None:
        """The same Redis work as :meth:`verify` against a key that never exists; always raises.

        Used when the details did not match, so that the answer takes the same path.
        """
        phone = normalize_cn_mobile(phone)
        self._check_purpose(purpose)
        self.check_format(code)
        self._verify_key(f"{_PREFIX}:decoy:{purpose}:{self._phone_id(phone)}", phone, purpose, code)
        raise InvalidInput("sms_code_not_found", "请先获取验证码")  # not reached: the key never exists

    def _verify_key(self, key: str, phone: str, purpose: str, code: str) -> SmsCodeVerified:
        candidate = self._mac(phone, purpose, code)
        while True:
            with self.redis.pipeline() as pipe:
                try:
                    pipe.watch(key)
                    return self._verify_watched(pipe, key, phone, purpose, candidate)
                except redis_lib.WatchError:
                    continue  # someone else touched the code between read and write: re-read

    def _verify_watched(self, pipe: Any, key: str, phone: str, purpose: str, candidate: str) -> SmsCodeVerified:
        raw = pipe.hgetall(key)
        now = self.clock()
        if not raw:
            pipe.unwatch()
            # Only the code of this purpose is ever compared: a code sent for another purpose
            # is an ordinary wrong guess (issue 13), never a distinguishable answer.
            raise InvalidInput("sms_code_not_found", "请先获取验证码")
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


def sms_code_secret(settings: Any) -> bytes:
    """A key of its own for code MACs, derived from the application secret (domain-separated)."""
    return hmac.new(settings.secret_key.encode(), b"qianli/sms-code-mac/v1", hashlib.sha256).digest()


def sms_code_service_from_settings(settings: Any, redis: Any, gateway: SmsGateway | None = None) -> SmsCodeService:
    """The service wired from settings; ``gateway`` defaults to ``sms_gateway_from_settings``."""
    from identity.sms import sms_gateway_from_settings

    return SmsCodeService(redis, gateway or sms_gateway_from_settings(settings, redis), sms_code_secret(settings),
                          SmsCodePolicy.from_settings(settings))
