"""HR managers set an HR user's WeCom userid (task messages go there); malformed ones are refused."""

from __future__ import annotations

from sqlalchemy import select

from qianli.models import HrAccountEvent


def test_manager_sets_and_clears_a_wecom_userid(client, factory, db_session):
    company = factory.company()
    mgr, it = factory.hr(company, "hr_manager"), factory.hr(company, "hr_specialist")
    url = f"/api/v1/hr/users/{it.id}"
    r = client.patch(url, json={"wecom_userid": "wang.it"}, headers=factory.hr_headers(mgr))
    assert r.status_code == 200 and r.json["wecom_userid"] == "wang.it"
    listed = client.get("/api/v1/hr/users", headers=factory.hr_headers(mgr)).json["users"]
    assert {u["id"]: u["wecom_userid"] for u in listed}[it.id] == "wang.it"
    for bad in ("王 it", "x" * 65, "a;b"):
        r = client.patch(url, json={"wecom_userid": bad}, headers=factory.hr_headers(mgr))
        assert r.status_code == 422, bad
    assert client.patch(url, json={"wecom_userid": None}, headers=factory.hr_headers(mgr)).json["wecom_userid"] is None
    assert client.patch(url, json={"wecom_userid": "x"}, headers=factory.hr_headers(it)).status_code == 403
    events = [e.detail for e in db_session.scalars(select(HrAccountEvent).where(
        HrAccountEvent.hr_user_id == it.id, HrAccountEvent.action == "wecom_userid_changed"))]
    assert events == [{"from": None, "to": "wang.it"}, {"from": "wang.it", "to": None}]
