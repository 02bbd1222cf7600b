"""RQ job functions for the alumni pool: a campaign run, and the daily job (retention, festival
greetings). They take ids only and re-read everything from the database."""

from __future__ import annotations

from typing import Any

from qianli.runtime import get_runtime

__all__ = ["run_campaign_job", "alumni_daily_job"]


def run_campaign_job(campaign_id: str) -> dict[str, Any]:
    from qianli.services.alumni_outreach import run_campaign

    return run_campaign(get_runtime(), campaign_id).as_dict()


def alumni_daily_job() -> dict[str, Any]:
    from qianli.services.alumni_daily import run_daily

    return run_daily(get_runtime())
