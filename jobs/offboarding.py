"""RQ job functions for offboarding task reminders. They take ids only and re-read everything."""

from __future__ import annotations

from typing import Any

from rq import get_current_job

from qianli.runtime import get_runtime

__all__ = ["deliver_task_reminder_job", "plan_case_reminders_job"]


def _final_attempt() -> bool:
    job = get_current_job()
    return job is None or not (job.retries_left and job.retries_left > 0)


def deliver_task_reminder_job(reminder_id: str) -> str:
    from qianli.services.offboarding_reminders import deliver_task_reminder

    return deliver_task_reminder(get_runtime(), reminder_id, final_attempt=_final_attempt())


def plan_case_reminders_job(case_id: str) -> dict[str, Any]:
    from qianli.services.offboarding_reminders import plan_task_reminders

    return plan_task_reminders(get_runtime(), case_id=case_id).as_dict()
