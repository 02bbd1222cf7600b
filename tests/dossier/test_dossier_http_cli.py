"""exportDossier over HTTP (roles, company scope, evidence) and the dossier CLI."""

from __future__ import annotations

import json
import zipfile

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from qianli.models import EvidenceEntry
from qianli.services import dossier as dossier_svc


@pytest.fixture
def test_trust(runtime):
    """The root of the deployment's own PKI (signing.pki), whose TSA timestamps the dossier."""
    from signing.pki import load_pki

    return load_pki(runtime.settings).root


def exports(db_session, case_id):
    return [e for e in db_session.scalars(select(EvidenceEntry).where(EvidenceEntry.case_id == case_id))
            if e.action == "dossier_exported"]


def test_export_any_hr_role_company_scoped(client, factory, db_session, case, test_trust):
    from qianli.models import Company

    company = db_session.get(Company, case.company_id)
    for role in ("hr_specialist", "hr_manager", "dept_head", "auditor"):
        user = factory.hr(company, role)
        r = client.get(f"/api/v1/hr/cases/{case.id}/dossier", headers=factory.hr_headers(user))
        assert r.status_code == 200, (role, r.data[:200])
        assert r.mimetype == "application/zip"
        assert f"dossier-{case.id}.zip" in r.headers["Content-Disposition"]
        result = dossier_svc.verify_dossier(r.data)
        assert result.ok, result.problems
    db_session.expire_all()
    recorded = exports(db_session, case.id)
    assert len(recorded) == 4 and recorded[-1].actor.startswith("hr")

    other = factory.company()
    stranger = factory.hr(other, "hr_manager")
    r = client.get(f"/api/v1/hr/cases/{case.id}/dossier", headers=factory.hr_headers(stranger))
    assert r.status_code == 404 and r.json["code"] == "case_not_found"
    worker = factory.employee(company)
    r = client.get(f"/api/v1/hr/cases/{case.id}/dossier", headers=factory.employee_headers(worker))
    assert r.status_code == 403
    assert client.get(f"/api/v1/hr/cases/{case.id}/dossier").status_code == 401
    db_session.expire_all()
    assert len(exports(db_session, case.id)) == 4


def test_cli_export_and_verify(runtime, db_session, case, test_trust, tmp_path):
    from qianli.cli.hr import dossier_group

    out = tmp_path / "d.zip"
    r = CliRunner().invoke(dossier_group, ["export", case.id, "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["bytes"] == out.stat().st_size

    r = CliRunner().invoke(dossier_group, ["verify", str(out)])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["ok"] is True

    root_pem = tmp_path / "root.pem"
    from cryptography.hazmat.primitives.serialization import Encoding

    root_pem.write_bytes(test_trust.public_bytes(Encoding.PEM))
    assert CliRunner().invoke(dossier_group, ["verify", str(out), "--root", str(root_pem)]).exit_code == 0

    with zipfile.ZipFile(out) as zf:
        files = {i.filename: zf.read(i.filename) for i in zf.infolist()}
    body = bytearray(files["evidence/chain.jsonl"])
    body[10] ^= 1
    files["evidence/chain.jsonl"] = bytes(body)
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    r = CliRunner().invoke(dossier_group, ["verify", str(bad)])
    assert r.exit_code == 1
    assert "evidence/chain.jsonl: SHA-256 does not match" in r.stderr

    r = CliRunner().invoke(dossier_group, ["export", "nope", "--out", str(tmp_path / "x.zip")])
    assert r.exit_code != 0 and not (tmp_path / "x.zip").exists()
