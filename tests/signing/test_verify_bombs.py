"""verifyDocument bombs: a cap on signatures per PDF (refused before any is checked), and a
pyHanko recent enough to bound stream decompression (>= 0.38), pinned by constraints.txt."""

from __future__ import annotations

import io
import re
import tomllib
from datetime import date, datetime, timedelta, timezone
from importlib.metadata import version
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from packaging.requirements import Requirement
from packaging.version import Version

from cases.errors import InvalidInput
from signing.letter import LetterData, render_letter
from signing.verify import verify_pdf

ROOT = Path(__file__).resolve().parents[2]


def _self_signed():
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Bomb Maker")])
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=30)).sign(key, hashes.SHA256()))
    return key, cert


def signed_many_times(n: int) -> bytes:
    """A letter with ``n`` plain (B-B) signatures, each in its own field and revision."""
    from asn1crypto import keys as asn1_keys
    from asn1crypto import x509 as asn1_x509
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import signers

    key, cert = _self_signed()
    signer = signers.SimpleSigner(
        signing_cert=asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER)),
        signing_key=asn1_keys.PrivateKeyInfo.load(key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())),
        cert_registry=None)
    pdf, _layout = render_letter(LetterData(
        case_id="case-bomb", company_name="示例科技有限公司", employee_name="陈晓", employee_no="P001",
        department="研发部", position="工程师", reason_category="career_development", reason_text="个人发展。",
        requested_last_day=date(2026, 10, 31), earliest_lawful_last_day=date(2026, 10, 31),
        notice_arrival_date=date(2026, 10, 1), source="instant_message", probation=False, letter_date=date(2026, 11, 22)))
    for i in range(n):
        out = signers.sign_pdf(IncrementalPdfFileWriter(io.BytesIO(pdf)),
                               signers.PdfSignatureMetadata(field_name=f"Bomb{i}"), signer=signer)
        pdf = out.getvalue()
    return pdf


@pytest.fixture(scope="module")
def three_signatures() -> bytes:
    return signed_many_times(3)


def test_more_signatures_than_the_cap_are_refused_before_any_is_checked(three_signatures, monkeypatch):
    from signing import verify as verify_mod

    checked = []
    real = verify_mod._check_signature
    monkeypatch.setattr(verify_mod, "_check_signature", lambda *a, **k: checked.append(1) or real(*a, **k))
    with pytest.raises(InvalidInput) as err:
        verify_pdf(three_signatures, trust_roots=[], max_signatures=2)
    assert err.value.code == "pdf_too_many_signatures" and err.value.details == {"max_signatures": 2}
    assert checked == []
    report = verify_pdf(three_signatures, trust_roots=[], max_signatures=3)  # at the cap: checked, untrusted
    assert len(report.signatures) == 3 and len(checked) == 3 and not report.ok


def test_verify_document_applies_the_setting(client, factory, runtime, three_signatures):
    from dataclasses import replace

    company = factory.company()
    hr = factory.hr(company, "hr_specialist")
    runtime.settings = replace(runtime.settings, verify_max_signatures=2)
    r = client.post("/api/v1/documents/verification", data={"file": (io.BytesIO(three_signatures), "b.pdf")},
                    content_type="multipart/form-data", headers=factory.hr_headers(hr))
    assert r.status_code == 422 and r.json["code"] == "pdf_too_many_signatures"
    runtime.settings = replace(runtime.settings, verify_max_signatures=16)
    r = client.post("/api/v1/documents/verification", data={"file": (io.BytesIO(three_signatures), "b.pdf")},
                    content_type="multipart/form-data", headers=factory.hr_headers(hr))
    assert r.status_code == 200 and len(r.json["signatures"]) == 3 and r.json["ok"] is False


def _constraints() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)", line)
        if m:
            pins[re.sub(r"[-_.]+", "-", m.group(1)).lower()] = m.group(2)
    return pins


def test_pyhanko_is_recent_enough_and_pinned():
    """pyHanko < 0.38 inflates a crafted 1 MB PDF to gigabytes while verifying it."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    req = next(Requirement(d) for d in project["dependencies"] if d.lower().startswith("pyhanko["))
    assert not req.specifier.contains("0.37.9") and req.specifier.contains("0.38.0")
    assert Version(version("pyhanko")) >= Version("0.38")
    assert Version(_constraints()["pyhanko"]) >= Version("0.38")


def test_constraints_agree_with_pyproject():
    """Every pinned version satisfies pyproject.toml's range for that package (so that a fresh
    install with -c constraints.txt can succeed); regenerate with `make lock` when it does not."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = _constraints()
    declared = [Requirement(d) for d in project["dependencies"] + project["optional-dependencies"]["dev"]]
    assert len(pins) > len(declared)  # the transitive dependencies are pinned too
    for req in declared:
        name = re.sub(r"[-_.]+", "-", req.name).lower()
        if name in pins:
            assert req.specifier.contains(pins[name], prereleases=True), f"{req}: constraints.txt pins {pins[name]}"
