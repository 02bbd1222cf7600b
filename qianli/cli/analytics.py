"""``qianli analytics export|report``: departure analytics for operators (and the demo), company-wide."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import click

__all__ = ["analytics_group"]


def _company(session, code: str):
    from sqlalchemy import select

    from qianli.models import Company

    company = session.scalar(select(Company).where(Company.code == code))
    if company is None:
        raise click.ClickException(f"no company with code {code!r}")
    return company


@click.group("analytics", help="Departure analytics: XLSX/CSV exports and the quarterly report, company-wide.")
def analytics_group() -> None:
    pass


@analytics_group.command("export", help="Write every chart as XLSX (or one chart as CSV with --chart and a .csv FILE).")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--company", "company_code", required=True)
@click.option("--from", "start", type=click.DateTime(["%Y-%m-%d"]), default=None, help="Beijing date (default: 11 months ago)")
@click.option("--to", "end", type=click.DateTime(["%Y-%m-%d"]), default=None, help="Beijing date (default: today)")
@click.option("--granularity", type=click.Choice(["month", "quarter"]), default="month", show_default=True)
@click.option("--chart", default=None, help="One chart id (required for CSV).")
def analytics_export(out: Path, company_code: str, start, end, granularity: str, chart: str | None) -> None:
    from cases.errors import DomainError
    from qianli.runtime import get_runtime
    from qianli.services.analytics import CHART_IDS, company_analytics, make_query
    from qianli.services.analytics_export import export_csv, export_xlsx

    if chart is not None and chart not in CHART_IDS:
        raise click.ClickException(f"unknown chart {chart!r} (one of {', '.join(CHART_IDS)})")
    rt = get_runtime()
    with rt.session_factory() as s:
        company = _company(s, company_code)
        try:
            q = make_query(start=start.date() if start else None, end=end.date() if end else None,
                           granularity=granularity)
        except DomainError as exc:
            raise click.ClickException(exc.message) from None
        a = company_analytics(s, company.id, q)
    if out.suffix.lower() == ".csv":
        if chart is None:
            raise click.ClickException("CSV holds one chart: add --chart")
        data = export_csv(a, chart)
    else:
        data = export_xlsx(a, [chart] if chart else None)
    out.write_bytes(data)
    click.echo(json.dumps({"file": str(out), "bytes": len(data), "departures": a.overall.departures}))


@analytics_group.command("report", help="Write the quarterly departure analysis report (PDF); --store also stores it "
                                        "as the quarter's document if none is stored yet (what the scheduler does).")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--company", "company_code", required=True)
@click.option("--year", type=int, default=None, help="Default: the previous quarter's year.")
@click.option("--quarter", type=click.IntRange(1, 4), default=None)
@click.option("--store", is_flag=True)
def analytics_report(out: Path, company_code: str, year: int | None, quarter: int | None, store: bool) -> None:
    from cases.analytics import previous_quarter
    from cases.clock import beijing_today
    from cases.errors import DomainError
    from qianli.runtime import get_runtime
    from qianli.services.analytics import company_analytics
    from qianli.services.analytics_report import (generate_quarterly_report, render_departure_report, report_query,
                                                  report_title, stored_report)
    from qianli.storage import read_document

    if (year is None) != (quarter is None):
        raise click.ClickException("give both --year and --quarter, or neither")
    if year is None or quarter is None:
        year, quarter = previous_quarter(beijing_today())
    rt = get_runtime()
    try:
        q = report_query(year, quarter)
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    with rt.session_factory() as s:
        company = _company(s, company_code)
        company_id, name = company.id, company.name
    if store:
        generate_quarterly_report(rt, company_id, year, quarter)
        with rt.session_factory() as s:
            data = read_document(rt.store, stored_report(s, company_id, year, quarter))
    else:
        with rt.session_factory() as s:
            data = render_departure_report(company_analytics(s, company_id, q), company_name=name,
                                           title=report_title(year, quarter))
    out.write_bytes(data)
    click.echo(json.dumps({"file": str(out), "bytes": len(data), "year": year, "quarter": quarter,
                           "from": date.isoformat(q.start), "to": date.isoformat(q.end)}))
