"""SQLite (the development default) under concurrent writers in several processes: API requests,
rq workers delivering reminders, the scheduler's sweep and read-then-write evidence appends, all on
one database file at once. Nothing may fail with 'database is locked'."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError

from qianli.db import is_sqlite_lock_error, make_engine, read_only, run_in_transaction, session_scope
from qianli.models import Company, EvidenceEntry, ReminderDelivery, ResignationCase
from qianli.services import cases as case_svc
from qianli.services.employees import create_employee
from qianli.services.evidence import verify_case_chain
from identity.sms import OUTBOX_REDIS_KEY
from qianli.services.reminders import SMS_TEMPLATE, on_case_opened

ROLES = str(Path(__file__).with_name("sqlite_roles.py"))
STOP_KEY = "qianli-test:sqlite-roles:stop"
ROOT = Path(__file__).resolve().parents[2]
PG = bool(os.environ.get("QIANLI_TEST_DATABASE_URL"))


def _unsent(rt) -> int:
    with session_scope(rt.session_factory) as s:
        read_only(s)  # a reader never queues behind the writers
        return s.scalar(select(func.count()).select_from(ReminderDelivery).where(ReminderDelivery.status != "sent"))


def _engine(tmp_path, **kw):
    eng = make_engine(f"sqlite:///{tmp_path / 'locks.db'}", **kw)
    with eng.begin() as c:
        c.execute(text("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, n INTEGER)"))
    return eng


def test_a_deferred_read_then_write_fails_at_once_and_the_default_waits(tmp_path):
    """Why writes take the lock up front: a DEFERRED transaction that read before another process
    committed cannot write (SQLite refuses at once, whatever the busy timeout); the default
    (BEGIN IMMEDIATE) waits for the other writer instead and then succeeds."""
    a_eng, b_eng = _engine(tmp_path), _engine(tmp_path)
    # 1. the failure mode, reproduced with a read-only (DEFERRED) transaction
    with a_eng.connect() as a:
        a = a.execution_options(qianli_sqlite_begin="DEFERRED")
        with a.begin():
            a.execute(text("SELECT count(*) FROM t")).scalar()
            with b_eng.begin() as b:
                b.execute(text("INSERT INTO t (n) VALUES (1)"))
            started = time.monotonic()
            with pytest.raises(OperationalError) as err:
                a.execute(text("INSERT INTO t (n) VALUES (2)"))
            assert is_sqlite_lock_error(err.value) and time.monotonic() - started < 5
    # 2. the default: B waits until A commits, then writes
    events = []
    with a_eng.connect() as a, a.begin():
        a.execute(text("SELECT count(*) FROM t")).scalar()

        def other_writer():
            with b_eng.begin() as b:
                events.append(("b_began", time.monotonic()))
                b.execute(text("INSERT INTO t (n) VALUES (3)"))

        th = threading.Thread(target=other_writer)
        th.start()
        time.sleep(0.5)
        assert events == []  # B is waiting for A's write lock
        a.execute(text("INSERT INTO t (n) VALUES (4)"))
        committed_at = time.monotonic()
    th.join(10)
    assert events and events[0][1] >= committed_at
    with a_eng.connect() as c:
        assert c.execute(text("SELECT n FROM t ORDER BY id")).scalars().all() == [1, 4, 3]  # A first, then B
    a_eng.dispose()
    b_eng.dispose()


def test_run_in_transaction_retries_a_locked_unit_of_work(tmp_path):
    eng = _engine(tmp_path, sqlite_busy_timeout_s=0.2)
    from qianli.db import make_session_factory

    factory = make_session_factory(eng)
    holder = eng.connect()
    holder.begin()
    holder.execute(text("INSERT INTO t (n) VALUES (1)"))  # holds the write lock
    threading.Timer(0.4, holder.commit).start()  # ... for 0.4 s: longer than one busy timeout
    calls = []

    def unit(s):
        calls.append(1)
        s.execute(text("INSERT INTO t (n) VALUES (2)"))
        return "done"

    assert run_in_transaction(factory, unit) == "done"
    assert len(calls) >= 2  # the first attempt met the lock and was re-run
    holder.close()
    with eng.connect() as c:
        assert c.execute(text("SELECT n FROM t ORDER BY id")).scalars().all() == [1, 2]
    eng.dispose()


@pytest.mark.slow
@pytest.mark.skipif(PG, reason="SQLite's locking; PostgreSQL runs the same flows in the other tests")
def test_api_workers_scheduler_and_evidence_writers_in_parallel_processes(committed_runtime):
    rt = committed_runtime
    rt.settings = replace(rt.settings, quiet_hours="off")  # the HR cases' notices go out whatever the hour
    n_api, per_api = 3, 4
    with session_scope(rt.session_factory) as s:
        co = Company(code="lk", name="示例科技有限公司", policy={})
        s.add(co)
        s.flush()
        emps = []
        for i in range(n_api * per_api):
            e = create_employee(s, rt, company_id=co.id, employee_no=f"A{i:03d}", name="张三", phone=f"1390013{i:04d}",
                                national_id="11010519491231002X", department="研发部", position="工程师")
            emps.append(e.id)
        # cases opened earlier by HR: their notice reminders are queued for the workers
        hr_cases = []
        for i in range(6):
            e = create_employee(s, rt, company_id=co.id, employee_no=f"H{i:03d}", name="李雷", phone=f"1370013{i:04d}",
                                national_id="11010519491231002X", department="研发部", position="工程师")
            case = case_svc.open_case(s, rt.settings, employee=e, source="instant_message",
                                      notice_arrived_at=datetime.now(timezone.utc) - timedelta(minutes=1), actor="hr:test")
            on_case_opened(s, rt, case)
            hr_cases.append(case.id)
    env = {**os.environ, "QIANLI_ENV": "test", "QIANLI_VAR_DIR": str(rt.settings.var_dir),
           "DATABASE_URL": rt.settings.database_url, "REDIS_URL": rt.settings.redis_url, "QIANLI_QUIET_HOURS": "off",
           "QIANLI_LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT)}
    start = str(time.time() + 8)  # all processes start writing at the same moment (imports take a while)
    cmds = [["api", start, *emps[i * per_api:(i + 1) * per_api]] for i in range(n_api)]
    cmds += [["evidence", start, hr_cases[0], "40"], ["evidence", start, hr_cases[0], "40"]]
    loops = [["worker", start], ["worker", start], ["scheduler", start]]
    rt.redis.delete(STOP_KEY)
    procs = [subprocess.Popen([sys.executable, ROLES, *c], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for c in cmds + loops]
    try:
        outs = [p.communicate(timeout=180) for p in procs[:len(cmds)]]
        # the API's cases queued their notices after commit: let the workers drain them
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _unsent(rt):
            time.sleep(0.2)
    finally:
        rt.redis.set(STOP_KEY, "1")
        outs += [p.communicate(timeout=60) for p in procs[len(cmds):]]
    cmds += loops
    for c, p, (out, err) in zip(cmds, procs, outs, strict=True):
        assert p.returncode == 0, f"{c[0]} failed ({p.returncode}): {out}\n{err[-3000:]}"
        assert "database is locked" not in err, f"{c[0]}: {err[-3000:]}"
    api_results = [json.loads(o.strip().splitlines()[-1]) for (o, _e), c in zip(outs, cmds, strict=True) if c[0] == "api"]
    assert sum(r["statuses"].count(201) for r in api_results) == n_api * per_api
    with session_scope(rt.session_factory) as s:
        cases = s.scalars(select(ResignationCase)).all()
        assert len(cases) == n_api * per_api + len(hr_cases)
        for case in cases:  # every evidence chain intact despite the interleaving
            assert verify_case_chain(s, case.id, case.company_id).ok
        notes = s.scalar(select(func.count()).select_from(EvidenceEntry).where(
            EvidenceEntry.case_id == hr_cases[0], EvidenceEntry.action == "chat_evidence_recorded"))
        assert notes == 80
        sent = s.scalars(select(ReminderDelivery.case_id).where(ReminderDelivery.slot == 0,
                                                                ReminderDelivery.status == "sent")).all()
        assert sorted(sent) == sorted(c.id for c in cases)  # every notice reminder sent, once
        assert _unsent(rt) == 0
    outbox = [json.loads(m) for m in rt.redis.lrange(OUTBOX_REDIS_KEY, 0, -1)]
    phones = [m["phone"] for m in outbox if m.get("template") == SMS_TEMPLATE]
    assert len(phones) == len(set(phones)) == len(sent)  # one SMS per case: none lost, none sent twice
