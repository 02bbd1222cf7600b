"""HR commands: ``qianli roster import|set-phone`` and ``qianli dossier export|verify``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

__all__ = ["roster_group", "dossier_group"]


def _runtime():
    from qianli.runtime import get_runtime

    return get_runtime()


def _echo_json(obj) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False, indent=2, default=str))


@click.group("roster", help="The employee roster.")
def roster_group() -> None:
    pass


@roster_group.command("import", help="Import or update employees from a CSV/XLSX roster. Exit 1 if rows are bad (nothing imported), unless --good-rows-only.")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--company", "company_code", required=True, help="Company code.")
@click.option("--good-rows-only", is_flag=True, help="Import the valid rows even if some rows are bad.")
@click.option("--dry-run", is_flag=True, help="Validate and count only.")
@click.option("--photos", "photos_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Directory with the reference photos named in the photo column.")
def roster_import(file: Path, company_code: str, good_rows_only: bool, dry_run: bool, photos_dir: Path | None) -> None:
    from sqlalchemy import select

    from cases.errors import DomainError
    from qianli.db import session_scope
    from qianli.models import Company
    from qianli.services import roster as svc

    rt = _runtime()
    if file.stat().st_size > rt.settings.roster_max_bytes:
        _echo_json({"code": "roster_too_large", "max_bytes": rt.settings.roster_max_bytes})
        sys.exit(1)
    data = file.read_bytes()
    try:
        with session_scope(rt.session_factory) as s:
            company = s.scalar(select(Company).where(Company.code == company_code))
            if company is None:
                raise click.ClickException(f"no company {company_code!r}")
            report = svc.import_roster(s, rt, company_id=company.id, data=data, good_rows_only=good_rows_only,
                                       dry_run=dry_run, actor="cli:roster-import", source="cli")
            if photos_dir is not None and not dry_run:
                svc.enrol_photos(s, rt, report, photos_dir, company_id=company.id, actor="cli:roster-import")
            elif photos_dir is None:
                svc.photos_not_enrolled(report, "未指定 --photos 目录")
            else:
                svc.photos_not_enrolled(report, "dry run")
    except svc.RosterRejected as exc:
        _echo_json({"code": exc.code, "message": exc.message, **exc.report.as_dict()})
        sys.exit(1)
    except DomainError as exc:
        _echo_json({"code": exc.code, "message": exc.message, "details": exc.details})
        sys.exit(1)
    _echo_json(report.as_dict())
    sys.exit(0)


@roster_group.command("set-phone", help="Change one employee's phone: an identity change (SMS to the old number, "
                                          "notice to the bound WeChat, usable for signing after the employee "
                                          "confirms or the cooling period). Refused while a case is in progress.")
@click.option("--company", "company_code", required=True, help="Company code.")
@click.option("--employee-no", required=True, help="Employee number.")
@click.option("--phone", required=True, help="The new mobile number.")
@click.option("--reason", required=True, help="Why (recorded, shown to the employee).")
@click.option("--operator", required=True, help="Who asks for it (recorded as cli:<operator>).")
def roster_set_phone(company_code: str, employee_no: str, phone: str, reason: str, operator: str) -> None:
    from sqlalchemy import select

    from cases.errors import DomainError
    from qianli.db import session_scope
    from qianli.models import Company
    from qianli.services.employees import find_employee
    from qianli.services.identity_trust import change_phone

    rt = _runtime()
    try:
        with session_scope(rt.session_factory) as s:
            company = s.scalar(select(Company).where(Company.code == company_code))
            if company is None:
                raise click.ClickException(f"no company {company_code!r}")
            emp = find_employee(s, company_id=company.id, employee_no=employee_no)
            ch = change_phone(s, rt, emp, phone, actor=f"cli:{operator}"[:120], source="cli", reason=reason)
            out: dict[str, object] = {"changed": ch is not None}
            if ch is not None:
                out.update(change_id=ch.id, old=ch.old_value, new=ch.new_value, usable_from=ch.usable_from)
    except DomainError as exc:
        _echo_json({"code": exc.code, "message": exc.message, "details": exc.details})
        sys.exit(1)
    _echo_json(out)
    sys.exit(0)


@click.group("dossier", help="The evidence dossier of a case (离职档案).")
def dossier_group() -> None:
    pass


@dossier_group.command("export", help="Write a case's dossier zip (recorded in the case's evidence chain).")
@click.argument("case_id")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path))
def dossier_export(case_id: str, out: Path) -> None:
    import hashlib

    from cases.errors import DomainError
    from qianli.db import session_scope
    from qianli.models import ResignationCase
    from qianli.services.dossier import build_dossier

    rt = _runtime()
    try:
        with session_scope(rt.session_factory) as s:
            case = s.get(ResignationCase, case_id)
            if case is None:
                raise click.ClickException(f"no case {case_id}")
            data = build_dossier(s, rt, case, actor="cli:dossier-export")
            tmp = out.with_name(out.name + ".part")
            tmp.write_bytes(data)
            tmp.replace(out)
    except DomainError as exc:
        raise click.ClickException(f"{exc.code}: {exc.message}") from None
    _echo_json({"case_id": case_id, "out": str(out), "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()})


@dossier_group.command("verify", help="Check a dossier zip offline; exit 1 with the reason if anything was changed.")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--root", "roots", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Trusted root certificate (PEM/DER; repeat it for an external TSA's root); default: the root inside the dossier (fingerprint shown) and its pki/tsa-roots.pem.")
def dossier_verify(file: Path, roots: tuple[Path, ...]) -> None:
    from qianli.services.dossier import verify_dossier

    result = verify_dossier(file.read_bytes(), trust_roots=list(roots) if roots else None)
    _echo_json(result.as_dict())
    if not result.ok:
        click.echo(f"dossier verification FAILED: {result.reason}", err=True)
        sys.exit(1)
    click.echo(f"dossier OK: case {result.case_id}, {result.members} files, timestamp {result.timestamp_time}, "
               f"root SHA-256 {result.root_sha256} ({result.trust_source})", err=True)
