"""Chaos with the real parts: the demo runs against gunicorn + an rq worker + the scheduler on a
PRIVATE PostgreSQL cluster and a PRIVATE redis-server (own ports and data directories; the shared
servers on 5432/6379 are never touched), and during the run:

* Redis is restarted (before the signing: the signing intent lives in Redis),
* an rq worker is killed with SIGKILL in the middle of sending the notice reminder,
* the gunicorn worker serving signLetter is killed with SIGKILL after it has signed and stored the
  PDF but before its transaction commits; the client retries with the same idempotency key,
* PostgreSQL is restarted (after the signing, before HR's review).

While Redis or PostgreSQL is down, /healthz answers 503 naming it; once it is back, 200. Then the
database says: nothing lost (the case is closed with its whole evidence chain intact), nothing sent
twice (one SMS per reminder delivery), nothing signed twice (one signing, one letter_signed entry).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from .private_services import PrivatePostgres, PrivateRedis, free_port, postgres_bin_dir, redis_server_binary

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
QIANLI = str(BIN / "qianli")
GUNICORN = str(BIN / "gunicorn")
REPO = Path(__file__).resolve().parents[2]
SIGNING_PAUSE = re.compile(r"signLetter paused before commit .*\(pid (\d+)\)")

if not redis_server_binary() or postgres_bin_dir() is None:  # pragma: no cover - make setup installs both
    pytest.skip("redis-server or PostgreSQL's initdb/pg_ctl not installed", allow_module_level=True)


def _tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _stop(proc: subprocess.Popen) -> None:
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            continue
        with contextlib.suppress(ProcessLookupError):  # whatever the leader left behind
            os.killpg(proc.pid, signal.SIGKILL)
        return


class World:
    """The private servers and the service processes, with the chaos levers."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.var = tmp / "var"
        self.log_path = tmp / "service.log"
        self.log = open(self.log_path, "ab")  # noqa: SIM115 - closed in close()
        self.redis = PrivateRedis(tmp)
        self.pg = PrivatePostgres()
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.procs: dict[str, subprocess.Popen] = {}
        self.health: list[tuple[str, int, dict]] = []
        self.env = {**os.environ, "QIANLI_ENV": "development", "QIANLI_VAR_DIR": str(self.var),
                    "DATABASE_URL": self.pg.url, "REDIS_URL": self.redis.url, "QIANLI_PUBLIC_BASE_URL": self.base,
                    "QIANLI_LOG_LEVEL": "WARNING", "QIANLI_QUIET_HOURS": "off", "QIANLI_SMS_RESEND_COOLDOWN_S": "1",
                    "QIANLI_SWEEP_INTERVAL_S": "1", "QIANLI_REMINDER_SEND_LEASE_S": "4"}

    def spawn(self, name: str, args: list[str], **env) -> subprocess.Popen:
        proc = subprocess.Popen(args, env={**self.env, **env}, cwd=REPO, stdout=self.log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.procs[name] = proc
        return proc

    def start(self) -> None:
        self.redis.start()
        self.pg.init()
        for args in (["db", "upgrade"], ["dev", "seed"]):
            subprocess.run([QIANLI, *args], env=self.env, cwd=REPO, stdout=self.log, stderr=subprocess.STDOUT,
                           check=True, timeout=180)
        # the first worker sends slowly, so that it can be killed in the middle of a send
        self.spawn("worker", [QIANLI, "worker"], QIANLI_REMINDER_DEV_SEND_DELAY_S="30")
        self.spawn("scheduler", [QIANLI, "scheduler"])
        self.spawn("gunicorn", [GUNICORN, "--bind", f"127.0.0.1:{self.port}", "--workers", "2", "--threads", "4",
                                "--timeout", "120", "api.wsgi:app"], QIANLI_SIGNING_DEV_DELAY_S="6")
        self.wait_health(200, 120)

    def close(self) -> None:
        for p in reversed(list(self.procs.values())):
            _stop(p)
        self.redis.kill()
        self.pg.destroy()
        self.log.close()

    def healthz(self) -> tuple[int, dict]:
        try:
            r = requests.get(f"{self.base}/healthz", timeout=10)
            return r.status_code, r.json()
        except requests.RequestException as exc:
            return 0, {"error": str(exc)}

    def wait_health(self, status: int, timeout: float, *, note: str = "") -> dict:
        deadline = time.monotonic() + timeout
        while True:
            got, body = self.healthz()
            if got == status:
                self.health.append((note, got, body))
                return body
            if time.monotonic() > deadline:
                raise AssertionError(f"/healthz stayed {got} {body}, expected {status} ({note})\n{_tail(self.log_path)}")
            time.sleep(0.3)

    # -- the chaos levers -------------------------------------------------------------------------
    def restart_redis(self) -> None:
        self.redis.stop()
        body = self.wait_health(503, 30, note="redis down")
        assert body["redis"] != "ok" and body["database"] == "ok", body
        self.redis.start()
        self.wait_health(200, 60, note="redis back")

    def restart_postgres(self) -> None:
        self.pg.stop("fast")
        body = self.wait_health(503, 30, note="postgres down")
        assert body["database"] != "ok" and body["redis"] == "ok", body
        self.pg.start()
        self.wait_health(200, 60, note="postgres back")

    def kill_worker_mid_send(self) -> None:
        """SIGKILL the rq worker while it holds a claimed ('sending') reminder, then start a fresh one."""
        engine = create_engine(self.pg.url)
        try:
            from qianli.models import ReminderDelivery

            deadline = time.monotonic() + 60
            while True:
                with Session(engine) as s:
                    if s.scalar(select(func.count()).select_from(ReminderDelivery)
                                .where(ReminderDelivery.status == "sending")):
                        break
                assert time.monotonic() < deadline, f"no reminder being sent\n{_tail(self.log_path)}"
                time.sleep(0.1)
        finally:
            engine.dispose()
        old = self.procs["worker"]
        os.killpg(old.pid, signal.SIGKILL)  # the worker and rq's scheduler process it forked
        old.wait(10)
        self.killed_worker = old.pid
        self.spawn("worker", [QIANLI, "worker"])  # a normal worker: the sweep recovers the claimed send

    def kill_gunicorn_worker_mid_signing(self) -> None:
        """Wait for the signing request to pause before its commit, then SIGKILL that gunicorn worker."""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            m = SIGNING_PAUSE.search(self.log_path.read_text(errors="replace"))
            if m:
                pid = int(m.group(1))
                assert pid != self.procs["gunicorn"].pid  # a worker, never the master
                os.kill(pid, signal.SIGKILL)
                self.killed_signer = pid
                return
            time.sleep(0.05)
        raise AssertionError(f"the signing never paused\n{_tail(self.log_path)}")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    w = World(tmp_path_factory.mktemp("chaos"))
    try:
        w.start()
        yield w
    finally:
        w.close()


def test_demo_completes_through_restarts_and_kills(world, tmp_path):
    from qianli.cli.demo import DemoFailed, run_demo
    from qianli.cli.devseed import DEMO_COMPANY, DEMO_HR, DEMO_HR_PASSWORD
    from qianli.models import EvidenceEntry, ReminderDelivery, ResignationCase, SigningRequest
    from qianli.services.evidence import verify_case_chain

    events: list[str] = []
    killer: list[threading.Thread] = []
    pulled: set[str] = set()

    def lever(name: str, marker: str, line: str) -> bool:
        if marker in line and name not in pulled:
            pulled.add(name)
            return True
        return False

    def echo(line: str = "", nl: bool = True, **_kw) -> None:
        events.append(line)
        if nl:
            return
        # called as each step starts: pull the levers at the chosen steps
        if lever("worker", "listReminders (notice", line):
            world.kill_worker_mid_send()
        elif lever("sign", " signLetter", line):
            world.restart_redis()  # the signing intent, the factors and the queue live in Redis
            t = threading.Thread(target=world.kill_gunicorn_worker_mid_signing, daemon=True)
            t.start()
            killer.append(t)
        elif lever("postgres", " getCase", line):
            world.restart_postgres()  # after the signing: the signed letter must still be there

    out = tmp_path / "demo"
    try:
        result = run_demo(world.base, out, photo=REPO / "tests/fixtures/faces/obama.jpg",
                          reference_photo=REPO / "tests/fixtures/faces/obama2.jpg", company=DEMO_COMPANY[0],
                          password=DEMO_HR_PASSWORD, hr_users={role: user for user, _n, role, _d in DEMO_HR},
                          echo=echo, seed=11, reminder_wait_s=60)
    except DemoFailed as exc:
        pytest.fail(f"demo failed: {exc.message}\n{exc.status} {exc.body}\nsteps:\n{''.join(events)}\n"
                    f"service log:\n{_tail(world.log_path, 120)}")
    killer[0].join(5)
    assert pulled == {"worker", "sign", "postgres"}, "\n".join(events)
    assert getattr(world, "killed_worker", None) and getattr(world, "killed_signer", None), "\n".join(events)
    assert [n for n, *_ in world.health if n] == ["redis down", "redis back", "postgres down", "postgres back"]

    engine = create_engine(world.pg.url)
    try:
        with Session(engine) as s:
            case = s.get(ResignationCase, result.case_id)
            assert case.state in ("approved", "closed"), case.state
            assert verify_case_chain(s, case.id, case.company_id).ok
            # signed once: one signing request, one letter_signed entry, although a signer was killed
            assert s.scalar(select(func.count()).select_from(SigningRequest)
                            .where(SigningRequest.case_id == case.id)) == 1
            actions = s.scalars(select(EvidenceEntry.action).where(EvidenceEntry.case_id == case.id)).all()
            assert actions.count("letter_signed") == 1
            # sent once: the send the killed worker had claimed was recovered and made once
            deliveries = s.scalars(select(ReminderDelivery).where(ReminderDelivery.case_id == case.id)).all()
            notice = [d for d in deliveries if d.slot == 0]  # SMS and WeChat; the worker was killed in one send
            attempts = [d.attempts for d in notice]
            assert {d.status for d in notice} == {"sent"} and attempts.count(2) == 1 and set(attempts) <= {1, 2}
            assert not [d for d in deliveries if d.status in ("pending", "sending", "failed")]
            sent = [d for d in deliveries if d.status == "sent" and d.channel == "sms"]
    finally:
        engine.dispose()
    phone = result.facts["phone"]
    with world.redis.client() as r:
        outbox = [json.loads(m) for m in r.lrange("qianli:dev:sms-outbox", 0, -1)]
    texts = [m for m in outbox if m["phone"] == phone and m["template"] != "code"]
    assert len(texts) == len(sent), texts  # every SMS reminder/notification once, none twice
    assert (out / "signed-letter.pdf").exists() and (out / "dossier.zip").exists()
