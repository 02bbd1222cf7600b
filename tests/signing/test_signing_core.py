"""The signing library end to end: letter, PKI, B-LTA, countersignature (PKCS#12 and SoftHSM2), verification,
checked by pyHanko's AdES validation and independently by poppler's pdfsig."""

from __future__ import annotations

import io

import subprocess
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtensionOID

from cases.errors import InvalidInput
from signing import pades
from signing.letter import LetterData, render_letter, stamp_font_path
from signing.pki import init_pki, load_pki
from signing.seal import ensure_seal, seal_signer
from signing.tsa import make_timestamper
from signing.verify import verify_pdf
from tests.signing_support import signature_png


def letter(**kw) -> LetterData:
    base = dict(case_id="case-1", company_name="示例科技有限公司", employee_name="陈晓", employee_no="P001",
                department="研发部", position="工程师", reason_category="career_development",
                reason_text="个人发展。", requested_last_day=date(2026, 10, 31),
                earliest_lawful_last_day=date(2026, 10, 31), notice_arrival_date=date(2026, 10, 1),
                source="instant_message", probation=False,
                handover_items=({"item": "代码仓库权限", "owner": "李四", "deadline": "2026-10-20"},),
                letter_date=date(2026, 11, 22))
    base.update(kw)
    return LetterData(**base)


@pytest.fixture
def pki(settings):
    return load_pki(settings)


def employee_sign(settings, pki, pdf: bytes, layout) -> tuple[bytes, x509.Certificate]:
    cred = pki.issue_event_credential(name="陈晓", employee_no="P001", company="示例科技有限公司")
    cert = cred.cert
    signed = pades.sign_b_lta(pdf, signer=pades.event_signer(cred), pki=pki, timestamper=make_timestamper(settings, pki),
                              field_name="employee_signature", page=layout.page, box=layout.employee_box,
                              appearance=pades.Appearance(signature_png(), "签署人：陈晓", "签署时间：测试",
                                                          stamp_font_path(str(settings.var_dir / "fonts"))),
                              reason="测试", signer_cert=cert)
    cred.destroy()
    return signed, cert


def test_letter_is_deterministic_embedded_and_text_stays_text(tmp_path):
    hostile = "我想离职 ) Tj /JavaScript << /S /JavaScript /JS (app.alert(1)) >> <script>x</script> %%EOF"
    a, layout = render_letter(letter(reason_text=hostile))
    b, _ = render_letter(letter(reason_text=hostile))
    assert a == b, "the same case must render to the same bytes (the intent binds the hash)"
    assert a != render_letter(letter(reason_text=hostile + "。"))[0]
    assert a.startswith(b"%PDF-1.7")
    path = tmp_path / "l.pdf"
    path.write_bytes(a)
    fonts = subprocess.run(["pdffonts", str(path)], capture_output=True, text=True, check=True).stdout.splitlines()[2:]
    assert fonts and all(line.split()[-5] == "yes" for line in fonts), fonts  # emb column
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
    assert "/JavaScript" in text and "app.alert(1)" in text and "<script>x</script>" in text
    assert b"/JavaScript" not in a.replace(b"(", b"").split(b"stream")[0]  # never as PDF syntax
    meta = subprocess.run(["pdfinfo", "-meta", str(path)], capture_output=True, text=True, check=True).stdout
    assert "<pdfaid:part>2</pdfaid:part>" in meta and "<pdfaid:conformance>B</pdfaid:conformance>" in meta
    assert layout.employee_box[2] < layout.company_box[0]


def test_pki_init_is_idempotent_and_event_certificate_is_narrow(settings, tmp_path):
    s = replace(settings, var_dir=tmp_path / "v")
    first, created = init_pki(s)
    again, created_again = init_pki(s)
    assert created and not created_again and first.root_pem == again.root_pem
    now = datetime.now(timezone.utc)
    cred = first.issue_event_credential(name="陈晓", employee_no="P001", company="示例科技")
    cert = cred.cert
    assert cert.not_valid_after_utc - now <= timedelta(seconds=s.event_cert_validity_s + 5)
    ku = cert.extensions.get_extension_for_oid(ExtensionOID.KEY_USAGE)
    assert ku.critical and ku.value.digital_signature and ku.value.content_commitment and not ku.value.key_cert_sign
    policies = cert.extensions.get_extension_for_oid(ExtensionOID.CERTIFICATE_POLICIES).value
    assert policies[0].policy_identifier.dotted_string == first.policy_oid and first.policy_oid.startswith("2.25.")
    cdp = cert.extensions.get_extension_for_oid(ExtensionOID.CRL_DISTRIBUTION_POINTS).value
    assert cdp[0].full_name[0].value == f"{s.public_base_url}/pki/crl/ca.crl"
    aia = {d.access_method.dotted_string: d.access_location.value
           for d in cert.extensions.get_extension_for_oid(ExtensionOID.AUTHORITY_INFORMATION_ACCESS).value}
    assert f"{s.public_base_url}/pki/ocsp" in aia.values()
    assert "P001" in cert.subject.rfc4514_string()
    cert.verify_directly_issued_by(first.ca)
    first.ca.verify_directly_issued_by(first.root)
    cred.destroy()
    assert cred.key is None
    second = first.issue_event_credential(name="陈晓", employee_no="P001", company="示例科技")
    assert second.cert.public_key() != cert.public_key(), "a fresh key pair per signing"


def test_b_lta_signature_validates_with_pyhanko_ades_and_pdfsig(settings, pki, tmp_path, pdfsig_for):
    pdf, layout = render_letter(letter())
    signed, _cert = employee_sign(settings, pki, pdf, layout)
    assert signed.startswith(pdf), "incremental: the unsigned letter's bytes are kept"
    report = verify_pdf(signed, trust_roots=[pki.root_pem])
    assert report.ok, report
    sig = [s for s in report.signatures if s.kind == "signature"]
    assert len(sig) == 1 and sig[0].pades_level == "B-LTA" and sig[0].ades_indication == "PASSED"
    assert sig[0].trusted and sig[0].signing_time and "陈晓" in sig[0].signer
    assert [s.kind for s in report.signatures].count("document_timestamp") == 1
    path = tmp_path / "signed.pdf"
    path.write_bytes(signed)
    checker = pdfsig_for(pki.root_pem)
    results = checker.run(path)
    approval = [r for r in results if r.get("Signature Field Name") == "employee_signature"]
    assert approval and approval[0]["Signature Validation"] == "Signature is Valid."
    assert approval[0]["Certificate Validation"] == "Certificate is Trusted."
    assert approval[0]["Signature Type"] == "ETSI.CAdES.detached"
    # Without the preload, Debian 12's pdfsig still checks the signature itself as valid.
    assert [r for r in checker.run(path, fixed=False) if r.get("Signature Field Name") == "employee_signature"][0][
        "Signature Validation"] == "Signature is Valid."


def _sign_args(settings, layout):
    return dict(field_name="employee_signature", page=layout.page, box=layout.employee_box, reason="测试",
                appearance=pades.Appearance(signature_png(), "签署人：陈晓", "签署时间：测试",
                                            stamp_font_path(str(settings.var_dir / "fonts"))))


def test_signing_refuses_a_revoked_or_expired_certificate_of_ours(settings, pki):
    """The direct path (our own CA) makes the pre-signing check itself: revoked or expired is refused."""
    pdf, layout = render_letter(letter())
    cred = pki.issue_event_credential(name="陈晓", employee_no="P001", company="示例科技有限公司")
    assert pades.issued_by_us(pki, cred.cert)
    pki.revoke(cred.cert.serial_number)
    with pytest.raises(pades.SignerCertificateRefused, match="revoked"):
        pades.sign_b_lta(pdf, signer=pades.event_signer(cred, pki), pki=pki,
                         timestamper=make_timestamper(settings, pki), signer_cert=cred.cert, **_sign_args(settings, layout))
    old = pki.issue_event_credential(name="陈晓", employee_no="P001", company="示例科技有限公司",
                                     now=datetime.now(timezone.utc) - timedelta(days=1))
    with pytest.raises(pades.SignerCertificateRefused, match="not valid now"):
        pades.sign_b_lta(pdf, signer=pades.event_signer(old, pki), pki=pki,
                         timestamper=make_timestamper(settings, pki), signer_cert=old.cert, **_sign_args(settings, layout))


def test_a_certificate_from_another_ca_is_not_taken_for_ours(settings, pki, tmp_path):
    """Same subject names, another CA key: not ours, so it gets pyHanko's path validation, which fails
    against our root (hard-fail, nothing signed)."""
    from pyhanko.sign.general import SigningError

    other, _ = init_pki(replace(settings, var_dir=tmp_path / "other"))
    cred = other.issue_event_credential(name="陈晓", employee_no="P001", company="示例科技有限公司")
    assert cred.cert.issuer == pki.ca.subject  # same names: only the signature tells them apart
    assert not pades.issued_by_us(pki, cred.cert)
    pdf, layout = render_letter(letter())
    with pytest.raises(SigningError, match="could not be validated"):
        pades.sign_b_lta(pdf, signer=pades.event_signer(cred), pki=pki, timestamper=make_timestamper(settings, pki),
                         signer_cert=cred.cert, **_sign_args(settings, layout))


def test_b_lta_with_a_tsa_reached_over_the_wire_format(settings, pki):
    """A timestamper that is not our in-process DevTsa (as an HTTP TSA would be): the document timestamp
    then validates the TSA's path and adds its data itself. It speaks RFC 3161 DER through the same
    function that answers POST /pki/tsa."""
    from asn1crypto import tsp
    from pyhanko.sign.timestamps.api import TimeStamper

    from signing.tsa import respond

    class WireTsa(TimeStamper):
        calls = 0

        async def async_request_tsa_response(self, req):
            WireTsa.calls += 1
            return tsp.TimeStampResp.load(respond(pki, req.dump()))

    pdf, layout = render_letter(letter())
    cred = pki.issue_event_credential(name="陈晓", employee_no="P001", company="示例科技有限公司")
    signed = pades.sign_b_lta(pdf, signer=pades.event_signer(cred, pki), pki=pki, timestamper=WireTsa(),
                              signer_cert=cred.cert, **_sign_args(settings, layout))
    assert WireTsa.calls >= 2  # the signature timestamp and the document timestamp
    report = verify_pdf(signed, trust_roots=[pki.root_pem])
    sig = [s for s in report.signatures if s.kind == "signature"][0]
    assert report.ok and sig.pades_level == "B-LTA" and sig.trusted, report


def test_foreign_root_tamper_and_non_pdf(settings, pki):
    from tests.dossier.pki_helpers import make_pki

    pdf, layout = render_letter(letter())
    signed, _ = employee_sign(settings, pki, pdf, layout)
    _, foreign = make_pki("Foreign Root")
    r = verify_pdf(signed, trust_roots=[foreign])
    assert not r.ok and not any(s.trusted for s in r.signatures)
    at = signed.index(b"2026")  # a date in the page content of the first revision
    tampered = signed[:at] + b"2027" + signed[at + 4:]
    r = verify_pdf(tampered, trust_roots=[pki.root_pem])
    assert not r.ok and not r.signatures[0].intact
    with pytest.raises(InvalidInput) as e:
        verify_pdf(b"hello, not a pdf", trust_roots=[pki.root_pem])
    assert e.value.code == "pdf_invalid"
    assert verify_pdf(pdf, trust_roots=[pki.root_pem]).problem == "no_signatures"
    at = pdf.rindex(b"startxref")
    with pytest.raises(InvalidInput) as e:  # the cross-reference table points nowhere
        verify_pdf(pdf[:at] + b"startxref\n123456\n%%EOF\n", trust_roots=[pki.root_pem])
    assert e.value.code == "pdf_invalid"


def test_encrypted_pdf_is_a_clear_error(settings, pki):
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.pdf_utils.writer import copy_into_new_writer

    pdf, _ = render_letter(letter())
    for user_password, expected in (("secret", "pdf_encrypted"), ("", None)):
        w = copy_into_new_writer(PdfFileReader(io.BytesIO(pdf)))
        w.encrypt("owner-password", user_password)
        out = io.BytesIO()
        w.write(out)
        if expected:
            with pytest.raises(InvalidInput) as e:
                verify_pdf(out.getvalue(), trust_roots=[pki.root_pem])
            assert e.value.code == expected
        else:  # open for everyone: read and reported on like any other PDF
            assert verify_pdf(out.getvalue(), trust_roots=[pki.root_pem]).problem == "no_signatures"


@pytest.mark.parametrize("backend", ["pkcs12", "pkcs11"])
def test_countersignature_keeps_employee_signature_valid(settings, pki, tmp_path, pdfsig_for, backend):
    s = replace(settings, seal_backend=backend)
    pdf, layout = render_letter(letter())
    signed, _ = employee_sign(s, pki, pdf, layout)
    with seal_signer(s, pki, company_id=f"co-{backend}", company_name="示例科技有限公司", company_code="demo") as (signer, info):
        both = pades.sign_b_lta(signed, signer=signer, pki=pki, timestamper=make_timestamper(s, pki),
                                field_name="company_seal", page=layout.page, box=layout.company_box,
                                appearance=pades.Appearance(None, "示例科技有限公司 电子印章", "测试",
                                                            stamp_font_path(str(s.var_dir / "fonts"))),
                                reason="公司签收", signer_cert=info.cert)
    assert info.backend == backend
    report = verify_pdf(both, trust_roots=[pki.root_pem])
    assert report.ok, report
    by_name = {x.field_name: x for x in report.signatures}
    assert by_name["employee_signature"].modification_level == "FORM_FILLING"
    assert by_name["employee_signature"].pades_level == "B-LTA" and by_name["company_seal"].pades_level == "B-LTA"
    assert "电子印章" in by_name["company_seal"].signer
    path = tmp_path / "both.pdf"
    path.write_bytes(both)
    approvals = {r["Signature Field Name"]: r for r in pdfsig_for(pki.root_pem).run(path)
                 if r.get("Signature Type") == "ETSI.CAdES.detached"}
    assert set(approvals) == {"employee_signature", "company_seal"}
    assert all(r["Signature Validation"] == "Signature is Valid." and
               r["Certificate Validation"] == "Certificate is Trusted." for r in approvals.values())


def test_softhsm_seal_key_never_leaves_the_token(settings, pki):
    import pkcs11
    from pkcs11 import Attribute, ObjectClass

    s = replace(settings, seal_backend="pkcs11")
    info = ensure_seal(s, pki, company_id="co-hsm", company_name="示例科技", company_code="hsm")
    again = ensure_seal(s, pki, company_id="co-hsm", company_name="示例科技", company_code="hsm")
    assert not again.created and again.cert == info.cert
    token = pkcs11.lib(s.pkcs11_module).get_token(token_label=s.pkcs11_token_label)
    with token.open(user_pin=s.pkcs11_user_pin) as session:
        keys = list(session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.LABEL: "seal-co-hsm"}))
        assert len(keys) == 1
        key = keys[0]
        assert key[Attribute.SENSITIVE] and not key[Attribute.EXTRACTABLE]
        with pytest.raises(pkcs11.exceptions.PKCS11Error):
            key[Attribute.PRIVATE_EXPONENT]
    assert not (pki.dir / "seals" / "co-hsm.p12").exists()
