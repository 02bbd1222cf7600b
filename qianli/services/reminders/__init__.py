"""Reminders: chase the signed letter until it arrives, and log every attempt as evidence.

The database is the source of truth (``qianli.models.reminders``):

- ``on_case_opened`` creates the case's schedule and the slot-0 notice deliveries (pending);
  after commit the due ones are enqueued.
- ``sweep`` (the scheduler runs it every ``QIANLI_SWEEP_INTERVAL_S``) turns due schedule rows into
  pending delivery rows in bulk, advances the schedules, and enqueues one RQ job per delivery with
  the deterministic id ``reminder-{case}-{slot}-{channel}``. It also re-enqueues deliveries whose
  job Redis has lost (a flushed or restarted Redis) or whose worker died mid-send (lease expired),
  pauses/stops schedules whose case no longer awaits the letter, and sends the daily HR digests.
- ``deliver`` runs in a worker: re-reads the case (a letter submitted meanwhile: ``dropped``),
  claims the delivery row (``pending`` -> ``sending`` with a lease; a duplicate or retried job
  finds it claimed or finished and does nothing), sends through the channel, records ``sent`` /
  ``failed``, and appends every attempt to the case's evidence chain (actions ``reminder_*``).

Channels: the WeChat subscribe message (errcode 43101, no quota left, falls back to SMS) and
SMS (identity's gateways; the development outbox in development). The notice (slot 0) and
notifications go on both channels, later reminders on WeChat when the employee is bound and a
template is configured, else SMS.

The package, by job: ``hooks`` (what requests do: open, notify, stop, list), ``sweep`` (scheduling
and recovery), ``delivery`` (one send, in a worker), ``digests`` and ``hr_phones`` (HR escalation),
``queue`` (the rq adapter: the only module that knows rq's job layout), ``common`` (shared).
"""

from qianli.services.reminders.common import ACTOR, SMS_TEMPLATE, RetryableSendError, reminder_policy
from qianli.services.reminders.delivery import DeliveryOutcome, deliver, deliver_batch
from qianli.services.reminders.digests import send_hr_digests
from qianli.services.reminders.hooks import (list_case_reminders, notify_employee, on_case_opened, on_letter_submitted,
                                             stop_reminders)
from qianli.services.reminders.hr_phones import hr_phone, set_hr_phone
from qianli.services.reminders.queue import QUEUE, enqueue_deliveries, job_id
from qianli.services.reminders.sweep import SweepResult, sweep

__all__ = ["QUEUE", "ACTOR", "SMS_TEMPLATE", "reminder_policy", "job_id", "on_case_opened", "on_letter_submitted",
           "notify_employee", "stop_reminders", "sweep", "SweepResult", "deliver", "deliver_batch", "DeliveryOutcome", "send_hr_digests",
           "list_case_reminders", "set_hr_phone", "hr_phone", "RetryableSendError", "enqueue_deliveries"]
