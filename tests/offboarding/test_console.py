"""The offboarding console pages through the Flask test client: my tasks, the task board and its complete
action (with an attachment), the templates editor (manager only, errors shown, a new version saved)."""

from __future__ import annotations

import io
import re

from sqlalchemy import select

from qianli.models import EvidenceEntry, ResignationCase
from qianli.services.offboarding import start_offboarding
from tests.review.test_console import csrf_of, login

PDF = b"%PDF-1.4\n% receipt\n"


def _approved(oworld, db_session):
    c, emp = oworld.case()
    case = db_session.get(ResignationCase, c.id)
    case.state = "approved"
    db_session.commit()
    start_offboarding(db_session, oworld.rt, case, actor="system:test")
    db_session.commit()
    return c


def test_my_tasks_board_and_complete(client, oworld, db_session):
    c = _approved(oworld, db_session)
    assert login(client, oworld, oworld.it).status_code == 303
    page = client.get("/hr/tasks")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "我的交接任务" in html
    keys = oworld.tasks(c.id)
    assert set(re.findall(r'data-task-id="([0-9a-f]+)"', html)) == {keys["return_equipment"].id, keys["close_accounts"].id}
    board = client.get(f"/hr/cases/{c.id}/tasks")
    bhtml = board.get_data(as_text=True)
    assert board.status_code == 200 and "工作交接" in bhtml and "财务与社保" in bhtml and "代码仓库权限" in bhtml
    task = keys["return_equipment"]
    r = client.post(f"/hr/tasks/{task.id}/complete", data={
        "csrf_token": csrf_of(bhtml), "note": "电脑已收回", "next": f"/hr/cases/{c.id}/tasks",
        "attachment": (io.BytesIO(PDF), "回执.pdf")}, content_type="multipart/form-data")
    assert r.status_code == 303 and r.headers["Location"] == f"/hr/cases/{c.id}/tasks"
    after = client.get(r.headers["Location"]).get_data(as_text=True)
    assert "已完成" in after and "电脑已收回" in after and "task-return_equipment.pdf" in after
    e = db_session.scalar(select(EvidenceEntry).where(EvidenceEntry.case_id == c.id,
                                                      EvidenceEntry.action == "task_completed"))
    assert e.payload["attachment"]["content_type"] == "application/pdf"
    # Without the CSRF token the post is refused; a task not theirs is refused with the reason shown.
    other = keys["final_pay"]
    r = client.post(f"/hr/tasks/{other.id}/complete", data={"note": "x"})
    assert r.status_code == 403
    r = client.post(f"/hr/tasks/{other.id}/complete", data={"csrf_token": csrf_of(after), "note": "x"})
    assert r.status_code == 403 and "只有任务负责人或人事" in r.get_data(as_text=True)


def test_templates_editor(client, oworld, db_session):
    login(client, oworld, oworld.spec)
    html = client.get("/hr/offboarding-templates").get_data(as_text=True)
    assert "产品默认模板" in html and "只有人事经理可以修改模板" in html
    r = client.post("/hr/offboarding-templates/resignation", data={"csrf_token": csrf_of(html), "rows": "0"})
    assert r.status_code == 403
    client.post("/hr/logout", data={"csrf_token": csrf_of(html)})
    login(client, oworld, oworld.manager)
    html = client.get("/hr/offboarding-templates?type=resignation").get_data(as_text=True)
    rows = int(re.search(r'name="rows" value="(\d+)"', html).group(1))
    form = {"csrf_token": csrf_of(html), "expected_version": "0", "rows": str(rows), "comment": "加一项"}
    # Keep every existing row (the page posts them back), delete one, add one with a bad offset first.
    for name, value in re.findall(r'name="((?:key|title|description|offset)_\d+)" value="([^"]*)"', html):
        form[name] = value
    for name, value in re.findall(r'<select name="((?:group|owner|day_kind)_\d+)"[^>]*>.*?<option value="([^"]*)" selected',
                                  html, flags=re.S):
        form[name] = value
    form["delete_1"] = "1"
    n = rows - 3
    form.update({f"key_{n}": "parking", f"group_{n}": "assets", f"title_{n}": "收回车位卡", f"owner_{n}": "role:admin",
                 f"offset_{n}": "abc", f"day_kind_{n}": "working"})
    bad = client.post("/hr/offboarding-templates/resignation", data=form)
    assert bad.status_code == 422 and "offset" in bad.get_data(as_text=True)
    assert "收回车位卡" in bad.get_data(as_text=True)  # the form keeps what was typed
    form[f"offset_{n}"] = "-1"
    ok = client.post("/hr/offboarding-templates/resignation", data=form)
    assert ok.status_code == 303
    page = client.get(ok.headers["Location"]).get_data(as_text=True)
    assert "第 1 版" in page and "加一项" in page and "收回车位卡" in page
    assert "handover_documents" not in page  # row 1 (the second default item) was deleted
