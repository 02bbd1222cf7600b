"""Departure analytics at scale: 50,000 cases (30 departments, two years, every reason and departure
type, 60% closed with a close evidence entry, reminders on a third) bulk-inserted into a throwaway
database, then the time of one getDepartureAnalytics (two years, monthly), one XLSX export of every
chart and one quarterly report PDF.

The database: QIANLI_BENCH_DATABASE_URL (a PostgreSQL database this bench may wipe: its schema is
dropped and recreated), else a temporary SQLite file. The last line printed is one JSON object.

    QIANLI_BENCH_DATABASE_URL=postgresql+psycopg://qianli:qianli@127.0.0.1:5432/qianli_bench \\
        .venv/bin/python bench/analytics.py [--cases 50000]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from datetime import date, datetime, time as dtime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert, text  # noqa: E402

from qianli.db import Base, make_engine, new_id  # noqa: E402
from qianli.runtime import Runtime, set_runtime  # noqa: E402
from qianli.settings import load_settings, reset_settings_cache  # noqa: E402


def _populate(rt: Runtime, n: int, start: date) -> str:
    import qianli.models as m
    from cases.clock import SHANGHAI
    from cases.departure import DepartureType
    from cases.reasons import REASON_CATEGORIES

    rng = random.Random(17)
    now = datetime.now(timezone.utc)
    company_id = new_id()
    depts = [f"部门{i:02d}" for i in range(30)]
    types = [t.value for t in DepartureType]
    with rt.engine.begin() as conn:
        conn.execute(insert(m.Company), [{"id": company_id, "code": "bench", "name": "基准测试有限公司", "policy": {},
                                          "created_at": now}])
        for first in range(0, n, 10_000):
            emps, cases, evidence, deliveries = [], [], [], []
            for i in range(first, min(n, first + 10_000)):
                eid, cid = new_id(), new_id()
                emps.append({"id": eid, "company_id": company_id, "employee_no": f"B{i:06d}", "name": f"员工{i}",
                             "department": rng.choice(depts), "position": "工程师", "contract_term": "",
                             "phone_enc": "x", "phone_hash": f"{i:064d}", "active": True, "session_epoch": 0,
                             "created_at": now, "updated_at": now})
                day = start + timedelta(days=rng.randrange(730))
                arrived = datetime.combine(day, dtime(10), SHANGHAI).astimezone(timezone.utc)
                due = day + timedelta(days=3)
                submitted = None if rng.random() < 0.1 else arrived + timedelta(days=rng.choice([1, 2, 3, 5]))
                dtype = rng.choices(types, weights=[85, 8, 7])[0]
                closed = rng.random() < 0.6
                cases.append({"id": cid, "company_id": company_id, "employee_id": eid,
                              "state": "closed" if closed else "submitted", "source": "miniprogram",
                              "departure_type": dtype, "notice_arrived_at": arrived, "arrival_date": day,
                              "probation": False, "reason_category": rng.choice(REASON_CATEGORIES),
                              "reason_text": "", "handover_items": [], "earliest_lawful_last_day": day + timedelta(days=30),
                              "letter_due_date": due, "dates_provisional": False, "letter_submitted_at": submitted,
                              "created_by": "bench", "created_at": now, "updated_at": now, "version": 1})
                if closed:
                    evidence.append({"company_id": company_id, "case_id": cid, "seq": 1, "actor": "bench",
                                     "occurred_at": arrived + timedelta(days=rng.randint(20, 90), hours=3),
                                     "action": "case_close", "payload": {}, "prev_digest": "0" * 64, "digest": "1" * 64})
                if rng.random() < 0.33:
                    for slot in range(rng.randint(1, 4)):
                        deliveries.append({"id": new_id(), "company_id": company_id, "case_id": cid, "slot": slot,
                                           "channel": "sms", "kind": "reminder", "params": {}, "status": "sent",
                                           "attempts": 1, "scheduled_for": arrived, "created_at": now})
            conn.execute(insert(m.Employee), emps)
            conn.execute(insert(m.ResignationCase), cases)
            if evidence:
                conn.execute(insert(m.EvidenceEntry), evidence)
            if deliveries:
                conn.execute(insert(m.ReminderDelivery), deliveries)
    if rt.engine.dialect.name == "postgresql":
        with rt.engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    return company_id


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=50_000)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="qianli-bench-analytics-")
    url = os.environ.get("QIANLI_BENCH_DATABASE_URL") or f"sqlite:///{tmp}/bench.db"
    settings = load_settings({"QIANLI_ENV": "test", "QIANLI_VAR_DIR": tmp, "DATABASE_URL": url,
                              "REDIS_URL": f"redis://127.0.0.1:6379/{os.environ.get('QIANLI_BENCH_REDIS_DB', '13')}"})
    reset_settings_cache(settings)
    engine = make_engine(url)
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    import qianli.models  # noqa: F401

    Base.metadata.create_all(engine)
    rt = Runtime(settings).override(engine=engine)
    set_runtime(rt)
    start = date(2024, 1, 1)
    t0 = time.perf_counter()
    company_id = _populate(rt, args.cases, start)
    populate_s = time.perf_counter() - t0

    from qianli.services.analytics import company_analytics, make_query
    from qianli.services.analytics_export import export_xlsx
    from qianli.services.analytics_report import render_departure_report, report_query

    q = make_query(start=start, end=start + timedelta(days=729), today=date(2026, 1, 1))
    timings = []
    with rt.session_factory() as s:
        for _ in range(3):
            t0 = time.perf_counter()
            a = company_analytics(s, company_id, q)
            timings.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        xlsx = export_xlsx(a)
        xlsx_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        rq = company_analytics(s, company_id, report_query(2025, 2))
        pdf = render_departure_report(rq, company_name="基准测试有限公司", title="2025年第2季度离职分析报告")
        report_s = time.perf_counter() - t0
    print(json.dumps({"backend": engine.dialect.name, "cases": args.cases, "populate_s": round(populate_s, 1),
                      "analytics_s_best": round(min(timings), 3), "analytics_s_runs": [round(t, 3) for t in timings],
                      "xlsx_s": round(xlsx_s, 3), "xlsx_bytes": len(xlsx), "report_s": round(report_s, 3),
                      "report_bytes": len(pdf), "departures": a.overall.departures,
                      "suppressed_cells": sum(c.table.suppressed_cells for c in a.charts)}))


if __name__ == "__main__":
    main()
