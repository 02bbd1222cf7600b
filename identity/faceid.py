"""Certified real-name face enrolment: Tencent Cloud FaceID (人脸核身), through the official SDK.

The flow the mini-program uses (慧眼 / FaceID mini-program plugin):

1. ``DetectAuth`` (API 2018-03-01) with the RuleId, the employee's name and national ID number:
   Tencent answers a ``BizToken`` (valid 7,200 s) that the mini-program hands to the plugin.
2. The employee does Tencent's liveness check in the plugin; Tencent compares the live face with
   the authoritative (public-security) photo of that ID.
3. ``GetDetectInfoEnhanced`` with the BizToken: ``Text.ErrCode`` 0 is success; ``Text.IdCard`` and
   ``Text.Name`` say whose ID was checked; ``BestFrame.BestFrame`` is the best live frame (base64),
   which becomes the employee's face reference.

:class:`TencentFaceIdClient` is the small typed client; the base URL (endpoint host, ``http://``
allowed for a local emulation) is a setting. No flask, no database.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

__all__ = ["FaceIdError", "DetectAuthResult", "DetectInfo", "TencentFaceIdClient", "faceid_client_from_settings"]

API_VERSION = "2018-03-01"


class FaceIdError(Exception):
    """The provider refused or failed. ``code`` is Tencent's error code (or a local one)."""

    def __init__(self, code: str, message: str = "", *, retryable: bool = False):
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.retryable = code, message, retryable


@dataclass(frozen=True)
class DetectAuthResult:
    biz_token: str
    url: str
    request_id: str


@dataclass(frozen=True)
class DetectInfo:
    err_code: int | None
    err_msg: str
    id_card: str
    name: str
    live_status: int | None
    compare_status: int | None
    sim: str
    best_frame: bytes | None
    request_id: str

    @property
    def passed(self) -> bool:
        return self.err_code == 0

    def as_evidence(self) -> dict[str, Any]:
        """For the evidence chain: the outcome, never the ID number or the photo itself."""
        return {"provider": "tencent_faceid", "err_code": self.err_code, "err_msg": self.err_msg[:200],
                "live_status": self.live_status, "compare_status": self.compare_status, "sim": self.sim,
                "request_id": self.request_id}


_RETRYABLE = ("InternalError", "RequestLimitExceeded", "LimitExceeded", "ClientNetworkError", "ServerNetworkError")


def _endpoint(value: str) -> tuple[str, str]:
    """'host[:port]' -> https; 'http://host:port' -> http (local emulations)."""
    if value.startswith("http://"):
        return "http", value[len("http://"):].rstrip("/")
    if value.startswith("https://"):
        return "https", value[len("https://"):].rstrip("/")
    return "https", value.rstrip("/")


class TencentFaceIdClient:
    name = "tencent_faceid"

    def __init__(self, *, secret_id: str, secret_key: str, rule_id: str, region: str = "ap-guangzhou",
                 endpoint: str = "faceid.tencentcloudapi.com", timeout_s: float = 10.0):
        from tencentcloud.common import credential
        from tencentcloud.common.profile.client_profile import ClientProfile
        from tencentcloud.common.profile.http_profile import HttpProfile
        from tencentcloud.faceid.v20180301 import faceid_client

        if not (secret_id and secret_key and rule_id):
            raise ValueError("Tencent FaceID needs QIANLI_FACEID_TENCENT_SECRET_ID, _SECRET_KEY and _RULE_ID")
        protocol, host = _endpoint(endpoint)
        http = HttpProfile(protocol=protocol, endpoint=host, reqTimeout=int(max(1, timeout_s)))
        self._client = faceid_client.FaceidClient(credential.Credential(secret_id, secret_key), region,
                                                  ClientProfile(httpProfile=http))
        self.rule_id = rule_id

    def _call(self, method: str, request: Any) -> Any:
        from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

        try:
            return getattr(self._client, method)(request)
        except TencentCloudSDKException as exc:
            code = exc.get_code() or "unknown"
            raise FaceIdError(code, exc.get_message() or "", retryable=code.startswith(_RETRYABLE)) from None

    def detect_auth(self, *, name: str, id_card: str, extra: str = "") -> DetectAuthResult:
        from tencentcloud.faceid.v20180301 import models

        req = models.DetectAuthRequest()
        req.RuleId = self.rule_id
        req.IdCard = id_card
        req.Name = name
        if extra:
            req.Extra = extra[:1024]
        resp = self._call("DetectAuth", req)
        if not resp.BizToken:
            raise FaceIdError("empty_response", "DetectAuth answered no BizToken", retryable=True)
        return DetectAuthResult(biz_token=resp.BizToken, url=resp.Url or "", request_id=resp.RequestId or "")

    def detect_info(self, biz_token: str) -> DetectInfo:
        from tencentcloud.faceid.v20180301 import models

        req = models.GetDetectInfoEnhancedRequest()
        req.BizToken = biz_token
        req.RuleId = self.rule_id
        req.InfoType = "0"  # text and best frame
        resp = self._call("GetDetectInfoEnhanced", req)
        text = resp.Text
        if text is None:
            raise FaceIdError("empty_response", "GetDetectInfoEnhanced answered no Text", retryable=True)
        frame = None
        if resp.BestFrame is not None and resp.BestFrame.BestFrame:
            try:
                frame = base64.b64decode(resp.BestFrame.BestFrame, validate=True)
            except (binascii.Error, ValueError):
                raise FaceIdError("bad_best_frame", "BestFrame is not base64") from None

        def as_int(v: Any) -> int | None:
            try:
                return int(v) if v is not None else None
            except (TypeError, ValueError):
                return None

        return DetectInfo(err_code=as_int(text.ErrCode), err_msg=text.ErrMsg or "", id_card=text.IdCard or "",
                          name=text.Name or "", live_status=as_int(text.LiveStatus),
                          compare_status=as_int(text.Comparestatus), sim=str(text.Sim or ""), best_frame=frame,
                          request_id=resp.RequestId or "")


def faceid_client_from_settings(settings: Any) -> TencentFaceIdClient | None:
    """The client chosen by ``QIANLI_FACEID_BACKEND`` (None when 'off')."""
    if settings.faceid_backend != "tencent":
        return None
    return TencentFaceIdClient(secret_id=settings.faceid_tencent_secret_id,
                               secret_key=settings.faceid_tencent_secret_key, rule_id=settings.faceid_tencent_rule_id,
                               region=settings.faceid_tencent_region, endpoint=settings.faceid_tencent_endpoint)
