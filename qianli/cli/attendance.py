"""``qianli attendance import|run|risks``: the attendance import and the early warning for operators."""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path

import click

__all__ = ["attendance_group"]


def _echo_json(obj) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False, indent=2, default=str))


def _company_id(session, code: str) -> str:
    from sqlalchemy import select

    from qianli.models import Company

    company_id = session.scalar(select(Company.id).where(Company.code == code))
    if company_id is None:
        raise click.ClickException(f"no company {code!r}")
    return company_id


@click.group("attendance", help="Attendance (clock-ins, leave) and the early warning (离职预警).")
def attendance_group() -> None:
    pass


@attendance_group.command("import", help="Import a clock-in or leave file (CSV/XLSX). Exit 1 if rows are bad "
                                         "(nothing imported), unless --good-rows-only.")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--company", "company_code", required=True, help="Company code.")
@click.option("--kind", type=click.Choice(["auto", "clock", "leave"]), default="auto", show_default=True)
@click.option("--coverage", type=click.Choice(["company", "file"]), default="company", show_default=True,
              help="company: the file lists everyone's clock-ins for its period; file: only its own employees.")
@click.option("--good-rows-only", is_flag=True, help="Import the valid rows even if some rows are bad.")
@click.option("--dry-run", is_flag=True, help="Validate and preview only.")
def attendance_import(file: Path, company_code: str, kind: str, coverage: str, good_rows_only: bool,
                      dry_run: bool) -> None:
    from cases.errors import DomainError
    from qianli.db import session_scope
    from qianli.runtime import get_runtime
    from qianli.services.attendance import AttendanceRejected, import_attendance

    rt = get_runtime()
    if file.stat().st_size > rt.settings.attendance_max_bytes:
        _echo_json({"code": "attendance_too_large", "max_bytes": rt.settings.attendance_max_bytes})
        sys.exit(1)
    try:
        with session_scope(rt.session_factory) as s:
            report = import_attendance(s, rt, company_id=_company_id(s, company_code), data=file.read_bytes(),
                                       filename=file.name, kind=kind, coverage=coverage, good_rows_only=good_rows_only,
                                       dry_run=dry_run, actor="cli:attendance-import")
    except AttendanceRejected as exc:
        _echo_json({"code": exc.code, "message": exc.message, **exc.report.as_dict()})
        sys.exit(1)
    except DomainError as exc:
        _echo_json({"code": exc.code, "message": exc.message, "details": exc.details})
        sys.exit(1)
    _echo_json(report.as_dict())


@attendance_group.command("run", help="Run a company's daily early warning now (once per day; notifies new reds).")
@click.option("--company", "company_code", required=True, help="Company code.")
@click.option("--day", type=click.DateTime(["%Y-%m-%d"]), default=None, help="The day (default today, Beijing).")
def attendance_run(company_code: str, day) -> None:
    from cases.clock import beijing_today
    from qianli.db import session_scope
    from qianli.runtime import get_runtime
    from qianli.services.attrition import run_daily

    rt = get_runtime()
    with session_scope(rt.session_factory) as s:
        company_id = _company_id(s, company_code)
    _echo_json(run_daily(rt, company_id, day.date() if day else beijing_today()))


@attendance_group.command("risks", help="Print the red/amber/green list (no notifications).")
@click.option("--company", "company_code", required=True, help="Company code.")
@click.option("--day", type=click.DateTime(["%Y-%m-%d"]), default=None, help="The day (default today, Beijing).")
def attendance_risks(company_code: str, day) -> None:
    from datetime import timedelta

    from cases.clock import beijing_today
    from qianli.db import session_scope
    from qianli.runtime import get_runtime
    from qianli.services.attrition import evaluate

    rt = get_runtime()
    the_day: date = day.date() if day else beijing_today()
    with session_scope(rt.session_factory) as s:
        risks = evaluate(s, _company_id(s, company_code), through=the_day - timedelta(days=1))
        _echo_json({"date": the_day, "through": risks.through, "counts": risks.counts(),
                    "items": [it.as_dict() for it in risks.items]})
