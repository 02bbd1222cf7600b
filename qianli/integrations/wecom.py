"""A small typed client for the WeCom (企业微信) server API, and a development stand-in.

QianLi calls four documented endpoints (https://developer.work.weixin.qq.com/document/path/90664 ff.):

* ``GET  /cgi-bin/gettoken?corpid=..&corpsecret=..`` -> ``access_token``, ``expires_in`` (7200 s).
  The token is cached in Redis (per corp and secret) until shortly before ``expires_in`` and fetched
  under a Redis lock, so many web and rq processes share one token; when WeCom answers a call with
  40014 (invalid token) or 42001 (expired), the token is fetched again once and the call repeated.
* ``POST /cgi-bin/user/update`` with ``{"userid": .., "enable": 0}``: disable a member (at revocation).
* ``POST /cgi-bin/message/send``: a text message from the app (``agentid``) to members.
* ``POST /cgi-bin/checkin/getcheckindata``: check-in records (periods of at most 30 days, at most
  100 members per call; :meth:`WeComClient.get_checkin_data` splits larger requests).

Every answer is JSON with ``errcode``/``errmsg`` (HTTP 200 even for errors); a non-zero ``errcode`` is
a :class:`WeComApiError`, which says whether it is worth retrying and whether the member is unknown.
The base URL is a setting (``QIANLI_WECOM_API_BASE_URL``) so tests point it at a local emulation
(``tests/integrations/wecom_emulator.py``). Layer: adapters (no web framework, no models).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable

import requests

__all__ = ["WeComApiError", "WeComClient", "ApiWeComClient", "DevWeComClient", "CheckinRecord", "MessageResult",
           "wecom_client_from_settings", "ERR_TOKEN_INVALID", "ERR_TOKEN_EXPIRED", "ERR_USER_NOT_FOUND",
           "ERR_BUSY", "ERR_RATE_LIMIT", "ERR_TRANSPORT", "CHECKIN_MAX_DAYS", "CHECKIN_MAX_USERS"]

log = logging.getLogger(__name__)

ERR_TRANSPORT = -2  # ours: no usable HTTP answer (timeout, connection refused, not JSON)
ERR_BUSY = -1  # 系统繁忙
ERR_SECRET_INVALID = 40001  # 不合法的secret参数
ERR_CORPID_INVALID = 40013  # 不合法的CorpID
ERR_TOKEN_INVALID = 40014  # 不合法的access_token
ERR_TOKEN_MISSING = 41001  # 缺少access_token参数
ERR_TOKEN_EXPIRED = 42001  # access_token已过期
ERR_RATE_LIMIT = 45009  # 接口调用超过限制
ERR_FREQ_LIMIT = 45033  # 接口并发调用超过限制
ERR_USER_NOT_FOUND = 60111  # UserID不存在
ERR_NO_PRIVILEGE = 60011  # 指定的成员/部门/标签参数无权限

_TOKEN_ERRORS = frozenset({ERR_TOKEN_INVALID, ERR_TOKEN_EXPIRED, ERR_TOKEN_MISSING})
_RETRYABLE = frozenset({ERR_TRANSPORT, ERR_BUSY, ERR_RATE_LIMIT, ERR_FREQ_LIMIT})
CHECKIN_MAX_DAYS = 30
CHECKIN_MAX_USERS = 100


class WeComApiError(Exception):
    """An ``errcode`` from WeCom (or ``-2`` when there was no usable answer)."""

    def __init__(self, errcode: int, errmsg: str, *, path: str = ""):
        super().__init__(f"WeCom API error {errcode} at {path or '?'}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg
        self.path = path

    @property
    def is_retryable(self) -> bool:
        """WeCom is busy, rate-limited us, or could not be reached: try again later."""
        return self.errcode in _RETRYABLE

    @property
    def is_token_error(self) -> bool:
        return self.errcode in _TOKEN_ERRORS

    @property
    def is_unknown_member(self) -> bool:
        """The userid does not exist in the corp (nothing to disable; a data problem, not an outage)."""
        return self.errcode == ERR_USER_NOT_FOUND

    @property
    def is_credentials_error(self) -> bool:
        """The corp id or secret is wrong: a configuration problem."""
        return self.errcode in (ERR_SECRET_INVALID, ERR_CORPID_INVALID)


@dataclass(frozen=True)
class MessageResult:
    msgid: str
    invalid_users: tuple[str, ...] = ()


@dataclass(frozen=True)
class CheckinRecord:
    """One check-in (打卡) as WeCom reports it; times are aware UTC datetimes."""

    userid: str
    checkin_type: str  # 上班打卡 / 下班打卡 / 外出打卡
    checkin_time: datetime
    exception_type: str = ""  # 时间异常 / 地点异常 / 未打卡 / wifi异常 / 非常用设备 ('' when normal)
    group_name: str = ""
    location_title: str = ""
    scheduled_time: datetime | None = None  # sch_checkin_time: the time the schedule expected
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_wire(cls, item: dict[str, Any]) -> CheckinRecord:
        def ts(value: Any) -> datetime | None:
            try:
                seconds = int(value)
            except (TypeError, ValueError):
                return None
            return datetime.fromtimestamp(seconds, tz=timezone.utc) if seconds > 0 else None

        return cls(userid=str(item.get("userid", "")), checkin_type=str(item.get("checkin_type", "")),
                   checkin_time=ts(item.get("checkin_time")) or datetime.fromtimestamp(0, tz=timezone.utc),
                   exception_type=str(item.get("exception_type", "") or ""),
                   group_name=str(item.get("groupname", "") or ""),
                   location_title=str(item.get("location_title", "") or ""),
                   scheduled_time=ts(item.get("sch_checkin_time")), raw=dict(item))


def _check_userid(userid: str) -> str:
    # WeCom userids: 1-64 characters of letters, digits, and _-@. (case-insensitive).
    if not isinstance(userid, str) or not 1 <= len(userid) <= 64 or not all(
            c.isascii() and (c.isalnum() or c in "_-@.") for c in userid):
        raise ValueError(f"not a WeCom userid: {userid!r}")
    return userid


def _checkin_windows(start: datetime, end: datetime) -> list[tuple[int, int]]:
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("aware datetimes required")
    if end < start:
        raise ValueError("end before start")
    out: list[tuple[int, int]] = []
    cur = start
    while True:
        stop = min(end, cur + timedelta(days=CHECKIN_MAX_DAYS))
        out.append((int(cur.timestamp()), int(stop.timestamp())))
        if stop >= end:
            return out
        cur = stop + timedelta(seconds=1)


class WeComClient(ABC):
    """The WeCom calls QianLi makes."""

    agent_id: int

    @abstractmethod
    def disable_member(self, userid: str) -> None:
        """Disable (禁用) a member: they can no longer log in to WeCom. Idempotent."""

    @abstractmethod
    def send_text(self, userids: Iterable[str], content: str) -> MessageResult:
        """Send a text message from the app to members (at most 1,000 per call)."""

    @abstractmethod
    def get_checkin_data(self, userids: Iterable[str], start: datetime, end: datetime, *,
                         data_type: int = 3) -> list[CheckinRecord]:
        """Check-in records of members between two aware datetimes (type 1: 上下班, 2: 外出, 3: all)."""


class ApiWeComClient(WeComClient):
    """The real API at ``base_url`` (a setting, so tests can point it at the local emulation)."""

    TOKEN_MARGIN_S = 300  # fetch a new token this long before WeCom's expiry

    def __init__(self, base_url: str, corp_id: str, secret: str, agent_id: int, redis: Any, timeout: float = 5.0,
                 *, session: requests.Session | None = None):
        self.base_url = base_url.rstrip("/")
        self.corp_id = corp_id
        self._secret = secret
        self.agent_id = int(agent_id)
        self.redis = redis
        self.timeout = timeout
        self._http = session or requests.Session()
        # One token per (corp, app secret); the key names neither secret nor token.
        app = hashlib.sha256(f"{corp_id}\0{secret}".encode()).hexdigest()[:16]
        self._token_key = f"qianli:wecom:{app}:access_token"
        self._lock_key = f"qianli:wecom:{app}:access_token:lock"

    # -- transport -----------------------------------------------------------------------
    def _call(self, method: str, path: str, *, params: dict[str, Any] | None = None,
              json_body: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            resp = self._http.request(method, self.base_url + path, params=params, json=json_body,
                                      timeout=self.timeout)
            data = resp.json()
        except (requests.RequestException, ValueError) as exc:
            raise WeComApiError(ERR_TRANSPORT, f"no usable answer from WeCom: {type(exc).__name__}",
                                path=path) from None
        if not isinstance(data, dict):
            raise WeComApiError(ERR_TRANSPORT, "answer is not a JSON object", path=path)
        try:
            errcode = int(data.get("errcode") or 0)
        except (TypeError, ValueError):
            raise WeComApiError(ERR_TRANSPORT, "errcode is not a number", path=path) from None
        if errcode:
            raise WeComApiError(errcode, str(data.get("errmsg", "")), path=path)
        return data

    # -- access token --------------------------------------------------------------------
    def _fetch_token(self) -> str:
        data = self._call("GET", "/cgi-bin/gettoken", params={"corpid": self.corp_id, "corpsecret": self._secret})
        token = data.get("access_token")
        try:
            expires_in = int(data.get("expires_in") or 0)
        except (TypeError, ValueError):
            expires_in = 0
        if not token or expires_in <= 0:
            raise WeComApiError(ERR_TRANSPORT, "gettoken answer without access_token/expires_in",
                                path="/cgi-bin/gettoken")
        ttl = max(1, expires_in - min(self.TOKEN_MARGIN_S, expires_in // 2))
        self.redis.set(self._token_key, token, ex=ttl)
        log.info("WeCom access token fetched, cached for %ss", ttl)
        return str(token)

    def access_token(self, *, stale: str | None = None) -> str:
        """The cached token; fetched once under a lock when missing or known ``stale``."""
        cached = self.redis.get(self._token_key)
        if cached is not None and cached.decode() != stale:
            return cached.decode()
        with self.redis.lock(self._lock_key, timeout=max(10.0, self.timeout * 2), blocking_timeout=self.timeout * 3):
            cached = self.redis.get(self._token_key)  # another process may have fetched it meanwhile
            if cached is not None and cached.decode() != stale:
                return cached.decode()
            return self._fetch_token()

    def _with_token(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        token = self.access_token()
        try:
            return self._call("POST", path, params={"access_token": token}, json_body=body)
        except WeComApiError as exc:
            if not exc.is_token_error:
                raise
            log.warning("WeCom rejected the access token (%s); fetching a new one", exc.errcode)
            token = self.access_token(stale=token)
            return self._call("POST", path, params={"access_token": token}, json_body=body)

    # -- calls ---------------------------------------------------------------------------
    def disable_member(self, userid: str) -> None:
        self._with_token("/cgi-bin/user/update", {"userid": _check_userid(userid), "enable": 0})

    def send_text(self, userids: Iterable[str], content: str) -> MessageResult:
        users = [_check_userid(u) for u in userids]
        if not users or len(users) > 1000:
            raise ValueError("send_text needs 1 to 1000 userids")
        if not content or len(content.encode()) > 2048:
            raise ValueError("text content must be 1 to 2048 bytes")
        data = self._with_token("/cgi-bin/message/send", {
            "touser": "|".join(users), "msgtype": "text", "agentid": self.agent_id, "text": {"content": content},
            "safe": 0, "enable_duplicate_check": 0})
        invalid = tuple(u for u in str(data.get("invaliduser") or "").split("|") if u)
        return MessageResult(msgid=str(data.get("msgid", "")), invalid_users=invalid)

    def get_checkin_data(self, userids: Iterable[str], start: datetime, end: datetime, *,
                         data_type: int = 3) -> list[CheckinRecord]:
        users = [_check_userid(u) for u in userids]
        if data_type not in (1, 2, 3):
            raise ValueError("data_type must be 1, 2 or 3")
        out: list[CheckinRecord] = []
        for t0, t1 in _checkin_windows(start, end):
            for i in range(0, len(users), CHECKIN_MAX_USERS):
                data = self._with_token("/cgi-bin/checkin/getcheckindata", {
                    "opencheckindatatype": data_type, "starttime": t0, "endtime": t1,
                    "useridlist": users[i:i + CHECKIN_MAX_USERS]})
                items = data.get("checkindata") or []
                if not isinstance(items, list):
                    raise WeComApiError(ERR_TRANSPORT, "checkindata is not a list", path="/cgi-bin/checkin/getcheckindata")
                out.extend(CheckinRecord.from_wire(item) for item in items if isinstance(item, dict))
        out.sort(key=lambda r: (r.userid, r.checkin_time))
        return out


class DevWeComClient(WeComClient):
    """Development only: nothing leaves the machine; every call is logged loudly and kept in Redis
    (``qianli:dev:wecom``, newest first) so a demo can show what would have been sent."""

    LOG_KEY = "qianli:dev:wecom"

    def __init__(self, redis: Any | None = None, agent_id: int = 0):
        self.redis = redis
        self.agent_id = agent_id
        log.warning("WeCom client: DEVELOPMENT stand-in - members are not really disabled and messages are not "
                    "sent; calls are logged and kept in Redis %s. Never use in production.", self.LOG_KEY)

    def _record(self, call: str, **fields: Any) -> None:
        log.warning("DEV WeCom %s %s", call, json.dumps(fields, ensure_ascii=False))
        if self.redis is not None:
            self.redis.lpush(self.LOG_KEY, json.dumps({"call": call, "at": time.time(), **fields}, ensure_ascii=False))
            self.redis.ltrim(self.LOG_KEY, 0, 999)

    def disable_member(self, userid: str) -> None:
        self._record("user/update", userid=_check_userid(userid), enable=0)

    def send_text(self, userids: Iterable[str], content: str) -> MessageResult:
        users = [_check_userid(u) for u in userids]
        msgid = uuid.uuid4().hex
        self._record("message/send", touser=users, content=content, msgid=msgid)
        return MessageResult(msgid=msgid)

    def get_checkin_data(self, userids: Iterable[str], start: datetime, end: datetime, *,
                         data_type: int = 3) -> list[CheckinRecord]:
        _checkin_windows(start, end)
        self._record("checkin/getcheckindata", useridlist=[_check_userid(u) for u in userids],
                     starttime=int(start.timestamp()), endtime=int(end.timestamp()))
        return []


def wecom_client_from_settings(settings: Any, redis: Any) -> WeComClient | None:
    """The client chosen by ``QIANLI_WECOM_BACKEND`` (None when ``off``)."""
    if settings.wecom_backend == "off":
        return None
    if settings.wecom_backend == "dev":
        return DevWeComClient(redis, settings.wecom_agent_id)
    return ApiWeComClient(settings.wecom_api_base_url, settings.wecom_corp_id, settings.wecom_secret,
                          settings.wecom_agent_id, redis, settings.wecom_timeout_s)
