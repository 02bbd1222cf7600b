"""Issue 13, HR sessions: server-side and revocable, roles from the database, login throttling,
account management (API, console, CLI), CSRF on every cookie-authenticated write, and an unbind
that ends the employee's access tokens at once. Each attack over HTTP with the attacker's powers.
"""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from api.auth import HR_COOKIE
from qianli.models import HrAccountEvent, HrAlert, HrSession, HrUser

PASSWORD = "correct horse battery"


def api_login(client, world, username: str, password: str = PASSWORD, ip: str = "198.51.100.1"):
    return client.post("/api/v1/hr/session", json={"company_code": world.company.code, "username": username,
                                                   "password": password},
                       environ_base={"REMOTE_ADDR": ip})


def bearer(r) -> dict[str, str]:
    assert r.status_code == 200, r.json
    return {"Authorization": f"Bearer {r.json['access_token']}"}


def console_login(client, world, username: str, password: str = PASSWORD):
    page = client.get("/hr/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)
    return client.post("/hr/login", data={"csrf_token": token, "company_code": world.company.code,
                                          "username": username, "password": password})


def csrf_of(html: str) -> str:
    return re.search(r'<meta name="csrf-token" content="([^"]+)"', html).group(1)


def test_logout_ends_the_session_server_side(client, world, db_session):
    h = bearer(api_login(client, world, "spec"))
    assert client.get("/api/v1/hr/cases", headers=h).status_code == 200
    assert client.delete("/api/v1/hr/session", headers=h).status_code == 204
    r = client.get("/api/v1/hr/cases", headers=h)  # the same, unexpired token
    assert (r.status_code, r.json["code"]) == (401, "session_revoked")
    [row] = db_session.scalars(select(HrSession).where(HrSession.hr_user_id == world.spec.id)).all()
    assert row.end_reason == "logout" and row.ended_at is not None


def test_deactivation_takes_effect_on_the_next_request(client, world, db_session):
    spec = bearer(api_login(client, world, "spec"))
    other_device = bearer(api_login(client, world, "spec"))
    mgr = world.h(world.manager)
    r = client.patch(f"/api/v1/hr/users/{world.spec.id}", json={"active": False}, headers=mgr,
                     environ_base={"REMOTE_ADDR": "203.0.113.5"})
    assert r.status_code == 200 and r.json["active"] is False and r.json["live_sessions"] == 0
    for h in (spec, other_device):
        r = client.get("/api/v1/hr/cases", headers=h)
        assert (r.status_code, r.json["code"]) == (401, "session_revoked")
    assert api_login(client, world, "spec").status_code == 401
    [event] = db_session.scalars(select(HrAccountEvent).where(HrAccountEvent.hr_user_id == world.spec.id)).all()
    assert (event.action, event.actor, event.ip, event.detail["sessions_ended"]) == \
        ("deactivated", f"hr:{world.manager.id}", "203.0.113.5", 2)
    # reactivation lets them log in again; the old tokens stay dead
    client.patch(f"/api/v1/hr/users/{world.spec.id}", json={"active": True}, headers=mgr)
    assert client.get("/api/v1/hr/cases", headers=spec).status_code == 401
    assert api_login(client, world, "spec").status_code == 200


def test_role_and_department_come_from_the_database_on_every_request(client, world):
    c, _ = world.case(department="研发部")
    spec = bearer(api_login(client, world, "spec"))
    head = bearer(api_login(client, world, "head"))
    assert client.get(f"/api/v1/hr/cases/{c.id}", headers=head).status_code == 200
    mgr = world.h(world.manager)
    # the specialist is demoted to auditor: the token issued before may no longer act
    r = client.patch(f"/api/v1/hr/users/{world.spec.id}", json={"role": "auditor"}, headers=mgr)
    assert r.status_code == 200 and r.json["role"] == "auditor"
    r = client.delete(f"/api/v1/hr/employees/{c.employee_id}/wechat-binding", json={"reason": "x"}, headers=spec)
    assert (r.status_code, r.json["code"]) == (403, "role_forbidden")
    # the department head moves to 市场部: the 研发部 case disappears from their next request
    assert client.patch(f"/api/v1/hr/users/{world.head.id}", json={"department": "市场部"},
                        headers=mgr).status_code == 200
    assert client.get(f"/api/v1/hr/cases/{c.id}", headers=head).status_code == 404


def test_manager_cannot_change_themself_and_others_cannot_manage(client, world):
    mgr = world.h(world.manager)
    r = client.patch(f"/api/v1/hr/users/{world.manager.id}", json={"active": False}, headers=mgr)
    assert (r.status_code, r.json["code"]) == (409, "hr_self_change")
    r = client.patch(f"/api/v1/hr/users/{world.manager.id}", json={"role": "auditor"}, headers=mgr)
    assert (r.status_code, r.json["code"]) == (409, "hr_self_change")
    for user in (world.spec, world.head, world.auditor):
        h = world.h(user)
        assert client.get("/api/v1/hr/users", headers=h).status_code == 403
        r = client.patch(f"/api/v1/hr/users/{world.manager.id}", json={"active": False}, headers=h)
        assert (r.status_code, r.json["code"]) == (403, "role_forbidden")
    r = client.patch(f"/api/v1/hr/users/{world.spec.id}", json={"role": "dept_head", "department": None}, headers=mgr)
    assert (r.status_code, r.json["code"]) == (422, "department_required")
    users = client.get("/api/v1/hr/users", headers=mgr).json["users"]
    assert {u["username"] for u in users} == {"spec", "head", "head2", "mgr", "aud"}
    other = world.f.hr(world.f.company(code="other"), "hr_manager")
    assert client.patch(f"/api/v1/hr/users/{world.spec.id}", json={"active": False},
                        headers=world.h(other)).status_code == 404


def test_password_reset_and_change_end_sessions(client, world, db_session):
    old = bearer(api_login(client, world, "spec"))
    r = client.post(f"/api/v1/hr/users/{world.spec.id}/password", json={"new_password": "a new long secret"},
                    headers=world.h(world.manager))
    assert r.status_code == 200 and r.json["sessions_ended"] == 1
    assert client.get("/api/v1/hr/cases", headers=old).json["code"] == "session_revoked"
    assert api_login(client, world, "spec").status_code == 401
    here = bearer(api_login(client, world, "spec", "a new long secret"))
    there = bearer(api_login(client, world, "spec", "a new long secret"))
    r = client.put("/api/v1/hr/session/password", json={"current_password": "wrong", "new_password": "x" * 12},
                   headers=here)
    assert (r.status_code, r.json["code"]) == (403, "password_wrong")
    r = client.put("/api/v1/hr/session/password",
                   json={"current_password": "a new long secret", "new_password": "yet another secret"}, headers=here)
    assert r.status_code == 200 and r.json["sessions_ended"] == 1
    assert client.get("/api/v1/hr/cases", headers=here).status_code == 200
    assert client.get("/api/v1/hr/cases", headers=there).status_code == 401
    actions = db_session.scalars(select(HrAccountEvent.action).where(HrAccountEvent.hr_user_id == world.spec.id)
                                 .order_by(HrAccountEvent.id)).all()
    assert actions == ["password_reset", "password_changed"]


def test_login_lockout_per_account_with_an_hr_alert(runtime, client, world, db_session):
    s = runtime.settings
    for _ in range(s.hr_login_max_failures):
        r = api_login(client, world, "spec", "wrong password")
        assert (r.status_code, r.json["code"]) == (401, "login_failed")
    r = api_login(client, world, "spec", ip="198.51.100.2")  # the right password, from elsewhere: still locked
    assert (r.status_code, r.json["code"]) == (429, "login_locked")
    assert 0 < int(r.headers["Retry-After"]) <= s.hr_login_lockout_s
    [alert] = db_session.scalars(select(HrAlert).where(HrAlert.kind == "hr_login_locked")).all()
    assert alert.company_id == world.company.id and "spec" in alert.message
    assert alert.payload["ip"] == "198.51.100.1" and alert.payload["failures"] == s.hr_login_max_failures
    [event] = db_session.scalars(select(HrAccountEvent).where(HrAccountEvent.action == "login_locked")).all()
    assert event.hr_user_id == world.spec.id
    # the alert is in the managers' list, and a password reset lifts the lock
    alerts = client.get("/api/v1/hr/alerts", headers=world.h(world.manager)).json
    assert [a["kind"] for a in alerts] == ["hr_login_locked"]
    client.post(f"/api/v1/hr/users/{world.spec.id}/password", json={"new_password": "brand new secret"},
                headers=world.h(world.manager))
    assert api_login(client, world, "spec", "brand new secret").status_code == 200


def test_unknown_accounts_lock_the_same_way(runtime, client, world):
    answers = {}
    for name in ("spec", "nobody-here"):
        answers[name] = [(r.status_code, r.json["code"]) for r in
                         (api_login(client, world, name, "wrong password", ip=f"203.0.113.{len(name)}")
                          for _ in range(runtime.settings.hr_login_max_failures + 1))]
    assert answers["spec"] == answers["nobody-here"]
    assert answers["spec"][-1] == (429, "login_locked")


def test_login_throttled_per_address(runtime, client, world):
    for i in range(runtime.settings.hr_login_max_failures_per_ip):
        assert api_login(client, world, f"guess{i}", "wrong", ip="203.0.113.66").status_code == 401
    r = api_login(client, world, "spec", ip="203.0.113.66")
    assert (r.status_code, r.json["code"]) == (429, "login_throttled")
    assert api_login(client, world, "spec", ip="203.0.113.67").status_code == 200


def test_console_login_lockout_and_server_side_logout(runtime, client, world):
    for _ in range(runtime.settings.hr_login_max_failures):
        assert console_login(client, world, "aud", "wrong password").status_code == 401
    r = console_login(client, world, "aud")
    assert r.status_code == 429 and "锁定" in r.get_data(as_text=True)
    assert console_login(client, world, "spec").status_code == 303
    cookie = client.get_cookie(HR_COOKIE).value
    token = csrf_of(client.get("/hr/").get_data(as_text=True))
    assert client.post("/hr/logout", data={"csrf_token": token}).status_code == 303
    # the stolen cookie value is worthless after logout
    client.set_cookie(HR_COOKIE, cookie, path="/")
    assert client.get("/api/v1/hr/cases").json["code"] == "session_revoked"
    r = client.get("/hr/")
    assert r.status_code == 303 and "/hr/login" in r.headers["Location"]


def test_console_account_page_for_managers(client, world, db_session):
    console_login(client, world, "spec")
    assert client.get("/hr/users").status_code == 403
    client.delete_cookie(HR_COOKIE, path="/")
    spec = bearer(api_login(client, world, "spec"))
    console_login(client, world, "mgr")
    html = client.get("/hr/users").get_data(as_text=True)
    assert 'data-user="spec"' in html and "HR 账号" in html
    token = csrf_of(html)
    r = client.post(f"/hr/users/{world.spec.id}", data={"csrf_token": token, "action": "deactivate"})
    assert r.status_code == 303
    assert client.get("/api/v1/hr/cases", headers=spec).status_code == 401
    r = client.post(f"/hr/users/{world.head.id}", data={"csrf_token": token, "action": "role", "role": "dept_head",
                                                         "department": "财务部"})
    assert r.status_code == 303
    db_session.expire_all()
    assert db_session.get(HrUser, world.head.id).department == "财务部"
    # without the CSRF token nothing changes
    r = client.post(f"/hr/users/{world.spec.id}", data={"action": "reactivate"})
    assert r.status_code == 403
    db_session.expire_all()
    assert db_session.get(HrUser, world.spec.id).active is False


@pytest.mark.parametrize("method,path,body", [
    ("patch", "/api/v1/hr/company/policy", {"letter_due_working_days": 5}),
    ("delete", "/api/v1/hr/employees/{emp}/wechat-binding", {"reason": "csrf"}),
    ("patch", "/api/v1/hr/users/{spec}", {"active": False}),
    ("delete", "/api/v1/hr/session", None),
])
def test_csrf_applies_to_every_cookie_authenticated_write(client, world, db_session, method, path, body):
    c, emp = world.case()
    emp.wechat_openid = "oVictim"
    db_session.commit()
    console_login(client, world, "mgr")
    url = path.format(emp=emp.id, spec=world.spec.id)
    kw = {"json": body} if body is not None else {}
    r = getattr(client, method)(url, **kw)  # a cross-site form or fetch rides the cookie, without the token
    assert (r.status_code, r.json["code"]) == (403, "csrf_failed")
    db_session.expire_all()
    assert db_session.get(HrUser, world.spec.id).active and db_session.get(type(emp), emp.id).wechat_openid
    token = csrf_of(client.get("/hr/").get_data(as_text=True))
    r = getattr(client, method)(url, headers={"X-CSRF-Token": token}, **kw)
    assert r.status_code in (200, 204), r.get_data(as_text=True)


def test_unbind_ends_the_employees_access_tokens_at_once(client, world, db_session):
    c, emp = world.case()
    emp.wechat_openid = "oEmp"
    db_session.commit()
    h = world.f.employee_headers(emp)
    assert client.get("/api/v1/cases", headers=h).status_code == 200
    r = client.delete(f"/api/v1/hr/employees/{emp.id}/wechat-binding", json={"reason": "员工更换手机"},
                      headers=world.h(world.spec))
    assert r.status_code == 200
    r = client.get("/api/v1/cases", headers=h)  # the 15-minute access token, seconds old
    assert (r.status_code, r.json["code"]) == (401, "session_revoked")
    # a new login after rebinding works again
    db_session.expire_all()
    assert client.get("/api/v1/cases", headers=world.f.employee_headers(db_session.get(type(emp), emp.id),
                                                                        openid="oEmp")).status_code == 200


def test_cli_deactivate_set_role_reset_password(runtime, client, world, db_session):
    from qianli.cli import cli

    spec = bearer(api_login(client, world, "spec"))
    head = bearer(api_login(client, world, "head"))
    code = world.company.code
    result = CliRunner().invoke(cli, ["hr", "deactivate", code, "spec"])
    assert result.exit_code == 0, result.output
    assert '"active": false' in result.output
    assert client.get("/api/v1/hr/cases", headers=spec).json["code"] == "session_revoked"
    result = CliRunner().invoke(cli, ["hr", "set-role", code, "head", "auditor"])
    assert result.exit_code == 0, result.output
    r = client.post("/api/v1/hr/alerts/x/resolution", headers=head)
    assert (r.status_code, r.json["code"]) == (403, "role_forbidden")
    result = CliRunner().invoke(cli, ["hr", "reset-password", code, "head"],
                                env={"QIANLI_NEW_PASSWORD": "operator chosen secret"})
    assert result.exit_code == 0 and '"sessions_ended": 1' in result.output, result.output
    assert client.get("/api/v1/hr/cases", headers=head).status_code == 401
    assert api_login(client, world, "head", "operator chosen secret").status_code == 200
    result = CliRunner().invoke(cli, ["hr", "deactivate", code, "ghost"])
    assert result.exit_code == 1 and "hr_user_not_found" in result.output
    actors = db_session.scalars(select(HrAccountEvent.actor)).all()
    assert actors and all(a.startswith("cli:") for a in actors)
