"""Operators set the HR digest phone from the CLI (add-hr --phone, set-hr-phone); stored encrypted."""

from __future__ import annotations

from click.testing import CliRunner
from sqlalchemy import select

from qianli.cli import cli
from qianli.models import HrUser
from qianli.services.reminders import hr_phone


def _user(db_session, user_id):
    db_session.expire_all()
    return db_session.scalar(select(HrUser).where(HrUser.id == user_id))


def test_add_hr_with_phone_then_change_and_clear(runtime, db_session, factory):
    company = factory.company()
    db_session.commit()
    r = CliRunner().invoke(cli, ["company", "add-hr", company.code, "lin", "--name", "林", "--role", "hr_manager",
                                 "--phone", "+86 138-0013-8000"], env={"QIANLI_NEW_PASSWORD": "a long password"})
    assert r.exit_code == 0, r.output
    user = _user(db_session, r.output.strip())
    assert hr_phone(runtime, user) == "13800138000" and "13800138000" not in str(user.phone_enc)
    r = CliRunner().invoke(cli, ["company", "set-hr-phone", company.code, "lin", "13900139000"])
    assert r.exit_code == 0 and hr_phone(runtime, _user(db_session, user.id)) == "13900139000"
    r = CliRunner().invoke(cli, ["company", "set-hr-phone", company.code, "lin", "12345"])
    assert r.exit_code == 1 and "12345" in r.output
    assert hr_phone(runtime, _user(db_session, user.id)) == "13900139000"  # a bad number changes nothing
    assert CliRunner().invoke(cli, ["company", "set-hr-phone", company.code, "nobody", "13900139000"]).exit_code == 1
    assert CliRunner().invoke(cli, ["company", "set-hr-phone", company.code, "lin"]).exit_code == 2
    r = CliRunner().invoke(cli, ["company", "set-hr-phone", company.code, "lin", "--clear"])
    assert r.exit_code == 0 and hr_phone(runtime, _user(db_session, user.id)) is None
