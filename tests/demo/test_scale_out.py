"""Scale-out: the API keeps no state of its own. Two gunicorn instances (as ``make run`` starts it)
share one PostgreSQL database, one Redis and one document store (the var directory: documents and
PKI); one rq worker serves both. ``qianli demo`` drives a whole case through instance A (roster,
binding, face, SMS, signing, HR approval with the company countersignature); instance B, which
served none of it, then logs HR in, shows the case with an intact chain, verifies the signed PDF
and exports the dossier, which verifies offline against the deployment's root.

PostgreSQL only (QIANLI_TEST_DATABASE_URL): a database ``<that name>_scaleout`` is created for the
service and dropped afterwards. About a minute on an idle machine."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import requests
from sqlalchemy.engine import make_url

from tests.live_gunicorn import running_gunicorn

PG_URL = os.environ.get("QIANLI_TEST_DATABASE_URL", "")
REDIS_BASE = os.environ.get("QIANLI_TEST_REDIS_URL", "redis://127.0.0.1:6379")
REDIS_DB = int(os.environ.get("QIANLI_TEST_REDIS_DB", "15"))
QIANLI = str(Path(sys.executable).parent / "qianli")
REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.db, pytest.mark.slow,
              pytest.mark.skipif(not PG_URL, reason="PostgreSQL only (QIANLI_TEST_DATABASE_URL)")]


def _admin(sql: str) -> None:
    import psycopg

    url = make_url(PG_URL)
    with psycopg.connect(host=url.host, port=url.port or 5432, user=url.username, password=url.password,
                         dbname=url.database, autocommit=True) as conn:
        conn.execute(sql)


@pytest.fixture
def shared(tmp_path):
    """The environment both instances and the worker run with: one database, one Redis, one var dir."""
    import redis

    name = f"{make_url(PG_URL).database}_scaleout"
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _admin(f'CREATE DATABASE "{name}"')
    with redis.Redis.from_url(f"{REDIS_BASE}/{REDIS_DB}") as r:
        r.flushdb()
    var = tmp_path / "var"
    env = {**os.environ, "QIANLI_ENV": "development", "QIANLI_VAR_DIR": str(var),
           "DATABASE_URL": make_url(PG_URL).set(database=name).render_as_string(hide_password=False),
           "REDIS_URL": f"{REDIS_BASE}/{REDIS_DB}", "QIANLI_LOG_LEVEL": "INFO", "QIANLI_QUIET_HOURS": "off",
           "QIANLI_SMS_RESEND_COOLDOWN_S": "1", "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")}
    (tmp_path / "metrics").mkdir()
    log = tmp_path / "setup.log"
    with open(log, "ab") as fh:
        for args in (["db", "upgrade"], ["dev", "seed"], ["pki", "init"]):
            subprocess.run([QIANLI, *args], env=env, cwd=REPO, stdout=fh, stderr=subprocess.STDOUT, check=True,
                           timeout=180)
    try:
        yield env, var, tmp_path
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def _worker(env, log_path: Path):
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([QIANLI, "worker"], env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            yield proc
        finally:
            for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    proc.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue


def _served(server) -> list[tuple[str, str, int]]:
    """(method, path, status) of the requests an instance answered: its JSON access lines (qianli.access)."""
    out = []
    for line in server.log.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            rec = json.loads(line)
            if isinstance(rec, dict) and rec.get("logger") == "qianli.access":
                out.append((rec["method"], rec["path"], int(rec["status"])))
    return out


def test_sign_on_one_instance_verify_and_export_on_the_other(shared):
    from qianli.cli.devseed import DEMO_COMPANY, DEMO_HR_PASSWORD
    from qianli.services.dossier import verify_dossier
    from signing.verify import verify_pdf

    env, var, tmp = shared
    (tmp / "a").mkdir()
    (tmp / "b").mkdir()
    with _worker(env, tmp / "worker.log"), \
            running_gunicorn(env, tmp / "a", workers=1) as a, running_gunicorn(env, tmp / "b", workers=1) as b:
        out = tmp / "out"
        run = subprocess.run([QIANLI, "demo", "--out", str(out), "--base-url", a.base_url, "--seed", "11"], env=env,
                             cwd=REPO, capture_output=True, text=True, timeout=900)
        assert run.returncode == 0, f"demo failed:\n{run.stdout}\n{run.stderr}\nA:\n{a.tail()}"
        summary = json.loads((out / "demo-summary.json").read_text())
        case_id = summary["case_id"]
        signed = Path(summary["files"]["signed_pdf"]).read_bytes()
        assert ("POST", f"/api/v1/cases/{case_id}/letter/signature", 201) in _served(a) or any(
            m == "POST" and p.endswith("/letter/signature") and st < 300 for m, p, st in _served(a)), \
            "the letter was signed on A"
        assert not [x for x in _served(b) if x[1].startswith("/api/")]  # B has served no API request yet

        s = requests.Session()
        login = s.post(f"{b.base_url}/api/v1/hr/session", json={"company_code": DEMO_COMPANY[0], "username": "manager",
                                                                 "password": DEMO_HR_PASSWORD}, timeout=60)
        assert login.status_code in (200, 201), login.text
        h = {"Authorization": f"Bearer {login.json()['access_token']}"}
        case = s.get(f"{b.base_url}/api/v1/hr/cases/{case_id}", headers=h, timeout=60)
        assert case.status_code == 200, case.text
        body = case.json()
        assert body["chain"]["ok"] and body["chain"]["entries"] >= 10 and body["state"] == "approved", body["chain"]
        assert {"letter_signed", "letter_countersigned"} <= {e["action"] for e in body["timeline"]}
        ver = s.post(f"{b.base_url}/api/v1/documents/verification", headers=h, timeout=120,
                     files={"file": ("signed-letter.pdf", signed, "application/pdf")})
        assert ver.status_code == 200 and ver.json()["ok"], ver.text
        assert len([x for x in ver.json()["signatures"] if x["kind"] == "signature"]) == 2
        dossier = s.get(f"{b.base_url}/api/v1/hr/cases/{case_id}/dossier", headers=h, timeout=180)
        assert dossier.status_code == 200, dossier.text[:500]
        assert {(m, p.rsplit("/", 1)[-1]) for m, p, st in _served(b) if st < 300} >= {
            ("POST", "session"), ("POST", "verification"), ("GET", "dossier")}

    root = (var / "pki" / "root.pem").read_bytes()
    result = verify_dossier(dossier.content, trust_roots=[root])
    assert result.ok and result.case_id == case_id, result.problems
    with zipfile.ZipFile(io.BytesIO(dossier.content)) as zf:
        assert len(zf.namelist()) >= 3
    report = verify_pdf(signed, trust_roots=[root])
    assert report.ok and all(x.pades_level == "B-LTA" for x in report.signatures if x.kind == "signature")
