"""``qianli demo --scenario alumni``: the alumni pool end to end against the running service, over HTTP.

Everything goes through the contract's operationIds, as the acceptance client drives a deployment:
four employees are imported and bind their WeChat, three consent to the alumni network (different
purposes), one does not; each gives notice, passes the face check and the SMS code and signs the
letter, and HR approves it through the company's chain (the final level countersigns). The
development clock (``POST /api/v1/dev/clock``) then lets the last day pass; HR issues each
certificate of termination (``issueTerminationCertificate``) and closes each case (``closeCase``):
the consenting three join the pool and the fourth gets a retention schedule. A former employee logs
in with WeChat (alumni-only token); HR tags the profiles (the grade as manager), searches in
Chinese (the grade present for the manager only), posts a job opening; the worker sends the
matching messages; the alumnus answers "interested" and HR sees it. Leaves
``campaign-deliveries.jsonl``, ``analytics.xlsx`` (exportDepartureAnalytics) and
``departure-report.pdf`` (getDepartureReport) in ``--out``. The clock offset is put back to what it
was when the demo ends, failed or not. Exits 1 at the first failing step.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Callable

import click

from cases.clock import SHANGHAI
from qianli.cli.demo import (FACES, Api, DemoFailed, Runner, StepLog, _json, _new_code, _outbox_ids,
                             approve_all_levels, dev_clock, hr_login_step, sign_letter)

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


def run_alumni_demo(base_url: str, out_dir: Path, *, company: str, password: str, hr_users: dict[str, str],
                    echo: Callable[..., None] = click.echo, send_wait_s: float = 60.0,
                    photo: Path = FACES / "obama.jpg", reference_photo: Path = FACES / "obama2.jpg") -> AlumniDemoResult:
    api = Api(base_url)
    run = Runner(echo)
    clock_before: list[float] = []
    try:
        return _run(api, run, out_dir, company=company, password=password, hr_users=hr_users, send_wait_s=send_wait_s,
                    photo=photo, reference_photo=reference_photo, clock_before=clock_before)
    finally:
        if clock_before:
            try:
                dev_clock(api, {"offset_seconds": clock_before[0]})
                echo(f"     (development clock offset put back to {clock_before[0]:.0f} s)")
            except DemoFailed as exc:
                echo(f"     (could not put the development clock back: {exc.message})")


def _run(api: Api, run: Runner, out_dir: Path, *, company: str, password: str, hr_users: dict[str, str],
         send_wait_s: float, photo: Path, reference_photo: Path, clock_before: list[float]) -> AlumniDemoResult:
    out_dir.mkdir(parents=True, exist_ok=True)
    tag = datetime.now(SHANGHAI).strftime("%m%d%H%M%S") + secrets.token_hex(2)
    tokens: dict[str, str] = {}  # HR username -> access token

    def hr(role: str) -> str:
        return tokens[hr_users[role]]
    people: list[dict[str, Any]] = []
    facts: dict[str, Any] = {"base_url": api.base}

    def contract():
        spec = api.load_contract()
        health = _json(api.call("getHealth"))
        if health.get("environment") == "production":
            raise DemoFailed("the service runs in production: the demo needs development backends")
        return spec, f"{len(api.ops)} operations; environment {health.get('environment')}"
    run.step("读取接口契约 GET /openapi.json", contract)

    def hr_sign_in() -> None:
        tokens.clear()
        for role in ("hr_specialist", "hr_manager"):
            hr_login_step(api, run, company=company, username=hr_users[role], password=password, hr_tokens=tokens)
    hr_sign_in()

    def roster():
        lines = ["工号,姓名,部门,职位,入职日期,试用期结束,合同期限,手机号"]
        for i, (name, dept, pos, *_rest) in enumerate(PEOPLE):
            no, phone = f"ALU-{tag}-{i}", "137" + "".join(str(secrets.randbelow(10)) for _ in range(8))
            people.append({"no": no, "name": name, "phone": phone, "openid": f"alumni-{tag}-{i}", "spec": PEOPLE[i]})
            lines.append(f"{no},{name},{dept},{pos},2021-04-01,2021-07-01,2021-04-01至2027-03-31,{phone}")
        body = _json(api.call("importRoster", token=hr("hr_specialist"),
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

    for i, p in enumerate(people):
        who = f"（{p['name']}）"
        sign_letter(api, run, emp=p, hr_token=hr("hr_specialist"), case_id=p["case_id"], phone=p["phone"], photo=photo,
                    reference_photo=reference_photo, seed=i + 1, idempotency_key=f"alumni-{tag}-{i}-sign", who=who)
        approve_all_levels(api, run, case_id=p["case_id"], company=company, password=password, hr_users=hr_users,
                           hr_tokens=tokens, who=who)

    def last_day_passes():
        cases = [_json(api.call("getCase", token=hr("hr_specialist"), path_params={"case_id": p["case_id"]}))
                 for p in people]
        last = max(date.fromisoformat(c["agreed_last_day"]) for c in cases)
        now = dev_clock(api)
        clock_before.append(float(now["offset_seconds"]))
        days = (last - date.fromisoformat(now["now_beijing"][:10])).days + 1
        state = dev_clock(api, {"advance_days": days}) if days > 0 else now
        return state, f"advanced {max(days, 0)} days: service time {state['now_beijing']} (Beijing; last day {last})"
    run.step("开发时钟拨过最后工作日 POST /api/v1/dev/clock advance_days", last_day_passes)
    hr_sign_in()  # the sessions of the morning expired weeks ago on the service's clock

    for p in people:
        ids = {"case_id": p["case_id"]}

        def certificate(p=p, ids=ids):
            resp = api.call("issueTerminationCertificate", token=hr("hr_specialist"), expect=(200, 201),
                            path_params=ids, json={})
            body = _json(resp)
            return body, f"{p['name']}: termination date {body['termination_date']}, {body['pades_level']}"
        run.step(f"出具解除劳动合同证明 issueTerminationCertificate（{p['name']}）", certificate)

        def close(p=p, ids=ids):
            body = _json(api.call("closeCase", token=hr("hr_specialist"), path_params=ids,
                                  json={"comment": "演示：离职手续办结"}))
            if body["state"] != "closed" or not body["employee_deactivated"]:
                raise DemoFailed("closeCase did not close the case", body=json.dumps(body, ensure_ascii=False))
            return body, (f"{p['name']}: state {body['state']}, employee deactivated, face templates deleted "
                          f"{body['face_data_deleted']['templates']}")
        run.step(f"结案 closeCase（{p['name']}）", close)

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
        page = _json(api.call("searchAlumni", token=hr("hr_manager"), params={"page_size": 100}))
        ours = {a["employee_id"]: a for a in page["items"]}
        grades = ["A", "B", "B"]
        for i, p in enumerate(people[:3]):
            a = ours.get(p["id"])
            if a is None:
                raise DemoFailed(f"{p['name']} is not in the pool after close")
            body = _json(api.call("updateAlumnusTags", token=hr("hr_manager"), path_params={"alumnus_id": a["id"]},
                                  json={"skills": p["spec"][3], "notes": p["spec"][4], "tags": ["家庭原因"]
                                        if p["spec"][6] == "family" else [], "rehire_eligible": True,
                                        "performance_grade": grades[i]}))
            found[p["id"]] = body
        if people[3]["id"] in ours:
            raise DemoFailed("the person without consent is in the pool")
        return found, f"{len(found)} profiles tagged (grade set by the HR manager); {people[3]['name']} not in the pool"
    run.step("HR 标注人才档案 updateAlumnusTags（绩效等级：HR 经理）", tag_profiles)

    def search():
        spec_view = _json(api.call("searchAlumni", token=hr("hr_specialist"), params={"q": "区域销售", "eligible_only": "true"}))
        mgr_view = _json(api.call("searchAlumni", token=hr("hr_manager"), params={"q": "区域销售", "grade": "A"}))
        names = sorted(a["name"] for a in spec_view["items"] if a["employee_id"] in found)
        if names != sorted([people[0]["name"], people[1]["name"]]):
            raise DemoFailed(f"searchAlumni q=区域销售 found {names}")
        if any("performance_grade" in a for a in spec_view["items"]):
            raise DemoFailed("the grade was shown to an HR specialist")
        if [a["name"] for a in mgr_view["items"] if a["employee_id"] in found] != [people[0]["name"]]:
            raise DemoFailed("the manager's grade filter did not find the A-graded alumnus")
        two = _json(api.call("searchAlumni", token=hr("hr_specialist"), params={"q": "销售"}))  # 2 chars: LIKE fallback
        return spec_view, (f"q=区域销售: {', '.join(names)} (no grade for the specialist); manager grade=A: "
                           f"{people[0]['name']}; q=销售: {sum(a['employee_id'] in found for a in two['items'])}")
    run.step("返聘搜索 searchAlumni（中文全文；绩效仅 HR 经理可见）", search)

    opening: dict[str, Any] = {}

    def post_opening():
        body = _json(api.call("createJobOpening", token=hr("hr_specialist"), expect=(201,), json={
            "title": f"区域销售经理 {tag}", "department": "市场部", "skills": ["销售管理", "客户开发"],
            "tags": ["家庭原因"], "description": "负责华东区域销售团队"}))
        opening.update(body)
        return body, f"opening {body['id']}: campaign {body['campaign']['id']} to {body['campaign']['recipients']} alumni"
    run.step("发布岗位并推荐给匹配的校友 createJobOpening", post_opening)

    deliveries: list[dict[str, Any]] = []

    def wait_sent():
        deadline = time.monotonic() + send_wait_s
        while True:
            body = _json(api.call("listCampaignDeliveries", token=hr("hr_specialist"),
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
        body = _json(api.call("getJobOpening", token=hr("hr_specialist"), path_params={"opening_id": opening["id"]}))
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
        resp = api.call("exportDepartureAnalytics", token=hr("hr_manager"), params={"format": "xlsx"})
        if not resp.content.startswith(b"PK"):
            raise DemoFailed("exportDepartureAnalytics did not answer an XLSX file")
        path = out_dir / "analytics.xlsx"
        path.write_bytes(resp.content)
        files["analytics"] = str(path)
        return path, f"{len(resp.content)} bytes → {path}"
    run.step("导出离职分析 exportDepartureAnalytics (XLSX)", analytics)

    def report():
        resp = api.call("getDepartureReport", token=hr("hr_manager"))
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
