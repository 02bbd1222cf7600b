"""A small typed client for the WeChat mini-program server API, and a development stand-in.

Why our own: wechatpy's last release is from 2021 and we need three calls. What matters here:

* ``session_key`` from ``jscode2session`` never leaves this module (it could decrypt the user's
  data and forge nothing for us; we simply do not need it).
* Access tokens come from ``/cgi-bin/stable_token``, are cached in Redis with a safety margin and
  refreshed centrally under a Redis lock, so N API processes and RQ workers do not stampede the
  endpoint (which is quota-limited) or invalidate each other's tokens.
* Errors are one typed ``WeChatApiError`` with a classification the callers act on: bad login
  code, retry later, token trouble (handled here: refresh once and retry), no subscription quota
  (the reminder falls back to SMS).
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import requests

from cases.errors import DomainError, InvalidInput, RateLimited, ServiceUnavailable

__all__ = [
    "WeChatSession",
    "WeChatApiError",
    "WeChatClient",
    "ApiWeChatClient",
    "DevWeChatClient",
    "wechat_client_from_settings",
    "ERR_BUSY",
    "ERR_TOKEN_INVALID",
    "ERR_TOKEN_EXPIRED",
    "ERR_BAD_CODE",
    "ERR_CODE_USED",
    "ERR_RATE_LIMIT",
    "ERR_NO_SUBSCRIPTION",
]

log = logging.getLogger(__name__)

ERR_TRANSPORT = -2  # ours: no usable HTTP answer (timeout, connection, not JSON)
ERR_BUSY = -1
ERR_TOKEN_INVALID = 40001
ERR_TOKEN_MISSING = 41001
ERR_TOKEN_EXPIRED = 42001
ERR_TOKEN_BAD_FORMAT = 40014
ERR_BAD_CODE = 40029
ERR_CODE_USED = 40163
ERR_RATE_LIMIT = 45011
ERR_NO_SUBSCRIPTION = 43101

_TOKEN_ERRORS = frozenset({ERR_TOKEN_INVALID, ERR_TOKEN_EXPIRED, ERR_TOKEN_BAD_FORMAT, ERR_TOKEN_MISSING})
_RETRYABLE = frozenset({ERR_BUSY, ERR_RATE_LIMIT, ERR_TRANSPORT})
_BAD_CODE = frozenset({ERR_BAD_CODE, ERR_CODE_USED})


@dataclass(frozen=True)
class WeChatSession:
    """Who logged in: the openid (per mini-program) and, when the app is in an open platform, the unionid."""

    openid: str
    unionid: str | None = None


class WeChatApiError(Exception):
    """An ``errcode`` from WeChat (or ``-2`` when there was no usable answer)."""

    def __init__(self, errcode: int, errmsg: str):
        super().__init__(f"WeChat API error {errcode}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg

    @property
    def is_bad_code(self) -> bool:
        """The login code is invalid or already used: the user must call wx.login again."""
        return self.errcode in _BAD_CODE

    @property
    def is_retryable(self) -> bool:
        """WeChat is busy, rate-limited us, or could not be reached: try later."""
        return self.errcode in _RETRYABLE

    @property
    def is_token_error(self) -> bool:
        return self.errcode in _TOKEN_ERRORS

    @property
    def is_no_subscription(self) -> bool:
        """The user has no subscribe-message quota left: permanent for this message (fall back to SMS)."""
        return self.errcode == ERR_NO_SUBSCRIPTION

    def to_domain_error(self) -> DomainError:
        """The error a person sees (zh-CN), for the HTTP layer."""
        if self.is_bad_code:
            return InvalidInput("wechat_code_invalid", "微信登录凭证无效或已使用，请重新进入小程序",
                                details={"errcode": self.errcode})
        if self.errcode == ERR_RATE_LIMIT:
            return RateLimited("wechat_rate_limited", "微信接口请求过于频繁，请稍后再试",
                               details={"retry_after_s": 10, "errcode": self.errcode})
        return ServiceUnavailable("wechat_unavailable", "微信服务暂时不可用，请稍后再试", details={"errcode": self.errcode})


class WeChatClient(ABC):
    """The WeChat calls QianLi makes."""

    @abstractmethod
    def code2session(self, code: str) -> WeChatSession:
        """Exchange a ``wx.login`` code for the user's openid."""

    @abstractmethod
    def send_subscribe_message(self, openid: str, template_id: str, page: str, data: dict[str, str],
                               miniprogram_state: str = "formal") -> str:
        """Send a subscribe message; ``data`` maps template keys to values. Returns the msgid."""


def _check_login_code(code: str) -> None:
    if not isinstance(code, str) or not code or len(code) > 128 or not code.isprintable():
        raise WeChatApiError(ERR_BAD_CODE, "invalid code (rejected locally)")


class ApiWeChatClient(WeChatClient):
    """The real API, at ``base_url`` (a setting, so tests can point it at a local wire server)."""

    TOKEN_MARGIN_S = 300  # refresh this long before WeChat's expiry

    def __init__(self, base_url: str, appid: str, secret: str, redis: Any, timeout: float = 5.0,
                 *, session: requests.Session | None = None, pool_size: int = 10):
        self.base_url = base_url.rstrip("/")
        self.appid = appid
        self._secret = secret
        self.redis = redis
        self.timeout = timeout
        if session is None:
            # reminder batches send from many threads at once: keep that many connections alive
            # (requests keeps 10 and closes the others after each call)
            from requests.adapters import HTTPAdapter

            session = requests.Session()
            adapter = HTTPAdapter(pool_connections=1, pool_maxsize=max(1, pool_size))
            session.mount("https://", adapter)
            session.mount("http://", adapter)
        self._http = session
        self._token_key = f"qianli:wechat:{appid}:access_token"
        self._lock_key = f"qianli:wechat:{appid}:access_token:lock"

    # -- transport -----------------------------------------------------------------------
    def _call(self, method: str, path: str, *, params: dict[str, Any] | None = None,
              json_body: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            resp = self._http.request(method, self.base_url + path, params=params, json=json_body,
                                      timeout=self.timeout)
            data = resp.json()
        except (requests.RequestException, ValueError) as exc:
            raise WeChatApiError(ERR_TRANSPORT, f"no usable answer from WeChat: {type(exc).__name__}") from None
        if not isinstance(data, dict):
            raise WeChatApiError(ERR_TRANSPORT, "answer is not a JSON object")
        errcode = int(data.get("errcode") or 0)
        if errcode:
            raise WeChatApiError(errcode, str(data.get("errmsg", "")))
        return data

    # -- login ---------------------------------------------------------------------------
    def code2session(self, code: str) -> WeChatSession:
        _check_login_code(code)
        data = self._call("GET", "/sns/jscode2session", params={
            "appid": self.appid, "secret": self._secret, "js_code": code, "grant_type": "authorization_code"})
        openid = data.get("openid")
        if not openid:
            raise WeChatApiError(ERR_TRANSPORT, "jscode2session answer without openid")
        # data["session_key"] is deliberately dropped here.
        return WeChatSession(openid=str(openid), unionid=data.get("unionid") or None)

    # -- access token --------------------------------------------------------------------
    def _fetch_token(self, force_refresh: bool) -> str:
        data = self._call("POST", "/cgi-bin/stable_token", json_body={
            "grant_type": "client_credential", "appid": self.appid, "secret": self._secret,
            "force_refresh": force_refresh})
        token, expires_in = data.get("access_token"), int(data.get("expires_in") or 0)
        if not token or expires_in <= 0:
            raise WeChatApiError(ERR_TRANSPORT, "stable_token answer without access_token")
        ttl = max(1, expires_in - min(self.TOKEN_MARGIN_S, expires_in // 2))
        self.redis.set(self._token_key, token, ex=ttl)
        log.info("WeChat access token refreshed (force=%s), cached for %ss", force_refresh, ttl)
        return str(token)

    def stable_access_token(self, *, stale: str | None = None) -> str:
        """The cached token, fetched once under a lock when missing or known ``stale``."""
        cached = self.redis.get(self._token_key)
        if cached is not None and cached.decode() != stale:
            return cached.decode()
        with self.redis.lock(self._lock_key, timeout=max(10.0, self.timeout * 2), blocking_timeout=self.timeout * 3):
            cached = self.redis.get(self._token_key)  # another worker may have refreshed meanwhile
            if cached is not None and cached.decode() != stale:
                return cached.decode()
            return self._fetch_token(force_refresh=stale is not None)

    def _with_token(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        token = self.stable_access_token()
        try:
            return self._call("POST", path, params={"access_token": token}, json_body=body)
        except WeChatApiError as exc:
            if not exc.is_token_error:
                raise
            log.warning("WeChat rejected the access token (%s); refreshing once", exc.errcode)
            token = self.stable_access_token(stale=token)
            return self._call("POST", path, params={"access_token": token}, json_body=body)

    # -- messages ------------------------------------------------------------------------
    def send_subscribe_message(self, openid: str, template_id: str, page: str, data: dict[str, str],
                               miniprogram_state: str = "formal") -> str:
        body = {"touser": openid, "template_id": template_id, "page": page, "lang": "zh_CN",
                "miniprogram_state": miniprogram_state, "data": {k: {"value": v} for k, v in data.items()}}
        answer = self._with_token("/cgi-bin/message/subscribe/send", body)
        return str(answer.get("msgid", ""))


class DevWeChatClient(WeChatClient):
    """Development only: ``dev-<openid>`` logs in as ``<openid>``; messages go to the log and Redis."""

    SENT_KEY = "qianli:dev:wechat-sent"

    def __init__(self, redis: Any | None = None):
        self.redis = redis
        log.warning("WeChat client: DEVELOPMENT stand-in - accepts login codes 'dev-<openid>' without asking "
                    "WeChat. Never use in production.")

    def code2session(self, code: str) -> WeChatSession:
        _check_login_code(code)
        if not code.startswith("dev-") or len(code) <= 4:
            raise WeChatApiError(ERR_BAD_CODE, "development client accepts only codes 'dev-<openid>'")
        return WeChatSession(openid=code[4:], unionid=None)

    def send_subscribe_message(self, openid: str, template_id: str, page: str, data: dict[str, str],
                               miniprogram_state: str = "formal") -> str:
        import json
        import uuid

        msgid = uuid.uuid4().hex
        log.warning("DEV WeChat subscribe message %s to %s: template %s page %s", msgid, openid, template_id, page)
        if self.redis is not None:
            self.redis.lpush(self.SENT_KEY, json.dumps({"msgid": msgid, "at": time.time(), "touser": openid,
                                                        "template_id": template_id, "page": page, "data": data},
                                                       ensure_ascii=False))
            self.redis.ltrim(self.SENT_KEY, 0, 999)
        return msgid


def wechat_client_from_settings(settings: Any, redis: Any) -> WeChatClient:
    """The client chosen by ``QIANLI_WECHAT_BACKEND``."""
    if settings.wechat_backend == "dev":
        return DevWeChatClient(redis)
    return ApiWeChatClient(settings.wechat_api_base_url, settings.wechat_appid, settings.wechat_appsecret, redis,
                           settings.wechat_timeout_s, pool_size=settings.reminder_send_concurrency)
