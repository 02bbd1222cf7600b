"""``qianli worker`` (an RQ worker for the reminders queue) and ``qianli scheduler`` (the sweep loop)."""

from __future__ import annotations

import json
import logging
import signal
import time

import click

from qianli.observability import RQ_JOB_FAILURES, configure_logging, request_id_var

__all__ = ["worker_command", "scheduler_command", "reminders_group", "sqlite_tuning", "observed_worker_class",
           "count_job_failure"]

log = logging.getLogger(__name__)


def sqlite_tuning(engine) -> None:
    """Development (SQLite) worker and scheduler connections: WAL with synchronous=NORMAL, SQLite's
    recommended WAL setting (no corruption; a power cut may lose the last commits, i.e. a reminder
    may be sent again), and a 64 MB page cache for the sweep's bulk statements."""
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _pragma(dbapi_conn, _record):  # pragma: no cover - trivial
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA cache_size=-65536")
        cur.close()



def _follow_dev_clock() -> None:
    """Development/test deployments: run each job at the deployment's clock (POST /api/v1/dev/clock)."""
    from qianli.runtime import get_runtime
    from qianli.services import devclock

    devclock.apply(get_runtime())


def observed_worker_class(base: type) -> type:
    """``base`` (an rq worker class) whose jobs log with ``request_id`` = ``job:<job id>``."""

    class ObservedWorker(base):
        def perform_job(self, job, queue):
            _follow_dev_clock()
            token = request_id_var.set(f"job:{job.id}")
            try:
                return super().perform_job(job, queue)
            finally:
                request_id_var.reset(token)

    ObservedWorker.__name__ = f"Observed{base.__name__}"
    return ObservedWorker


def count_job_failure(job, exc_type, _exc_value, _traceback) -> bool:
    """rq exception handler: count the failure (qianli_rq_job_failures_total), then let rq go on."""
    RQ_JOB_FAILURES.labels(job.origin or "", job.func_name or "").inc()
    return True


def _check_role(rt) -> None:
    """Production: refuse to run as a database role that can rewrite the evidence (see qianli.migrate)."""
    if rt.settings.is_production:
        from qianli.migrate import AppRoleTooPowerful, check_app_role

        try:
            check_app_role(rt.engine)
        except AppRoleTooPowerful as exc:
            raise click.ClickException(str(exc)) from None


@click.command("worker", help="Run an RQ worker for the reminders, webhooks, alumni and reports queues (as many as needed).")
@click.option("--burst", is_flag=True, help="Exit when the queue is empty.")
@click.option("--fork/--no-fork", default=False, show_default=True,
              help="Fork a work-horse per job (rq Worker) instead of running jobs in the worker process (SimpleWorker).")
@click.option("--name", default=None, help="Worker name (default: rq's).")
def worker_command(burst: bool, fork: bool, name: str | None) -> None:
    from rq import Queue, SimpleWorker, Worker

    from qianli.runtime import get_runtime
    from qianli.services.attrition import QUEUE as ATTENDANCE_QUEUE
    from qianli.services.alumni_outreach import QUEUE as ALUMNI_QUEUE
    from qianli.services.analytics_report import REPORT_QUEUE
    from qianli.services.reminders import QUEUE
    from qianli.services.webhooks import QUEUE as WEBHOOK_QUEUE

    rt = get_runtime()
    configure_logging(rt.settings.log_level, rt.settings.log_format)
    _check_role(rt)
    if rt.settings.database_url.startswith("sqlite"):
        sqlite_tuning(rt.engine)
    cls = observed_worker_class(Worker if fork else SimpleWorker)
    w = cls([Queue(QUEUE, connection=rt.redis), Queue(WEBHOOK_QUEUE, connection=rt.redis),
             Queue(ALUMNI_QUEUE, connection=rt.redis), Queue(ATTENDANCE_QUEUE, connection=rt.redis),
             Queue(REPORT_QUEUE, connection=rt.redis)],
            connection=rt.redis, name=name,
            exception_handlers=[count_job_failure])
    w.work(burst=burst, logging_level=rt.settings.log_level, with_scheduler=True)


@click.command("scheduler", help="Sweep for due reminders (letters and offboarding tasks), access revocations and webhook "
                                 "attempts every QIANLI_SWEEP_INTERVAL_S seconds, enqueue the certificates of termination "
                                 "due today, anchor the evidence chains every QIANLI_ANCHOR_INTERVAL_S and start each "
                                 "quarter's departure reports (run exactly one).")
@click.option("--once", is_flag=True, help="Sweep once, print the result as JSON, and exit.")
def scheduler_command(once: bool) -> None:
    from qianli.runtime import get_runtime
    from qianli.services.alumni_daily import enqueue_daily_if_due
    from qianli.services.analytics_report import enqueue_due_reports
    from qianli.services.anchors import anchor_if_due
    from qianli.services.attrition import enqueue_due_runs
    from qianli.services.certificate import issue_due_certificates
    from qianli.services.offboarding_reminders import plan_task_reminders
    from qianli.services.reminders import sweep
    from qianli.services.revocation import sweep as revocation_sweep
    from qianli.services.webhooks import sweep as webhook_sweep

    rt = get_runtime()
    configure_logging(rt.settings.log_level, rt.settings.log_format)
    _check_role(rt)
    if rt.settings.database_url.startswith("sqlite"):
        sqlite_tuning(rt.engine)
    if once:
        click.echo(json.dumps(sweep(rt).as_dict()))
        return
    stop = {"now": False}

    def _stop(*_a):
        stop["now"] = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    interval = max(1, rt.settings.sweep_interval_s)
    log.info("reminder scheduler: sweeping every %ss", interval)
    while not stop["now"]:
        started = time.monotonic()
        _follow_dev_clock()
        try:
            res = sweep(rt)
            if res.scheduled or res.recovered or res.paused or res.stopped or res.digests_enqueued:
                log.info("sweep: %s", res.as_dict())
        except Exception:  # noqa: BLE001 - keep sweeping; the database still holds everything
            log.exception("sweep failed")
        try:
            plan_task_reminders(rt)
        except Exception:  # noqa: BLE001 - the next round plans and recovers from the database
            log.exception("planning offboarding task reminders failed")
        try:
            rev = revocation_sweep(rt)
            if rev.sent or rev.cancelled or rev.alerted:
                log.info("access revocation sweep: %s", rev.as_dict())
        except Exception:  # noqa: BLE001 - the next round retries
            log.exception("access revocation sweep failed")
        try:
            wh = webhook_sweep(rt)
            if wh.requeued or wh.dispatched:
                log.info("webhook sweep: %s", wh.as_dict())
        except Exception:  # noqa: BLE001 - the next round retries
            log.exception("webhook sweep failed")
        try:
            anchor_if_due(rt)
        except Exception:  # noqa: BLE001 - e.g. the TSA is down: the next round retries
            log.exception("anchoring the evidence chains failed")
        try:
            issue_due_certificates(rt)  # certificates of termination due today (art. 50)
        except Exception:  # noqa: BLE001 - Redis or the database hiccuped: the next round retries
            log.exception("enqueueing the due certificates of termination failed")
        try:
            enqueue_daily_if_due(rt)  # the alumni retention job and festival greetings, once a day
        except Exception:  # noqa: BLE001 - Redis down: the next round retries
            log.exception("enqueueing the daily alumni job failed")
        try:
            enqueue_due_runs(rt)  # the attendance early warning, once a day per company
        except Exception:  # noqa: BLE001 - the next round tries again
            log.exception("enqueueing the daily early-warning runs failed")
        try:
            if enqueue_due_reports(rt):
                log.info("quarterly departure reports enqueued")
        except Exception:  # noqa: BLE001 - the next round retries
            log.exception("enqueueing the quarterly departure reports failed")
        while not stop["now"] and time.monotonic() - started < interval:
            time.sleep(0.2)


@click.group("reminders", help="Reminders: run one sweep now.")
def reminders_group() -> None:
    pass


@reminders_group.command("sweep", help="Run one sweep now and print the result as JSON.")
def reminders_sweep() -> None:
    from qianli.runtime import get_runtime
    from qianli.services.reminders import sweep

    click.echo(json.dumps(sweep(get_runtime()).as_dict()))


@reminders_group.command("tasks", help="Plan (and enqueue) today's offboarding task reminders and escalations now; "
                                       "print the result as JSON.")
def reminders_tasks() -> None:
    from qianli.runtime import get_runtime
    from qianli.services.offboarding_reminders import plan_task_reminders

    click.echo(json.dumps(plan_task_reminders(get_runtime()).as_dict()))
