"""The composition root: every adapter a process uses, built from settings, once.

A :class:`Runtime` holds the settings and hands out the adapters: the database engine and
sessions, Redis, the field cipher, the document store, the SMS gateway and code service, the
WeChat client, the liveness provider, the FaceID client, the PKI and the timestamper. Each is built on first use and
kept (the PKI and the timestamper come from the signing package's per-process caches, which
notice a re-created PKI and renew an external TSA's client hourly). Services take a Runtime and
ask it; nothing else builds an adapter.

Tests swap adapters explicitly: ``rt.override(redis=..., sms_gateway=...)`` installs instances,
``rt.reset("sms_gateway")`` forgets one so that the next use builds it again from
``rt.settings`` (after a test changed a setting). Built once per process (web worker, rq worker,
CLI) from settings; nothing here opens a connection until it is used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

import redis
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from cases.errors import ServiceUnavailable
from identity.faceid import TencentFaceIdClient, faceid_client_from_settings
from identity.liveness import LivenessProvider, liveness_provider_from_settings
from identity.sms import SmsGateway, sms_gateway_from_settings
from identity.sms_codes import SmsCodeService, sms_code_service_from_settings
from identity.wechat import WeChatClient, wechat_client_from_settings
from qianli import config_cache
from qianli.crypto import FieldCipher, lookup_hash
from qianli.integrations.wecom import WeComClient, wecom_client_from_settings
from qianli.db import make_engine, make_session_factory
from qianli.settings import Settings, get_settings
from qianli.storage import DocumentStore, open_store
from signing.pki import Pki, PkiMissing, load_pki
from signing.tsa import make_timestamper

__all__ = ["Runtime", "ADAPTERS", "get_runtime", "set_runtime"]

ADAPTERS = ("engine", "session_factory", "redis", "cipher", "store", "sms_gateway", "sms_codes", "wechat",
            "liveness", "faceid", "pki", "timestamper", "wecom")
"""The names :meth:`Runtime.override` and :meth:`Runtime.reset` accept."""

T = TypeVar("T")


@dataclass
class Runtime:
    settings: Settings
    _adapters: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)
    _overridden: set[str] = field(default_factory=set, init=False, repr=False, compare=False)

    # ---- explicit swapping (tests) ------------------------------------------------------------
    def override(self, **adapters: Any) -> Runtime:
        """Install the given adapter instances; they stay until :meth:`reset` names them."""
        unknown = sorted(set(adapters) - set(ADAPTERS))
        if unknown:
            raise TypeError(f"not adapters of Runtime: {', '.join(unknown)} (known: {', '.join(ADAPTERS)})")
        self._adapters.update(adapters)
        self._overridden.update(adapters)
        return self

    def reset(self, *names: str) -> None:
        """Forget the named adapters (default: every one not installed by :meth:`override`)."""
        unknown = sorted(set(names) - set(ADAPTERS))
        if unknown:
            raise TypeError(f"not adapters of Runtime: {', '.join(unknown)}")
        for name in names or [n for n in ADAPTERS if n not in self._overridden]:
            self._adapters.pop(name, None)
            self._overridden.discard(name)

    def _get(self, name: str, build: Callable[[], T], *, keep: bool = True) -> T:
        try:
            return self._adapters[name]
        except KeyError:
            value = build()
            if keep:
                self._adapters[name] = value
            return value

    # ---- storage ---------------------------------------------------------------------------------
    @property
    def engine(self) -> Engine:
        return self._get("engine", lambda: make_engine(self.settings.database_url,
                                                        sqlite_busy_timeout_s=self.settings.sqlite_busy_timeout_s))

    @property
    def session_factory(self) -> sessionmaker[Session]:
        return self._get("session_factory", self._make_session_factory)

    def _make_session_factory(self) -> sessionmaker[Session]:
        config_cache.bind(self.engine, lambda: self.redis)  # companies and calendars cached per process
        return make_session_factory(self.engine)

    @property
    def redis(self) -> redis.Redis:
        return self._get("redis", lambda: redis.Redis.from_url(self.settings.redis_url, socket_timeout=5,
                                                               socket_connect_timeout=2))

    @property
    def cipher(self) -> FieldCipher:
        return self._get("cipher", lambda: FieldCipher.from_settings(self.settings))

    @property
    def store(self) -> DocumentStore:
        """Where documents' bytes live (local directory or S3)."""
        return self._get("store", lambda: open_store(self.settings))

    def lookup(self, kind: str, value: str) -> str:
        return lookup_hash(self.settings.lookup_key_bytes(), kind, value)

    # ---- identity (the development ones log loudly once, not per request) ------------------------
    @property
    def sms_gateway(self) -> SmsGateway:
        return self._get("sms_gateway", lambda: sms_gateway_from_settings(self.settings, self.redis))

    @property
    def sms_codes(self) -> SmsCodeService:
        return self._get("sms_codes", lambda: sms_code_service_from_settings(self.settings, self.redis,
                                                                             self.sms_gateway))

    @property
    def wechat(self) -> WeChatClient:
        return self._get("wechat", lambda: wechat_client_from_settings(self.settings, self.redis))

    @property
    def liveness(self) -> LivenessProvider:
        return self._get("liveness", lambda: liveness_provider_from_settings(self.settings))

    @property
    def faceid(self) -> TencentFaceIdClient | None:
        """Tencent Cloud FaceID (real-name face check), or None with QIANLI_FACEID_BACKEND=off."""
        return self._get("faceid", lambda: faceid_client_from_settings(self.settings))

    # ---- integrations ------------------------------------------------------------------------------
    @property
    def wecom(self) -> WeComClient | None:
        """The WeCom (企业微信) connector, or None with QIANLI_WECOM_BACKEND=off."""
        return self._get("wecom", lambda: wecom_client_from_settings(self.settings, self.redis))

    # ---- signing -----------------------------------------------------------------------------------
    @property
    def pki(self) -> Pki:
        """The PKI under var_dir; 503 ``pki_unavailable`` when production has none yet."""
        def build() -> Pki:
            try:
                return load_pki(self.settings)
            except PkiMissing as exc:
                raise ServiceUnavailable("pki_unavailable", "签名服务尚未配置", details={"error": str(exc)}) from None

        return self._get("pki", build, keep=False)

    @property
    def timestamper(self) -> Any:
        """The configured RFC 3161 timestamper (pyHanko ``TimeStamper``): the development TSA or QIANLI_TSA_URL."""
        return self._get("timestamper", lambda: make_timestamper(self.settings, self.pki), keep=False)

    def dispose(self) -> None:
        if "engine" in self._adapters:
            self.engine.dispose()
        if "redis" in self._adapters:
            self.redis.close()


_runtime: Runtime | None = None


def get_runtime() -> Runtime:
    global _runtime
    if _runtime is None:
        _runtime = Runtime(get_settings())
    return _runtime


def set_runtime(runtime: Runtime | None) -> None:
    """Tests and the app factory install an explicit runtime."""
    global _runtime
    _runtime = runtime
