"""Logs, request ids and Prometheus metrics, for the API, the RQ workers and the scheduler.

Logs: one JSON object per line (python-json-logger) on stderr, with ``request_id`` on every line:
the API request's id (``X-Request-ID``), ``job:<rq job id>`` in a worker, ``-`` elsewhere.
``QIANLI_LOG_FORMAT=text`` gives the classic one-line text format (same fields).

Metrics (prometheus-client): request latency by operationId, signing durations, reminder
deliveries by channel and result, and at scrape time the RQ queues (depth per state, failed jobs,
workers). Under gunicorn with several workers (or API + workers on one host), set
``PROMETHEUS_MULTIPROC_DIR`` to an empty directory shared by the processes: every process writes
its samples there and ``/metrics`` adds them up (``config/gunicorn.conf.py`` cleans up after dead
workers). Without it each process counts for itself.
"""

from __future__ import annotations

import contextvars
import logging
import re
import secrets
import sys
import time
from contextlib import contextmanager
from typing import Iterator

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily

__all__ = ["request_id_var", "new_request_id", "valid_request_id", "configure_logging", "RequestIdFilter",
           "REQUEST_LATENCY", "SIGNING_DURATION", "REMINDER_DELIVERIES", "RQ_JOB_FAILURES", "observe_signing",
           "render_metrics", "LOG_FIELDS"]

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("qianli_request_id", default=None)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@+=/-]{0,127}$")
LOG_FIELDS = "%(levelname)s %(name)s %(request_id)s %(message)s"
_HANDLER_MARK = "_qianli_handler"


def new_request_id() -> str:
    return secrets.token_hex(16)


def valid_request_id(value: str | None) -> bool:
    """An incoming id we may echo and log: 1-128 visible characters, no spaces or quotes."""
    return bool(value) and bool(_REQUEST_ID.match(value or ""))


class RequestIdFilter(logging.Filter):
    """Puts the current request id (or ``-``) on every record as ``request_id``."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = request_id_var.get() or "-"
        return True


def _formatter(fmt: str) -> logging.Formatter:
    if fmt == "text":
        return logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
    from pythonjsonlogger.json import JsonFormatter

    return JsonFormatter(LOG_FIELDS, rename_fields={"levelname": "level", "name": "logger"},
                         json_ensure_ascii=False, timestamp="time")


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of the record (test runners swap it)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def configure_logging(level: str, fmt: str = "json") -> logging.Handler:
    """One stderr handler on the root logger (replacing a previous one of ours; idempotent)."""
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, _HANDLER_MARK, False):
            root.removeHandler(h)
    handler = _StderrHandler()
    setattr(handler, _HANDLER_MARK, True)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(_formatter(fmt))
    root.addHandler(handler)
    root.setLevel(level)
    return handler


# ---- metrics -----------------------------------------------------------------------------------------

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
REQUEST_LATENCY = Histogram(
    "qianli_http_request_duration_seconds", "Time to answer an HTTP request, by operationId (contract "
    "operations) or endpoint (console, PKI, ...), method and status code.",
    ["operation", "method", "status"], buckets=_LATENCY_BUCKETS)
SIGNING_DURATION = Histogram(
    "qianli_signing_duration_seconds", "Time to produce a PAdES B-LTA signature (kind: employee letter or "
    "company countersignature; result: ok or error).", ["kind", "result"],
    buckets=(0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0))
REMINDER_DELIVERIES = Counter(
    "qianli_reminder_deliveries", "Reminder delivery attempts by channel (sms, wechat) and result (sent, "
    "failed, retry, fallback, dropped, skipped, missing, error).", ["channel", "result"])
RQ_JOB_FAILURES = Counter(
    "qianli_rq_job_failures", "RQ jobs that raised, by queue and job function.", ["queue", "func"])


@contextmanager
def observe_signing(kind: str) -> Iterator[None]:
    started = time.perf_counter()
    result = "error"
    try:
        yield
        result = "ok"
    finally:
        SIGNING_DURATION.labels(kind, result).observe(time.perf_counter() - started)


class RqCollector:
    """RQ state read from Redis at scrape time: jobs per queue and state, and live workers."""

    STATES = ("queued", "started", "scheduled", "deferred", "failed", "finished")

    def __init__(self, redis):
        self.redis = redis

    def collect(self):
        from rq import Queue, Worker

        jobs = GaugeMetricFamily("qianli_rq_jobs", "RQ jobs per queue and state (queued is the queue depth; failed "
                                 "is rq's failed-job registry).", labels=["queue", "state"])
        workers = GaugeMetricFamily("qianli_rq_workers", "RQ workers registered in Redis.")
        up = GaugeMetricFamily("qianli_rq_redis_up", "1 when Redis answered the RQ scrape, else 0.")
        try:
            queues = Queue.all(connection=self.redis)
            for q in queues:
                counts = {"queued": q.count, "started": q.started_job_registry.count,
                          "scheduled": q.scheduled_job_registry.count, "deferred": q.deferred_job_registry.count,
                          "failed": q.failed_job_registry.count, "finished": q.finished_job_registry.count}
                for state in self.STATES:
                    jobs.add_metric([q.name, state], counts[state])
            workers.add_metric([], Worker.count(connection=self.redis))
            up.add_metric([], 1)
        except Exception:  # noqa: BLE001 - a scrape reports Redis down, it does not fail
            up.add_metric([], 0)
            yield up
            return
        yield jobs
        yield workers
        yield up


def render_metrics(redis, multiprocess_dir: str = "") -> bytes:
    """The exposition text: this process's (or, with ``multiprocess_dir``, every process's) metrics + RQ.

    ``multiprocess_dir`` is ``Settings.prometheus_multiproc_dir`` (PROMETHEUS_MULTIPROC_DIR, which
    prometheus-client itself reads when it is imported)."""
    extra = CollectorRegistry(auto_describe=False)
    extra.register(RqCollector(redis))
    if multiprocess_dir:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        own = generate_latest(registry)
    else:
        own = generate_latest(REGISTRY)
    return own + generate_latest(extra)
