"""RQ job functions for reminders. They take ids only and re-read everything from the database.

``deliver_reminders`` sends a batch of deliveries concurrently (``deliver_batch``); a delivery of the
batch that meets a provider error worth retrying is scheduled again on its own as a
``deliver_reminder`` job. ``deliver_reminder`` (one delivery) runs with rq ``Retry``
(QIANLI_REMINDER_RETRY_INTERVALS): a provider error raises so rq retries it; on the last attempt
the delivery is recorded as failed and HR alerted.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from rq import get_current_job

from qianli.observability import REMINDER_DELIVERIES
from qianli.runtime import get_runtime

__all__ = ["deliver_reminder", "deliver_reminders", "send_hr_digests_job", "sweep_job"]


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


def deliver_reminders(items: list[list[Any]]) -> dict[str, int]:
    from qianli.services.reminders import deliver_batch
    from qianli.services.reminders.queue import enqueue_retry

    rt = get_runtime()
    keys = [(str(c), int(sl), str(ch)) for c, sl, ch in items]
    try:
        outcomes = deliver_batch(rt, keys, on_retry=lambda item: enqueue_retry(rt, item))
    except Exception:
        for _, _, ch in keys:
            REMINDER_DELIVERIES.labels(ch, "error").inc()
        raise
    counts: dict[str, int] = {}
    for (_, _, ch), out in zip(keys, outcomes, strict=True):
        REMINDER_DELIVERIES.labels(ch, out.status).inc()
        counts[out.status] = counts.get(out.status, 0) + 1
    return counts


def send_hr_digests_job(company_id: str, day: str) -> dict[str, str]:
    from qianli.services.reminders import send_hr_digests

    return send_hr_digests(get_runtime(), company_id, date.fromisoformat(day))


def sweep_job() -> dict[str, Any]:
    from qianli.services.reminders import sweep

    return sweep(get_runtime()).as_dict()
