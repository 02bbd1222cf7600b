"""Local HTTP servers that speak the providers' documented wire formats, for tests.

Each runs ``http.server`` in a thread on 127.0.0.1 with a random port. They implement only what
QianLi calls, with the documented JSON shapes and error codes, and record what they received so
tests can assert on the exact requests (and that secrets go only where they should).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

__all__ = ["WireServer", "WeChatWireServer", "TencentSmsWireServer", "AliyunSmsWireServer", "TencentFaceIdWireServer"]


class WireServer:
    """Base: start/stop a threaded server whose handler calls ``self.handle``."""

    def __init__(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def _dispatch(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                url = urlparse(self.path)
                status, payload = owner.handle(self.command, url.path, parse_qs(url.query), dict(self.headers), body)
                raw = json.dumps(payload).encode() if not isinstance(payload, bytes) else payload
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            do_GET = do_POST = _dispatch

        self.lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()

    def handle(self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str],
               body: bytes) -> tuple[int, Any]:
        raise NotImplementedError


@dataclass
class _Login:
    openid: str
    unionid: str | None = None


@dataclass
class WeChatState:
    """What the fake WeChat knows; tests arrange it."""

    appid: str
    secret: str
    logins: dict[str, _Login] = field(default_factory=dict)  # code -> who
    used_codes: set[str] = field(default_factory=set)
    busy_codes: set[str] = field(default_factory=set)  # answer -1 once per code
    rate_limited: bool = False  # every call answers 45011
    valid_tokens: set[str] = field(default_factory=set)
    no_quota: set[str] = field(default_factory=set)  # openids without subscription quota -> 43101
    token_delay_s: float = 0.0
    token_expires_in: int = 7200
    token_calls: int = 0
    forced_refreshes: int = 0
    sent: list[dict[str, Any]] = field(default_factory=list)


class WeChatWireServer(WireServer):
    """GET /sns/jscode2session, POST /cgi-bin/stable_token, POST /cgi-bin/message/subscribe/send."""

    def __init__(self, appid: str = "wxtest0000000001", secret: str = "s3cr3t-app-secret") -> None:
        super().__init__()
        self.state = WeChatState(appid=appid, secret=secret)

    def add_login(self, openid: str, unionid: str | None = None) -> str:
        code = "0" + secrets.token_hex(15)
        self.state.logins[code] = _Login(openid, unionid)
        return code

    def expire_all_tokens(self) -> None:
        with self.lock:
            self.state.valid_tokens.clear()

    @staticmethod
    def _err(code: int, msg: str) -> tuple[int, dict[str, Any]]:
        return 200, {"errcode": code, "errmsg": msg}  # WeChat answers errors with HTTP 200

    def handle(self, method, path, query, headers, body):
        st = self.state
        with self.lock:
            self.requests.append({"method": method, "path": path, "query": query, "body": body})
        if st.rate_limited:
            return self._err(45011, "api minute-quota reach limit  mustslower  retry next minute")
        if path == "/sns/jscode2session" and method == "GET":
            q = {k: v[0] for k, v in query.items()}
            if q.get("appid") != st.appid or q.get("secret") != st.secret:
                return self._err(40125, "invalid appsecret")
            if q.get("grant_type") != "authorization_code":
                return self._err(40002, "invalid grant_type")
            code = q.get("js_code", "")
            with self.lock:
                if code in st.busy_codes:
                    st.busy_codes.discard(code)
                    return self._err(-1, "system error")
                if code in st.used_codes:
                    return self._err(40163, "code been used")
                login = st.logins.pop(code, None)
                if login is None:
                    return self._err(40029, "invalid code")
                st.used_codes.add(code)
            answer = {"openid": login.openid, "session_key": "SESSIONKEY" + secrets.token_hex(8)}
            if login.unionid:
                answer["unionid"] = login.unionid
            return 200, answer
        if path == "/cgi-bin/stable_token" and method == "POST":
            req = json.loads(body or b"{}")
            if req.get("grant_type") != "client_credential":
                return self._err(40002, "invalid grant_type")
            if req.get("appid") != st.appid or req.get("secret") != st.secret:
                return self._err(40125, "invalid appsecret")
            if st.token_delay_s:
                time.sleep(st.token_delay_s)
            with self.lock:
                st.token_calls += 1
                force = bool(req.get("force_refresh"))
                if force:
                    st.forced_refreshes += 1
                if force or not st.valid_tokens:
                    st.valid_tokens = {"TOKEN-" + secrets.token_hex(12)}
                token = next(iter(st.valid_tokens))
            return 200, {"access_token": token, "expires_in": st.token_expires_in}
        if path == "/cgi-bin/message/subscribe/send" and method == "POST":
            token = query.get("access_token", [""])[0]
            with self.lock:
                if token not in st.valid_tokens:
                    return self._err(40001, "invalid credential, access_token is invalid or not latest")
            req = json.loads(body or b"{}")
            if not req.get("touser") or not req.get("template_id"):
                return self._err(47003, "argument invalid!")
            if req["touser"] in st.no_quota:
                return self._err(43101, "user refuse to accept the msg")
            msgid = int(time.time() * 1000) + len(st.sent)
            with self.lock:
                st.sent.append(req)
            return 200, {"errcode": 0, "errmsg": "ok", "msgid": msgid}
        return 404, {"errcode": 404, "errmsg": "not found"}


class TencentSmsWireServer(WireServer):
    """Tencent Cloud API 3.0 ``SendSms`` (2021-01-11): POST / with X-TC-Action, answers {"Response": ...}."""

    def __init__(self) -> None:
        super().__init__()
        self.phone_status: dict[str, tuple[str, str]] = {}  # "+86..." -> (Code, Message)
        self.api_error: tuple[str, str] | None = None

    def handle(self, method, path, query, headers, body):
        req = json.loads(body or b"{}")
        low = {k.lower(): v for k, v in headers.items()}
        with self.lock:
            self.requests.append({"method": method, "headers": low, "body": req})
        rid = secrets.token_hex(8)
        if low.get("x-tc-action") != "SendSms" or low.get("x-tc-version") != "2021-01-11":
            return 200, {"Response": {"Error": {"Code": "InvalidAction", "Message": "bad action"}, "RequestId": rid}}
        if not low.get("authorization", "").startswith("TC3-HMAC-SHA256 Credential="):
            return 200, {"Response": {"Error": {"Code": "AuthFailure.SignatureFailure", "Message": "no sig"},
                                      "RequestId": rid}}
        if self.api_error:
            code, msg = self.api_error
            return 200, {"Response": {"Error": {"Code": code, "Message": msg}, "RequestId": rid}}
        statuses = []
        for phone in req.get("PhoneNumberSet", []):
            code, msg = self.phone_status.get(phone, ("Ok", "send success"))
            statuses.append({"SerialNo": "2640:" + secrets.token_hex(10) if code == "Ok" else "",
                             "PhoneNumber": phone, "Fee": 1 if code == "Ok" else 0, "SessionContext": "",
                             "Code": code, "Message": msg, "IsoCode": "CN"})
        return 200, {"Response": {"SendStatusSet": statuses, "RequestId": rid}}


class AliyunSmsWireServer(WireServer):
    """Aliyun RPC ``SendSms`` (2017-05-25): parameters in the query/form, answers {Code, Message, BizId}."""

    def __init__(self) -> None:
        super().__init__()
        self.answer_code: tuple[str, str] = ("OK", "OK")
        self.http_error: tuple[int, str, str] | None = None  # (status, Code, Message)

    def handle(self, method, path, query, headers, body):
        params = {k: v[0] for k, v in query.items()}
        if body:
            params.update({k: v[0] for k, v in parse_qs(body.decode()).items()})
        low = {k.lower(): v for k, v in headers.items()}
        with self.lock:
            self.requests.append({"method": method, "params": params, "headers": low})
        rid = secrets.token_hex(8).upper()
        if self.http_error:
            status, code, msg = self.http_error
            return status, {"Code": code, "Message": msg, "RequestId": rid}
        # Signature V3 (current SDKs) puts the action in x-acs-action; the classic RPC form in the query.
        action = low.get("x-acs-action") or params.get("Action")
        if action != "SendSms" or low.get("x-acs-version", params.get("Version")) != "2017-05-25":
            return 400, {"Code": "InvalidAction.NotFound", "Message": "bad action", "RequestId": rid}
        if "authorization" not in low and "Signature" not in params:
            return 400, {"Code": "MissingSignature", "Message": "no signature", "RequestId": rid}
        code, msg = self.answer_code
        answer = {"Code": code, "Message": msg, "RequestId": rid}
        if code == "OK":
            answer["BizId"] = "9006" + secrets.token_hex(8)
        return 200, answer


class TencentFaceIdWireServer(WireServer):
    """Tencent Cloud API 3.0 FaceID (2018-03-01): ``DetectAuth`` and ``GetDetectInfoEnhanced``.

    ``outcomes[biz_token]`` sets what GetDetectInfoEnhanced answers for a token once the person has
    "done" the check: a dict with ``err_code`` (0 = passed), ``id_card``, ``name`` and ``best_frame``
    (raw image bytes). Tokens it never issued answer ``InvalidParameterValue.BizTokenIllegal``."""

    def __init__(self) -> None:
        super().__init__()
        self.issued: dict[str, dict[str, Any]] = {}
        self.outcomes: dict[str, dict[str, Any]] = {}
        self.api_error: tuple[str, str] | None = None

    def handle(self, method, path, query, headers, body):
        import base64

        req = json.loads(body or b"{}")
        low = {k.lower(): v for k, v in headers.items()}
        with self.lock:
            self.requests.append({"method": method, "headers": low, "body": req})
        rid = secrets.token_hex(8)

        def error(code: str, msg: str):
            return 200, {"Response": {"Error": {"Code": code, "Message": msg}, "RequestId": rid}}

        action = low.get("x-tc-action")
        if action not in ("DetectAuth", "GetDetectInfoEnhanced") or low.get("x-tc-version") != "2018-03-01":
            return error("InvalidAction", "bad action")
        if not low.get("authorization", "").startswith("TC3-HMAC-SHA256 Credential="):
            return error("AuthFailure.SignatureFailure", "no sig")
        if self.api_error:
            return error(*self.api_error)
        if not req.get("RuleId"):
            return error("MissingParameter", "RuleId")
        if action == "DetectAuth":
            token = "BIZ" + secrets.token_hex(16).upper()
            with self.lock:
                self.issued[token] = {"IdCard": req.get("IdCard"), "Name": req.get("Name"), "Extra": req.get("Extra")}
            return 200, {"Response": {"Url": f"https://faceid.qq.com/?token={token}", "BizToken": token,
                                      "RequestId": rid}}
        token = req.get("BizToken")
        if token not in self.issued:
            return error("InvalidParameterValue.BizTokenIllegal", "BizToken illegal")
        out = self.outcomes.get(token)
        if out is None:  # the person has not done the check yet
            text = {"ErrCode": None, "ErrMsg": None, "IdCard": None, "Name": None}
            return 200, {"Response": {"Text": text, "IdCardData": None, "BestFrame": None, "RequestId": rid}}
        issued = self.issued[token]
        text = {"ErrCode": out.get("err_code", 0), "ErrMsg": out.get("err_msg", "成功"),
                "IdCard": out.get("id_card", issued["IdCard"]), "Name": out.get("name", issued["Name"]),
                "LiveStatus": 0 if out.get("err_code", 0) == 0 else 1001, "LiveMsg": "成功",
                "Comparestatus": 0 if out.get("err_code", 0) == 0 else 1002, "Comparemsg": "成功",
                "Sim": "92.81", "Extra": issued.get("Extra"), "LivenessMode": 2, "CompareLibType": "权威库"}
        frame = out.get("best_frame")
        best = {"BestFrame": base64.b64encode(frame).decode(), "BestFrames": []} if frame else None
        return 200, {"Response": {"Text": text, "IdCardData": None, "BestFrame": best, "VideoData": None,
                                  "RequestId": rid}}
