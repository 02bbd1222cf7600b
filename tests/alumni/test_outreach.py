"""Campaigns: only consenting alumni, quiet hours, rate limit, per-person caps, unsubscribe, job openings."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, datetime, time, timedelta

import pytest
from sqlalchemy import select

from cases.clock import SHANGHAI
from identity.sms import OUTBOX_REDIS_KEY
from qianli.db import utcnow
from qianli.models import AlumniConsentEvent, CampaignDelivery
from qianli.runtime import Runtime, set_runtime
from qianli.services import alumni as svc
from qianli.services import alumni_outreach as out

from tests.alumni.conftest import META


def _beijing(days: int, hh: int) -> datetime:
    """``hh``:00 Beijing time ``days`` days from today (in the future, so every message is due)."""
    d = utcnow().astimezone(SHANGHAI).date() + timedelta(days=days)
    return datetime.combine(d, time(hh), SHANGHAI)


def _outbox(redis) -> list[dict]:
    return [json.loads(x) for x in redis.lrange(OUTBOX_REDIS_KEY, 0, -1)]


def _statuses(session, campaign_id):
    session.expire_all()
    return {d.employee_id: d.status for d in session.scalars(
        select(CampaignDelivery).where(CampaignDelivery.campaign_id == campaign_id))}


def _campaign(session, rt, world, **kw):
    c = out.create_campaign(session, rt, company_id=world.company.id, actor="hr:test",
                            **{"purpose": "company_news", "title": "公司动态", "body": "新办公室落成", **kw})
    session.commit()
    return c


def test_only_consenting_alumni_and_nothing_after_withdrawal(db_session, runtime, world, redis_client):
    news, _ = world.alumnus("甲", purposes=("company_news",))
    greet_only, _ = world.alumnus("乙", purposes=("greetings",))
    leaver, _ = world.alumnus("丙", purposes=("company_news", "greetings"))
    world.close(world.employee("丁"))  # no consent: not in the pool
    c = _campaign(db_session, runtime, world)
    assert c.recipients == 2
    svc.withdraw_consent(db_session, company_id=leaver.company_id, employee_id=leaver.id, purposes=["company_news"],
                         meta=META)
    db_session.commit()
    res = out.run_campaign(runtime, c.id, now=_beijing(1, 11), reschedule=False)
    assert (res.sent, res.skipped, res.done) == (1, 0, True)
    assert _statuses(db_session, c.id) == {news.id: "sent", leaver.id: "skipped_no_consent"}
    msgs = _outbox(redis_client)
    assert len(msgs) == 1 and msgs[0]["template"] == "alumni"
    assert "回复TD退订" in msgs[0]["params"]["text"] and "/alumni/unsubscribe/" in msgs[0]["params"]["link"]
    assert greet_only.id not in _statuses(db_session, c.id)


def test_withdrawal_between_queueing_and_sending(db_session, runtime, world, redis_client):
    emp, _ = world.alumnus("戊", purposes=("company_news",))
    c = _campaign(db_session, runtime, world)
    # consent is re-checked at the moment of sending, not only when the campaign was created
    from qianli.models import AlumniConsent

    for row in db_session.scalars(select(AlumniConsent).where(AlumniConsent.employee_id == emp.id)):
        row.withdrawn_at = utcnow()
    db_session.commit()
    res = out.run_campaign(runtime, c.id, now=_beijing(1, 11), reschedule=False)
    assert res.sent == 0 and _outbox(redis_client) == []
    assert _statuses(db_session, c.id) == {emp.id: "skipped_no_consent"}


def test_quiet_hours_defer_to_their_end(db_session, runtime, world, redis_client):
    emp, _ = world.alumnus("己", purposes=("company_news",))
    c = _campaign(db_session, runtime, world)
    night = _beijing(1, 23)
    res = out.run_campaign(runtime, c.id, now=night, reschedule=False)
    assert res.sent == 0 and _outbox(redis_client) == []
    assert res.deferred_until == _beijing(2, 9)  # QIANLI_ALUMNI_QUIET_HOURS=21:00-09:00 (default)
    early = _beijing(2, 8)
    assert out.run_campaign(runtime, c.id, now=early, reschedule=False).sent == 0
    assert out.run_campaign(runtime, c.id, now=_beijing(2, 9), reschedule=False).sent == 1
    assert _statuses(db_session, c.id) == {emp.id: "sent"}


def test_frequency_cap_per_person(db_session, runtime, world, redis_client):
    emp, _ = world.alumnus("庚", purposes=("company_news", "greetings"))
    first = _campaign(db_session, runtime, world, frequency_cap=1, frequency_window_days=30)
    assert out.run_campaign(runtime, first.id, now=_beijing(1, 10), reschedule=False).sent == 1
    second = _campaign(db_session, runtime, world, purpose="greetings", title="问候", body="天冷加衣",
                       frequency_cap=1, frequency_window_days=30)
    res = out.run_campaign(runtime, second.id, now=_beijing(1, 11), reschedule=False)
    assert (res.sent, res.skipped) == (0, 1)
    assert _statuses(db_session, second.id) == {emp.id: "skipped_frequency_cap"}
    # the default cap (QIANLI_ALUMNI_FREQUENCY_CAP=2 in 30 days) lets a second message through, not a third
    third = _campaign(db_session, runtime, world, title="动态二")
    assert out.run_campaign(runtime, third.id, now=_beijing(1, 12), reschedule=False).sent == 1
    fourth = _campaign(db_session, runtime, world, title="动态三")
    assert out.run_campaign(runtime, fourth.id, now=_beijing(1, 13), reschedule=False).sent == 0
    assert len(_outbox(redis_client)) == 2


def test_rate_limit_defers_to_next_minute(db_session, runtime, world, redis_client):
    world.alumnus("辛", purposes=("company_news",))
    world.alumnus("壬", purposes=("company_news",))
    c = _campaign(db_session, runtime, world)
    now = _beijing(1, 10)
    limit = runtime.settings.alumni_send_rate_per_minute
    redis_client.set(f"qianli:alumni:rate:{world.company.id}:{int(now.timestamp()) // 60}", limit - 1)
    res = out.run_campaign(runtime, c.id, now=now, reschedule=False)
    assert res.sent == 1 and not res.done
    assert res.deferred_until == now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    res = out.run_campaign(runtime, c.id, now=res.deferred_until, reschedule=False)
    assert res.sent == 1 and res.done


def test_unsubscribe_link_and_sms_reply(client, db_session, runtime, world, redis_client):
    emp, _ = world.alumnus("癸", purposes=("company_news", "greetings", "job_openings"), phone="13912345678")
    c = _campaign(db_session, runtime, world)
    out.run_campaign(runtime, c.id, now=_beijing(1, 11), reschedule=False)
    token = db_session.scalar(select(CampaignDelivery.unsubscribe_token).where(CampaignDelivery.campaign_id == c.id))
    r = client.get(f"/api/v1/alumni/unsubscribe/{token}")
    assert r.status_code == 200 and r.get_json() == {"purpose": "company_news", "label": "公司动态", "subscribed": True}
    r = client.post(f"/api/v1/alumni/unsubscribe/{token}", json={})
    assert r.status_code == 200 and r.get_json()["withdrawn"] == ["company_news"]
    assert svc.active_purposes(db_session, emp.company_id, emp.id) == {"greetings", "job_openings"}
    assert client.post("/api/v1/alumni/unsubscribe/not-a-token", json={}).get_json()["code"] == "unsubscribe_token_invalid"

    # the SMS reply callback: disabled without its token setting, then authenticated by it
    body = [{"mobile": "13912345678", "nationcode": "86", "text": "TD ", "sign": "千里", "time": 1764200000}]
    assert client.post("/api/v1/alumni/sms-replies", json=body).get_json()["code"] == "sms_reply_disabled"
    app_rt = Runtime(replace(runtime.settings, sms_reply_token="reply-token-0123456789")).override(
        engine=runtime.engine, redis=runtime.redis, session_factory=runtime.session_factory)
    client.application.extensions["qianli_runtime"] = app_rt
    assert client.post("/api/v1/alumni/sms-replies", json=body, headers={"X-QianLi-Token": "wrong"}).status_code == 401
    r = client.post("/api/v1/alumni/sms-replies", json=[{"mobile": "+86 139 1234 5678", "text": "你好"}],
                    headers={"X-QianLi-Token": "reply-token-0123456789"})
    assert r.get_json() == {"received": 1, "unsubscribed": 0}
    r = client.post("/api/v1/alumni/sms-replies", json=body, headers={"X-QianLi-Token": "reply-token-0123456789"})
    assert r.get_json() == {"received": 1, "unsubscribed": 1}
    db_session.expire_all()
    assert svc.active_purposes(db_session, emp.company_id, emp.id) == set()
    methods = db_session.scalars(select(AlumniConsentEvent.method).where(
        AlumniConsentEvent.employee_id == emp.id, AlumniConsentEvent.action == "withdrawn")).all()
    assert sorted(methods) == ["sms_reply", "sms_reply", "unsubscribe_link"]


def test_job_opening_matches_messages_and_answers(client, db_session, runtime, world, redis_client):
    match, a1 = world.alumnus("陈一", skills=["销售管理", "客户开发"], tags=["家庭原因"], purposes=("job_openings",),
                              grade="A")
    no_consent, a2 = world.alumnus("陈二", skills=["销售管理"], purposes=("greetings",))
    world.alumnus("陈三", skills=["Java"], purposes=("job_openings",))
    not_eligible, _ = world.alumnus("陈四", skills=["销售管理"], purposes=("job_openings",), eligible=False)
    r = client.post("/api/v1/hr/job-openings", json={"title": "区域销售经理", "department": "市场部",
                                                    "skills": ["销售管理"], "tags": ["家庭原因"]},
                    headers=world.headers("hr_specialist"))
    assert r.status_code == 201, r.get_json()
    opening = r.get_json()
    assert opening["campaign"]["recipients"] == 1
    out.run_campaign(runtime, opening["campaign"]["id"], now=_beijing(1, 11), reschedule=False)
    assert [m["phone"] for m in _outbox(redis_client)] == [out.employee_phone(runtime, match)]

    # the alumnus (deactivated: an alumni-only token) sees and answers it
    headers = _alumnus_headers(runtime, match)
    mine = client.get("/api/v1/alumni/job-openings", headers=headers).get_json()
    assert [(o["id"], o["answer"]) for o in mine] == [(opening["id"], None)]
    r = client.post(f"/api/v1/alumni/job-openings/{opening['id']}/answer", json={"answer": "interested"},
                    headers=headers)
    assert r.status_code == 200, r.get_json()
    assert client.get("/api/v1/cases", headers=headers).status_code == 403  # nothing but the alumni operations
    # HR sees the matches and the answer; the grade only as manager
    for role in ("hr_specialist", "hr_manager"):
        detail = client.get(f"/api/v1/hr/job-openings/{opening['id']}", headers=world.headers(role)).get_json()
        assert {m["alumnus"]["name"] for m in detail["matches"]} == {"陈一", "陈二", "陈四"}
        assert [(x["name"], x["answer"]) for x in detail["answers"]] == [("陈一", "interested")]
        assert all(("performance_grade" in m["alumnus"]) is (role == "hr_manager") for m in detail["matches"])
    assert no_consent.id and not_eligible.id


def _alumnus_headers(runtime, emp):
    from qianli.services.auth import Principal, issue_access_token

    token, _ = issue_access_token(runtime.settings, Principal("alumnus", emp.id, emp.company_id, "openid-x",
                                                              epoch=emp.session_epoch or 0))
    return {"Authorization": f"Bearer {token}"}


def test_deactivated_employee_logs_in_for_alumni_only(client, db_session, runtime, world):
    emp = world.employee("周八", openid="openid-former")
    world.close(emp)  # no consent yet: retention pending, they may still join
    r = client.post("/api/v1/wechat/session", json={"code": "dev-openid-former"})
    body = r.get_json()
    assert r.status_code == 200 and body["alumni_only"] is True and "refresh_token" not in body
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    assert client.get("/api/v1/cases", headers=headers).get_json()["code"] == "alumni_only"
    consent = client.get("/api/v1/alumni/consent", headers=headers).get_json()
    r = client.put("/api/v1/alumni/consent", json={"text_version": consent["text_version"], "agree": True,
                                                   "purposes": ["job_openings"]}, headers=headers)
    assert r.status_code == 200 and r.get_json()["member"] is True
    # an unknown WeChat user still gets the bind-only token
    r = client.post("/api/v1/wechat/session", json={"code": "dev-openid-stranger"})
    assert r.get_json()["bound"] is False and r.get_json()["alumni_only"] is False


@pytest.mark.slow
def test_campaign_runs_in_an_rq_worker(db_session, runtime, world, redis_client):
    from rq import Queue, SimpleWorker

    emp, _ = world.alumnus("吴九", purposes=("company_news",))
    rt = Runtime(replace(runtime.settings, alumni_quiet_hours="off")).override(
        engine=runtime.engine, redis=runtime.redis, session_factory=runtime.session_factory)
    set_runtime(rt)
    try:
        c = _campaign(db_session, rt, world)
        q = Queue(out.QUEUE, connection=redis_client)
        assert q.count == 1  # enqueued after the commit
        SimpleWorker([q], connection=redis_client).work(burst=True)
    finally:
        set_runtime(runtime)
    assert _statuses(db_session, c.id) == {emp.id: "sent"}
    assert len(_outbox(redis_client)) == 1


def test_festival_greetings_from_the_lunar_calendar(db_session, runtime, world):
    from cases.alumni import Festival, festival_dates, festival_on

    assert festival_dates(2026) == {Festival.SPRING_FESTIVAL: date(2026, 2, 17), Festival.MID_AUTUMN: date(2026, 9, 25)}
    assert festival_dates(2027) == {Festival.SPRING_FESTIVAL: date(2027, 2, 6), Festival.MID_AUTUMN: date(2027, 9, 15)}
    assert festival_on(date(2027, 9, 14)) is None
    greeter, _ = world.alumnus("冯一", purposes=("greetings",))
    world.alumnus("冯二", purposes=("company_news",))
    ordinary = datetime.combine(date(2027, 9, 14), time(10), SHANGHAI)
    assert out.festival_campaigns(db_session, runtime, now=ordinary) == []
    mid_autumn = datetime.combine(date(2027, 9, 15), time(0, 30), SHANGHAI)  # Beijing date, not the UTC one
    made = out.festival_campaigns(db_session, runtime, now=mid_autumn)
    assert [(c.purpose, c.title, c.recipients) for c in made] == [("greetings", "中秋节问候", 1)]
    assert out.festival_campaigns(db_session, runtime, now=mid_autumn) == [], "once per festival and year"
    db_session.commit()
    assert _statuses(db_session, made[0].id) == {greeter.id: "pending"}


def test_daily_job_is_queued_once_a_day(runtime, redis_client):
    from rq import Queue

    from qianli.services.alumni_daily import enqueue_daily_if_due

    now = _beijing(1, 3)
    assert enqueue_daily_if_due(runtime, now=now) is True
    assert enqueue_daily_if_due(runtime, now=now + timedelta(hours=5)) is False
    assert enqueue_daily_if_due(runtime, now=now + timedelta(days=1)) is True
    assert Queue(out.QUEUE, connection=redis_client).count == 2
