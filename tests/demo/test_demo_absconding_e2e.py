"""``qianli demo --scenario absconding`` against the real service (gunicorn + an rq worker, development
settings, the test Redis database): attendance with a gap across a holiday, the risk list, the
confirmation, the sealed return-to-work notice (SMS sent by the worker, read receipt, post), the
deadline passed with the development clock, the union record and the two-level dismissal. The notices
must verify against the deployment's root (pyHanko and poppler's pdfsig) and the dossier offline."""

from __future__ import annotations

import io
import json
import subprocess
import zipfile

import pytest

from tests.demo.test_demo_e2e import QIANLI, REPO, _tail, service  # noqa: F401 - the running service fixture
from tests.signing.conftest import pdfsig_fix, pdfsig_for  # noqa: F401 - pdfsig fixtures

pytestmark = pytest.mark.slow


def test_absconding_demo_over_http(service, tmp_path, pdfsig_for):  # noqa: F811
    from qianli.services.dossier import verify_dossier
    from signing.verify import verify_pdf

    base, env, var, log_path = service
    out = tmp_path / "out"
    run = subprocess.run([QIANLI, "demo", "--scenario", "absconding", "--out", str(out), "--base-url", base], env=env,
                         cwd=REPO, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, f"demo failed:\n{run.stdout}\n{run.stderr}\nservice log:\n{_tail(log_path)}"
    lines = [ln for ln in run.stdout.splitlines() if ln.startswith("[")]
    assert all(" ok (" in ln for ln in lines), run.stdout
    for op in ("importAttendance", "listAttritionRisks", "confirmDeparture", "sendReturnToWorkNotice",
               "recordPostalDelivery", "recordUnionNotification", "dismissForAbsence", "exportDossier"):
        assert op in run.stdout, op
    assert any("→ 409" in ln and "deadline_not_passed" in ln for ln in lines), run.stdout

    root = (var / "pki" / "root.pem").read_bytes()
    pdfsig = pdfsig_for(root)
    for name in ("return-to-work-notice.pdf", "dismissal-notice.pdf"):
        pdf = (out / name).read_bytes()
        report = verify_pdf(pdf, trust_roots=[root])
        assert report.ok and [s.pades_level for s in report.signatures if s.kind == "signature"] == ["B-LTA"], name
        sigs = [x for x in pdfsig.run(out / name) if x.get("Signature Type") == "ETSI.CAdES.detached"]
        assert [x["Signature Validation"] for x in sigs] == ["Signature is Valid."], name

    dossier = (out / "dossier.zip").read_bytes()
    result = verify_dossier(dossier, trust_roots=[root])
    assert result.ok, result.problems
    with zipfile.ZipFile(io.BytesIO(dossier)) as zf:
        absence = json.loads(zf.read("case/absence.json"))
        actions = [e["action"] for e in json.loads(zf.read("evidence/absconding.json"))["entries"]]
        reminders = json.loads(zf.read("evidence/reminders.json"))["entries"]
    assert absence["state"] == "dismissed" and absence["return_notice"]["read_at"]
    assert absence["postal_deliveries"][0]["status"] == "delivered" and absence["union_notifications"]
    assert actions[0] == "departure_confirmed" and actions.count("case_dismiss") == 1
    sent = [e for e in reminders if e["action"] == "reminder_sent" and e["payload"]["kind"] == "return_to_work_notice"]
    assert sent, "the worker sent the notice by SMS"
    summary = json.loads((out / "demo-summary.json").read_text())
    assert summary["scenario"] == "absconding" and len(summary["facts"]["absent"]) == 3
