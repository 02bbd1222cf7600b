"""``qianli demo --scenario alumni``: the alumni pool end to end against the running service.

Over HTTP (the contract's operationIds): four employees are imported and bind their WeChat, three
consent to the alumni network (different purposes), one does not; each gives notice. Their cases
are then closed in this process on the same (development) database, with what close does for the
pool (the case closed, the employee deactivated, sessions ended, ``on_case_closed``): over HTTP,
``closeCase`` needs a signed, approved case past its last day with its certificate, which a demo
starting from four fresh notices does not reach. The consenting three join the pool and the
fourth gets a retention schedule. A former employee logs
in with WeChat (alumni-only token); HR tags the profiles (the grade as manager), searches in
Chinese (the grade present for the manager only), posts a job opening; the worker sends the
matching messages; the alumnus answers "interested" and HR sees it. Leaves
``campaign-deliveries.jsonl``, ``analytics.xlsx`` (exportDepartureAnalytics) and
``departure-report.pdf`` (getDepartureReport) in ``--out``. Exits 1 at the first failing step.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable

import click

from cases.clock import SHANGHAI
from qianli.cli.demo import Api, DemoFailed, Runner, StepLog, _json, _new_code, _outbox_ids

__all__ = ["run_alumni_demo", "AlumniDemoResult"]

PEOPLE = [  # name, department, position, skills, notes, purposes (None: no consent), reason
    ("周芳", "市场部", "区域销售经理", ["销售管理", "客户开发"], "华东区域销售经理，带过十人团队，因家庭原因回老家",
     ["greetings", "company_news", "job_openings"], "family"),
    ("吴刚", "市场部", "销售代表", ["客户开发"], "熟悉零售渠道，区域销售业绩稳定", ["job_openings"], "family"),
    ("郑洁", "研发部", "数据分析师", ["数据分析", "Python"], "负责经营数据看板", ["greetings"], "further_study"),
    ("王磊", "研发部", "后端工程师", ["Java"], "", None, "compensation"),
]


@dataclass
class AlumniDemoResult:
    files: dict[str, str]
    steps: list[StepLog] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)


def _close_in_process(case_id: str) -> str:
    """Close one case on the development database as close_case does for the pool (used when the
    service has no closeCase, or the case cannot be closed over HTTP from a fresh notice)."""
    from qianli.db import session_scope
    from qianli.models import Employee, ResignationCase
    from qianli.runtime import get_runtime
    from qianli.services.alumni import on_case_closed
    from qianli.services.auth import revoke_employee_sessions

    rt = get_runtime()
    if not rt.settings.allows_dev_backends:
        raise DemoFailed("closing in-process is for development only")
    with session_scope(rt.session_factory) as s:
        case = s.get(ResignationCase, case_id)
        if case is None:
            raise DemoFailed(f"case {case_id} is not in this process's database (DATABASE_URL must be the service's)")
        emp = s.get(Employee, case.employee_id)
        case.state = "closed"
        revoke_employee_sessions(s, emp.id)
        emp.active = False
        result = on_case_closed(s, case, actor="demo:close", settings=rt.settings)
        return type(result).__name__


def run_alumni_demo(base_url: str, out_dir: Path, *, company: str, password: str, hr_users: dict[str, str],
                    echo: Callable[..., None] = click.echo, send_wait_s: float = 60.0) -> AlumniDemoResult:
    api = Api(base_url)
    run = Runner(echo)
    out_dir.mkdir(parents=True, exist_ok=True)
    tag = datetime.now(SHANGHAI).strftime("%m%d%H%M%S") + secrets.token_hex(2)
    hr: dict[str, str] = {}
    people: list[dict[str, Any]] = []
    facts: dict[str, Any] = {"base_url": api.base}

    def contract():
        spec = api.load_contract()
        health = _json(api.call("getHealth"))
        if health.get("environment") == "production":
            raise DemoFailed("the service runs in production: the demo needs development backends")
        return spec, f"{len(api.ops)} operations; environment {health.get('environment')}"
    run.step("读取接口契约 GET /openapi.json", contract)

    for role in ("hr_specialist", "hr_manager"):
        def login(role=role):
            body = _json(api.call("hrLogin", json={"company_code": company, "username": hr_users[role],
                                                   "password": password}))
            hr[role] = body["access_token"]
            return body, f"{body['display_name']} ({body['role']})"
        run.step(f"HR 登录 hrLogin {hr_users[role]}", login)

    def roster():
        lines = ["工号,姓名,部门,职位,入职日期,试用期结束,合同期限,手机号"]
        for i, (name, dept, pos, *_rest) in enumerate(PEOPLE):
            no, phone = f"ALU-{tag}-{i}", "137" + "".join(str(secrets.randbelow(10)) for _ in range(8))
            people.append({"no": no, "name": name, "phone": phone, "openid": f"alumni-{tag}-{i}", "spec": PEOPLE[i]})
            lines.append(f"{no},{name},{dept},{pos},2021-04-01,2021-07-01,2021-04-01至2027-03-31,{phone}")
        body = _json(api.call("importRoster", token=hr["hr_specialist"],
                              files={"file": ("roster.csv", ("\n".join(lines) + "\n").encode(), "text/csv")}))
        if len(body.get("created_numbers", [])) != len(PEOPLE):
            raise DemoFailed("importRoster did not create the employees", body=json.dumps(body, ensure_ascii=False))
        return body, f"{len(PEOPLE)} employees"
    run.step("HR 导入花名册 importRoster", roster)

    for p in people:
        def bind(p=p):
            login = _json(api.call("wechatLogin", json={"code": f"dev-{p['openid']}"}))
            seen = _outbox_ids(api, p["phone"])
            api.call("sendSmsCode", token=login["access_token"], expect=(202,), json={
                "purpose": "bind", "company_code": company, "employee_no": p["no"], "phone": p["phone"]})
            code = _new_code(api, p["phone"], seen)
            body = _json(api.call("bindEmployee", token=login["access_token"], json={
                "company_code": company, "employee_no": p["no"], "phone": p["phone"], "sms_code": code}))
            p["token"], p["id"] = body["access_token"], body["employee"]["id"]
            return body, f"{p['name']} bound"
        run.step(f"员工绑定微信 wechatLogin + sendSmsCode + bindEmployee（{p['name']}）", bind)

        def consent(p=p):
            purposes = p["spec"][5]
            text = _json(api.call("getAlumniConsent", token=p["token"]))
            if purposes is None:
                return text, f"{p['name']} 不同意加入人才库 (text {text['text_version']} shown, nothing given)"
            body = _json(api.call("giveAlumniConsent", token=p["token"], json={
                "text_version": text["text_version"], "agree": True, "purposes": purposes}))
            return body, f"{p['name']}: {', '.join(x['purpose'] for x in body['purposes'] if x['given'])}"
        run.step(f"人才库同意 getAlumniConsent / giveAlumniConsent（{p['name']}）", consent)

        def notice(p=p):
            last = (datetime.now(SHANGHAI).date() + timedelta(days=31)).isoformat()
            body = _json(api.call("submitResignation", token=p["token"], expect=(201,), json={
                "reason_category": p["spec"][6], "reason_text": "感谢公司的培养", "requested_last_day": last}))
            p["case_id"] = body["id"]
            return body, f"case {body['id']}"
        run.step(f"提交离职申请 submitResignation（{p['name']}）", notice)

    for p in people:
        def close(p=p):
            outcome = _close_in_process(p["case_id"])
            return outcome, f"{p['name']}: {'joined the pool' if outcome == 'Alumnus' else 'retention schedule'}"
        run.step(f"结案（开发环境：同一数据库内执行 close 对人才库的处理）（{p['name']}）", close)

    former = people[0]

    def alumni_login():
        body = _json(api.call("wechatLogin", json={"code": f"dev-{former['openid']}"}))
        if not body.get("alumni_only"):
            raise DemoFailed("a former employee did not get the alumni-only token", body=json.dumps(body, ensure_ascii=False))
        former["alumni_token"] = body["access_token"]
        refused = api.call("listMyCases", token=body["access_token"], expect=(403,))
        return body, f"alumni_only token; listMyCases → {refused.status_code} {_json(refused)['code']}"
    run.step("离职员工微信登录 wechatLogin（仅人才库功能）", alumni_login)

    found: dict[str, dict[str, Any]] = {}

    def tag_profiles():
        page = _json(api.call("searchAlumni", token=hr["hr_manager"], params={"page_size": 100}))
        ours = {a["employee_id"]: a for a in page["items"]}
        grades = ["A", "B", "B"]
        for i, p in enumerate(people[:3]):
            a = ours.get(p["id"])
            if a is None:
                raise DemoFailed(f"{p['name']} is not in the pool after close")
            body = _json(api.call("updateAlumnusTags", token=hr["hr_manager"], path_params={"alumnus_id": a["id"]},
                                  json={"skills": p["spec"][3], "notes": p["spec"][4], "tags": ["家庭原因"]
                                        if p["spec"][6] == "family" else [], "rehire_eligible": True,
                                        "performance_grade": grades[i]}))
            found[p["id"]] = body
        if people[3]["id"] in ours:
            raise DemoFailed("the person without consent is in the pool")
        return found, f"{len(found)} profiles tagged (grade set by the HR manager); {people[3]['name']} not in the pool"
    run.step("HR 标注人才档案 updateAlumnusTags（绩效等级：HR 经理）", tag_profiles)

    def search():
        spec_view = _json(api.call("searchAlumni", token=hr["hr_specialist"], params={"q": "区域销售", "eligible_only": "true"}))
        mgr_view = _json(api.call("searchAlumni", token=hr["hr_manager"], params={"q": "区域销售", "grade": "A"}))
        names = sorted(a["name"] for a in spec_view["items"] if a["employee_id"] in found)
        if names != sorted([people[0]["name"], people[1]["name"]]):
            raise DemoFailed(f"searchAlumni q=区域销售 found {names}")
        if any("performance_grade" in a for a in spec_view["items"]):
            raise DemoFailed("the grade was shown to an HR specialist")
        if [a["name"] for a in mgr_view["items"] if a["employee_id"] in found] != [people[0]["name"]]:
            raise DemoFailed("the manager's grade filter did not find the A-graded alumnus")
        two = _json(api.call("searchAlumni", token=hr["hr_specialist"], params={"q": "销售"}))  # 2 chars: LIKE fallback
        return spec_view, (f"q=区域销售: {', '.join(names)} (no grade for the specialist); manager grade=A: "
                           f"{people[0]['name']}; q=销售: {sum(a['employee_id'] in found for a in two['items'])}")
    run.step("返聘搜索 searchAlumni（中文全文；绩效仅 HR 经理可见）", search)

    opening: dict[str, Any] = {}

    def post_opening():
        body = _json(api.call("createJobOpening", token=hr["hr_specialist"], expect=(201,), json={
            "title": f"区域销售经理 {tag}", "department": "市场部", "skills": ["销售管理", "客户开发"],
            "tags": ["家庭原因"], "description": "负责华东区域销售团队"}))
        opening.update(body)
        return body, f"opening {body['id']}: campaign {body['campaign']['id']} to {body['campaign']['recipients']} alumni"
    run.step("发布岗位并推荐给匹配的校友 createJobOpening", post_opening)

    deliveries: list[dict[str, Any]] = []

    def wait_sent():
        deadline = time.monotonic() + send_wait_s
        while True:
            body = _json(api.call("listCampaignDeliveries", token=hr["hr_specialist"],
                                  path_params={"campaign_id": opening["campaign"]["id"]}, params={"page_size": 500}))
            if body["items"] and all(d["status"] != "pending" for d in body["items"]):
                deliveries[:] = body["items"]
                return body, ", ".join(f"{d['name']}:{d['status']}" for d in body["items"])
            if time.monotonic() > deadline:
                raise DemoFailed("the campaign's messages were not sent in time (is `qianli worker` running? inside "
                                 "QIANLI_ALUMNI_QUIET_HOURS messages wait for their end)", body=json.dumps(body, ensure_ascii=False, default=str))
            time.sleep(0.5)
    run.step("RQ 任务发送岗位推荐 listCampaignDeliveries（发送记录）", wait_sent)

    def answer():
        mine = _json(api.call("listMyJobOpenings", token=former["alumni_token"]))
        if opening["id"] not in [o["id"] for o in mine]:
            raise DemoFailed("the alumnus does not see the opening sent to them")
        body = _json(api.call("answerJobOpening", token=former["alumni_token"], path_params={"opening_id": opening["id"]},
                              json={"answer": "interested", "note": "可以聊聊"}))
        return body, f"{former['name']}: {body['answer']}"
    run.step("校友回复“感兴趣” answerJobOpening", answer)

    def hr_sees():
        body = _json(api.call("getJobOpening", token=hr["hr_specialist"], path_params={"opening_id": opening["id"]}))
        answers = [(a["name"], a["answer"]) for a in body["answers"]]
        if (former["name"], "interested") not in answers:
            raise DemoFailed("HR does not see the answer")
        return body, f"answers {answers}; {len(body['matches'])} matching profiles"
    run.step("HR 查看岗位的回复 getJobOpening", hr_sees)

    files: dict[str, str] = {}

    def write_deliveries():
        path = out_dir / "campaign-deliveries.jsonl"
        path.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in deliveries), encoding="utf-8")
        files["campaign_deliveries"] = str(path)
        return path, f"{len(deliveries)} lines → {path}"
    run.step("写出 campaign-deliveries.jsonl", write_deliveries)

    def analytics():
        resp = api.call("exportDepartureAnalytics", token=hr["hr_manager"], params={"format": "xlsx"})
        if not resp.content.startswith(b"PK"):
            raise DemoFailed("exportDepartureAnalytics did not answer an XLSX file")
        path = out_dir / "analytics.xlsx"
        path.write_bytes(resp.content)
        files["analytics"] = str(path)
        return path, f"{len(resp.content)} bytes → {path}"
    run.step("导出离职分析 exportDepartureAnalytics (XLSX)", analytics)

    def report():
        resp = api.call("getDepartureReport", token=hr["hr_manager"])
        if not resp.content.startswith(b"%PDF"):
            raise DemoFailed("getDepartureReport did not answer a PDF")
        path = out_dir / "departure-report.pdf"
        path.write_bytes(resp.content)
        files["report"] = str(path)
        return path, f"{len(resp.content)} bytes → {path}"
    run.step("离职分析报告 getDepartureReport (PDF)", report)

    facts.update({"people": [{k: v for k, v in p.items() if k in ("no", "name", "id", "case_id")} for p in people],
                  "opening_id": opening.get("id"), "campaign_id": opening.get("campaign", {}).get("id")})
    (out_dir / "alumni-demo-summary.json").write_text(json.dumps(
        {"facts": facts, "files": files, "steps": [s.__dict__ for s in run.steps]}, ensure_ascii=False, indent=2),
        encoding="utf-8")
    return AlumniDemoResult(files, run.steps, facts)
