"""The rq adapter of the reminders: everything that knows how rq stores jobs.

Deliveries go out in batches of ``QIANLI_REMINDER_BATCH_SIZE`` per job (``jobs.reminders.deliver_reminders``,
``reminder-batch-<random>``), which a worker sends concurrently; each delivery of a batch gets an
alias key (``qianli:reminder-job:reminder-{case}-{slot}-{channel}`` -> the batch's id) so the
sweep can still ask whether the job carrying a delivery is alive. A batch of one, and a delivery
retried after a provider error, is a single-delivery job with the deterministic id
``reminder-{case}-{slot}-{channel}`` (``jobs.reminders.deliver_reminder``). Exactly-once never rests
on job ids: every delivery is claimed in the database (``delivery``), so a delivery enqueued twice
is sent once. Jobs are written in bulk by a Lua script in rq's own job layout (a template rq builds,
plus the per-job fields), one call per 1,000 jobs; the daily HR digests are ordinary rq jobs. The
job functions live in ``jobs.reminders``.
"""

from __future__ import annotations

import logging
from enum import Enum
from datetime import date, timedelta
from typing import Any, Iterable

from sqlalchemy.orm import Session

from qianli.db import on_commit, utcnow
from qianli.runtime import Runtime
from qianli.settings import Settings

__all__ = ["QUEUE", "DELIVER_FUNC", "BATCH_FUNC", "DIGEST_FUNC", "enqueue_retry", "job_id", "retry_policy", "enqueue_deliveries", "enqueue_digests",
           "jobs_alive"]

log = logging.getLogger(__name__)

QUEUE = "reminders"
DELIVER_FUNC = "jobs.reminders.deliver_reminder"
BATCH_FUNC = "jobs.reminders.deliver_reminders"
ALIAS_PREFIX = "qianli:reminder-job:"
ALIAS_TTL_S = 8 * 86400  # longer than a failed job is kept (failure_ttl, 7 days)
DIGEST_FUNC = "jobs.reminders.send_hr_digests_job"
_DEAD_JOB = (b"failed", b"stopped", b"canceled")


def job_id(case_id: str, slot: int, channel: str) -> str:
    """Deterministic: ``reminder-{case}-{slot}-{channel}`` (notification slots as n1, n2...; rq ids allow
    only letters, digits, '-' and '_')."""
    return f"reminder-{case_id}-{slot if slot >= 0 else f'n{-slot}'}-{channel}"


def retry_policy(settings: Settings):
    from rq import Retry

    intervals = list(settings.reminder_retry_schedule())
    return Retry(max=len(intervals), interval=intervals) if intervals else None


# Creates rq jobs in bulk exactly as rq stores them (one hash per job from a template that rq itself
# built, plus the queue entry), one script call per 1,000 jobs: rq's own enqueue_many spends ~0.2 ms
# per job in Python, which would make a 100,000-case sweep take 20+ seconds.
_BULK_ENQUEUE_LUA = """
local nf = tonumber(ARGV[1])
local base = {}
for i = 2, 1 + 2 * nf do base[#base + 1] = ARGV[i] end
local i = 2 + 2 * nf
local n = 0
while i <= #ARGV do
  local id = ARGV[i]
  redis.call('HSET', 'rq:job:' .. id, 'data', ARGV[i + 1], 'description', ARGV[i + 2], unpack(base))
  redis.call('RPUSH', KEYS[1], id)
  i = i + 3
  n = n + 1
end
redis.call('SADD', KEYS[2], KEYS[1])
return n
"""


def _job_template(rt: Runtime, queue: Any) -> tuple[list[bytes], Any]:
    """The hash fields rq writes for a reminder job, built by rq itself, minus the per-job ones."""
    from rq.utils import utcformat

    s = rt.settings
    job = queue.create_job(DELIVER_FUNC, args=("template", 0, "sms"), job_id="reminder-template",
                           timeout=max(5, s.reminder_send_lease_s - 30), result_ttl=0, failure_ttl=7 * 86400,
                           retry=retry_policy(s), description="template")
    fields = job.to_dict()
    fields.update({"origin": queue.name, "enqueued_at": utcformat(utcnow().replace(tzinfo=None)), "status": "queued"})
    flat: list[bytes] = []
    for k, v in fields.items():
        if k in ("data", "description", "id"):
            continue
        v = v.value if isinstance(v, Enum) else v
        flat += [k.encode(), v if isinstance(v, bytes) else str(v).encode()]
    return flat, job.serializer


def enqueue_deliveries(rt: Runtime, items: Iterable[tuple[str, int, str]]) -> int:
    """Jobs for these deliveries: batches of ``QIANLI_REMINDER_BATCH_SIZE`` (a batch of one is a
    single-delivery job with its deterministic id); returns the number of deliveries enqueued.

    A Redis failure is logged, not raised: the delivery rows stay pending and the next sweep
    enqueues them again (the database is the source of truth).
    """
    import secrets
    import zlib

    from rq import Queue

    items = [(c, int(sl), ch) for c, sl, ch in items]
    if not items:
        return 0
    size = max(1, rt.settings.reminder_batch_size)
    q = Queue(QUEUE, connection=rt.redis)
    n = 0
    try:
        base, serializer = _job_template(rt, q)
        script = rt.redis.register_script(_BULK_ENQUEUE_LUA)
        jobs: list[tuple[str, bytes, str, list[tuple[str, int, str]]]] = []
        for i in range(0, len(items), size):
            batch = items[i:i + size]
            if len(batch) == 1:
                c, sl, ch = batch[0]
                jobs.append((job_id(c, sl, ch), zlib.compress(serializer.dumps((DELIVER_FUNC, None, (c, sl, ch), {}))),
                             f"reminder {c} slot {sl} {ch}", batch))
            else:
                jobs.append((f"reminder-batch-{secrets.token_hex(12)}",
                             zlib.compress(serializer.dumps((BATCH_FUNC, None, ([list(x) for x in batch],), {}))),
                             f"reminder batch of {len(batch)}", batch))
        for i in range(0, len(jobs), 1000):
            chunk = jobs[i:i + 1000]
            with rt.redis.pipeline(transaction=False) as pipe:  # aliases first: a fast worker may finish the job
                for jid, _, _, batch in chunk:
                    if len(batch) > 1:
                        for c, sl, ch in batch:
                            pipe.set(ALIAS_PREFIX + job_id(c, sl, ch), jid, ex=ALIAS_TTL_S)
                pipe.execute()
            argv: list[Any] = [len(base) // 2, *base]
            for jid, data, description, _ in chunk:
                argv += [jid, data, description]
            script(keys=[q.key, Queue.redis_queues_keys], args=argv)
            n += sum(len(batch) for *_, batch in chunk)
    except Exception:  # noqa: BLE001 - Redis down: the sweep re-enqueues from the database
        log.exception("enqueueing %d reminder deliveries failed; the sweep will retry", len(items) - n)
    return n


def enqueue_retry(rt: Runtime, item: tuple[str, int, str]) -> None:
    """A delivery of a batch met a provider error worth retrying: schedule it again on its own,
    as rq ``Retry`` would have (the first interval now, the others as the job's own retries)."""
    from rq import Queue, Retry

    intervals = list(rt.settings.reminder_retry_schedule())
    c, sl, ch = item
    rest = intervals[1:]
    Queue(QUEUE, connection=rt.redis).enqueue_in(
        timedelta(seconds=intervals[0]), DELIVER_FUNC, c, int(sl), ch, job_id=job_id(c, int(sl), ch),
        job_timeout=max(5, rt.settings.reminder_send_lease_s - 30), result_ttl=0, failure_ttl=7 * 86400,
        retry=Retry(max=len(rest), interval=rest) if rest else None)


def _enqueue_after_commit(session: Session, rt: Runtime, items: list[tuple[str, int, str]]) -> None:
    if items:
        on_commit(session, lambda: enqueue_deliveries(rt, items))


def enqueue_digests(rt: Runtime, company_ids: list[str], day: date) -> int:
    """One digest job per company for ``day``; a Redis failure is logged (the next sweep tries again)."""
    from rq import Queue

    q = Queue(QUEUE, connection=rt.redis)
    n = 0
    try:
        for company_id in company_ids:
            q.enqueue(DIGEST_FUNC, company_id, day.isoformat(), job_id=f"reminder-digest-{company_id}-{day}",
                      result_ttl=0, failure_ttl=7 * 86400, retry=retry_policy(rt.settings))
            n += 1
    except Exception:  # noqa: BLE001 - next sweep tries again
        log.exception("enqueueing HR digests failed")
    return n


def jobs_alive(rt: Runtime, items: list[tuple[str, int, str]]) -> list[bool]:
    """For each (case, slot, channel): is a job carrying it (its own, or the batch its alias names)
    still in Redis and not given up on by rq?"""
    with rt.redis.pipeline(transaction=False) as pipe:
        for case_id, slot, channel in items:
            jid = job_id(case_id, slot, channel)
            pipe.hget(f"rq:job:{jid}", "status")
            pipe.get(ALIAS_PREFIX + jid)
        answers = pipe.execute()
    own, batch_ids = answers[0::2], answers[1::2]
    batches = sorted({b for b in batch_ids if b is not None})
    batch_status: dict[bytes, Any] = {}
    if batches:
        with rt.redis.pipeline(transaction=False) as pipe:
            for b in batches:
                pipe.hget(f"rq:job:{b.decode() if isinstance(b, bytes) else b}", "status")
            batch_status = dict(zip(batches, pipe.execute(), strict=True))

    def alive(st: Any) -> bool:
        return st is not None and st not in _DEAD_JOB

    return [alive(st) or (b is not None and alive(batch_status.get(b))) for st, b in zip(own, batch_ids, strict=True)]
