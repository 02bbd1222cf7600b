"""The quarterly departure report: the scheduler enqueues one rq job per company at the start of a quarter,
the job stores the report once, and getDepartureReport serves the stored report to company-wide roles."""

from __future__ import annotations

from datetime import datetime, timezone

from rq import Queue, SimpleWorker
from sqlalchemy import func, select

from qianli.models import Document
from qianli.services.analytics_report import (REPORT_KIND, REPORT_QUEUE, enqueue_due_reports,
                                              generate_quarterly_report, stored_report)

QUARTER_START = datetime(2026, 6, 30, 16, 30, tzinfo=timezone.utc)  # 2026-07-01 00:30 Beijing


def _work(rt) -> None:
    SimpleWorker([Queue(REPORT_QUEUE, connection=rt.redis)], connection=rt.redis).work(burst=True,
                                                                                         logging_level="WARNING")


def _reports(db_session, company_id):
    return db_session.scalar(select(func.count()).select_from(Document).where(
        Document.company_id == company_id, Document.kind == REPORT_KIND))


def test_scheduler_makes_each_report_once_per_quarter(runtime, db_session, world, factory, client):
    a, b = world["a"], world["b"]
    # 2026-06-30 23:59 Beijing is still Q2: last quarter is Q1
    assert enqueue_due_reports(runtime, datetime(2026, 6, 30, 15, 59, tzinfo=timezone.utc)) == 2
    runtime.redis.flushdb()
    n = enqueue_due_reports(runtime, QUARTER_START)
    assert n == 2  # one job per company
    assert enqueue_due_reports(runtime, QUARTER_START) == 0  # checked this hour already
    _work(runtime)
    db_session.expire_all()
    doc = stored_report(db_session, a.id, 2026, 2)
    assert doc is not None and doc.filename == "departure-report-2026-Q2.pdf" and doc.created_by == "system:scheduler"
    assert doc.meta == {"year": 2026, "quarter": 2}
    assert stored_report(db_session, b.id, 2026, 2) is not None
    # an hour later the scheduler looks again: nothing is missing, nothing is enqueued
    runtime.redis.flushdb()
    assert enqueue_due_reports(runtime, QUARTER_START) == 0
    # a job run twice (a retry, a duplicate) finds the stored report and makes no second one
    again = generate_quarterly_report(runtime, a.id, 2026, 2)
    assert again == {"document_id": doc.id, "created": False}
    assert _reports(db_session, a.id) == 1

    # company-wide roles get the stored report as issued; fresh=true draws a new one; a department head
    # always gets their own department's
    h = factory.hr_headers(world["users"]["auditor"])
    r = client.get("/api/v1/hr/analytics/departures/report?year=2026&quarter=2", headers=h)
    assert r.status_code == 200 and r.headers["X-Report-Source"] == "stored"
    from qianli.storage import read_document

    assert r.data == read_document(runtime.store, doc)
    r = client.get("/api/v1/hr/analytics/departures/report?year=2026&quarter=2&fresh=true", headers=h)
    assert r.headers["X-Report-Source"] == "generated"
    head = factory.hr_headers(world["users"]["dept_head"])
    r = client.get("/api/v1/hr/analytics/departures/report?year=2026&quarter=2", headers=head)
    assert r.headers["X-Report-Source"] == "generated"
