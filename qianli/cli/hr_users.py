"""``qianli hr``: offboard and manage HR accounts (deactivate, reactivate, set-role, reset-password, list).

Each change is recorded in ``hr_account_events`` with the operator (``cli:<OS user>``) and takes effect
on the account's next request: deactivation and a password reset end its live sessions at once.
"""

from __future__ import annotations

import getpass
import json

import click

from qianli.models import HR_ROLES

__all__ = ["hr_group"]


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry and no LOGNAME (containers)
        return "cli:unknown"


def _run(company_code: str, username: str, change) -> None:
    from cases.errors import DomainError
    from qianli.db import session_scope
    from qianli.runtime import get_runtime
    from qianli.services import hr_users

    rt = get_runtime()
    try:
        with session_scope(rt.session_factory) as s:
            user = hr_users.find_hr_user(s, company_code, username)
            result = change(rt, s, user)
            v = hr_users.view(s, user)
            out = {"id": v.id, "username": v.username, "role": v.role, "department": v.department,
                   "active": v.active, "live_sessions": v.live_sessions, **(result or {})}
    except DomainError as exc:
        raise click.ClickException(f"{exc.code}: {exc.message}") from None
    click.echo(json.dumps(out, ensure_ascii=False))


@click.group("hr", help="HR accounts: offboarding, roles, passwords. Changes apply on the account's next request.")
def hr_group() -> None:
    pass


@hr_group.command("list", help="HR accounts of a company, with their live sessions.")
@click.argument("company_code")
def hr_list(company_code: str) -> None:
    from sqlalchemy import select

    from qianli.db import session_scope
    from qianli.models import Company
    from qianli.runtime import get_runtime
    from qianli.services import hr_users

    with session_scope(get_runtime().session_factory) as s:
        company = s.scalar(select(Company).where(Company.code == company_code))
        if company is None:
            raise click.ClickException(f"no company {company_code!r}")
        for v in hr_users.list_hr_users(s, company.id):
            click.echo(json.dumps({"id": v.id, "username": v.username, "role": v.role, "department": v.department,
                                   "active": v.active, "live_sessions": v.live_sessions}, ensure_ascii=False))


@hr_group.command("deactivate", help="Deactivate an HR account (offboarding): its sessions end at once.")
@click.argument("company_code")
@click.argument("username")
def hr_deactivate(company_code: str, username: str) -> None:
    from qianli.services.hr_users import update_hr_user

    _run(company_code, username, lambda rt, s, u: update_hr_user(s, u, actor=_actor(), active=False) and None)


@hr_group.command("reactivate", help="Allow a deactivated HR account to log in again.")
@click.argument("company_code")
@click.argument("username")
def hr_reactivate(company_code: str, username: str) -> None:
    from qianli.services.hr_users import update_hr_user

    _run(company_code, username, lambda rt, s, u: update_hr_user(s, u, actor=_actor(), active=True) and None)


@hr_group.command("set-role", help="Change an HR account's role (and department); applies on its next request.")
@click.argument("company_code")
@click.argument("username")
@click.argument("role", type=click.Choice(HR_ROLES))
@click.option("--department", default=None, help="Department (required for dept_head; '' clears it).")
def hr_set_role(company_code: str, username: str, role: str, department: str | None) -> None:
    from qianli.services.hr_users import KEEP, update_hr_user

    dept = KEEP if department is None else department
    _run(company_code, username,
         lambda rt, s, u: update_hr_user(s, u, actor=_actor(), role=role, department=dept) and None)


@hr_group.command("reset-password",
                  help="Set a new password (prompt or QIANLI_NEW_PASSWORD): every session of the account ends, a lockout is lifted.")
@click.argument("company_code")
@click.argument("username")
@click.password_option(envvar="QIANLI_NEW_PASSWORD")
def hr_reset_password(company_code: str, username: str, password: str) -> None:
    from qianli.services.hr_users import reset_hr_password

    _run(company_code, username, lambda rt, s, u: {
        "sessions_ended": reset_hr_password(s, rt.settings, rt.redis, u, password, actor=_actor())})
