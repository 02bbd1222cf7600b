"""The console pages of the alumni pool: the grade column/field/filter for hr_manager only, edits,
campaigns and openings, and the public unsubscribe page."""

from __future__ import annotations

import re

import pytest

from api.csrf import csrf_token

ROLES = ("hr_specialist", "hr_manager", "dept_head", "auditor")


def _login(client, world, role):
    token = world.headers(role)["Authorization"][7:]
    client.set_cookie("qianli_hr", token)
    with client.application.app_context():
        return csrf_token(token)


@pytest.fixture
def pool(world):
    a = world.alumnus("赵敏", skills=["数据分析"], tags=["优秀"], notes="熟悉零售行业的区域销售管理", grade="A")
    b = world.alumnus("孙丽", skills=["销售"], notes="华东区域销售经理", grade="D", department="市场部")
    return a[1], b[1]


def test_search_page_and_profile_grade_only_for_manager(client, world, pool):
    zhao, _ = pool
    for role in ROLES:
        _login(client, world, role)
        page = client.get("/hr/alumni/?q=区域销售")
        assert page.status_code == 200, role
        html = page.get_data(as_text=True)
        assert "赵敏" in html
        assert ("孙丽" in html) is (role != "dept_head"), role  # 研发部's head: their department only
        assert ("绩效等级" in html) is (role == "hr_manager"), role
        assert ('id="grade-filter"' in html) is (role == "hr_manager"), role
        assert bool(re.search(r'class="grade">A<', html)) is (role == "hr_manager"), role
        prof = client.get(f"/hr/alumni/{zhao.id}").get_data(as_text=True)
        assert ('id="grade"' in prof) is (role == "hr_manager"), role
        assert ('name="performance_grade"' in prof) is (role == "hr_manager"), role
        assert ("（优秀）" in prof) is (role == "hr_manager"), role
        grade_filter = client.get("/hr/alumni/?grade=A")
        assert grade_filter.status_code == (200 if role == "hr_manager" else 403), role


def test_profile_edit_and_rehire(client, world, pool, db_session):
    zhao, _ = pool
    csrf = _login(client, world, "hr_specialist")
    r = client.post(f"/hr/alumni/{zhao.id}", data={"csrf_token": csrf, "skills": "数据分析, SQL", "tags": "返聘优先",
                                                     "notes": "愿意回来", "rehire_eligible": "1",
                                                     "performance_grade": "D"})
    assert r.status_code == 403, "a specialist posting a grade is refused (the control is not even shown)"
    r = client.post(f"/hr/alumni/{zhao.id}", data={"csrf_token": csrf, "skills": "数据分析, SQL", "tags": "返聘优先",
                                                     "notes": "愿意回来", "rehire_eligible": "1", "action": "save"})
    assert r.status_code == 303
    db_session.expire_all()
    assert (zhao.skills, zhao.tags, zhao.performance_grade) == (["数据分析", "SQL"], ["返聘优先"], "A")
    client.post(f"/hr/alumni/{zhao.id}", data={"csrf_token": csrf, "action": "rehire", "rehired": "1"})
    db_session.expire_all()
    assert zhao.rehired_at is not None
    csrf = _login(client, world, "auditor")
    assert client.post(f"/hr/alumni/{zhao.id}", data={"csrf_token": csrf, "notes": "x"}).status_code == 403


def test_campaign_and_opening_pages(client, world, pool):
    csrf = _login(client, world, "hr_specialist")
    r = client.post("/hr/alumni/campaigns", data={"csrf_token": csrf, "purpose": "company_news", "title": "公司动态",
                                                  "body": "新办公室落成"})
    assert r.status_code == 303
    page = client.get(r.headers["Location"]).get_data(as_text=True)
    assert "待发送" in page and "赵敏" in page
    r = client.post("/hr/alumni/openings", data={"csrf_token": csrf, "title": "数据分析师", "skills": "数据分析",
                                                 "notify": "1"})
    assert r.status_code == 303
    page = client.get(r.headers["Location"]).get_data(as_text=True)
    assert "赵敏" in page and 'class="grade"' not in page
    _login(client, world, "hr_manager")
    assert 'class="grade">A<' in client.get(r.headers["Location"]).get_data(as_text=True)
    _login(client, world, "dept_head")
    assert client.get("/hr/alumni/campaigns").status_code == 403


def test_public_unsubscribe_page(client, world, db_session, runtime):
    from sqlalchemy import select

    from qianli.models import CampaignDelivery
    from qianli.services import alumni as svc
    from qianli.services import alumni_outreach as out

    emp, _ = world.alumnus("钱伟", purposes=("company_news", "greetings"))
    c = out.create_campaign(db_session, runtime, company_id=world.company.id, actor="hr:t", purpose="company_news",
                            title="动态", body="内容")
    db_session.commit()
    token = db_session.scalar(select(CampaignDelivery.unsubscribe_token).where(CampaignDelivery.campaign_id == c.id))
    page = client.get(f"/alumni/unsubscribe/{token}")
    assert page.status_code == 200 and "公司动态" in page.get_data(as_text=True)
    done = client.post(f"/alumni/unsubscribe/{token}", data={"all": "1"})
    assert done.status_code == 200 and "已退订" in done.get_data(as_text=True)
    db_session.expire_all()
    assert svc.active_purposes(db_session, emp.company_id, emp.id) == set()
    assert client.get("/alumni/unsubscribe/nope").status_code == 404
