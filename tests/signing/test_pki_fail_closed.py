"""Fail-closed PKI: no unencrypted key files in production, the root key never in web workers,
OCSP "unknown" for serials we never issued, event certificates bound to their case and intent."""

from __future__ import annotations

from dataclasses import replace

import pytest
from click.testing import CliRunner

from qianli.cli.pki import pki_group
from qianli.settings import reset_settings_cache
from signing.pki import KeyProtectionRequired, init_pki


def test_production_refuses_to_write_unencrypted_key_files(settings, tmp_path):
    prod = replace(settings, env="production", var_dir=tmp_path / "var", pkcs12_passphrase="")
    with pytest.raises(KeyProtectionRequired, match="QIANLI_PKCS12_PASSPHRASE"):
        init_pki(prod)
    assert not list((tmp_path / "var").rglob("*.key.pem"))
    reset_settings_cache(prod)
    try:
        r = CliRunner().invoke(pki_group, ["init"])
    finally:
        reset_settings_cache(settings)
    assert r.exit_code == 1 and "QIANLI_PKCS12_PASSPHRASE" in r.output and "Traceback" not in r.output
    assert not list((tmp_path / "var").rglob("*.key.pem"))
    # with a passphrase, production writes encrypted PKCS#8 only
    pki, created = init_pki(replace(prod, pkcs12_passphrase="a long operator passphrase"))
    assert created
    for name in ("root", "ca", "tsa"):
        assert b"ENCRYPTED PRIVATE KEY" in (pki.dir / f"{name}.key.pem").read_bytes()


# ---- the root key stays with the operator ------------------------------------------------------------


@pytest.fixture
def offline_root(settings, tmp_path, monkeypatch):
    """A PKI made by `qianli pki init`, whose root key then leaves the machine (as the README recommends)."""
    import signing.pki as pki_mod

    s = replace(settings, var_dir=tmp_path / "var")
    reset_settings_cache(s)
    r = CliRunner().invoke(pki_group, ["init"])
    assert r.exit_code == 0, r.output
    offline = tmp_path / "offline-root.key.pem"
    (s.var_dir / "pki" / "root.key.pem").rename(offline)
    loaded = []
    real = pki_mod._load_key
    monkeypatch.setattr(pki_mod, "_load_key", lambda path, st: loaded.append(path.name) or real(path, st))
    yield s, offline, loaded
    reset_settings_cache(settings)


def test_the_app_signs_and_serves_revocation_data_without_the_root_key(offline_root, runtime, redis_client):
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec

    from api.app import create_app
    from qianli.cli.pki import sample_letter, sample_signature_png, sign_as_employee
    from qianli.runtime import Runtime
    from signing.letter import render_letter
    from signing.pki import RootKeyNotLoaded, load_pki
    from signing.verify import verify_pdf

    s, _offline, loaded = offline_root
    pki = load_pki(s, reload=True)
    with pytest.raises(RootKeyNotLoaded):
        pki.root_key  # noqa: B018
    rt = Runtime(s)
    rt.override(engine=runtime.engine, session_factory=runtime.session_factory, redis=redis_client)
    client = create_app(rt).test_client()
    crl_resp = client.get("/pki/crl/root.crl")
    assert crl_resp.status_code == 200 and crl_resp.data == (s.var_dir / "pki" / "root.crl").read_bytes()
    crl = x509.load_der_x509_crl(crl_resp.data)
    pki.root.public_key().verify(crl.signature, crl.tbs_certlist_bytes, ec.ECDSA(crl.signature_hash_algorithm))
    assert client.get("/pki/crl/ca.crl").status_code == 200
    unsigned, layout = render_letter(sample_letter())
    signed, _subject, _serial = sign_as_employee(s, pki, unsigned, layout, signature_png=sample_signature_png(),
                                                 name="陈晓", employee_no="P001", company="示例科技")
    report = verify_pdf(signed, trust_roots=[pki.root_pem])
    assert report.ok and report.signatures[0].pades_level == "B-LTA", report
    assert "root.key.pem" not in loaded and {"ca.key.pem", "tsa.key.pem"} <= set(loaded)


def test_root_crl_is_renewed_only_with_the_root_key(offline_root):
    from cryptography import x509

    from qianli.cli.pki import pki_group as group

    s, offline, _loaded = offline_root
    path = s.var_dir / "pki" / "root.crl"
    before = x509.load_der_x509_crl(path.read_bytes()).next_update_utc
    r = CliRunner().invoke(group, ["root-crl", "--days", "120"])
    assert r.exit_code == 1 and "cannot sign the root CRL" in r.output and "Traceback" not in r.output
    offline.rename(s.var_dir / "pki" / "root.key.pem")  # the operator brings the key for the renewal
    r = CliRunner().invoke(group, ["root-crl", "--days", "120"])
    assert r.exit_code == 0, r.output
    after = x509.load_der_x509_crl(path.read_bytes()).next_update_utc
    assert after > before and "next update" in r.output


# ---- OCSP vouches only for what the CA issued ------------------------------------------------------------


def _ocsp_status(client, cert, issuer):
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509 import ocsp

    req = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1()).build()
    r = client.post("/pki/ocsp", data=req.public_bytes(serialization.Encoding.DER),
                    content_type="application/ocsp-request")
    resp = ocsp.load_der_ocsp_response(r.data)
    assert resp.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    return resp.certificate_status


def test_ocsp_answers_unknown_for_serials_never_issued(client, runtime):
    """The attack: a certificate made outside QianLi's issuance (a stolen CA key, a forged serial) must not be
    vouched for by our own responder."""
    from datetime import datetime, timedelta, timezone

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509 import ocsp

    from signing.pki import load_pki

    pki = load_pki(runtime.settings)
    issued = pki.issue_event_credential(name="陈晓", employee_no="P001", company="示例科技").cert
    assert _ocsp_status(client, issued, pki.ca) == ocsp.OCSPCertStatus.GOOD
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(timezone.utc)
    forged = (x509.CertificateBuilder().subject_name(issued.subject).issuer_name(pki.ca.subject)
              .public_key(key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(now - timedelta(minutes=1)).not_valid_after(now + timedelta(days=1))
              .sign(pki.ca_key, hashes.SHA256()))
    assert _ocsp_status(client, forged, pki.ca) == ocsp.OCSPCertStatus.UNKNOWN
    seal_like = pki.issue_seal_certificate(key.public_key(), company_name="示例科技", company_code="acme")
    assert _ocsp_status(client, seal_like, pki.ca) == ocsp.OCSPCertStatus.GOOD
    assert _ocsp_status(client, pki.tsa, pki.ca) == ocsp.OCSPCertStatus.GOOD
    pki.revoke(issued.serial_number)
    assert _ocsp_status(client, issued, pki.ca) == ocsp.OCSPCertStatus.REVOKED
    lines = (pki.dir / "issued.log").read_text().splitlines()
    assert f"{issued.serial_number:x} event" in {" ".join(x.split()[:2]) for x in lines}


# ---- event certificates name their case and signing intent ------------------------------------------------


def test_event_certificate_carries_case_and_intent(client, factory, runtime, db_session):
    import hashlib
    from datetime import datetime, timedelta, timezone

    from cryptography import x509
    from sqlalchemy import select

    from cases.evidence import canonical_json
    from qianli.models import EvidenceEntry
    from qianli.services import cases as case_svc
    from signing.pki import SIGNING_CONTEXT_OID, signing_context_of
    from tests.signing_support import sign_case

    company = factory.company()
    emp = factory.employee(company, name="陈晓", employee_no="P001")
    arrived = datetime.now(timezone.utc) - timedelta(hours=3)
    case = case_svc.open_case(db_session, runtime.settings, employee=emp, source="miniprogram",
                              notice_arrived_at=arrived, actor=f"employee:{emp.id}", reason_category="other",
                              reason_text="个人原因", requested_last_day=arrived.date() + timedelta(days=40),
                              handover_items=[])
    db_session.commit()
    out = sign_case(db_session, runtime, case, emp)
    db_session.commit()
    entry = db_session.scalars(select(EvidenceEntry).where(EvidenceEntry.case_id == case.id,
                                                           EvidenceEntry.action == "letter_signed")).one()
    payload = entry.payload
    assert payload["intent_sha256"] == hashlib.sha256(canonical_json(payload["intent"]).encode()).hexdigest()
    assert payload["intent"]["case_id"] == case.id and payload["intent"]["letter_sha256"] == out.request.letter_sha256
    cert = x509.load_pem_x509_certificate(payload["event_cert_pem"].encode())
    ext = cert.extensions.get_extension_for_oid(x509.ObjectIdentifier(SIGNING_CONTEXT_OID))
    assert not ext.critical
    ctx = signing_context_of(cert)
    assert (ctx.case_id, ctx.intent_sha256) == (case.id, payload["intent_sha256"])

    # verifyDocument and the report show them
    from qianli.storage import read_document

    pdf = read_document(runtime.store, out.document)
    hr = factory.hr(company)
    import io

    r = client.post("/api/v1/documents/verification", data={"file": (io.BytesIO(pdf), "l.pdf")},
                    content_type="multipart/form-data", headers=factory.hr_headers(hr))
    assert r.status_code == 200, r.json
    sig = [x for x in r.json["signatures"] if x["kind"] == "signature"][0]
    assert (sig["case_id"], sig["intent_sha256"]) == (case.id, payload["intent_sha256"])
    assert r.json["ok"] is True
