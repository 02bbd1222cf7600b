"""The console's holiday-schedule page: list, statutory preview, the HR manager's import form."""

from sqlalchemy import select

from qianli.models import ResignationCase
from tests.holidays.conftest import SCHEDULE_2027, open_case_at
from tests.review.test_console import csrf_of, login


def _lines(blocks, keys):
    return "\n".join(" ".join(b[k] for k in keys) for b in blocks)


def test_calendar_page_and_import(client, world, db_session, runtime):
    c = open_case_at(db_session, runtime, world.f.employee(world.company), "2027-09-29T10:00:00")
    login(client, world, world.spec)
    html = client.get("/hr/calendar").get_data(as_text=True)
    assert "2026" in html and "国庆节" in html and 'id="schedule-form"' not in html  # specialists only read
    assert client.post("/hr/calendar", data={"csrf_token": csrf_of(html), "year": "2027"}).status_code == 403
    client.post("/hr/logout", data={"csrf_token": csrf_of(html)})
    login(client, world, world.manager)
    html = client.get("/hr/calendar").get_data(as_text=True)
    assert 'id="schedule-form"' in html and "2027-02-05 春节" in html  # the law's days for the next year
    form = {"csrf_token": csrf_of(html), "year": "2027", "source": SCHEDULE_2027["source"],
            "holidays": _lines(SCHEDULE_2027["holidays"], ("name", "first", "last")),
            "workdays": _lines(SCHEDULE_2027["workdays"], ("name", "date"))}
    bad = dict(form, holidays=form["holidays"].replace("2027-02-05", "2027-02-06"))
    r = client.post("/hr/calendar", data=bad)
    assert r.status_code == 422 and "2027-02-05（春节）" in r.get_data(as_text=True)
    r = client.post("/hr/calendar", data=form)
    page = r.get_data(as_text=True)
    assert r.status_code == 200 and 'id="import-result"' in page and "2027-10-07（暂定） → 2027-10-09" in page
    assert "已通知员工" in page
    db_session.expire_all()
    assert db_session.scalar(select(ResignationCase.letter_due_date).where(ResignationCase.id == c.id)).isoformat() == "2027-10-09"
    assert client.post("/hr/calendar", data=dict(form, csrf_token="x")).status_code in (400, 403)
