"""RQ job functions for reminders. They take ids only and re-read everything from the database.

``deliver_reminder`` runs with rq ``Retry`` (QIANLI_REMINDER_RETRY_INTERVALS): a provider error
raises so rq retries it; on the last attempt the delivery is recorded as failed and HR alerted.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from rq import get_current_job

from qianli.observability import REMINDER_DELIVERIES
from qianli.runtime import get_runtime

__all__ = ["deliver_reminder", "send_hr_digests_job", "sweep_job"]


def _final_attempt() -> bool:
    job = get_current_job()
    if job is None:
        return True
    return not (job.retries_left and job.retries_left > 0)


def deliver_reminder(case_id: str, slot: int, channel: str) -> dict[str, Any]:
    from qianli.services.reminders import RetryableSendError, deliver

    try:
        out = deliver(get_runtime(), case_id, int(slot), channel, final_attempt=_final_attempt())
    except RetryableSendError:
        REMINDER_DELIVERIES.labels(channel, "retry").inc()
        raise
    except Exception:
        REMINDER_DELIVERIES.labels(channel, "error").inc()
        raise
    REMINDER_DELIVERIES.labels(channel, out.status).inc()
    return {"status": out.status, "provider_message_id": out.provider_message_id, "detail": out.detail}


def send_hr_digests_job(company_id: str, day: str) -> dict[str, str]:
    from qianli.services.reminders import send_hr_digests

    return send_hr_digests(get_runtime(), company_id, date.fromisoformat(day))


def sweep_job() -> dict[str, Any]:
    from qianli.services.reminders import sweep

    return sweep(get_runtime()).as_dict()
