"""What every part of the reminders shares: the actor, the SMS template, the policy from settings,
the channels of a slot, SQLite's write-first transactions."""

from __future__ import annotations

import logging

from sqlalchemy import text
from sqlalchemy.orm import Session

from cases.reminders import (ReminderPolicy)
from qianli.settings import Settings

__all__ = ["ACTOR", "SMS_TEMPLATE", "SWEEP_BATCH", "DIGEST_ROLES", "RetryableSendError", "reminder_policy"]

log = logging.getLogger(__name__)


ACTOR = "system:reminders"
SMS_TEMPLATE = "reminder"  # identity's logical SMS template (QIANLI_SMS_TEMPLATE_REMINDER)
SWEEP_BATCH = 5000
DIGEST_ROLES = ("hr_specialist", "hr_manager", "dept_head")


class RetryableSendError(Exception):
    """A provider error worth retrying (rq ``Retry`` re-runs the job)."""


def reminder_policy(settings: Settings) -> ReminderPolicy:
    return ReminderPolicy.from_settings(settings.reminder_interval_s, settings.quiet_hours)


def _wechat_ready(settings: Settings, openid: str | None) -> bool:
    return bool(openid and settings.wechat_subscribe_template_id)


def _channels(settings: Settings, openid: str | None, slot: int) -> list[str]:
    """Slot 0 (the notice) and notifications (slot < 0): SMS and WeChat; reminders: one channel."""
    wechat = _wechat_ready(settings, openid)
    if slot <= 0:
        return ["sms", "wechat"] if wechat else ["sms"]
    return ["wechat"] if wechat else ["sms"]


def _begin_write(session: Session) -> None:
    """SQLite: take the write lock first (like BEGIN IMMEDIATE). A transaction that reads and then
    writes while another process has written meanwhile fails at once with 'database is locked'
    (the busy timeout does not apply to a stale read snapshot); one that starts by writing waits."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("UPDATE reminder_schedules SET slot = slot WHERE 1 = 0"))
