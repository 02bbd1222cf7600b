"""API throughput on a realistic PostgreSQL database, through gunicorn, measured with wrk.

The database (``QIANLI_BENCH_DATABASE_URL``, default ``postgresql+psycopg://qianli:qianli@127.0.0.1:5432/qianli_bench``)
is created, migrated and seeded once with one company of 10,000 employees, 50,000 resignation cases
in every state (five per employee: the current one and four earlier), 1,000,000 evidence entries
(valid hash chains, 10 to 30 per case), a reminder schedule per case and 200,000 reminder
deliveries. Seeding uses COPY (about a minute); later runs reuse the seeded database (each run
still applies new migrations: ``qianli db upgrade``). ``--reseed`` drops and seeds it again.
Keys (development secrets: the field cipher, the token key) live in ``var/bench-api/``, kept with
the database.

The API runs as ``make run`` starts it: ``gunicorn -c config/gunicorn.conf.py --workers 2`` (4
threads each from the config), QIANLI_ENV=development, the app of ``api.wsgi`` plus one trivial
flask-smorest operation, ``GET /bench/ping`` (bench/api_app.py), measured in the same run as the
ceiling. ``--workers 4`` is the README's production command. wrk (Debian package ``wrk``) drives
each operation for ``--duration`` seconds at ``--connections`` (32) after a short warm-up:

    ping (ceiling), getMyCase, listMyCases, previewNoticePeriod, listCases (no filter, then each
    filter: state, overdue, department, created_from/created_to, arrival_from/arrival_to, q),
    getCase (an awaiting_letter case with 15 evidence entries), listReminders

The last line printed is one JSON object: per operation ``rps``, ``p99_ms`` and ``ratio`` (rps /
ceiling rps), plus the machine's load average before and after. The machine is shared: compare
ratios taken in one run, not absolute figures across runs.

    .venv/bin/python bench/api.py [--reseed] [--duration 10] [--connections 32] [--workers 2]
    .venv/bin/python bench/api.py --profile getCase   # cProfile of N requests of one operation in-process
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import json
import os
import pstats
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

EMPLOYEES = 10_000
CASES_PER_EMPLOYEE = 5
EVIDENCE_PER_CASE = 20  # on average: 10..30, 1,000,000 in all
DELIVERIES_PER_CASE = 4
COMPANY_CODE = "bench-api"
DEPARTMENTS = [f"部门{i:02d}" for i in range(20)]
STATES = ["awaiting_letter", "submitted", "first_approved", "returned", "approved", "closed", "withdrawn"]
UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) MicroMessenger/8.0.47"


def _env(args) -> dict[str, str]:
    var = ROOT / "var" / "bench-api"
    var.mkdir(parents=True, exist_ok=True)
    return {**os.environ, "QIANLI_ENV": "development", "QIANLI_VAR_DIR": str(var),
            "DATABASE_URL": args.database_url, "REDIS_URL": args.redis_url,
            "QIANLI_LOG_LEVEL": os.environ.get("QIANLI_BENCH_LOG_LEVEL", "INFO"),
            "PROMETHEUS_MULTIPROC_DIR": str(var / "prometheus")}


def _psycopg_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def _ensure_database(url: str, reseed: bool) -> bool:
    """Create the database if missing (drop it first with reseed). True when it was (re)created."""
    import psycopg

    base, name = _psycopg_url(url).rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None
        if exists and reseed:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            exists = False
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
    return not exists


def _migrate(env: dict[str, str]) -> None:
    subprocess.run([str(ROOT / ".venv" / "bin" / "qianli"), "db", "upgrade"], env=env, check=True,
                   stdout=subprocess.DEVNULL, cwd=ROOT)


def _seeded(url: str) -> bool:
    import psycopg

    with psycopg.connect(_psycopg_url(url)) as conn:
        row = conn.execute("SELECT id FROM companies WHERE code = %s", (COMPANY_CODE,)).fetchone()
        if row is None:
            return False
        n = conn.execute("SELECT count(*) FROM resignation_cases WHERE company_id = %s", (row[0],)).fetchone()[0]
        return n >= EMPLOYEES * CASES_PER_EMPLOYEE


def _evidence_counts(n_cases: int) -> list[int]:
    """10..30 entries per case, pairs balanced so the total is exactly EVIDENCE_PER_CASE * n_cases."""
    out = []
    for j in range(n_cases):
        d = (j // 2) % 11
        out.append(EVIDENCE_PER_CASE + (d if j % 2 == 0 else -d))
    return out


def seed(env: dict[str, str], url: str) -> None:
    """COPY the company, employees, HR users, cases, evidence chains, schedules and deliveries."""
    import psycopg

    from cases.evidence import GENESIS_DIGEST, canonical_json, entry_digest
    from qianli.db import new_id
    from qianli.runtime import Runtime
    from qianli.services.auth import hash_password
    from qianli.settings import load_settings

    rt = Runtime(load_settings(env))
    t0 = time.perf_counter()
    now = datetime.now(timezone.utc).replace(microsecond=0)
    company_id = new_id()
    emps = []
    for i in range(EMPLOYEES):
        emp_no = f"B{i:05d}"
        phone = f"139{i:08d}"
        emps.append((new_id(), company_id, emp_no, f"员工{i:05d}", DEPARTMENTS[i % len(DEPARTMENTS)], "工程师",
                     date(2018, 1, 1) + timedelta(days=i % 2000), "固定期限三年",
                     rt.cipher.encrypt(phone, f"employees.phone:{company_id}:{emp_no}"), rt.lookup("phone", phone),
                     f"bench-openid-{i:05d}", True, 0, now, now))
    counts = _evidence_counts(EMPLOYEES * CASES_PER_EMPLOYEE)
    cases, evidence, schedules, deliveries = [], [], [], []
    j = 0
    for i, e in enumerate(emps):
        emp_id, openid = e[0], e[10]
        for k in range(CASES_PER_EMPLOYEE):
            # Earlier cases closed or withdrawn; the current one (k = 4) in every state, round-robin.
            state = STATES[i % len(STATES)] if k == CASES_PER_EMPLOYEE - 1 else ("closed", "withdrawn")[(i + k) % 2]
            created = now - timedelta(days=(CASES_PER_EMPLOYEE - 1 - k) * 140 + (i % 120), minutes=i % 1440)
            arrival = (created + timedelta(hours=8)).date()
            due = arrival + timedelta(days=7)
            letter_at = None if state == "awaiting_letter" else created + timedelta(days=2)
            cid = new_id()
            cases.append((cid, company_id, emp_id, state, "miniprogram", created, arrival, False, "career_development",
                          "个人职业发展", arrival + timedelta(days=30), arrival + timedelta(days=30),
                          json.dumps([{"item": "工作交接", "owner": "主管", "deadline": None}], ensure_ascii=False),
                          due, False, created, letter_at, f"employee:{emp_id}", created, created, 1))
            prev = GENESIS_DIGEST
            n = counts[j]
            j += 1
            for seq in range(1, n + 1):
                at = created + timedelta(hours=seq * 6)
                if seq == 1:
                    action, actor = "case_opened", f"employee:{emp_id}"
                    payload = {"source": "miniprogram", "arrival_date": arrival.isoformat(), "probation": False,
                               "reason_category": "career_development", "reason_text": "个人职业发展",
                               "earliest_lawful_last_day": (arrival + timedelta(days=30)).isoformat(),
                               "letter_due_date": due.isoformat(), "dates_provisional": False, "openid": openid,
                               "ip": "203.0.113.7", "user_agent": UA}
                else:
                    action, actor = "reminder_sent", "system:reminders"
                    payload = {"slot": seq - 1, "channel": "wechat" if seq % 2 else "sms", "kind": "letter_reminder",
                               "template": "letter_reminder_v1", "content_sha256": hashlib.sha256(
                                   f"{cid}{seq}".encode()).hexdigest(), "attempt": 1, "provider": "wechat",
                               "provider_message_id": f"m{j}-{seq}", "result": "sent"}
                payload = json.loads(canonical_json(payload))
                digest = entry_digest(cid, seq, at, actor, action, payload, prev)
                evidence.append((company_id, cid, seq, at, actor, action, canonical_json(payload), prev, digest))
                prev = digest
            active = state == "awaiting_letter"
            schedules.append((new_id(), company_id, cid, "active" if active else "stopped", DELIVERIES_PER_CASE,
                              now + timedelta(hours=i % 24) if active else created + timedelta(days=3),
                              created + timedelta(days=DELIVERIES_PER_CASE - 1), None if active else "letter_submitted",
                              created, created))
            for slot in range(DELIVERIES_PER_CASE):
                at = created + timedelta(days=slot)
                deliveries.append((new_id(), company_id, cid, slot, "wechat", "letter_reminder" if slot else "letter_due",
                                   "{}", "sent", "letter_reminder_v1", hashlib.sha256(f"{cid}{slot}".encode()).hexdigest(),
                                   "wechat", f"wx{j}-{slot}", 1, None, None, at, at, None, at, at, at))
    print(f"seed: rows built in {time.perf_counter() - t0:.1f} s", flush=True)
    pw = hash_password("bench-password")
    hr = [(new_id(), company_id, "bench-hr", "基准HR经理", pw, "hr_manager", None, None, True, now),
          (new_id(), company_id, "bench-head", "基准部门负责人", pw, "dept_head", DEPARTMENTS[0], None, True, now)]
    t1 = time.perf_counter()
    with psycopg.connect(_psycopg_url(url)) as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO companies (id, code, name, policy, created_at) VALUES (%s, %s, %s, %s, %s)",
                    (company_id, COMPANY_CODE, "基准测试有限公司", "{}", now))
        _copy(cur, "employees", "id, company_id, employee_no, name, department, position, hire_date, contract_term, "
              "phone_enc, phone_hash, wechat_openid, active, session_epoch, created_at, updated_at", emps)
        _copy(cur, "hr_users", "id, company_id, username, display_name, password_hash, role, department, phone_enc, "
              "active, created_at", hr)
        _copy(cur, "resignation_cases", "id, company_id, employee_id, state, source, notice_arrived_at, arrival_date, "
              "probation, reason_category, reason_text, requested_last_day, earliest_lawful_last_day, handover_items, "
              "letter_due_date, dates_provisional, form_submitted_at, letter_submitted_at, created_by, created_at, "
              "updated_at, version", cases)
        _copy(cur, "evidence_entries", "company_id, case_id, seq, occurred_at, actor, action, payload, prev_digest, "
              "digest", evidence)
        _copy(cur, "reminder_schedules", "id, company_id, case_id, state, slot, next_due_at, last_scheduled_at, "
              "stop_reason, created_at, updated_at", schedules)
        _copy(cur, "reminder_deliveries", "id, company_id, case_id, slot, channel, kind, params, status, template, "
              "content_sha256, provider, provider_message_id, attempts, error_code, error, scheduled_for, "
              "enqueued_at, lease_until, started_at, finished_at, created_at", deliveries)
        conn.commit()
    with psycopg.connect(_psycopg_url(url), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    rt.dispose()
    print(f"seed: {len(emps)} employees, {len(cases)} cases, {len(evidence)} evidence entries, "
          f"{len(deliveries)} deliveries copied in {time.perf_counter() - t1:.1f} s", flush=True)


def _copy(cur, table: str, columns: str, rows: list[tuple]) -> None:
    with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as cp:
        for r in rows:
            cp.write_row(r)


# ---- the run -------------------------------------------------------------------------------------

def _targets(env: dict[str, str]) -> dict[str, str]:
    """Tokens and ids: an employee whose current case awaits the letter with 15 evidence entries."""
    from sqlalchemy import func, select

    import qianli.models as m
    from qianli.runtime import Runtime
    from qianli.services.auth import Principal, issue_access_token, open_hr_session
    from qianli.settings import load_settings

    rt = Runtime(load_settings(env))
    with rt.session_factory() as s:
        company = s.scalar(select(m.Company).where(m.Company.code == COMPANY_CODE))
        n = (select(func.count()).where(m.EvidenceEntry.case_id == m.ResignationCase.id).scalar_subquery())
        case = s.scalar(select(m.ResignationCase).where(m.ResignationCase.company_id == company.id,
                                                        m.ResignationCase.state == "awaiting_letter", n == 15).limit(1))
        emp = s.get(m.Employee, case.employee_id)
        user = s.scalar(select(m.HrUser).where(m.HrUser.company_id == company.id, m.HrUser.username == "bench-hr"))
        hr_token = open_hr_session(s, rt.settings, user, ip="127.0.0.1", user_agent="bench").access_token
        s.commit()
        emp_token, _ = issue_access_token(rt.settings, Principal("employee", emp.id, company.id, emp.wechat_openid,
                                                                 epoch=emp.session_epoch or 0), ttl_s=3600)
        out = {"case_id": case.id, "employee_no": emp.employee_no, "department": emp.department,
               "hr_token": hr_token, "emp_token": emp_token}
    rt.dispose()
    return out


def operations(t: dict[str, str]) -> list[tuple[str, str, str]]:
    """(name, path, token kind) in the order measured; the first is the ceiling."""
    today = date.today()
    month_ago = (today - timedelta(days=30)).isoformat()
    cid = t["case_id"]
    return [
        ("ping", "/bench/ping", ""),
        ("getMyCase", f"/api/v1/cases/{cid}", "emp"),
        ("listMyCases", "/api/v1/cases", "emp"),
        ("previewNoticePeriod", f"/api/v1/notice/preview?arrival_date={today.isoformat()}&probation=false"
                                f"&company_code={COMPANY_CODE}", ""),
        ("listCases", "/api/v1/hr/cases", "hr"),
        ("listCases_state", "/api/v1/hr/cases?state=submitted&state=first_approved", "hr"),
        ("listCases_overdue", "/api/v1/hr/cases?overdue=true", "hr"),
        ("listCases_department", "/api/v1/hr/cases?department=" + urllib.request.quote(t["department"]), "hr"),
        ("listCases_created", f"/api/v1/hr/cases?created_from={month_ago}&created_to={today.isoformat()}", "hr"),
        ("listCases_arrival", f"/api/v1/hr/cases?arrival_from={month_ago}&arrival_to={today.isoformat()}", "hr"),
        ("listCases_q", "/api/v1/hr/cases?q=" + urllib.request.quote("员工0042"), "hr"),
        ("getCase", f"/api/v1/hr/cases/{cid}", "hr"),
        ("listReminders", f"/api/v1/cases/{cid}/reminders", "emp"),
    ]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_gunicorn(env: dict[str, str], port: int, workers: int, threads: int | None) -> subprocess.Popen:
    metrics = Path(env["PROMETHEUS_MULTIPROC_DIR"])
    shutil.rmtree(metrics, ignore_errors=True)
    metrics.mkdir(parents=True)
    cmd = [str(ROOT / ".venv" / "bin" / "gunicorn"), "-c", "config/gunicorn.conf.py", "--bind", f"127.0.0.1:{port}",
           "--workers", str(workers), "--pythonpath", "bench", "api_app:app"]
    if threads:
        cmd += ["--threads", str(threads)]
    log = open(ROOT / "var" / "bench-api" / "gunicorn.log", "wb")  # noqa: SIM115 - the server outlives this call
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=log, stderr=log, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/bench/ping", timeout=2).read()
            return proc
        except OSError:
            if proc.poll() is not None:
                raise SystemExit("gunicorn exited; see var/bench-api/gunicorn.log") from None
            time.sleep(0.3)
    raise SystemExit("gunicorn did not answer in 60 s")


def _check(port: int, path: str, headers: dict[str, str]) -> int:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers)
    with urllib.request.urlopen(req, timeout=10) as r:
        body = r.read()
        if r.status != 200:
            raise SystemExit(f"{path}: {r.status}")
        return len(body)


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _wrk(port: int, path: str, headers: dict[str, str], duration: float, connections: int) -> dict:
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{max(1, round(duration))}s", "--latency", "--timeout", "10s"]
    for k, v in headers.items():
        cmd += ["-H", f"{k}: {v}"]
    out = subprocess.run(cmd + [f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    m = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)
    p99 = float(m.group(1)) * _UNITS[m.group(2)]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    return {"rps": round(rps, 1), "p99_ms": round(p99, 1), "non_2xx": int(bad.group(1)) if bad else 0,
            **({"socket_errors": errors.group(0)} if errors else {})}


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def profile(env: dict[str, str], op: str, n: int) -> None:
    """cProfile of n in-process requests of one operation (the Flask test client, same database)."""
    os.environ.update(env)
    from api.app import create_app

    t = _targets(env)
    path, kind = next((p, k) for name, p, k in operations(t) if name == op)
    app = create_app()
    c = app.test_client()
    headers = {"Authorization": f"Bearer {t[kind + '_token']}"} if kind else {}
    for _ in range(5):
        assert c.get(path, headers=headers).status_code == 200
    pr = cProfile.Profile()
    t0 = time.perf_counter()
    pr.enable()
    for _ in range(n):
        c.get(path, headers=headers)
    pr.disable()
    print(f"{op}: {(time.perf_counter() - t0) * 1000 / n:.2f} ms per request in-process (profiled)")
    pstats.Stats(pr).sort_stats("cumulative").print_stats(45)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--database-url", default=os.environ.get(
        "QIANLI_BENCH_DATABASE_URL", "postgresql+psycopg://qianli:qianli@127.0.0.1:5432/qianli_bench"))
    ap.add_argument("--redis-url", default=os.environ.get("QIANLI_BENCH_REDIS_URL", "redis://127.0.0.1:6379/13"))
    ap.add_argument("--reseed", action="store_true", help="drop the bench database and seed it again")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds of wrk per operation")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--workers", type=int, default=2, help="gunicorn workers (make run: 2; README production: 4)")
    ap.add_argument("--threads", type=int, default=None, help="gunicorn threads per worker (default: the config's)")
    ap.add_argument("--only", default="", help="comma-separated operation names (the ceiling always runs)")
    ap.add_argument("--profile", default="", help="profile one operation in-process instead of running wrk")
    ap.add_argument("--profile-requests", type=int, default=200)
    args = ap.parse_args()
    if not shutil.which("wrk") and not args.profile:
        raise SystemExit("wrk not found: apt-get install wrk (scripts/install-system.sh installs it)")

    env = _env(args)
    created = _ensure_database(args.database_url, args.reseed)
    _migrate(env)
    if created or not _seeded(args.database_url):
        seed(env, args.database_url)
    if args.profile:
        profile(env, args.profile, args.profile_requests)
        return
    t = _targets(env)
    load_before = _load()
    port = _free_port()
    proc = _start_gunicorn(env, port, args.workers, args.threads)
    results: dict[str, dict] = {}
    only = set(filter(None, args.only.split(",")))
    try:
        for name, path, kind in operations(t):
            if only and name != "ping" and name not in only:
                continue
            headers = {"Authorization": f"Bearer {t[kind + '_token']}"} if kind else {}
            size = _check(port, path, headers)
            _wrk(port, path, headers, 2, args.connections)  # warm-up
            r = _wrk(port, path, headers, args.duration, args.connections)
            r["bytes"] = size
            results[name] = r
            ceiling = results["ping"]["rps"]
            r["ratio"] = round(r["rps"] / ceiling, 3)
            print(f"{name:22s} {r['rps']:8.1f} req/s  p99 {r['p99_ms']:7.1f} ms  ratio {r['ratio']:.3f}  "
                  f"{size} B  load {_load()}", flush=True)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    print(json.dumps({"operations": results, "workers": args.workers, "connections": args.connections,
                      "duration_s": args.duration, "load_before": load_before, "load_after": _load(),
                      "cpus": os.cpu_count()}, ensure_ascii=False))


if __name__ == "__main__":
    main()
