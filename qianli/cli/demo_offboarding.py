"""``qianli demo --scenario offboarding``: one case from the form to ``closed``, over HTTP.

The resignation demo (``qianli.cli.demo``) runs first, with two additions of this scenario: before
the case opens, a local webhook receiver is started (127.0.0.1, a free port) and registered with
``createWebhookEndpoint`` for every event type; after final approval the scenario goes on:

1. the handover tasks (``listCaseTasks``, ``completeTask`` for all but one, ``listMyCaseTasks``): the one
   left open shows that neither the certificate nor closing waits for the handover;
2. the development clock (``POST /api/v1/dev/clock``, development deployments only) moves to the
   last day; the certificate of termination is issued (``issueTerminationCertificate``; the
   scheduler may have issued it already) and downloaded by the employee
   (``getTerminationCertificate``), then checked with ``verifyDocument``;
3. ``closeCase`` is refused on the last day (409 ``case_last_day_not_passed``), the clock moves one
   more day: the revocation scheduled for 23:59 Asia/Shanghai of the last day is now due, the
   scheduler's sweep sends it (``getCaseAccessRevocation`` shows it sent), the receiver gets
   ``employee.access_revoke`` and ``employee.payroll_stop`` (signatures checked), confirms the
   revocation with the callback token of its copy (``confirmAccessRevocation``, reporting two systems
   behind it) and HR sees every system confirmed;
4. the case is closed: the employee's token is refused from then on;
5. the receiver waits for ``case.closed``.

Left in ``--out``: ``termination-certificate.pdf``, ``webhook-deliveries.jsonl`` (each delivery as
received: headers and body, one JSON object a line) and ``webhook-secret.txt``. The clock offset is
put back to what it was when the demo ends, failed or not.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from datetime import date, datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cases.clock import SHANGHAI
from qianli.cli.demo import CLOCK_PATH, DemoContext, DemoFailed, DemoHooks, _common_name, _json, _sha256, dev_clock

__all__ = ["WebhookReceiver", "OffboardingHooks", "CLOCK_PATH", "verify_standard_webhook"]


def verify_standard_webhook(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """The Standard Webhooks check a receiver makes: HMAC-SHA256 over ``id.timestamp.body`` with the
    base64 key of ``whsec_…``, compared with each ``v1,`` signature of the header."""
    h = {k.lower(): v for k, v in headers.items()}
    msg_id, ts, sigs = h.get("webhook-id", ""), h.get("webhook-timestamp", ""), h.get("webhook-signature", "")
    if not (msg_id and ts and sigs and secret.startswith("whsec_")):
        return False
    key = base64.b64decode(secret.removeprefix("whsec_"))
    expected = base64.b64encode(hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()).decode()
    return any(part.startswith("v1,") and hmac.compare_digest(part[3:], expected) for part in sigs.split())


class WebhookReceiver:
    """A tiny HTTP receiver on 127.0.0.1 (free port): appends every POST to ``path`` as one JSON line
    (received_at, path, headers, body) and answers 204."""

    def __init__(self, path: Path):
        self.path = path
        self.path.write_text("")
        self.lock = threading.Lock()
        self.records: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                record = {"received_at": datetime.now(timezone.utc).isoformat(), "method": "POST", "path": self.path,
                          "headers": dict(self.headers.items()), "body": body.decode("utf-8", "replace")}
                with receiver.lock:
                    receiver.records.append(record)
                    with receiver.path.open("a", encoding="utf-8") as f:
                        f.write(json.dumps(record, ensure_ascii=False) + "\n")
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_args):  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, name="webhook-receiver", daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/qianli-webhooks"

    def events(self) -> list[dict[str, Any]]:
        with self.lock:
            out = []
            for r in self.records:
                try:
                    out.append({"record": r, "body": json.loads(r["body"])})
                except ValueError:
                    continue
            return out

    def wait_for(self, event_type: str, *, case_id: str | None = None, timeout_s: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            for e in self.events():
                body = e["body"]
                data = body.get("data") or {}
                if body.get("type") == event_type and (case_id is None or data.get("case_id") == case_id):
                    return e
            if time.monotonic() > deadline:
                got = sorted({e["body"].get("type", "?") for e in self.events()})
                raise DemoFailed(f"no {event_type} webhook for the case within {timeout_s:.0f} s (received: "
                                 f"{', '.join(got) or 'nothing'}); is an rq worker running?")
            time.sleep(0.3)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class OffboardingHooks(DemoHooks):
    """The offboarding scenario on top of the resignation demo (see the module docstring)."""

    def __init__(self, *, webhook_wait_s: float = 60.0, certificate_wait_s: float = 8.0, approved_wait_s: float = 15.0,
                 revocation_wait_s: float = 75.0):
        self.webhook_wait_s = webhook_wait_s
        self.revocation_wait_s = revocation_wait_s
        self.approved_wait_s = approved_wait_s
        self.certificate_wait_s = certificate_wait_s
        self.receiver: WebhookReceiver | None = None
        self.secret: str | None = None
        self.clock_before: float | None = None

    # -- before the case: the receiver and its endpoint ------------------------------------------------
    def prepare(self, ctx: DemoContext) -> None:
        def start():
            self.receiver = WebhookReceiver(ctx.out_dir / "webhook-deliveries.jsonl")
            ctx.files["webhook_deliveries"] = str(self.receiver.path)
            return self.receiver, f"listening on {self.receiver.url}"
        ctx.run.step("启动本地 webhook 接收端 (127.0.0.1, free port)", start)
        assert self.receiver is not None

        def endpoint():
            token = ctx.hr_token("hr_manager")
            types = _json(ctx.api.call("listWebhookEventTypes", token=token))
            names = [t["type"] if isinstance(t, dict) else t for t in (types.get("items", types)
                                                                     if isinstance(types, dict) else types)]
            body = _json(ctx.api.call("createWebhookEndpoint", token=token, expect=(201,), json={
                "name": "签离演示接收端", "url": self.receiver.url, "description": "qianli demo --scenario offboarding",
                "event_types": names}))
            self.secret = body["secret"]
            path = ctx.out_dir / "webhook-secret.txt"
            path.write_text(self.secret + "\n")
            ctx.files["webhook_secret"] = str(path)
            ctx.facts["webhook_endpoint"] = body["id"]
            return body, f"endpoint {body['id']} for {', '.join(names)}; secret → {path}"
        ctx.run.step("HR 注册 webhook 接收端 createWebhookEndpoint (Standard Webhooks secret)", endpoint)

    # -- the revocation at 23:59 of the last day ------------------------------------------------------
    def _revocation(self, ctx: DemoContext, hr: str) -> None:
        """The scheduled revocation (23:59 Asia/Shanghai of the last day, now past on the service's clock) is
        sent by the scheduler's sweep: the receiver gets ``employee.access_revoke`` and
        ``employee.payroll_stop``, confirms the revocation for its system and two systems behind it with
        the callback of its copy of the event (``confirmAccessRevocation``), and HR sees every system
        confirmed (``getCaseAccessRevocation``)."""
        api, run, ids = ctx.api, ctx.run, {"case_id": ctx.case["id"]}
        assert self.receiver is not None
        if "getCaseAccessRevocation" not in api.ops:
            run.step("权限回收 (getCaseAccessRevocation not in this service's contract: skipped)",
                     lambda: (None, "access revocation is not deployed"))
            return

        def sent():
            deadline = time.monotonic() + self.revocation_wait_s
            while True:
                body = _json(api.call("getCaseAccessRevocation", token=hr, path_params=ids))
                rev = body.get("revocation") or {}
                if rev.get("status") == "sent":
                    break
                if time.monotonic() > deadline:
                    raise DemoFailed(f"the revocation due {rev.get('due_at')} was not sent within "
                                     f"{self.revocation_wait_s:.0f} s (status {rev.get('status')}): is `qianli "
                                     "scheduler` running? It sweeps every QIANLI_SWEEP_INTERVAL_S",
                                     body=json.dumps(body, ensure_ascii=False))
                time.sleep(0.5)
            due = datetime.fromisoformat(rev["due_at"]).astimezone(SHANGHAI)
            return body, (f"mode {rev['mode']}, due {due:%Y-%m-%d %H:%M} (Beijing, the last day), sent "
                          f"{datetime.fromisoformat(rev['sent_at']).astimezone(SHANGHAI):%Y-%m-%d %H:%M:%S} by the "
                          f"scheduler's sweep")
        run.step("最后工作日 23:59 权限回收已发出 getCaseAccessRevocation (scheduler)", sent)

        received: dict[str, Any] = {}
        for event_type, label in (("employee.access_revoke", "权限回收"), ("employee.payroll_stop", "停发工资")):
            def got(event_type=event_type):
                e = self.receiver.wait_for(event_type, case_id=ctx.case["id"], timeout_s=self.webhook_wait_s)
                if not verify_standard_webhook(self.secret or "", e["record"]["headers"], e["record"]["body"].encode()):
                    raise DemoFailed(f"the {event_type} webhook's signature does not verify",
                                     body=json.dumps(e["record"], ensure_ascii=False)[:2000])
                received[event_type] = data = e["body"]["data"]
                who = data.get("employee") or {}
                if event_type == "employee.payroll_stop":
                    return e, f"{who.get('employee_no')} {who.get('name')}: pay through {data.get('pay_through')}"
                return e, (f"{who.get('employee_no')} {who.get('name')} ({who.get('department')}), effective "
                           f"{data.get('effective_at')}; confirmation callback for system "
                           f"{(data.get('confirmation') or {}).get('system')!r}")
            run.step(f"接收端收到 {event_type}（{label}，签名校验通过）", got)

        behind = [{"system": "门禁系统", "result": "revoked", "detail": "门禁卡已注销"},
                  {"system": "VPN", "result": "revoked", "detail": "VPN 账号已停用"}]

        def confirm():
            conf = received["employee.access_revoke"].get("confirmation") or {}
            if not conf.get("token"):
                raise DemoFailed("the employee.access_revoke delivery carries no confirmation token",
                                 body=json.dumps(received["employee.access_revoke"], ensure_ascii=False))
            payload = {"token": conf["token"], "result": "revoked", "detail": "演示接收端：账号已停用",
                       "systems": behind}
            url = conf.get("url") or ""
            if url.startswith(api.base + "/"):  # as a receiver does: the URL of its copy of the event
                resp = api._send("POST", url[len(api.base):], None, json=payload)
                if resp.status_code != 200:
                    raise DemoFailed(f"POST {url} answered {resp.status_code}", status=resp.status_code,
                                     body=resp.text[:2000])
            else:  # the service's public URL is not the one the demo reaches: the contract's path
                resp = api.call("confirmAccessRevocation", json=payload)
            body = _json(resp)
            return body, (f"{body['system']}: {body['status']} (+ {', '.join(b['system'] for b in behind)} "
                          f"behind it)")
        run.step("接收端确认已回收 confirmAccessRevocation (the event's callback token)", confirm)

        def all_confirmed():
            body = _json(api.call("getCaseAccessRevocation", token=hr, path_params=ids))
            confs = body.get("confirmations") or []
            if not body.get("all_confirmed") or not confs:
                raise DemoFailed("HR does not see every system confirmed", body=json.dumps(body, ensure_ascii=False))
            ctx.facts["access_revocation"] = body
            return body, "all confirmed: " + "; ".join(f"{c['system']} {c['status']}" for c in confs)
        run.step("HR 查看权限回收确认 getCaseAccessRevocation (权限验证)", all_confirmed)

    # -- after final approval ---------------------------------------------------------------------------
    def finish(self, ctx: DemoContext) -> None:
        try:
            self._finish(ctx)
        finally:
            self._restore_clock(ctx)
            if self.receiver is not None:
                self.receiver.stop()

    def _clock(self, ctx: DemoContext, body: dict[str, Any] | None = None) -> dict[str, Any]:
        return dev_clock(ctx.api, body)

    def _restore_clock(self, ctx: DemoContext) -> None:
        if self.clock_before is None:
            return
        try:
            self._clock(ctx, {"offset_seconds": self.clock_before})
            ctx.run.echo(f"     (development clock offset put back to {self.clock_before:.0f} s)")
        except DemoFailed as exc:
            ctx.run.echo(f"     (could not put the development clock back: {exc.message})")

    def _sign_in_again(self, ctx: DemoContext) -> str:
        """Weeks later the sessions of the morning have expired: HR logs in again, the employee opens the
        mini-program again (wechatLogin with the same WeChat user). Returns the HR specialist's token."""
        ctx.hr_tokens.clear()
        hr = ctx.hr_token("hr_specialist")

        def employee():
            body = _json(ctx.api.call("wechatLogin", json={"code": f"dev-{ctx.facts['openid']}"}))
            if not body.get("bound"):
                raise DemoFailed("the employee's WeChat user is no longer bound", body=json.dumps(body, ensure_ascii=False))
            ctx.emp["token"] = body["access_token"]
            return body, f"{body['employee']['name']} signed in again"
        ctx.run.step("员工重新打开小程序 wechatLogin", employee)
        return hr

    def _finish(self, ctx: DemoContext) -> None:
        api, run, ids = ctx.api, ctx.run, {"case_id": ctx.case["id"]}
        hr = ctx.hr_token("hr_specialist")
        assert self.receiver is not None

        def approved_webhook():
            # case.approved is published at final approval by the offboarding start; a service without it is
            # reported, not failed (the closing event below is required).
            try:
                e = self.receiver.wait_for("case.approved", case_id=ctx.case["id"], timeout_s=self.approved_wait_s)
            except DemoFailed:
                return None, "none received: this service does not publish case.approved"
            if not verify_standard_webhook(self.secret or "", e["record"]["headers"], e["record"]["body"].encode()):
                raise DemoFailed("the case.approved webhook's signature does not verify with the endpoint's secret",
                                 body=json.dumps(e["record"], ensure_ascii=False)[:2000])
            headers = {k.lower(): v for k, v in e["record"]["headers"].items()}
            return e, f"webhook-id {headers.get('webhook-id')}, signature verified (Standard Webhooks)"
        run.step("接收端收到 case.approved (签名校验通过)", approved_webhook)

        if "listCaseTasks" in api.ops and "completeTask" in api.ops:
            def tasks():
                body = _json(api.call("listCaseTasks", token=hr, path_params=ids))
                items = body["tasks"] if isinstance(body, dict) else body
                if not items:
                    raise DemoFailed("final approval created no handover tasks", body=json.dumps(body, ensure_ascii=False))
                return items, f"{len(items)} handover tasks: " + "; ".join(
                    f"{t.get('title')} ({t.get('owner_label') or t.get('owner_role') or '?'}, due {t.get('due_date')})"
                    for t in items[:4]) + (" …" if len(items) > 4 else "")
            items = [t for t in run.step("交接任务 listCaseTasks", tasks) if t.get("status") == "open"]
            # All but one are done; the last stays open to show that neither the certificate nor closing waits
            # for it (the closing record lists it).
            for t in items[:-1]:
                def complete(t=t):
                    body = _json(api.call("completeTask", token=ctx.hr_token("hr_manager"),
                                          path_params={"task_id": t["id"]}, json={"note": "演示：已完成交接"}))
                    return body, f"{body.get('title')}: {body.get('status')}"
                run.step(f"完成交接任务 completeTask ({t.get('title')})", complete)
            if "listMyCaseTasks" in api.ops:
                def mine():
                    body = _json(api.call("listMyCaseTasks", token=ctx.emp["token"], path_params=ids))
                    tasks_ = body.get("tasks", []) if isinstance(body, dict) else body
                    done = sum(1 for t in tasks_ if t.get("status") == "done")
                    return body, f"the employee sees {done}/{len(tasks_)} done"
                run.step("员工查看交接进度 listMyCaseTasks (mini-program)", mine)
        else:
            run.step("交接任务 (listCaseTasks/completeTask not in this service's contract: skipped)",
                     lambda: (None, "the offboarding tasks are not deployed"))

        last_day = date.fromisoformat(ctx.case.get("agreed_last_day") or _json(api.call(
            "getCase", token=hr, path_params=ids))["agreed_last_day"])

        def to_last_day():
            now = self._clock(ctx)
            self.clock_before = float(now["offset_seconds"])
            today = date.fromisoformat(now["now_beijing"][:10])
            days = (last_day - today).days
            state = self._clock(ctx, {"advance_days": days}) if days > 0 else now
            return state, f"advanced {days} days: service time {state['now_beijing']} (Beijing; last day {last_day})"
        run.step(f"开发时钟拨到最后工作日 POST {CLOCK_PATH} advance_days", to_last_day)
        hr = self._sign_in_again(ctx)

        def certificate():
            deadline = time.monotonic() + self.certificate_wait_s
            while time.monotonic() < deadline:  # the scheduler's last-day job may issue it first
                mine = _json(api.call("getMyCase", token=ctx.emp["token"], path_params=ids))
                if mine.get("termination_certificate"):
                    break
                time.sleep(0.5)
            resp = api.call("issueTerminationCertificate", token=hr, expect=(200, 201), path_params=ids, json={})
            body = _json(resp)
            by = "the scheduler's last-day job" if resp.status_code == 200 else "HR now"
            return body, f"issued by {by} ({body['issued_by']}), termination date {body['termination_date']}, " \
                         f"{body['pades_level']}"
        cert = run.step("出具解除劳动合同证明 issueTerminationCertificate", certificate)

        def download():
            resp = api.call("getTerminationCertificate", token=ctx.emp["token"], path_params=ids)
            if resp.headers.get("X-Document-SHA256") != _sha256(resp.content) or _sha256(resp.content) != cert["sha256"]:
                raise DemoFailed("the downloaded certificate is not the issued one")
            path = ctx.out_dir / "termination-certificate.pdf"
            path.write_bytes(resp.content)
            ctx.files["termination_certificate"] = str(path)
            return resp.content, f"{len(resp.content) // 1024} KiB, SHA-256 {cert['sha256'][:16]}… → {path}"
        pdf = run.step("员工下载证明 getTerminationCertificate (mini-program)", download)

        def verify():
            body = _json(api.call("verifyDocument", token=hr,
                                  files={"file": ("termination-certificate.pdf", pdf, "application/pdf")}))
            sigs = [s for s in body["signatures"] if s["kind"] == "signature"]
            if not body["ok"] or not sigs or sigs[0].get("pades_level") != "B-LTA":
                raise DemoFailed("verifyDocument does not accept the certificate's seal",
                                 body=json.dumps(body, ensure_ascii=False)[:3000])
            return body, f"ok: {_common_name(sigs[0].get('signer'))} {sigs[0].get('pades_level')}"
        run.step("验证证明的公司印章 verifyDocument", verify)

        def close_refused():
            resp = api.call("closeCase", token=hr, expect=(409,), path_params=ids, json={})
            body = _json(resp)
            if body.get("code") != "case_last_day_not_passed":
                raise DemoFailed(f"closeCase on the last day answered {body.get('code')}", status=409,
                                 body=resp.text[:2000])
            return body, f"409 {body['code']} (closable from {body['details'].get('closable_from')})"
        run.step("最后工作日当天结案被拒 closeCase", close_refused)

        run.step(f"开发时钟再拨一天 POST {CLOCK_PATH} advance_days=1",
                 lambda: (lambda s: (s, f"service time {s['now_beijing']} (Beijing)"))(
                     self._clock(ctx, {"advance_days": 1})))
        hr = self._sign_in_again(ctx)
        self._revocation(ctx, hr)

        def close():
            body = _json(api.call("closeCase", token=hr, path_params=ids, json={"comment": "演示：离职手续办结"}))
            ctx.facts["closing"] = body
            return body, (f"state {body['state']}; open tasks listed {len(body['open_tasks'])}; face templates deleted "
                          f"{body['face_data_deleted']['templates']}; refresh tokens revoked "
                          f"{body['refresh_tokens_revoked']}")
        run.step("结案 closeCase", close)

        def session_ended():
            resp = api.call("getMyCase", token=ctx.emp["token"], expect=(401,), path_params=ids)
            code = _json(resp).get("code")
            if code != "session_revoked":
                raise DemoFailed(f"the employee's token was refused with {code}, not session_revoked", status=401,
                                 body=resp.text[:2000])
            return resp, f"401 {code} (the token issued minutes before closing)"
        run.step("员工登录已失效 getMyCase → 401", session_ended)

        def closed_webhook():
            e = self.receiver.wait_for("case.closed", case_id=ctx.case["id"], timeout_s=self.webhook_wait_s)
            if not verify_standard_webhook(self.secret or "", e["record"]["headers"], e["record"]["body"].encode()):
                raise DemoFailed("the case.closed webhook's signature does not verify")
            n = len(self.receiver.records)
            types = sorted({x["body"].get("type", "?") for x in self.receiver.events()})
            return e, f"{n} deliveries received ({', '.join(types)})"
        run.step("接收端收到 case.closed", closed_webhook)
