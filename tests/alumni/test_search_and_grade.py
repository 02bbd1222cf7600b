"""Re-hire search with Chinese full-text (both databases) and the grade visible to hr_manager only."""

from __future__ import annotations

import csv
import io
from datetime import date

import pytest
from openpyxl import load_workbook
from sqlalchemy import text

from qianli.services import alumni as svc

ROLES = ("hr_specialist", "hr_manager", "dept_head", "auditor")


@pytest.fixture
def pool(world):
    a = world.alumnus("赵敏", skills=["Python", "数据分析"], tags=["家庭原因", "优秀"], notes="熟悉零售行业的区域销售管理",
                      grade="A", reason="family")
    b = world.alumnus("钱伟", skills=["Java"], tags=["个人发展"], notes="负责财务系统的后端开发", grade="C",
                      reason="career_development")
    c = world.alumnus("孙丽", skills=["销售"], tags=["优秀"], notes="华东区域销售经理，客户资源丰富", grade="B",
                      department="市场部", eligible=False, reason="family")
    return {"zhao": a[1], "qian": b[1], "sun": c[1]}


def _names(page):
    return sorted(a.id for a in page.items)


def test_chinese_fulltext_three_chars_and_more(db_session, world, pool):
    cid = world.company.id
    if db_session.get_bind().dialect.name == "sqlite":  # the FTS5 trigram table is what answers here
        assert db_session.execute(text("SELECT count(*) FROM alumni_fts WHERE alumni_fts MATCH '\"区域销售\"'")).scalar() == 2
    else:  # the GIN trigram index exists
        assert db_session.execute(text("SELECT count(*) FROM pg_indexes WHERE indexname = 'ix_alumni_search_trgm' "
                                       "AND indexdef LIKE '%gin_trgm_ops%'")).scalar() == 1
    assert _names(svc.search_alumni(db_session, cid, svc.SearchFilters(q="区域销售"), role="hr_specialist")) == \
        sorted([pool["zhao"].id, pool["sun"].id])
    assert _names(svc.search_alumni(db_session, cid, svc.SearchFilters(q="数据分析"), role="hr_specialist")) == \
        [pool["zhao"].id]
    assert _names(svc.search_alumni(db_session, cid, svc.SearchFilters(q="后端开发"), role="hr_specialist")) == \
        [pool["qian"].id]
    assert _names(svc.search_alumni(db_session, cid, svc.SearchFilters(q="python"), role="hr_specialist")) == \
        [pool["zhao"].id], "case-insensitive"
    assert svc.search_alumni(db_session, cid, svc.SearchFilters(q="人工智能"), role="hr_specialist").total == 0


def test_two_character_chinese_query_falls_back(db_session, world, pool):
    cid = world.company.id
    assert _names(svc.search_alumni(db_session, cid, svc.SearchFilters(q="财务"), role="hr_specialist")) == \
        [pool["qian"].id]
    assert _names(svc.search_alumni(db_session, cid, svc.SearchFilters(q="销售 经理"), role="hr_specialist")) == \
        [pool["sun"].id], "every word must match"
    assert _names(svc.search_alumni(db_session, cid, svc.SearchFilters(q="%"), role="hr_specialist")) == []


def test_filters_and_pagination(db_session, world, pool):
    cid = world.company.id
    f = svc.SearchFilters
    assert _names(svc.search_alumni(db_session, cid, f(tags=("优秀",), reason_category="family"), role="hr_specialist")) \
        == sorted([pool["zhao"].id, pool["sun"].id])
    assert _names(svc.search_alumni(db_session, cid, f(tags=("优秀",), eligible_only=True), role="hr_specialist")) \
        == [pool["zhao"].id]
    assert _names(svc.search_alumni(db_session, cid, f(department="市场部"), role="hr_specialist")) == [pool["sun"].id]
    assert _names(svc.search_alumni(db_session, cid, f(skills=("java",)), role="hr_specialist")) == [pool["qian"].id]
    assert svc.search_alumni(db_session, cid, f(left_from=date(2000, 1, 1), left_to=date(2000, 12, 31)),
                             role="hr_specialist").total == 0
    assert _names(svc.search_alumni(db_session, cid, f(grades=("A", "B")), role="hr_manager")) == \
        sorted([pool["zhao"].id, pool["sun"].id])
    page1 = svc.search_alumni(db_session, cid, f(), role="hr_specialist", page=1, per_page=2)
    page2 = svc.search_alumni(db_session, cid, f(), role="hr_specialist", page=2, per_page=2)
    assert (page1.total, len(page1.items), len(page2.items)) == (3, 2, 1)
    assert not {a.id for a in page1.items} & {a.id for a in page2.items}


def test_api_search_grade_field_for_every_role(client, world, pool):
    for role in ROLES:
        r = client.get("/api/v1/hr/alumni", query_string={"q": "区域销售"}, headers=world.headers(role))
        assert r.status_code == 200, (role, r.get_json())
        items = r.get_json()["items"]
        expected = 2 if role != "dept_head" else 1  # 研发部's head: their department only
        assert len(items) == expected, role
        for item in items:
            assert ("performance_grade" in item) is (role == "hr_manager"), role
        one = client.get(f"/api/v1/hr/alumni/{pool['zhao'].id}", headers=world.headers(role)).get_json()
        assert ("performance_grade" in one) is (role == "hr_manager"), role
        if role == "hr_manager":
            assert one["performance_grade"] == "A"
        else:
            assert "performance_grade" not in r.get_data(as_text=True), role


def test_api_grade_filter_and_write_forbidden_for_other_roles(client, world, pool):
    for role in ROLES:
        r = client.get("/api/v1/hr/alumni", query_string={"grade": "A"}, headers=world.headers(role))
        assert r.status_code == (200 if role == "hr_manager" else 403), role
        if role != "hr_manager":
            assert r.get_json()["code"] == "grade_forbidden"
    r = client.patch(f"/api/v1/hr/alumni/{pool['zhao'].id}", json={"performance_grade": "D"},
                     headers=world.headers("hr_specialist"))
    assert r.status_code == 403 and r.get_json()["code"] == "grade_forbidden"
    r = client.patch(f"/api/v1/hr/alumni/{pool['zhao'].id}", json={"tags": ["返聘优先"], "skills": ["Python", "SQL"]},
                     headers=world.headers("hr_specialist"))
    assert r.status_code == 200 and "performance_grade" not in r.get_json()
    assert r.get_json()["tags"] == ["返聘优先"]
    for role in ("dept_head", "auditor"):
        assert client.patch(f"/api/v1/hr/alumni/{pool['zhao'].id}", json={"tags": ["x"]},
                            headers=world.headers(role)).status_code == 403
    r = client.patch(f"/api/v1/hr/alumni/{pool['zhao'].id}", json={"performance_grade": "B"},
                     headers=world.headers("hr_manager"))
    assert r.status_code == 200 and r.get_json()["performance_grade"] == "B"


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_export_grade_column_for_every_role(client, world, pool, fmt):
    for role in ROLES:
        r = client.get("/api/v1/hr/alumni/export", query_string={"format": fmt}, headers=world.headers(role))
        assert r.status_code == 200, role
        if fmt == "csv":
            rows = list(csv.reader(io.StringIO(r.get_data(as_text=True).lstrip("\ufeff"))))
        else:
            rows = [[c if c is not None else "" for c in row]
                    for row in load_workbook(io.BytesIO(r.data)).active.iter_rows(values_only=True)]
        header, body = rows[0], rows[1:]
        assert ("绩效等级" in header) is (role == "hr_manager"), role
        grades = {"A", "B", "C"}
        cells = {c for row in body for c in row}
        if role == "hr_manager":
            assert grades <= cells
        else:
            assert not grades & cells, role


def test_rehired_mark(client, world, pool):
    r = client.post(f"/api/v1/hr/alumni/{pool['qian'].id}/rehire", json={}, headers=world.headers("hr_specialist"))
    assert r.status_code == 200 and r.get_json()["rehired_at"]
    r = client.get("/api/v1/hr/alumni", query_string={"include_rehired": "false"}, headers=world.headers("hr_specialist"))
    assert pool["qian"].id not in [i["id"] for i in r.get_json()["items"]]


def test_department_head_scope(db_session, world, pool):
    from cases.errors import NotFound

    cid = world.company.id
    assert _names(svc.search_alumni(db_session, cid, svc.SearchFilters(), role="dept_head", scope_department="市场部")) \
        == [pool["sun"].id]
    assert svc.search_alumni(db_session, cid, svc.SearchFilters(), role="dept_head", scope_department="").total == 0
    with pytest.raises(NotFound):
        svc.get_alumnus(db_session, cid, pool["sun"].id, department="")
    with pytest.raises(NotFound):
        svc.get_alumnus(db_session, cid, pool["sun"].id, department="研发部")
