"""SMS gateways behind one small interface: a development outbox, Tencent Cloud and Aliyun.

Callers name a *logical* template ('code', 'reminder'); settings map it to the provider's
approved template id, so the domain never knows provider ids. Parameters are a ``dict`` whose
insertion order is the positional order Tencent templates use ({1}, {2}, ...); Aliyun receives
the same dict as named JSON parameters.

The development outbox is what makes SMS codes usable on a laptop: every message lands in a
Redis list (readable from any process) and a JSONL file under ``$QIANLI_VAR_DIR``. It contains
the codes in clear, which is exactly why it is refused outside development.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cases.errors import InvalidInput, ServiceUnavailable

__all__ = [
    "SmsSendResult",
    "SmsGatewayError",
    "SmsGateway",
    "DevOutboxSmsGateway",
    "OutboxMessage",
    "TencentSmsGateway",
    "AliyunSmsGateway",
    "normalize_cn_mobile",
    "mask_phone",
    "sms_gateway_from_settings",
    "OUTBOX_REDIS_KEY",
]

log = logging.getLogger(__name__)

OUTBOX_REDIS_KEY = "qianli:dev:sms-outbox"
OUTBOX_MAX_MESSAGES = 1000

_CN_MOBILE = re.compile(r"^1[3-9]\d{9}$")


def normalize_cn_mobile(raw: str) -> str:
    """Return the 11-digit mainland mobile number, accepting '+86', '0086', spaces and dashes.

    Everything downstream (Redis keys, lookup hashes, gateways) sees one canonical form, so
    '+86 138-0013-8000' and '13800138000' share limits and codes.
    """
    if not isinstance(raw, str):
        raise InvalidInput("phone_invalid", "手机号格式不正确")
    digits = re.sub(r"[\s\-()]", "", raw)
    for prefix in ("+86", "0086", "86"):
        if digits.startswith(prefix) and len(digits) == 11 + len(prefix):
            digits = digits[len(prefix):]
            break
    if not _CN_MOBILE.match(digits):
        raise InvalidInput("phone_invalid", "手机号格式不正确，请输入 11 位中国大陆手机号")
    return digits


def mask_phone(phone: str) -> str:
    """'13800138000' -> '138****8000': enough for a person to recognise, not to dial."""
    return phone[:3] + "****" + phone[-4:] if len(phone) >= 7 else "****"


@dataclass(frozen=True)
class SmsSendResult:
    """What a provider accepted: its name and its message id (for delivery receipts)."""

    provider: str
    message_id: str


class SmsGatewayError(ServiceUnavailable):
    """The provider refused or could not be reached; ``provider_code`` is the provider's own code."""

    default_code = "sms_gateway_error"

    def __init__(self, provider: str, provider_code: str, provider_message: str, *, retryable: bool):
        super().__init__("sms_gateway_error", "短信发送失败，请稍后再试",
                         details={"provider": provider, "provider_code": provider_code})
        self.provider = provider
        self.provider_code = provider_code
        self.provider_message = provider_message
        self.retryable = retryable


class SmsGateway(ABC):
    """Sends one templated SMS to one mainland number."""

    name: str = "abstract"

    @abstractmethod
    def send(self, phone: str, template: str, params: dict[str, str]) -> SmsSendResult:
        """Send ``template`` (logical name) with ``params`` to ``phone``; raise SmsGatewayError on failure."""


def _check_params(params: dict[str, str]) -> None:
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in params.items()):
        raise InvalidInput("sms_params_invalid", "SMS template parameters must be strings")


@dataclass(frozen=True)
class OutboxMessage:
    """One message in the development outbox."""

    id: str
    at: float
    phone: str
    template: str
    params: dict[str, str]

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "at": self.at, "phone": self.phone, "template": self.template, "params": self.params}


class DevOutboxSmsGateway(SmsGateway):
    """Development only: 'sends' by appending to a Redis list and a JSONL file.

    Redis makes it readable across processes (API, workers, ``qianli outbox``) and the
    ``/api/v1/dev/outbox`` endpoint; the JSONL file (appended with O_APPEND, one write per
    line) survives a Redis flush and is handy with ``tail -f``.
    """

    name = "dev"
    _file_lock = threading.Lock()

    def __init__(self, redis: Any, path: Path | None = None, *, max_messages: int = OUTBOX_MAX_MESSAGES):
        self.redis = redis
        self.path = path
        self.max_messages = max_messages
        log.warning("SMS gateway: DEVELOPMENT OUTBOX - no SMS leaves this machine; messages (with codes) "
                    "are kept in Redis %s%s. Never use in production.", OUTBOX_REDIS_KEY,
                    f" and {path}" if path else "")

    def send(self, phone: str, template: str, params: dict[str, str]) -> SmsSendResult:
        _check_params(params)
        msg = OutboxMessage(id=uuid.uuid4().hex, at=time.time(), phone=phone, template=template, params=dict(params))
        line = json.dumps(msg.as_dict(), ensure_ascii=False)
        pipe = self.redis.pipeline()
        pipe.lpush(OUTBOX_REDIS_KEY, line)
        pipe.ltrim(OUTBOX_REDIS_KEY, 0, self.max_messages - 1)
        pipe.execute()
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            data = (line + "\n").encode()
            with self._file_lock:
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                try:
                    os.write(fd, data)
                finally:
                    os.close(fd)
        log.warning("DEV SMS outbox: message %s (template %s) to %s", msg.id, template, mask_phone(phone))
        return SmsSendResult(provider=self.name, message_id=msg.id)

    def messages(self, *, phone: str | None = None, limit: int = 20) -> list[OutboxMessage]:
        """Newest first, optionally only those to ``phone``."""
        out: list[OutboxMessage] = []
        for raw in self.redis.lrange(OUTBOX_REDIS_KEY, 0, self.max_messages - 1):
            d = json.loads(raw)
            if phone is None or d["phone"] == phone:
                out.append(OutboxMessage(**d))
                if len(out) >= limit:
                    break
        return out


def _template_ids(settings: Any) -> dict[str, str]:
    return {"code": settings.sms_template_code, "reminder": settings.sms_template_reminder,
            "task": settings.sms_template_task, "alumni": settings.sms_template_alumni}


def _resolve_template(templates: dict[str, str], template: str) -> str:
    tid = templates.get(template)
    if not tid:
        raise SmsGatewayError("config", "template_not_configured", f"no provider template id for {template!r}",
                              retryable=False)
    return tid


# Provider codes that are worth retrying later (throttling, provider-side trouble).
_TENCENT_RETRYABLE_PREFIXES = ("LimitExceeded", "InternalError", "RequestLimitExceeded", "ClientNetworkError",
                               "ServerNetworkError")


class TencentSmsGateway(SmsGateway):
    """Tencent Cloud SMS (API 2021-01-11) through the official ``tencentcloud-sdk-python-sms``."""

    name = "tencent"

    def __init__(self, *, secret_id: str, secret_key: str, sdk_app_id: str, sign_name: str,
                 templates: dict[str, str], region: str = "ap-guangzhou",
                 endpoint: str = "sms.tencentcloudapi.com", protocol: str = "https", timeout_s: float = 10.0,
                 pool_size: int = 10):
        from requests.adapters import HTTPAdapter
        from tencentcloud.common import credential
        from tencentcloud.common.profile.client_profile import ClientProfile
        from tencentcloud.common.profile.http_profile import HttpProfile
        from tencentcloud.sms.v20210111 import sms_client

        if not (secret_id and secret_key and sdk_app_id and sign_name):
            raise ValueError("Tencent SMS needs QIANLI_SMS_TENCENT_SECRET_ID, _SECRET_KEY, _SDK_APP_ID and "
                             "QIANLI_SMS_SIGN_NAME")
        http = HttpProfile(protocol=protocol, endpoint=endpoint, reqTimeout=int(max(1, timeout_s)), keepAlive=True)
        self._client = sms_client.SmsClient(credential.Credential(secret_id, secret_key), region,
                                            ClientProfile(httpProfile=http))
        # The SDK's requests.Session, shared by the threads that send concurrently (reminder batches):
        # - one pool of ``pool_size`` kept-alive connections (requests keeps 10 and closes the others
        #   after each call, so 50 concurrent sends would open a new TLS connection almost every time);
        # - trust_env off: the SDK read HTTPS_PROXY / NO_PROXY itself when the client was built and
        #   passes that proxy with every call, while requests would walk os.environ twice per call
        #   for the same answer (a quarter of a send's CPU time).
        session = self._client.request.conn._session  # noqa: SLF001 - the SDK exposes no setter
        session.trust_env = False
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=max(1, pool_size))
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        self.sdk_app_id = sdk_app_id
        self.sign_name = sign_name
        self.templates = templates

    def build_request(self, phone: str, template: str, params: dict[str, str]) -> Any:
        """The SDK request object (separate so tests can inspect exactly what is sent)."""
        from tencentcloud.sms.v20210111 import models

        _check_params(params)
        req = models.SendSmsRequest()
        req.PhoneNumberSet = ["+86" + phone]
        req.SmsSdkAppId = self.sdk_app_id
        req.SignName = self.sign_name
        req.TemplateId = _resolve_template(self.templates, template)
        req.TemplateParamSet = list(params.values())
        return req

    def send(self, phone: str, template: str, params: dict[str, str]) -> SmsSendResult:
        from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

        req = self.build_request(phone, template, params)
        try:
            resp = self._client.SendSms(req)
        except TencentCloudSDKException as exc:
            code = exc.get_code() or "unknown"
            raise SmsGatewayError(self.name, code, exc.get_message() or "",
                                  retryable=code.startswith(_TENCENT_RETRYABLE_PREFIXES)) from None
        statuses = resp.SendStatusSet or []
        if not statuses:
            raise SmsGatewayError(self.name, "empty_response", "no SendStatus in response", retryable=True)
        st = statuses[0]
        if st.Code != "Ok":
            raise SmsGatewayError(self.name, st.Code or "unknown", st.Message or "",
                                  retryable=(st.Code or "").startswith(_TENCENT_RETRYABLE_PREFIXES))
        return SmsSendResult(provider=self.name, message_id=st.SerialNo or resp.RequestId or "")


_ALIYUN_RETRYABLE = {"isv.BUSINESS_LIMIT_CONTROL", "isp.SYSTEM_ERROR", "isv.DAY_LIMIT_CONTROL", "Throttling",
                     "Throttling.User", "ServiceUnavailable"}


class AliyunSmsGateway(SmsGateway):
    """Aliyun SMS (dysmsapi 2017-05-25) through the official ``alibabacloud_dysmsapi20170525``."""

    name = "aliyun"

    def __init__(self, *, access_key_id: str, access_key_secret: str, sign_name: str, templates: dict[str, str],
                 endpoint: str = "dysmsapi.aliyuncs.com", protocol: str = "https", timeout_s: float = 10.0):
        from alibabacloud_dysmsapi20170525.client import Client
        from alibabacloud_tea_openapi.utils_models import Config

        if not (access_key_id and access_key_secret and sign_name):
            raise ValueError("Aliyun SMS needs QIANLI_SMS_ALIYUN_ACCESS_KEY_ID, _ACCESS_KEY_SECRET and "
                             "QIANLI_SMS_SIGN_NAME")
        ms = int(timeout_s * 1000)
        self._client = Client(Config(access_key_id=access_key_id, access_key_secret=access_key_secret,
                                     endpoint=endpoint, protocol=protocol, connect_timeout=ms, read_timeout=ms))
        self.sign_name = sign_name
        self.templates = templates

    def build_request(self, phone: str, template: str, params: dict[str, str]) -> Any:
        """The SDK request object (separate so tests can inspect exactly what is sent)."""
        from alibabacloud_dysmsapi20170525.models import SendSmsRequest

        _check_params(params)
        return SendSmsRequest(phone_numbers=phone, sign_name=self.sign_name,
                              template_code=_resolve_template(self.templates, template),
                              template_param=json.dumps(params, ensure_ascii=False))

    def send(self, phone: str, template: str, params: dict[str, str]) -> SmsSendResult:
        from darabonba.exceptions import DaraException

        req = self.build_request(phone, template, params)
        try:
            resp = self._client.send_sms(req)
        except DaraException as exc:
            code = str(getattr(exc, "code", "") or "unknown")
            raise SmsGatewayError(self.name, code, str(getattr(exc, "message", "")),
                                  retryable=code in _ALIYUN_RETRYABLE or code.startswith("Throttling")) from None
        except OSError as exc:  # connection refused, timeouts
            raise SmsGatewayError(self.name, "network", type(exc).__name__, retryable=True) from None
        body = resp.body
        if body is None or body.code != "OK":
            code = (body.code if body else None) or "unknown"
            raise SmsGatewayError(self.name, code, (body.message if body else "") or "",
                                  retryable=code in _ALIYUN_RETRYABLE)
        return SmsSendResult(provider=self.name, message_id=body.biz_id or body.request_id or "")


def _endpoint(value: str) -> tuple[str, str]:
    """(host, protocol) of ``host`` (HTTPS, the provider's) or ``http://host:port`` (a local emulation)."""
    for scheme in ("http", "https"):
        if value.startswith(f"{scheme}://"):
            return value[len(scheme) + 3:].rstrip("/"), scheme
    return value, "https"


def sms_gateway_from_settings(settings: Any, redis: Any) -> SmsGateway:
    """The gateway chosen by ``QIANLI_SMS_BACKEND``."""
    if settings.sms_backend == "dev":
        return DevOutboxSmsGateway(redis, Path(settings.var_dir) / "sms-outbox.jsonl")
    if settings.sms_backend == "tencent":
        return TencentSmsGateway(secret_id=settings.sms_tencent_secret_id, secret_key=settings.sms_tencent_secret_key,
                                 sdk_app_id=settings.sms_tencent_sdk_app_id, sign_name=settings.sms_sign_name,
                                 templates=_template_ids(settings), region=settings.sms_tencent_region,
                                 endpoint=_endpoint(settings.sms_tencent_endpoint)[0],
                                 protocol=_endpoint(settings.sms_tencent_endpoint)[1],
                                 pool_size=settings.reminder_send_concurrency)
    if settings.sms_backend == "aliyun":
        return AliyunSmsGateway(access_key_id=settings.sms_aliyun_access_key_id,
                                access_key_secret=settings.sms_aliyun_access_key_secret,
                                sign_name=settings.sms_sign_name, templates=_template_ids(settings),
                                endpoint=settings.sms_aliyun_endpoint)
    raise ValueError(f"unknown SMS backend {settings.sms_backend!r}")

