"""``qianli alumni``: the operators' side of the alumni pool (the jobs, run now)."""

from __future__ import annotations

import json

import click

__all__ = ["alumni_group"]


@click.group("alumni", help="Alumni pool: run the retention job, the daily job or a campaign now.")
def alumni_group() -> None:
    pass


@alumni_group.command("retention", help="Run the retention job now (deletes what is due, nothing else); prints JSON.")
def retention_command() -> None:
    from qianli.runtime import get_runtime
    from qianli.services.alumni import run_retention

    click.echo(json.dumps(run_retention(get_runtime()).as_dict()))


@alumni_group.command("daily", help="Run the daily alumni job now (retention + festival greetings); prints JSON.")
def daily_command() -> None:
    from qianli.runtime import get_runtime
    from qianli.services.alumni_daily import run_daily

    click.echo(json.dumps(run_daily(get_runtime())))


@alumni_group.command("run-campaign", help="Send a campaign's due messages now (quiet hours, rate limit and caps apply).")
@click.argument("campaign_id")
def run_campaign_command(campaign_id: str) -> None:
    from qianli.runtime import get_runtime
    from qianli.services.alumni_outreach import run_campaign

    click.echo(json.dumps(run_campaign(get_runtime(), campaign_id).as_dict()))
