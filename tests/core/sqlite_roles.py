"""Roles run as separate processes by test_sqlite_concurrency.py, all on one SQLite file.

    python sqlite_roles.py api START EMPLOYEE_ID...     submitResignation per employee, then reads
    python sqlite_roles.py worker START                  rq SimpleWorker bursts on the reminders queue
    python sqlite_roles.py scheduler START               the reminder sweep in a loop
    python sqlite_roles.py evidence START CASE_ID N      N read-then-write evidence appends to one case

Settings come from the environment (QIANLI_ENV=test, QIANLI_VAR_DIR, DATABASE_URL, REDIS_URL). Every
role starts at the wall-clock time START, prints one JSON line, and exits non-zero on any error.
The worker and the scheduler run until the Redis key STOP_KEY exists (at most two minutes).
"""

from __future__ import annotations

import json
import sys
import time

STOP_KEY = "qianli-test:sqlite-roles:stop"


def _wait(start: float) -> None:
    time.sleep(max(0.0, start - time.time()))


def api(start: float, employee_ids: list[str]) -> int:
    from api.app import create_app
    from qianli.db import session_scope
    from qianli.models import Employee
    from qianli.runtime import get_runtime
    from qianli.services.auth import Principal, issue_access_token

    rt = get_runtime()
    client = create_app(rt).test_client()
    headers = {}
    with session_scope(rt.session_factory) as s:
        for eid in employee_ids:
            emp = s.get(Employee, eid)
            token, _ = issue_access_token(rt.settings, Principal("employee", emp.id, emp.company_id, f"openid-{eid}"))
            headers[eid] = {"Authorization": f"Bearer {token}"}
    form = {"reason_category": "career_development", "reason_text": "个人职业发展", "requested_last_day": "2027-06-30",
            "handover_items": [{"item": "代码仓库权限", "owner": "李四"}]}
    _wait(start)
    statuses, bodies = [], []
    for eid in employee_ids:
        r = client.post("/api/v1/cases", json=form, headers=headers[eid])
        statuses.append(r.status_code)
        if r.status_code != 201:
            bodies.append(r.get_json())
        for _ in range(3):
            statuses.append(client.get("/api/v1/cases", headers=headers[eid]).status_code)
    print(json.dumps({"role": "api", "statuses": statuses, "errors": bodies}))
    return 0 if all(s in (200, 201) for s in statuses) else 1


def _running(rt, end: float) -> bool:
    return time.time() < end and not rt.redis.exists(STOP_KEY)


def worker(start: float) -> int:
    from rq import Queue, SimpleWorker

    from qianli.runtime import get_runtime
    from qianli.services.reminders import QUEUE

    rt = get_runtime()
    q = Queue(QUEUE, connection=rt.redis)
    _wait(start)
    end, runs = time.time() + 120, 0
    while _running(rt, end):
        w = SimpleWorker([q], connection=rt.redis)
        w.work(burst=True, logging_level="WARNING")
        runs += 1
        time.sleep(0.05)
    failed = q.failed_job_registry.count
    print(json.dumps({"role": "worker", "bursts": runs, "failed_jobs": failed}))
    return 0 if failed == 0 else 1


def scheduler(start: float) -> int:
    from qianli.runtime import get_runtime
    from qianli.services.reminders import sweep

    rt = get_runtime()
    _wait(start)
    end, sweeps, longest = time.time() + 120, 0, 0.0
    while _running(rt, end):
        started = time.monotonic()
        sweep(rt)
        sweeps += 1
        longest = max(longest, time.monotonic() - started)
        time.sleep(0.2)
    print(json.dumps({"role": "scheduler", "sweeps": sweeps, "longest_s": round(longest, 3)}))
    return 0


def evidence(start: float, case_id: str, n: int) -> int:
    from qianli.db import session_scope
    from qianli.models import ResignationCase
    from qianli.runtime import get_runtime
    from qianli.services.evidence import append_evidence

    rt = get_runtime()
    _wait(start)
    for i in range(n):
        with session_scope(rt.session_factory) as s:
            case = s.get(ResignationCase, case_id)  # read first, then write: the pattern that used to fail
            append_evidence(s, case, "system:test", "chat_evidence_recorded", {"i": i, "test": "concurrent writer"})
    print(json.dumps({"role": "evidence", "appended": n}))
    return 0


def main(argv: list[str]) -> int:
    role, start, rest = argv[0], float(argv[1]), argv[2:]
    if role == "api":
        return api(start, rest)
    if role in ("worker", "scheduler"):
        return {"worker": worker, "scheduler": scheduler}[role](start)
    if role == "evidence":
        return evidence(start, rest[0], int(rest[1]))
    raise SystemExit(f"unknown role {role}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
