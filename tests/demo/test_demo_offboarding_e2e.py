"""``qianli demo --scenario offboarding`` end to end against the real service: gunicorn, an rq worker and
the scheduler in subprocesses (development settings, own SQLite database, the test Redis database), the
demo's own webhook receiver. The demo must exit 0 and leave a sealed certificate that pdfsig and our
verifier accept, the deliveries as received (signed with the secret it left) and a closed case."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
import requests

from tests.demo.test_demo_e2e import GUNICORN, QIANLI, REDIS_BASE, REDIS_DB, REPO, _free_port, _stop, _tail
from tests.signing.conftest import Pdfsig, pdfsig_fix, pdfsig_for  # noqa: F401 - the signing tests' checker

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    import redis

    with redis.Redis.from_url(f"{REDIS_BASE}/{REDIS_DB}") as r:
        r.flushdb()
    tmp_path = tmp_path_factory.mktemp("offboarding-service")
    var = tmp_path / "var"
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "QIANLI_ENV": "development", "QIANLI_VAR_DIR": str(var),
           "DATABASE_URL": f"sqlite:///{var / 'qianli.db'}", "REDIS_URL": f"{REDIS_BASE}/{REDIS_DB}",
           "QIANLI_PUBLIC_BASE_URL": base, "QIANLI_LOG_LEVEL": "WARNING", "QIANLI_QUIET_HOURS": "off",
           "QIANLI_SMS_RESEND_COOLDOWN_S": "1", "QIANLI_SWEEP_INTERVAL_S": "2"}
    log_path = tmp_path / "service.log"
    log = open(log_path, "ab")  # noqa: SIM115 - closed below
    procs: list[subprocess.Popen] = []
    try:
        for args in (["db", "upgrade"], ["dev", "seed"]):
            subprocess.run([QIANLI, *args], env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, check=True,
                           timeout=120)
        for args in (["worker"], ["scheduler"]):
            procs.append(subprocess.Popen([QIANLI, *args], env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
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


def test_offboarding_demo_from_the_form_to_closed(service, tmp_path, pdfsig_for):  # noqa: F811 - the fixture
    from qianli.cli.demo_offboarding import verify_standard_webhook
    from signing.verify import verify_pdf

    base, env, var, log_path = service
    out = tmp_path / "out"
    run = subprocess.run([QIANLI, "demo", "--scenario", "offboarding", "--out", str(out), "--base-url", base,
                          "--seed", "11"], env=env, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, f"demo failed:\n{run.stdout}\n{run.stderr}\nservice log:\n{_tail(log_path)}"
    steps = [ln for ln in run.stdout.splitlines() if ln.startswith("[")]
    assert all(" ok (" in ln for ln in steps), run.stdout
    for op in ("createWebhookEndpoint", "approveCase", "issueTerminationCertificate", "getTerminationCertificate",
               "closeCase", "case.closed"):
        assert op in run.stdout, op
    assert "409 case_last_day_not_passed" in run.stdout
    # the revocation at 23:59 of the last day: sent by the scheduler, received, confirmed by the receiver
    assert "mode scheduled" in run.stdout and "by the scheduler's sweep" in run.stdout, run.stdout
    assert "all confirmed: " in run.stdout and "门禁系统 confirmed" in run.stdout and "VPN confirmed" in run.stdout
    assert "签离演示接收端 confirmed" in run.stdout, run.stdout
    summary_line = [ln for ln in run.stdout.splitlines() if ln.startswith("  access revoked (scheduled, sent ")]
    assert summary_line and "门禁系统 (confirmed)" in summary_line[0] and "VPN (confirmed)" in summary_line[0], run.stdout

    # the certificate: sealed by the company, B-LTA, trusted (our verifier and pdfsig)
    root = (var / "pki" / "root.pem").read_bytes()
    cert = out / "termination-certificate.pdf"
    report = verify_pdf(cert.read_bytes(), trust_roots=[root])
    seals = [s for s in report.signatures if s.kind == "signature"]
    assert report.ok and len(seals) == 1 and seals[0].pades_level == "B-LTA" and "电子印章" in seals[0].signer
    checked = [r for r in pdfsig_for(root).run(cert) if r.get("Signature Field Name") == "company_seal"]
    assert checked and checked[0]["Signature Validation"] == "Signature is Valid."
    assert checked[0]["Certificate Validation"] == "Certificate is Trusted."

    # the deliveries as received, each verifiable with the secret; case.closed among them
    secret = (out / "webhook-secret.txt").read_text().strip()
    lines = [json.loads(ln) for ln in (out / "webhook-deliveries.jsonl").read_text().splitlines() if ln.strip()]
    assert lines and all({"headers", "body", "received_at"} <= set(x) for x in lines)
    assert all(verify_standard_webhook(secret, x["headers"], x["body"].encode()) for x in lines)
    summary = json.loads((out / "demo-summary.json").read_text())
    closed = [json.loads(x["body"]) for x in lines if json.loads(x["body"])["type"] == "case.closed"]
    assert closed and closed[0]["data"]["case_id"] == summary["case_id"]
    by_type = {json.loads(x["body"])["type"]: json.loads(x["body"])["data"] for x in lines}
    revoke, payroll = by_type["employee.access_revoke"], by_type["employee.payroll_stop"]
    assert revoke["case_id"] == payroll["case_id"] == summary["case_id"]
    assert revoke["mode"] == "scheduled" and "T15:59:00" in revoke["effective_at"]  # 23:59 Beijing, in UTC
    assert payroll["pay_through"] == revoke["last_day"]
    assert revoke["confirmation"]["system"] == "签离演示接收端" and revoke["confirmation"]["token"]
    assert Path(summary["files"]["termination_certificate"]) == cert

    # the development clock is back where it was
    assert requests.get(f"{base}/api/v1/dev/clock", timeout=10).json()["offset_seconds"] == 0
