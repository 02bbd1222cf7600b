"""Reminder throughput: 100,000 open cases in a throwaway SQLite database (bulk-inserted), all due.

- ``sweep_s_100k``: seconds one sweep takes to find the due reminders, record them (delivery
  rows, schedules advanced) and enqueue one rq job each.
- ``redis_bytes_per_case``: Redis memory used by the queued jobs, per case.
- ``deliveries_per_s``: deliveries completed per second by 2 ``qianli worker`` processes through
  the development SMS gateway (claim, send, record, evidence entry), measured over a window of the
  queue from the first claim to the last recorded send.
- ``deliveries_per_s_100ms``: the same with a provider that takes time: the workers send through the
  Tencent SMS client (the official SDK) to a local HTTP emulation of its wire format
  (tests/identity/wire_servers.py) that answers each request after 100 ms, over HTTP/1.1 kept-alive
  connections like Tencent's endpoint (listen backlog 1,024, TCP_NODELAY). One rq job carries
  ``QIANLI_REMINDER_BATCH_SIZE`` deliveries, sent ``QIANLI_REMINDER_SEND_CONCURRENCY`` at a time.
- ``worker_cpu_ms_per_delivery`` and ``worker_cpu_ms_per_delivery_100ms``: CPU time (user + system)
  the 2 workers spent per delivery in each window (their start-up excluded), and
  ``gateway_cpu_ms_per_request`` the emulation's: the figures that do not depend on the machine's
  load. On 2 cores, CPU per delivery over all processes bounds the rate (2,000/s needs <= 1 ms).
- ``rq_noop_jobs_per_s``: the ceiling rq itself sets on this machine on one job per delivery: the same
  2 ``qianli worker`` processes running jobs that do nothing (``builtins.len``, ``result_ttl=0`` like
  the reminder jobs) from the same queue. A batch job carries ``QIANLI_REMINDER_BATCH_SIZE``
  deliveries, so deliveries can go that many times faster.

Each window needs enough due deliveries left: ``--cases`` at least about 3,000 times ``--window``
(the development window alone can take 2,000 a second), e.g. ``--cases 60000 --window 10``.

Uses Redis database QIANLI_BENCH_REDIS_DB (default 13, flushed). The last line printed is one
JSON object.

    .venv/bin/python bench/reminders.py [--cases 100000] [--window 20] [--latency-ms 100]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, insert, select  # noqa: E402

from qianli.db import Base, new_id, utcnow  # noqa: E402
from qianli.runtime import Runtime, set_runtime  # noqa: E402
from qianli.settings import load_settings, reset_settings_cache  # noqa: E402


def _populate(rt: Runtime, n: int) -> None:
    import qianli.models as m

    now = utcnow()
    company_id = new_id()
    arrival = date.today() - timedelta(days=1)
    with rt.engine.begin() as conn:
        conn.execute(insert(m.Company), [{"id": company_id, "code": "bench", "name": "基准测试有限公司", "policy": {},
                                          "created_at": now}])
        for start in range(0, n, 10_000):
            emps, cases, scheds = [], [], []
            for i in range(start, min(n, start + 10_000)):
                emp_no, eid, cid = f"B{i:06d}", new_id(), new_id()
                phone = f"139{i:08d}"
                emps.append({"id": eid, "company_id": company_id, "employee_no": emp_no, "name": f"员工{i}",
                             "department": "研发部", "position": "工程师", "contract_term": "",
                             "phone_enc": rt.cipher.encrypt(phone, f"employees.phone:{company_id}:{emp_no}"),
                             "phone_hash": rt.lookup("phone", phone), "active": True, "created_at": now,
                             "updated_at": now})
                cases.append({"id": cid, "company_id": company_id, "employee_id": eid, "state": "awaiting_letter",
                              "source": "miniprogram", "notice_arrived_at": now - timedelta(days=1),
                              "arrival_date": arrival, "probation": False, "reason_text": "",
                              "earliest_lawful_last_day": arrival + timedelta(days=30), "handover_items": [],
                              "letter_due_date": arrival + timedelta(days=5), "dates_provisional": False,
                              "created_by": "bench", "created_at": now, "updated_at": now, "version": 1})
                scheds.append({"id": new_id(), "company_id": company_id, "case_id": cid, "state": "active", "slot": 1,
                               "next_due_at": now - timedelta(minutes=1), "last_scheduled_at": now - timedelta(days=1),
                               "created_at": now, "updated_at": now})
            conn.execute(insert(m.Employee), emps)
            conn.execute(insert(m.ResignationCase), cases)
            conn.execute(insert(m.ReminderSchedule), scheds)


class _SlowTencentSms:
    """The Tencent SMS wire emulation answering every request after ``latency`` seconds."""

    def __new__(cls, latency: float):
        from tests.identity.wire_servers import TencentSmsWireServer

        class Slow(TencentSmsWireServer):
            def handle(self, method, path, query, headers, body):
                time.sleep(latency)
                answer = super().handle(method, path, query, headers, body)
                with self.lock:
                    self.requests.clear()  # keep memory flat over a long window
                return answer

        server = Slow()
        # many concurrent clients: http.server listens with a backlog of 5, and a full backlog drops the
        # SYNs of new connections, which the client's kernel retransmits only after 1 s (then 3 s)
        server._server.socket.listen(1024)  # noqa: SLF001
        # HTTP/1.1 with kept-alive connections, as Tencent's endpoint (http.server answers HTTP/1.0 by
        # default), and TCP_NODELAY: http.server writes the headers and the body separately, which on a
        # kept-alive connection Nagle's algorithm would hold for the client's delayed ACK (40 ms)
        handler = server._server.RequestHandlerClass  # noqa: SLF001
        handler.protocol_version, handler.disable_nagle_algorithm = "HTTP/1.1", True
        return server


def _cpu_s(procs: list[subprocess.Popen]) -> float:
    """CPU seconds (user + system) the processes have used so far (Linux /proc)."""
    total = 0
    for p in procs:
        with open(f"/proc/{p.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _deliver(procs: list[subprocess.Popen], window: float) -> float:
    """Let the workers deliver for ``window`` seconds and stop them (the jobs under way finish): the CPU
    seconds they used from now to their exit (their start-up excluded)."""
    import resource

    def children() -> float:
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        return ru.ru_utime + ru.ru_stime

    before, started = children(), _cpu_s(procs)
    time.sleep(window)
    _stop(procs)
    return children() - before - started


def _stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.send_signal(signal.SIGTERM)  # warm shutdown: the current job finishes
    for p in procs:
        try:
            p.wait(60)
        except subprocess.TimeoutExpired:
            p.kill()


def _rate(rt: Runtime, provider: str) -> tuple[int, float]:
    """(deliveries sent by ``provider``, per second from the first claim to the last recorded send)."""
    import qianli.models as m

    with rt.session_factory() as s:
        sent, first, last = s.execute(select(func.count(), func.min(m.ReminderDelivery.started_at),
                                             func.max(m.ReminderDelivery.finished_at))
                                      .where(m.ReminderDelivery.status == "sent",
                                             m.ReminderDelivery.provider == provider)).one()
    span = (last - first).total_seconds() if sent else 0.0
    return sent, (sent / span if sent and span > 0 else 0.0)


def _workers(env: dict[str, str], count: int, tag: str = "w", redis=None) -> list[subprocess.Popen]:
    """``count`` ``qianli worker`` processes; with ``redis``, returns once all have registered (their start-up,
    imports included, takes seconds on a busy machine and must not eat the measured window)."""
    qianli = str(Path(sys.executable).with_name("qianli"))
    names = [f"bench-{os.getpid()}-{tag}-{i}" for i in range(count)]
    procs = [subprocess.Popen([qianli, "worker", "--name", name], env=env, stdout=subprocess.DEVNULL,
                              stderr=open(os.environ.get("QIANLI_BENCH_WORKER_LOG", os.devnull), "ab"))  # noqa: SIM115
             for name in names]
    if redis is not None:
        from rq import Worker

        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            up = {w.name for w in Worker.all(connection=redis)}
            if all(n in up for n in names):
                break
            time.sleep(0.2)
    return procs


def _noop_ceiling(rt: Runtime, env: dict[str, str], workers: int, window: float) -> float:
    """Jobs per second that ``workers`` rq workers get through when each job does nothing."""
    from rq import Queue

    from qianli.services.reminders import QUEUE

    q = Queue(QUEUE, connection=rt.redis)
    n = 20_000
    for start in range(0, n, 1000):
        q.enqueue_many([Queue.prepare_data("builtins.len", ("x",), result_ttl=0, job_id=f"noop-{i}")
                        for i in range(start, start + 1000)])
    procs = _workers(env, workers, "noop")
    first = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait for the first job to be taken (worker start-up excluded)
        if q.count < n:
            first, left0 = time.perf_counter(), q.count
            break
        time.sleep(0.005)
    time.sleep(window)
    left1, end = q.count, time.perf_counter()
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
    return (left0 - left1) / (end - first) if first is not None else 0.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=100_000)
    ap.add_argument("--window", type=float, default=20.0, help="seconds the 2 workers deliver before being stopped")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--latency-ms", type=float, default=100.0, help="the slow provider's answer time")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="qianli-bench-reminders-"))
    redis_db = int(os.environ.get("QIANLI_BENCH_REDIS_DB", "13"))
    redis_base = os.environ.get("QIANLI_TEST_REDIS_URL", "redis://127.0.0.1:6379")
    env = {**os.environ, "QIANLI_ENV": "test", "QIANLI_VAR_DIR": str(tmp / "var"),
           "DATABASE_URL": f"sqlite:///{tmp / 'bench.db'}", "REDIS_URL": f"{redis_base}/{redis_db}",
           "QIANLI_QUIET_HOURS": "off", "QIANLI_LOG_LEVEL": os.environ.get("QIANLI_BENCH_LOG_LEVEL", "ERROR")}
    settings = load_settings(env)
    reset_settings_cache(settings)
    rt = Runtime(settings)
    set_runtime(rt)
    rt.redis.flushdb()
    import qianli.models as m
    from qianli.cli.jobs import sqlite_tuning
    from qianli.services.reminders import sweep

    sqlite_tuning(rt.engine)  # what 'qianli scheduler' does on SQLite

    Base.metadata.create_all(rt.engine)
    t0 = time.perf_counter()
    _populate(rt, args.cases)
    print(f"inserted {args.cases} employees, cases and schedules in {time.perf_counter() - t0:.1f} s", flush=True)

    mem0 = int(rt.redis.info("memory")["used_memory"])
    res = sweep(rt)
    mem1 = int(rt.redis.info("memory")["used_memory"])
    print(f"sweep: {res.as_dict()}", flush=True)
    assert res.scheduled == args.cases and res.enqueued == args.cases, res
    bytes_per_case = (mem1 - mem0) / args.cases

    procs = _workers(env, args.workers, "dev", rt.redis)
    cpu_dev = _deliver(procs, args.window)
    sent, per_s = _rate(rt, "dev")
    with rt.session_factory() as s:
        evidence = s.scalar(select(func.count()).select_from(m.EvidenceEntry).where(m.EvidenceEntry.action == "reminder_sent"))
    print(f"deliveries: {sent} sent ({evidence} evidence entries) at {per_s:.1f}/s with {args.workers} workers "
          f"(development gateway, no latency)", flush=True)

    # the same queue, now through the Tencent SMS client to an emulation answering after --latency-ms
    with _SlowTencentSms(args.latency_ms / 1000) as gw:
        slow_env = {**env, "QIANLI_SMS_BACKEND": "tencent", "QIANLI_SMS_TENCENT_ENDPOINT": gw.url,
                    "QIANLI_SMS_TENCENT_SECRET_ID": "AKIDbench", "QIANLI_SMS_TENCENT_SECRET_KEY": "bench-secret-key",
                    "QIANLI_SMS_TENCENT_SDK_APP_ID": "1400000001", "QIANLI_SMS_SIGN_NAME": "签离科技",
                    "QIANLI_SMS_TEMPLATE_REMINDER": "2000001", "QIANLI_SMS_TEMPLATE_CODE": "2000002"}
        procs = _workers(slow_env, args.workers, "slow", rt.redis)
        gw_cpu0 = time.process_time()  # the emulation's threads run in this process
        cpu_slow = _deliver(procs, args.window)
        gw_cpu = time.process_time() - gw_cpu0
    sent_slow, per_s_slow = _rate(rt, "tencent")
    print(f"deliveries: {sent_slow} sent at {per_s_slow:.1f}/s with {args.workers} workers "
          f"(Tencent SMS client, emulation answering after {args.latency_ms:g} ms)", flush=True)
    rt.redis.flushdb()
    noop_per_s = _noop_ceiling(rt, env, args.workers, min(args.window, 10.0))
    print(f"rq ceiling: {noop_per_s:.1f} no-op jobs/s with {args.workers} workers", flush=True)
    rt.redis.flushdb()
    rt.dispose()
    print(json.dumps({"sweep_s_100k": round(res.seconds * 100_000 / args.cases, 2),
                      "deliveries_per_s": round(per_s, 1), "deliveries_per_s_100ms": round(per_s_slow, 1),
                      "latency_ms": args.latency_ms, "batch_size": settings.reminder_batch_size,
                      "send_concurrency": settings.reminder_send_concurrency, "load": os.getloadavg()[0],
                      "worker_cpu_ms_per_delivery": round(1000 * cpu_dev / sent, 3) if sent else None,
                      "worker_cpu_ms_per_delivery_100ms": round(1000 * cpu_slow / sent_slow, 3) if sent_slow else None,
                      "gateway_cpu_ms_per_request": round(1000 * gw_cpu / sent_slow, 3) if sent_slow else None,
                      "redis_bytes_per_case": round(bytes_per_case),
                      "rq_noop_jobs_per_s": round(noop_per_s, 1),
                      "cases": args.cases, "workers": args.workers, "sent": sent}))


if __name__ == "__main__":
    main()
