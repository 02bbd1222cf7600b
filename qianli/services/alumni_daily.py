"""The daily alumni job: the retention job (deletes what is due, nothing else) and the festival
greetings. The scheduler enqueues it once per Beijing day (``enqueue_daily_if_due``)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from cases.clock import beijing_today
from qianli.db import utcnow
from qianli.runtime import Runtime
from qianli.services.alumni import run_retention
from qianli.services.alumni_outreach import QUEUE, enqueue_campaign, festival_campaigns

__all__ = ["run_daily", "enqueue_daily_if_due", "DAILY_FUNC"]

log = logging.getLogger(__name__)

DAILY_FUNC = "jobs.alumni.alumni_daily_job"


def run_daily(rt: Runtime, *, now: datetime | None = None) -> dict[str, Any]:
    now = now or utcnow()
    retention = run_retention(rt, now=now)
    with rt.session_factory() as session:
        campaigns = festival_campaigns(session, rt, now=now)
        ids = [c.id for c in campaigns if c.state != "done"]
        session.commit()
    for cid in ids:
        enqueue_campaign(rt, cid)
    return {"retention": retention.as_dict(), "festival_campaigns": [c.id for c in campaigns]}


def enqueue_daily_if_due(rt: Runtime, *, now: datetime | None = None) -> bool:
    """Queue the daily job once per Beijing day (a Redis key claims the day); True if queued now."""
    from rq import Queue

    day = beijing_today(now or utcnow())
    if not rt.redis.set(f"qianli:alumni:daily:{day.isoformat()}", "1", nx=True, ex=3 * 86400):
        return False
    Queue(QUEUE, connection=rt.redis).enqueue(DAILY_FUNC, job_id=f"alumni-daily-{day.isoformat()}",
                                              result_ttl=7 * 86400, failure_ttl=7 * 86400)
    return True
