"""``qianli calendar``: the State Council's yearly holiday schedule (import, list) and what the law says."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

__all__ = ["calendar_group"]

MAX_FILE_BYTES = 256 * 1024


def _echo_json(obj) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False, indent=2, default=str))


@click.group("calendar", help="Holiday schedules (国务院节假日安排) and statutory holidays.")
def calendar_group() -> None:
    pass


@calendar_group.command("import", help=(
    "Enter a year's published schedule from a JSON file ({year, source, holidays: [{name, first, last}], "
    "workdays: [{name, date}]}); for all companies unless --company. Recomputes every open case whose dates "
    "were provisional, records the change as evidence and notifies the employee and HR. Exit 1 if refused."))
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--company", "company_code", default=None, help="Only for this company (default: all companies).")
def calendar_import(file: Path, company_code: str | None) -> None:
    from sqlalchemy import select

    from cases.errors import DomainError
    from qianli.db import session_scope
    from qianli.models import Company
    from qianli.runtime import get_runtime
    from qianli.services.calendar import import_schedule

    if file.stat().st_size > MAX_FILE_BYTES:
        _echo_json({"code": "schedule_file_too_large", "max_bytes": MAX_FILE_BYTES})
        sys.exit(1)
    try:
        doc = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        _echo_json({"code": "invalid_schedule", "message": f"not a UTF-8 JSON file: {exc}"})
        sys.exit(1)
    rt = get_runtime()
    try:
        with session_scope(rt.session_factory) as s:
            company_id = None
            if company_code:
                company_id = s.scalar(select(Company.id).where(Company.code == company_code))
                if company_id is None:
                    raise click.ClickException(f"no company {company_code!r}")
            res = import_schedule(s, rt, doc=doc, company_id=company_id,
                                  actor=f"operator:cli:{company_code or 'all'}")
            out = {"year": res.schedule.year, "scope": "company" if company_id else "all_companies",
                   "sha256": res.schedule.sha256, "replaced": res.replaced, "warnings": res.warnings,
                   "cases_recomputed": len(res.recomputed), "cases_unchanged": res.unchanged,
                   "recomputed": res.recomputed}
    except DomainError as err:
        _echo_json({"code": err.code, "message": err.message, "details": err.details})
        sys.exit(1)
    _echo_json(out)


@calendar_group.command("list", help="Published schedules in force (bundled and imported) for all companies or one.")
@click.option("--company", "company_code", default=None)
def calendar_list(company_code: str | None) -> None:
    from sqlalchemy import select

    from qianli.db import session_scope
    from qianli.models import Company
    from qianli.runtime import get_runtime
    from qianli.services.calendar import list_schedules

    rt = get_runtime()
    with session_scope(rt.session_factory) as s:
        company_id = None
        if company_code:
            company_id = s.scalar(select(Company.id).where(Company.code == company_code))
            if company_id is None:
                raise click.ClickException(f"no company {company_code!r}")
        rows = list_schedules(s, company_id)
    _echo_json([{k: r[k] for k in ("year", "scope", "source", "imported_at", "imported_by", "sha256")} for r in rows])


@calendar_group.command("statutory", help="The statutory holidays of YEAR by the law, and the estimated art. 6 make-up days.")
@click.argument("year", type=int)
def calendar_statutory(year: int) -> None:
    from cases.errors import DomainError
    from qianli.services.calendar import statutory_preview

    try:
        _echo_json(statutory_preview(year))
    except DomainError as err:
        _echo_json({"code": err.code, "message": err.message})
        sys.exit(1)
