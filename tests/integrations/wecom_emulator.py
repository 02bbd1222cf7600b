"""A local emulation of the WeCom (企业微信) server API's wire format, for tests (reusable: check-in, messages).

It speaks what QianLi calls, as documented: ``GET /cgi-bin/gettoken`` (corpid + corpsecret ->
access_token, expires_in), ``POST /cgi-bin/user/update``, ``POST /cgi-bin/message/send`` and
``POST /cgi-bin/checkin/getcheckindata``. Every answer is HTTP 200 with ``errcode``/``errmsg`` JSON,
as WeCom does. Tokens really expire (``token_expires_in`` seconds of wall time, or at once with
:meth:`WeComEmulator.expire_tokens`, which answers 42001 afterwards; unknown tokens 40014).

Usage::

    with WeComEmulator() as wecom:
        wecom.add_member("zhangsan")
        wecom.add_checkin("zhangsan", "上班打卡", datetime(...), exception_type="")
        client = ApiWeComClient(wecom.url, wecom.corp_id, wecom.secret, wecom.agent_id, redis)

``fail_next(path, errcode)`` makes the next call to ``path`` answer that errcode once;
``requests`` records every request (method, path, query, JSON body).
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tests.identity.wire_servers import WireServer

__all__ = ["WeComEmulator", "WeComState"]


@dataclass
class WeComState:
    corp_id: str
    secret: str
    agent_id: int
    token_expires_in: int = 7200
    tokens: dict[str, float] = field(default_factory=dict)  # token -> wall-clock expiry
    expired: set[str] = field(default_factory=set)
    token_calls: int = 0
    members: dict[str, dict[str, Any]] = field(default_factory=dict)  # userid -> {"enable": 1, ...}
    messages: list[dict[str, Any]] = field(default_factory=list)
    checkins: list[dict[str, Any]] = field(default_factory=list)
    failures: dict[str, list[int]] = field(default_factory=dict)  # path -> errcodes to answer next
    down: bool = False  # answer HTTP 502 with an HTML body (a gateway in front of WeCom)


class WeComEmulator(WireServer):
    def __init__(self, corp_id: str = "ww0123456789abcdef", secret: str = "wecom-app-secret-for-tests",
                 agent_id: int = 1000002) -> None:
        super().__init__()
        self.state = WeComState(corp_id=corp_id, secret=secret, agent_id=agent_id)

    # ---- arranging -----------------------------------------------------------------------
    @property
    def corp_id(self) -> str:
        return self.state.corp_id

    @property
    def secret(self) -> str:
        return self.state.secret

    @property
    def agent_id(self) -> int:
        return self.state.agent_id

    def add_member(self, userid: str, name: str = "", enable: int = 1) -> None:
        with self.lock:
            self.state.members[userid] = {"userid": userid, "name": name or userid, "enable": enable}

    def member(self, userid: str) -> dict[str, Any] | None:
        with self.lock:
            return dict(self.state.members[userid]) if userid in self.state.members else None

    def add_checkin(self, userid: str, checkin_type: str, at: datetime, *, exception_type: str = "",
                    scheduled: datetime | None = None, group_name: str = "打卡规则一", location_title: str = "总部") -> None:
        with self.lock:
            self.state.checkins.append({
                "userid": userid, "groupname": group_name, "checkin_type": checkin_type,
                "exception_type": exception_type, "checkin_time": int(at.timestamp()),
                "location_title": location_title, "location_detail": "", "wifiname": "", "notes": "",
                "wifimac": "", "mediaids": [], "sch_checkin_time": int(scheduled.timestamp()) if scheduled else 0,
                "groupid": 1, "schedule_id": 0, "timeline_id": 1})

    def expire_tokens(self) -> None:
        """Every token issued so far is now expired (42001)."""
        with self.lock:
            self.state.expired.update(self.state.tokens)
            self.state.tokens.clear()

    def fail_next(self, path: str, errcode: int) -> None:
        with self.lock:
            self.state.failures.setdefault(path, []).append(errcode)

    def calls(self, path: str) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.requests if r["path"] == path]

    # ---- the wire ---------------------------------------------------------------------------
    @staticmethod
    def _err(code: int, msg: str) -> tuple[int, dict[str, Any]]:
        return 200, {"errcode": code, "errmsg": f"{msg}, hint: [{secrets.token_hex(4)}], from ip: 127.0.0.1"}

    def _token_error(self, query: dict[str, list[str]]) -> tuple[int, dict[str, Any]] | None:
        token = query.get("access_token", [""])[0]
        if not token:
            return self._err(41001, "access_token missing")
        expiry = self.state.tokens.get(token)
        if expiry is None:
            if token in self.state.expired:
                return self._err(42001, "access_token expired")
            return self._err(40014, "invalid access_token")
        if time.time() >= expiry:
            self.state.tokens.pop(token, None)
            self.state.expired.add(token)
            return self._err(42001, "access_token expired")
        return None

    def handle(self, method, path, query, headers, body):
        st = self.state
        try:
            req = json.loads(body) if body else {}
        except ValueError:
            req = None
        with self.lock:
            self.requests.append({"method": method, "path": path, "query": {k: v[0] for k, v in query.items()},
                                  "body": req})
            if st.down:
                return 502, b"<html><body>502 Bad Gateway</body></html>"
            queued = st.failures.get(path)
            if queued:
                return self._err(queued.pop(0), "injected failure")
            if path == "/cgi-bin/gettoken" and method == "GET":
                q = {k: v[0] for k, v in query.items()}
                if q.get("corpid") != st.corp_id:
                    return self._err(40013, "invalid corpid")
                if q.get("corpsecret") != st.secret:
                    return self._err(40001, "invalid credential")
                st.token_calls += 1
                token = "WWTOKEN-" + secrets.token_hex(16)
                st.tokens[token] = time.time() + st.token_expires_in
                return 200, {"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": st.token_expires_in}
            if method != "POST" or path not in ("/cgi-bin/user/update", "/cgi-bin/message/send",
                                                 "/cgi-bin/checkin/getcheckindata"):
                return 404, {"errcode": 404, "errmsg": "not found"}
            bad = self._token_error(query)
            if bad:
                return bad
            if not isinstance(req, dict):
                return self._err(47001, "data format error")
            if path == "/cgi-bin/user/update":
                userid = req.get("userid")
                if not userid:
                    return self._err(41009, "missing userid")
                member = st.members.get(userid)
                if member is None:
                    return self._err(60111, "userid not found")
                if "enable" in req:
                    if req["enable"] not in (0, 1):
                        return self._err(60131, "invalid enable")
                    member["enable"] = req["enable"]
                return 200, {"errcode": 0, "errmsg": "updated"}
            if path == "/cgi-bin/message/send":
                if req.get("agentid") != st.agent_id:
                    return self._err(40056, "invalid agentid")
                if req.get("msgtype") != "text" or not (req.get("text") or {}).get("content"):
                    return self._err(41016, "missing text content")
                users = [u for u in str(req.get("touser", "")).split("|") if u]
                invalid = [u for u in users if u not in st.members or not st.members[u]["enable"]]
                if users and len(invalid) == len(users):
                    return self._err(81013, "user & party & tag all invalid")
                msgid = secrets.token_urlsafe(24)
                st.messages.append({"msgid": msgid, "touser": [u for u in users if u not in invalid],
                                    "content": req["text"]["content"], "agentid": req["agentid"]})
                return 200, {"errcode": 0, "errmsg": "ok", "invaliduser": "|".join(invalid), "invalidparty": "",
                             "invalidtag": "", "unlicenseduser": "", "msgid": msgid, "response_code": ""}
            # /cgi-bin/checkin/getcheckindata
            try:
                t0, t1 = int(req["starttime"]), int(req["endtime"])
                kind = int(req.get("opencheckindatatype", 3))
                users = list(req["useridlist"])
            except (KeyError, TypeError, ValueError):
                return self._err(301023, "invalid param")
            if t1 < t0 or t1 - t0 > 30 * 86400:
                return self._err(301023, "time range exceeds 30 days")
            if not users or len(users) > 100:
                return self._err(301024, "useridlist size must be 1-100")
            wanted = {1: ("上班打卡", "下班打卡"), 2: ("外出打卡",), 3: ("上班打卡", "下班打卡", "外出打卡")}.get(kind, ())
            data = [c for c in st.checkins if c["userid"] in users and t0 <= c["checkin_time"] <= t1
                    and c["checkin_type"] in wanted]
            return 200, {"errcode": 0, "errmsg": "ok", "checkindata": data}
