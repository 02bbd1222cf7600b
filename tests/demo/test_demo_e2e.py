"""``qianli demo`` end to end against the real service: gunicorn + an rq worker in subprocesses
(development settings, a temp var dir with its own SQLite database, the test Redis database), on
a free loopback port. The demo must exit 0 and leave a signed PDF whose two signatures (employee
and company seal) verify against the deployment's root, and a dossier that verifies offline."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
QIANLI = str(BIN / "qianli")
GUNICORN = str(BIN / "gunicorn")
REPO = Path(__file__).resolve().parents[2]
REDIS_BASE = os.environ.get("QIANLI_TEST_REDIS_URL", "redis://127.0.0.1:6379")
REDIS_DB = int(os.environ.get("QIANLI_TEST_REDIS_DB", "15"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _stop(proc: subprocess.Popen) -> None:
    """TERM the process group (gunicorn's workers, rq's forked scheduler), then KILL what is left."""
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            continue
        if sig == signal.SIGTERM:
            with contextlib.suppress(ProcessLookupError):  # anything the leader left behind
                os.killpg(proc.pid, signal.SIGKILL)
            return


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """The running service (API + worker), as `make run` starts it; yields (base_url, env, var_dir, log).

    Its Redis database is the tests' (flushed here): no other service may use it meanwhile, or
    that service's worker would take this one's reminder jobs."""
    import redis

    with redis.Redis.from_url(f"{REDIS_BASE}/{REDIS_DB}") as r:
        r.flushdb()
    tmp_path = tmp_path_factory.mktemp("demo-service")
    var = tmp_path / "var"
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "QIANLI_ENV": "development", "QIANLI_VAR_DIR": str(var),
           "DATABASE_URL": f"sqlite:///{var / 'qianli.db'}", "REDIS_URL": f"{REDIS_BASE}/{REDIS_DB}",
           "QIANLI_PUBLIC_BASE_URL": base, "QIANLI_LOG_LEVEL": "WARNING",
           "QIANLI_QUIET_HOURS": "off",  # the notice goes out whatever the time of day ("" would mean the default)
           "QIANLI_SMS_RESEND_COOLDOWN_S": "1"}  # the demo waits out a longer one (60 s by default)
    log_path = tmp_path / "service.log"
    log = open(log_path, "ab")  # noqa: SIM115 - closed below
    procs: list[subprocess.Popen] = []
    try:
        for args in (["db", "upgrade"], ["dev", "seed"]):
            subprocess.run([QIANLI, *args], env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, check=True,
                           timeout=120)
        procs.append(subprocess.Popen([QIANLI, "worker"], env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                      start_new_session=True))
        procs.append(subprocess.Popen([GUNICORN, "--bind", f"127.0.0.1:{port}", "--workers", "2", "--threads", "4",
                                       "--timeout", "120", "api.wsgi:app"], env=env, cwd=REPO, stdout=log,
                                      stderr=subprocess.STDOUT, start_new_session=True))
        deadline = time.monotonic() + 90
        while True:
            try:
                if requests.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            dead = [p.args[0] for p in procs if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                pytest.fail(f"service did not start ({dead or 'timeout'}):\n{_tail(log_path)}")
            time.sleep(0.3)
        yield base, env, var, log_path
    finally:
        for p in reversed(procs):
            _stop(p)
        log.close()


def test_demo_drives_a_whole_case_over_http(service, tmp_path):
    from signing.verify import verify_pdf
    from qianli.services.dossier import verify_dossier

    base, env, var, log_path = service
    out = tmp_path / "out"
    run = subprocess.run([QIANLI, "demo", "--out", str(out), "--base-url", base, "--seed", "7"], env=env, cwd=REPO,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, f"demo failed:\n{run.stdout}\n{run.stderr}\nservice log:\n{_tail(log_path)}"

    lines = [ln for ln in run.stdout.splitlines() if ln.startswith("[")]
    assert len(lines) >= 25 and all(" ok (" in ln for ln in lines), run.stdout
    for op in ("importRoster", "bindEmployee", "submitResignation", "verifyFace", "signLetter", "listReminders",
               "approveCase", "verifyDocument", "exportDossier"):
        assert op in run.stdout, op

    summary = json.loads((out / "demo-summary.json").read_text())
    root = (var / "pki" / "root.pem").read_bytes()

    # the final PDF: the employee's and the company's signatures, both valid and chaining to our root
    pdf = Path(summary["files"]["signed_pdf"]).read_bytes()
    report = verify_pdf(pdf, trust_roots=[root])
    assert report.ok, report.to_dict()
    sigs = [s for s in report.signatures if s.kind == "signature"]
    assert len(sigs) == 2, report.to_dict()
    assert all(s.valid and s.trusted and s.intact and s.pades_level == "B-LTA" for s in sigs)
    assert "孙悦" in sigs[0].signer and "电子印章" in sigs[1].signer

    # the dossier: verifies offline against the root, by the service function and by the CLI
    dossier = Path(summary["files"]["dossier"])
    result = verify_dossier(dossier.read_bytes(), trust_roots=[root])
    assert result.ok, result.problems
    assert result.case_id == summary["case_id"]
    cli = subprocess.run([QIANLI, "dossier", "verify", str(dossier), "--root", str(var / "pki" / "root.pem")],
                         env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert cli.returncode == 0, cli.stderr

    # the reminders: the notice went out before the letter, nothing after it
    reminders = [ln for ln in lines if "listReminders" in ln]
    assert "sms:sent×1" in reminders[0] and "none after the letter" in reminders[1], reminders

    # a second run against the same database works too (fresh employee number, phone and openid)
    again = subprocess.run([QIANLI, "demo", "--out", str(tmp_path / "again"), "--base-url", base], env=env, cwd=REPO,
                           capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, f"second run failed:\n{again.stdout}\n{again.stderr}"
    assert json.loads((tmp_path / "again" / "demo-summary.json").read_text())["case_id"] != summary["case_id"]


def test_demo_reports_the_failing_step_and_exits_non_zero(service, tmp_path):
    """A wrong HR password: step 2 fails with the service's answer, exit 1."""
    base, env, _var, _log = service
    from qianli.cli import demo

    lines: list[str] = []
    with pytest.raises(demo.DemoFailed) as exc:
        demo.run_demo(base, tmp_path / "out", photo=demo.FACES / "obama.jpg", reference_photo=demo.FACES / "obama2.jpg",
                      company="demo", password="wrong-password", hr_users={"hr_specialist": "hr"},
                      echo=lambda msg, nl=True: lines.append(msg))
    assert exc.value.status == 401 and "hrLogin" in exc.value.message
    assert json.loads(exc.value.body)["status"] == 401
    assert any("FAILED" in ln for ln in lines)
    run = subprocess.run([QIANLI, "demo", "--out", str(tmp_path / "o2"), "--base-url", "http://127.0.0.1:9"],
                         env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and "demo FAILED" in run.stderr and "[ 1]" in run.stdout
