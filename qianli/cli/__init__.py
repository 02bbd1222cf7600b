"""The entrypoints of the command line: ``qianli``, the operators' CLI (database, companies,
evidence, PKI and verification, roster and dossier, faces, workers and the scheduler, the
development seed and the end-to-end demo).

This package is an entrypoint, like ``api``: it may import every other package (services, the
runtime, adapters, models, the domain, and ``api`` to serve it); nothing imports it. The group and
the commands that need no module of their own are here; every other module of the package
contributes commands, attached below by plain imports.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from qianli.cli.alumni import alumni_group
from qianli.cli.analytics import analytics_group
from qianli.cli.attendance import attendance_group
from qianli.cli.calendar import calendar_group
from qianli.cli.demo import demo_command
from qianli.cli.devseed import dev_group
from qianli.cli.faces import purge_face_photos_command
from qianli.cli.hr import dossier_group, roster_group
from qianli.cli.hr_users import hr_group
from qianli.cli.identity import faces_group, outbox_command
from qianli.cli.jobs import reminders_group, scheduler_command, worker_command
from qianli.cli.pki import pki_group, verify_command
from qianli.settings import SettingsError, load_settings, reset_settings_cache, settings_table

__all__ = ["cli", "main"]


@click.group(help="QianLi 签离 operators' CLI. Settings come from the environment (see README).")
def cli() -> None:
    pass


def _runtime():
    from qianli.runtime import get_runtime

    return get_runtime()


@cli.group("db", help="Database schema.")
def db_group() -> None:
    pass


@db_group.command("upgrade", help="Apply Alembic migrations up to head, as the owner role of "
                                   "QIANLI_MIGRATION_DATABASE_URL if set; then grant DATABASE_URL's role "
                                   "(PostgreSQL: INSERT and SELECT only on the evidence and anchor tables).")
def db_upgrade() -> None:
    from qianli.db import make_engine
    from qianli.migrate import app_role_of, upgrade

    rt = _runtime()
    if rt.settings.database_url.startswith("sqlite"):
        Path(rt.settings.database_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    owner_url = rt.settings.migration_database_url
    engine = make_engine(owner_url) if owner_url else rt.engine
    try:
        upgrade(engine, app_role=app_role_of(rt.settings.database_url) if owner_url else None)
    finally:
        if owner_url:
            engine.dispose()
    click.echo(f"database at head: {engine.url.render_as_string(hide_password=True)}")
    if owner_url:
        click.echo(f"app role {app_role_of(rt.settings.database_url)!r}: granted (append-only: INSERT, SELECT)")


@db_group.command("recount-cases", help="Rebuild case_tallies (the HR queue's stored case counts) from the cases. "
                                         "Triggers keep it; needed only after a TRUNCATE or a manual repair.")
def db_recount_cases() -> None:
    from sqlalchemy import func, select, text

    from qianli.models import CaseTally, ResignationCase
    from qianli.models.tallies import CASE_TALLY_REBUILD_SQL

    rt = _runtime()
    with rt.session_factory() as s:
        for stmt in CASE_TALLY_REBUILD_SQL:
            s.execute(text(stmt))
        s.commit()
        cases = s.scalar(select(func.count()).select_from(ResignationCase))
        tallied = s.scalar(select(func.coalesce(func.sum(CaseTally.n), 0)))
    click.echo(f"case_tallies rebuilt: {tallied} cases counted ({cases} in resignation_cases)")


@cli.command("settings", help="Show the effective settings (secrets hidden), or the README table.")
@click.option("--markdown", is_flag=True, help="Print the table of every setting for the README.")
def show_settings(markdown: bool) -> None:
    if markdown:
        click.echo(settings_table())
        return
    import dataclasses

    s = _runtime().settings
    for f in dataclasses.fields(s):
        value = getattr(s, f.name)
        shown = "***" if f.metadata.get("secret") and value else value
        click.echo(f"{f.metadata['env']}={shown}")


@cli.group("company", help="Companies (tenants) and their HR users.")
def company_group() -> None:
    pass


@company_group.command("create")
@click.argument("code")
@click.argument("name")
def company_create(code: str, name: str) -> None:
    from qianli.db import session_scope
    from qianli.models import Company

    with session_scope(_runtime().session_factory) as s:
        c = Company(code=code, name=name, policy={})
        s.add(c)
        s.flush()
        click.echo(c.id)


@company_group.command("add-hr", help="Create an HR login (password read from the prompt or QIANLI_NEW_PASSWORD).")
@click.argument("company_code")
@click.argument("username")
@click.option("--name", "display_name", required=True)
@click.option("--role", type=click.Choice(["hr_specialist", "hr_manager", "dept_head", "auditor"]), required=True)
@click.option("--department", default=None)
@click.option("--phone", default=None, help="Mobile number for the daily digest of overdue letters (SMS).")
@click.password_option(envvar="QIANLI_NEW_PASSWORD")
def company_add_hr(company_code, username, display_name, role, department, phone, password) -> None:
    from sqlalchemy import select

    from qianli.db import session_scope
    from qianli.models import Company
    from qianli.services.auth import create_hr_user

    rt = _runtime()
    with session_scope(rt.session_factory) as s:
        company = s.scalar(select(Company).where(Company.code == company_code))
        if company is None:
            raise click.ClickException(f"no company {company_code!r}")
        u = create_hr_user(s, company_id=company.id, username=username, display_name=display_name,
                           password=password, role=role, department=department)
        if phone:
            _set_phone(rt, u, phone)
        click.echo(u.id)


def _set_phone(rt, user, phone: str | None) -> None:
    from cases.errors import DomainError
    from qianli.services.reminders import set_hr_phone

    try:
        set_hr_phone(rt, user, phone)
    except (DomainError, ValueError) as exc:
        raise click.ClickException(f"phone {phone!r}: {getattr(exc, 'message', exc)}") from None


@company_group.command("set-hr-phone", help="Set (or with --clear remove) an HR user's mobile number for the daily digest.")
@click.argument("company_code")
@click.argument("username")
@click.argument("phone", required=False)
@click.option("--clear", is_flag=True, help="Remove the number: no more SMS digests for this user.")
def company_set_hr_phone(company_code: str, username: str, phone: str | None, clear: bool) -> None:
    from sqlalchemy import select

    from qianli.db import session_scope
    from qianli.models import Company, HrUser

    if bool(phone) == clear:
        raise click.UsageError("give either PHONE or --clear")
    rt = _runtime()
    with session_scope(rt.session_factory) as s:
        user = s.scalar(select(HrUser).join(Company, Company.id == HrUser.company_id)
                        .where(Company.code == company_code, HrUser.username == username))
        if user is None:
            raise click.ClickException(f"no HR user {username!r} in company {company_code!r}")
        _set_phone(rt, user, None if clear else phone)
        click.echo("cleared" if clear else "set")


@cli.group("evidence", help="The hash-chained evidence log.")
def evidence_group() -> None:
    pass


@evidence_group.command("verify", help="Verify a case's evidence chain and its anchors (every anchored head "
                                         "still in the chain, each anchor's root and TSA token, the line of anchors); "
                                         "exit 1 at the first problem.")
@click.argument("case_id")
def evidence_verify(case_id: str) -> None:
    from qianli.db import session_scope
    from qianli.models import ResignationCase
    from qianli.services.anchors import trust_roots_der, verify_anchors
    from qianli.services.evidence import verify_case_chain

    rt = _runtime()
    with session_scope(rt.session_factory) as s:
        case = s.get(ResignationCase, case_id)
        if case is None:
            raise click.ClickException(f"no case {case_id}")
        result = verify_case_chain(s, case.id, case.company_id)
        anchors = verify_anchors(s, trust_roots_der(rt), case_id=case.id)
    ok = result.ok and anchors.ok
    click.echo(json.dumps({"ok": ok, "entries": result.entries, "first_broken_seq": result.first_broken_seq,
                           "reason": result.reason, "head_digest": result.head_digest,
                           "anchors": {**anchors.as_dict(), "anchored_leaves_of_case": anchors.leaves}},
                          ensure_ascii=False))
    sys.exit(0 if ok else 1)


@evidence_group.group("anchors", help="Timestamped Merkle roots over the evidence chains (append-only).")
def anchors_group() -> None:
    pass


@anchors_group.command("make", help="Anchor now every chain that grew since the last anchor (the scheduler does "
                                    "this every QIANLI_ANCHOR_INTERVAL_S); prints the anchor as JSON.")
def anchors_make() -> None:
    from qianli.db import session_scope
    from qianli.services.anchors import make_anchor

    rt = _runtime()
    with session_scope(rt.session_factory) as s:
        anchor = make_anchor(s, rt)
        out: dict[str, object] = {"anchored": anchor is not None}
        if anchor is not None:
            out.update(anchor_id=anchor.id, root=anchor.root, leaves=anchor.leaf_count)
    click.echo(json.dumps(out))


@anchors_group.command("export", help="Write the anchors (JSON lines: root, predecessor, base64 TSA token, and with "
                                      "--leaves the anchored heads) for safekeeping outside this deployment.")
@click.option("--since", "since_id", type=int, default=0, show_default=True, help="Only anchors with a larger id.")
@click.option("--leaves", "with_leaves", is_flag=True, help="Include every anchored head (case id, seq, digest).")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path), default="-",
              show_default=True)
def anchors_export(since_id: int, with_leaves: bool, out_path: Path) -> None:
    from qianli.db import session_scope
    from qianli.services.anchors import export_anchors

    with session_scope(_runtime().session_factory) as s:
        lines = [json.dumps(a, ensure_ascii=False, sort_keys=True) + "\n"
                 for a in export_anchors(s, since_id=since_id, with_leaves=with_leaves)]
    if str(out_path) == "-":
        click.echo("".join(lines), nl=False)
    else:
        out_path.write_text("".join(lines))
        click.echo(f"wrote {len(lines)} anchors to {out_path}", err=True)


@anchors_group.command("verify", help="Check every anchor against the chains stored now; exit 1 on any problem.")
def anchors_verify() -> None:
    from qianli.db import session_scope
    from qianli.services.anchors import trust_roots_der, verify_anchors

    rt = _runtime()
    with session_scope(rt.session_factory) as s:
        result = verify_anchors(s, trust_roots_der(rt))
    click.echo(json.dumps(result.as_dict(), ensure_ascii=False))
    sys.exit(0 if result.ok else 1)


@cli.command("openapi", help="Write the OpenAPI document the mini-program is built against.")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def write_openapi(path: Path) -> None:
    from miniprogram_contract import render_contract

    path.write_text(render_contract())
    click.echo(f"wrote {path}")


@cli.command("serve", help="Development server (use gunicorn in production).")
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=8000, type=int)
def serve(host: str, port: int) -> None:
    from api.app import create_app

    create_app(_runtime()).run(host=host, port=port, debug=False, use_reloader=False, threaded=True)


for _command in (dev_group, outbox_command, faces_group, roster_group, dossier_group, hr_group, purge_face_photos_command,
                 worker_command, scheduler_command, reminders_group, demo_command, pki_group, verify_command,
                 calendar_group, alumni_group, attendance_group, analytics_group):
    cli.add_command(_command)


def main() -> None:
    try:
        reset_settings_cache(load_settings())
    except SettingsError as exc:
        click.echo(f"configuration error: {exc}", err=True)
        sys.exit(2)
    cli()


if __name__ == "__main__":
    main()
