"""``qianli demo --scenario absconding``: an employee who stops coming, driven through the *running*
service over HTTP (issue 16).

HR imports the roster and the attendance file (a WeCom-style daily report: clock-ins up to the last
working day before the next statutory holiday, then none for three working days after it), the risk
list shows the employee red, HR confirms the departure, serves the sealed return-to-work notice
(the employee reads it in the mini-program: the read receipt; HR records the post), the deadline
passes, HR records the union notification (art. 43), the company's chain approves the art. 39(2)
dismissal and the sealed dismissal notice is served; both PDFs are checked by ``verifyDocument`` and
the dossier is exported.

Time moves with the development clock offset (``POST /api/v1/dev/clock``, development and test
deployments only; production has no such endpoint): first to the morning after the third absent
working day, later to the day after the deadline. The run leaves ``return-to-work-notice.pdf``,
``dismissal-notice.pdf``, ``dossier.zip`` and ``demo-summary.json`` in ``--out``; the first failing
step stops it (exit status 1).
"""

from __future__ import annotations

import io
import json
import secrets
import time
import zipfile
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import click

from cases.calendar import ChineseCalendar
from cases.clock import SHANGHAI
from qianli.cli.demo import CLOCK_PATH, Api, DemoFailed, DemoResult, Runner, _json, _new_code, _outbox_ids, dev_clock

__all__ = ["run_absconding_demo", "plan_gap", "CLOCK_PATH"]

DEPARTMENT = "研发部"
CLAUSE = {"reference": "《员工手册》第五章第十二条",
          "text": "员工连续旷工三个工作日及以上的，属于严重违反公司规章制度，公司可以解除劳动合同。"}


def plan_gap(today: date, cal: ChineseCalendar | None = None, *, absent: int = 3) -> tuple[list[date], list[date]]:
    """(days present, days absent) for the demo: the employee clocks in on the five working days up to
    the last working day before the next statutory holiday after ``today``, then misses the first
    ``absent`` working days after it (a gap across the holiday: the holiday itself is no absence)."""
    cal = cal or ChineseCalendar()
    d = today + timedelta(days=1)
    while not cal.is_statutory(d) or cal.is_working_day(d):
        d += timedelta(days=1)
    last = d - timedelta(days=1)
    while not cal.is_working_day(last):
        last -= timedelta(days=1)
    present: list[date] = []
    p = last
    while len(present) < 5:
        if cal.is_working_day(p):
            present.append(p)
        p -= timedelta(days=1)
    gap: list[date] = []
    g = last
    while len(gap) < absent:
        g += timedelta(days=1)
        if cal.is_working_day(g):
            gap.append(g)
    return sorted(present), gap


def _clock_csv(name: str, employee_no: str, present: list[date], absent: list[date]) -> bytes:
    """WeCom 打卡日报: a title line, then one row per working day (未打卡 on the absent ones)."""
    days = sorted(present + absent)
    lines = [f"上下班打卡_日报,统计时间：{days[0].isoformat()} 至 {days[-1].isoformat()},,,,,",
             "姓名,工号,部门,日期,上班打卡时间,下班打卡时间,打卡结果"]
    for d in days:
        if d in present:
            lines.append(f"{name},{employee_no},{DEPARTMENT},{d.isoformat()},08:56,18:04,正常")
        else:
            lines.append(f"{name},{employee_no},{DEPARTMENT},{d.isoformat()},,,未打卡")
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def run_absconding_demo(base_url: str, out_dir: Path, *, company: str, password: str, hr_users: dict[str, str],
                        echo: Callable[..., None] = click.echo, sms_wait_s: float = 20.0) -> DemoResult:
    api = Api(base_url)
    run = Runner(echo)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = datetime.now(SHANGHAI)
    tag = started.strftime("%Y%m%d%H%M%S") + secrets.token_hex(2)
    employee_no = f"ABS-{tag}"
    phone = "137" + "".join(str(secrets.randbelow(10)) for _ in range(8))
    openid = f"demo-abs-{tag}"
    name = "周航"
    facts: dict[str, Any] = {"employee_no": employee_no, "phone": phone, "base_url": api.base}
    tokens: dict[str, str] = {}
    spec_user, manager_user = hr_users["hr_specialist"], hr_users["hr_manager"]

    def contract():
        spec = api.load_contract()
        health = _json(api.call("getHealth"))
        if health.get("environment") == "production":
            raise DemoFailed("the service runs in production: the demo needs a development deployment",
                             body=json.dumps(health))
        missing = [op for op in ("confirmDeparture", "sendReturnToWorkNotice", "recordPostalDelivery",
                                 "answerReturnNotice", "recordUnionNotification", "dismissForAbsence")
                   if op not in api.ops]
        if missing:
            raise DemoFailed(f"the service's contract lacks {', '.join(missing)}")
        return spec, f"{len(api.ops)} operations; environment {health.get('environment')}"
    run.step("读取接口契约 GET /openapi.json (operationIds)", contract)

    def clock_now() -> datetime:
        return datetime.fromisoformat(dev_clock(api)["now_utc"])

    def move_clock_to(target: datetime) -> dict[str, Any]:
        """Move the deployment's clock forward so that its "now" is ``target`` (never backwards)."""
        now = dev_clock(api)
        offset_now = now["offset_seconds"]
        real_now = datetime.fromisoformat(now["now_utc"]) - timedelta(seconds=offset_now)
        seconds = max(int((target - real_now).total_seconds()), offset_now)
        state = dev_clock(api, {"offset_seconds": seconds})
        tokens.clear()  # sessions issued before the move have expired on the new clock
        return state

    def hr_login(username: str) -> str:
        if username not in tokens:
            body = _json(api.call("hrLogin", json={"company_code": company, "username": username, "password": password}))
            tokens[username] = body["access_token"]
        return tokens[username]

    def employee_login() -> str:
        if "employee" not in tokens:
            body = _json(api.call("wechatLogin", json={"code": f"dev-{openid}"}))
            if not body.get("bound"):
                raise DemoFailed("the employee's WeChat is not bound", body=json.dumps(body, ensure_ascii=False))
            tokens["employee"] = body["access_token"]
        return tokens["employee"]

    def logins():
        who = [hr_login(u) and u for u in (spec_user, manager_user, hr_users["dept_head"])]
        return who, "logged in: " + ", ".join(who)
    run.step(f"HR 登录 hrLogin {company}/{spec_user}, {manager_user}, {hr_users['dept_head']}", logins)

    def policy():
        body = _json(api.call("updateCompanyPolicy", token=hr_login(manager_user), json={
            "absconding_handbook_clause": CLAUSE, "return_notice_deadline_days": 3,
            "absconding_approval_chain": ["hr_manager", "dept_head"]}))
        return body, f"clause {body['absconding_handbook_clause']['reference']}, deadline " \
                     f"{body['return_notice_deadline_days']} working days, chain " \
                     f"{' → '.join(body['absconding_approval_chain'])}"
    run.step("人事经理设定员工手册条款与审批链 updateCompanyPolicy", policy)

    def roster():
        csv_text = ("工号,姓名,部门,职位,入职日期,试用期结束,合同期限,手机号\n"
                    f"{employee_no},{name},{DEPARTMENT},运维工程师,2022-07-01,2022-12-31,2022-07-01至2027-06-30,{phone}\n")
        body = _json(api.call("importRoster", token=hr_login(spec_user),
                              files={"file": ("roster.csv", csv_text.encode("utf-8"), "text/csv")}))
        if employee_no not in body.get("created_numbers", []):
            raise DemoFailed("importRoster did not create the employee", body=json.dumps(body, ensure_ascii=False))
        return body, f"created {employee_no} {name} {DEPARTMENT}"
    run.step("HR 导入花名册 importRoster", roster)

    emp: dict[str, Any] = {}

    def bind():
        body = _json(api.call("wechatLogin", json={"code": f"dev-{openid}"}))
        seen = _outbox_ids(api, phone)
        api.call("sendSmsCode", token=body["access_token"], expect=(202,), json={
            "purpose": "bind", "company_code": company, "employee_no": employee_no, "phone": phone})
        code = _new_code(api, phone, seen)
        bound = _json(api.call("bindEmployee", token=body["access_token"], json={
            "company_code": company, "employee_no": employee_no, "phone": phone, "sms_code": code}))
        emp["id"] = bound["employee"]["id"]
        tokens["employee"] = bound["access_token"]
        return bound, f"employee {emp['id']} bound to WeChat {openid} (SMS code {code})"
    run.step("员工绑定小程序 wechatLogin + sendSmsCode + bindEmployee", bind)

    today = clock_now().astimezone(SHANGHAI).date()
    present, absent = plan_gap(today)
    facts.update(present=[d.isoformat() for d in present], absent=[d.isoformat() for d in absent])
    morning_after = datetime.combine(absent[-1] + timedelta(days=1), datetime.min.time().replace(hour=9, minute=30),
                                     SHANGHAI)

    def travel_to_gap():
        body = move_clock_to(morning_after)
        return body, (f"clock now {body['now_beijing']} (offset {body['offset_days']} days): last clock-in "
                      f"{present[-1]}, then the holiday, then no clock-in on {', '.join(map(str, absent))}")
    run.step(f"开发时钟 POST {CLOCK_PATH}: 节假日后第 {len(absent)} 个缺勤工作日的次日早上", travel_to_gap)

    def attendance():
        if "importAttendance" not in api.ops:
            raise DemoFailed("importAttendance is not in the service's contract: the attendance import (issue 16, "
                             "h16a's part) has not landed, so the demo cannot import the clock-in file")
        data = _clock_csv(name, employee_no, present, absent)
        body = _json(api.call("importAttendance", token=hr_login(spec_user), params={"coverage": "file"},
                              files={"file": ("wecom-daily.csv", data, "text/csv")}))
        if not body.get("applied"):
            raise DemoFailed("importAttendance wrote nothing", body=json.dumps(body, ensure_ascii=False))
        return body, f"{body['rows']} rows {body['first_day']}…{body['last_day']}, " \
                     f"{body['records_created']} records, file SHA-256 {body['sha256'][:16]}…"
    run.step("HR 导入考勤（企业微信打卡日报 CSV）importAttendance", attendance)

    risk: dict[str, Any] = {}

    def risks():
        body = _json(api.call("listAttritionRisks", token=hr_login(spec_user), params={"level": "red"}))
        mine = [i for i in body["items"] if i["employee_no"] == employee_no]
        if not mine:
            raise DemoFailed(f"{employee_no} is not red on the risk list of {body['date']}",
                             body=json.dumps(body, ensure_ascii=False)[:4000])
        risk.update(mine[0])
        return body, f"{name} red on {body['date']}: {'；'.join(mine[0]['reasons'])}"
    run.step("预警名单 listAttritionRisks (red)", risks)

    case: dict[str, Any] = {}

    def confirm():
        body = _json(api.call("confirmDeparture", token=hr_login(spec_user), expect=(201,), json={
            "employee_id": emp["id"], "absent_days": [d.isoformat() for d in absent],
            "last_seen_on": present[-1].isoformat(), "risk_id": risk.get("episode"),
            "note": "电话、微信均未联系上，确认擅自离职。"}))
        case.update(body)
        return body, f"case {body['case_id']} {body['state']} at {body['confirmed_at']} (risk {body['risk_id']})"
    run.step("确认擅自离职 confirmDeparture", confirm)
    ids = {"case_id": case["case_id"]}

    def serve():
        body = _json(api.call("sendReturnToWorkNotice", token=hr_login(spec_user), expect=(201,), path_params=ids))
        case.update(body)
        n = body["return_notice"]
        return body, f"sealed and served {n['served_at']}; return or explain by {n['deadline']} 24:00 " \
                     f"({n['deadline_working_days']} working days)"
    run.step("盖章送达返岗通知书 sendReturnToWorkNotice", serve)
    deadline = date.fromisoformat(case["return_notice"]["deadline"])

    def sms_sent():
        until = time.monotonic() + sms_wait_s
        while True:
            texts = [m for m in api.outbox(phone) if "返岗通知书" in json.dumps(m, ensure_ascii=False)]
            if texts or time.monotonic() > until:
                break
            time.sleep(0.5)
        if not texts:
            raise DemoFailed("no SMS about the return-to-work notice in the development outbox (is an rq worker "
                             "running?)")
        return texts, f"SMS to {phone}: {texts[0].get('params', {}).get('text', '')[:60]}…"
    run.step("短信送达（RQ 发送）GET /api/v1/dev/outbox", sms_sent)

    def read_notice():
        resp = api.call("getAbsenceNotice", token=employee_login(),
                        path_params={**ids, "notice": "return_to_work"})
        path = out_dir / "return-to-work-notice.pdf"
        path.write_bytes(resp.content)
        mine = _json(api.call("getMyAbsence", token=employee_login(), path_params=ids))
        if not mine["return_notice"]["read_at"]:
            raise DemoFailed("no read receipt after the employee opened the notice")
        return resp.content, f"{len(resp.content) // 1024} KiB → {path}; read receipt {mine['return_notice']['read_at']}"
    return_pdf = run.step("员工在小程序阅读返岗通知书 getAbsenceNotice（已读回执）", read_notice)

    def post():
        sent = clock_now().astimezone(SHANGHAI).replace(microsecond=0)
        body = _json(api.call("recordPostalDelivery", token=hr_login(spec_user), expect=(201,), path_params=ids, json={
            "notice": "return_to_work", "carrier": "EMS", "tracking_no": f"11{secrets.randbelow(10**11):011d}",
            "address": "上海市浦东新区张江路 88 弄 6 号 302 室（劳动合同约定的送达地址）", "sent_at": sent.isoformat()}))
        delivered = _json(api.call("updatePostalDelivery", token=hr_login(spec_user),
                                   path_params={**ids, "delivery_id": body["id"]},
                                   json={"status": "delivered", "status_at": sent.isoformat(), "note": "本人签收"}))
        return delivered, f"{delivered['carrier']} {delivered['tracking_no']}: {delivered['status']}"
    run.step("登记邮寄送达 recordPostalDelivery + updatePostalDelivery", post)

    def too_early():
        resp = api.call("dismissForAbsence", token=hr_login(manager_user), expect=(409,), path_params=ids, json={})
        body = _json(resp)
        return body, f"refused: {body['code']} (blockers {', '.join(body['details']['blockers'])})"
    run.step("期限届满前解除被拒绝 dismissForAbsence → 409", too_early)

    def travel_past_deadline():
        target = datetime.combine(deadline + timedelta(days=1), datetime.min.time().replace(hour=10), SHANGHAI)
        body = move_clock_to(target)
        return body, f"clock now {body['now_beijing']}: the deadline {deadline} has passed without a return"
    run.step(f"开发时钟 POST {CLOCK_PATH}: 期限届满次日", travel_past_deadline)

    def union():
        body = _json(api.call("recordUnionNotification", token=hr_login(spec_user), expect=(201,), path_params=ids,
                              json={"union_name": "示例公司工会委员会", "contact_name": "工会主席 钱程",
                                    "notified_at": clock_now().isoformat(), "method": "written",
                                    "response": "工会已收到解除理由，无异议。", "objection": False}))
        return body, f"{body['union_name']} ({body['contact_name']}) notified {body['notified_at']}"
    run.step("登记通知工会（劳动合同法第四十三条）recordUnionNotification", union)

    def dismiss(user: str, want: str):
        def go():
            body = _json(api.call("dismissForAbsence", token=hr_login(user), path_params=ids,
                                  json={"comment": "期限届满未返岗，也未说明，依规解除。"}))
            if body["outcome"] != want:
                raise DemoFailed(f"dismissForAbsence: outcome {body['outcome']}, expected {want}",
                                 body=json.dumps(body, ensure_ascii=False))
            case.update(body["absence"])
            return body, f"outcome {body['outcome']}"
        return go
    run.step(f"解除第 1 级审批 dismissForAbsence ({manager_user}, hr_manager)", dismiss(manager_user, "dismissal_pending"))
    run.step(f"解除第 2 级审批 dismissForAbsence ({hr_users['dept_head']}, dept_head): 盖章送达解除通知书",
             dismiss(hr_users["dept_head"], "dismissed"))

    def dismissal_pdf():
        resp = api.call("getAbsenceNotice", token=employee_login(), path_params={**ids, "notice": "dismissal"})
        path = out_dir / "dismissal-notice.pdf"
        path.write_bytes(resp.content)
        return resp.content, f"{len(resp.content) // 1024} KiB → {path}"
    dismissal_bytes = run.step("员工阅读解除劳动合同通知书 getAbsenceNotice", dismissal_pdf)

    def verify(label: str, data: bytes):
        def go():
            body = _json(api.call("verifyDocument", token=hr_login(manager_user),
                                  files={"file": (f"{label}.pdf", data, "application/pdf")}))
            sigs = [s for s in body["signatures"] if s["kind"] == "signature"]
            if not body["ok"] or len(sigs) != 1 or sigs[0].get("pades_level") != "B-LTA":
                raise DemoFailed(f"verifyDocument {label}: ok={body['ok']}", body=json.dumps(body, ensure_ascii=False))
            return body, f"ok: company seal {sigs[0]['pades_level']}, {body['total_revisions']} revisions"
        return go
    run.step("验证返岗通知书签章 verifyDocument", verify("return-to-work-notice", return_pdf))
    run.step("验证解除通知书签章 verifyDocument", verify("dismissal-notice", dismissal_bytes))

    def dossier():
        resp = api.call("exportDossier", token=hr_login(manager_user), path_params=ids)
        path = out_dir / "dossier.zip"
        path.write_bytes(resp.content)
        with zipfile.ZipFile(io.BytesIO(resp.content)) as zf:
            view = json.loads(zf.read("evidence/absconding.json"))
            absence = json.loads(zf.read("case/absence.json"))
        actions = {e["action"] for e in view["entries"]}
        need = {"departure_confirmed", "case_serve_return_notice", "notice_read", "postal_delivery_recorded",
                "union_notified", "case_dismiss"}
        if need - actions:
            raise DemoFailed(f"the dossier's absconding evidence lacks {', '.join(sorted(need - actions))}")
        return resp.content, f"{len(view['entries'])} absconding entries, {len(absence['postal_deliveries'])} " \
                             f"postal deliveries → {path}"
    run.step("导出擅自离职档案 exportDossier", dossier)

    files = {"return_to_work_notice": str(out_dir / "return-to-work-notice.pdf"),
             "dismissal_notice": str(out_dir / "dismissal-notice.pdf"), "dossier": str(out_dir / "dossier.zip")}
    result = DemoResult(case_id=case["case_id"], employee_no=employee_no, files=files, steps=run.steps, facts=facts)
    summary = {"scenario": "absconding", "case_id": case["case_id"], "employee_no": employee_no, "base_url": api.base,
               "files": files, "started_at": started.isoformat(), "deadline": deadline.isoformat(),
               "finished_at_utc": datetime.now(timezone.utc).isoformat(), "facts": facts,
               "steps": [s.__dict__ for s in run.steps]}
    (out_dir / "demo-summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2) + "\n")
    return result
