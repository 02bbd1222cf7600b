"""The signer's CMS assembled from DER parts (signing.pades.DerCmsSigner) is byte for byte the container
pyHanko builds with asn1crypto for the same inputs, canonical DER, and anything outside the PAdES layout
is left to pyHanko."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import datetime, timedelta, timezone

import pytest
from asn1crypto import cms
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from pyhanko.sign.ades.api import CAdESSignedAttrSpec, GenericCommitment
from pyhanko.sign.signers.pdf_cms import PdfCMSSignedAttributes
from pyhanko_certvalidator.registry import SimpleCertificateStore

from signing import pades
from signing.pki import _ku, der_to_asn1, load_pki
from signing.tsa import DevTsa


class _Deterministic:
    """Signature value and timestamp token fixed, so two containers can be compared byte for byte."""

    async def async_sign_raw(self, data: bytes, digest_algorithm: str, dry_run=False) -> bytes:
        return hashlib.sha512(data).digest() + (b"\0" * 64 if dry_run else b"\1" * 64)


class PyHankoBuilt(_Deterministic, pades.KeySigner):
    pass


class DerBuilt(_Deterministic, pades.DerCmsSigner):
    pass


class FixedTsa(DevTsa):
    """Tokens with a fixed time and serial, requested without a nonce."""

    def __init__(self, pki):
        super().__init__(pki)
        self.include_nonce = False
        self._answered: dict[bytes, bytes] = {}  # the TSA's ECDSA signature is randomised: one token per request

    def request_tsa_response(self, req):
        from asn1crypto import tsp

        key = req.dump()
        if key not in self._answered:
            self._answered[key] = self.response_der(req, datetime(2026, 10, 1, 8, 0, tzinfo=timezone.utc), 42)
        return tsp.TimeStampResp.load(self._answered[key])


def _rsa_credential(pki):
    """A seal-like certificate with an RSA key from the same CA (PKCS#12 seals of older PKIs are RSA)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.now(timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(x509.Name.from_rfc4514_string("CN=Seal,O=示例科技有限公司"))
               .issuer_name(pki.ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1)))
    cert = pki._leaf_extensions(builder, key.public_key()).add_extension(_ku(sign=True, nonrep=True), critical=True)
    return key, cert.sign(pki.ca_key, hashes.SHA256())


def _signers(pki, kind: str, *, embed_roots: bool = True):
    if kind == "ec":
        cred = pki.issue_event_credential(name="陈晓", employee_no="P001", company="示例科技有限公司")
        key, cert = cred.key, cred.cert
    else:
        key, cert = _rsa_credential(pki)
    chain = SimpleCertificateStore.from_certs([der_to_asn1(pki.ca), der_to_asn1(pki.root)])
    out = tuple(cls(key=key, signing_cert=der_to_asn1(cert), cert_registry=chain) for cls in (PyHankoBuilt, DerBuilt))
    for signer in out:
        signer.embed_roots = embed_roots
    return out


def _sign(signer, digest: bytes, **kw) -> bytes:
    return asyncio.run(signer.async_sign(digest, "sha256", **kw)).dump()


@pytest.mark.parametrize("kind", ["ec", "rsa"])
@pytest.mark.parametrize("with_tsa", [True, False])
@pytest.mark.parametrize("dry_run", [False, True])
def test_der_container_is_the_one_pyhanko_builds(settings, kind, with_tsa, dry_run):
    pki = load_pki(settings)
    reference, fast = _signers(pki, kind)
    tsa = FixedTsa(pki) if with_tsa else None
    digest = hashlib.sha256(b"the letter's byte range").digest()
    # what pyHanko's PdfSigner passes (a signing time, which PAdES leaves out of the CMS)
    kw = dict(use_pades=True, timestamper=tsa, dry_run=dry_run,
              signed_attr_settings=PdfCMSSignedAttributes(signing_time=datetime.now(timezone.utc)))
    expected, got = _sign(reference, digest, **kw), _sign(fast, digest, **kw)
    assert got == expected
    parsed = cms.ContentInfo.load(got)
    assert parsed.dump(force=True) == got, "canonical DER"
    si = parsed["content"]["signer_infos"][0]
    assert {a["type"].native for a in si["signed_attrs"]} == {"content_type", "message_digest",
                                                              "signing_certificate_v2"}
    assert ("unsigned_attrs" in si and si["unsigned_attrs"].native is not None) == with_tsa
    # a different document digest changes the container only where the message digest is
    other = _sign(fast, hashlib.sha256(b"another").digest(), **kw)
    assert other != got and other == _sign(reference, hashlib.sha256(b"another").digest(), **kw)


def test_without_embedded_roots_the_root_is_left_out(settings):
    pki = load_pki(settings)
    reference, fast = _signers(pki, "ec", embed_roots=False)
    digest = hashlib.sha256(b"x").digest()
    got = _sign(fast, digest, use_pades=True)
    assert got == _sign(reference, digest, use_pades=True)
    certs = {c.chosen.dump() for c in cms.ContentInfo.load(got)["content"]["certificates"]}
    assert der_to_asn1(pki.root).dump() not in certs and der_to_asn1(pki.ca).dump() in certs


def test_outside_the_pades_layout_pyhanko_builds_it(settings):
    """CAdES attributes (a commitment type) are pyHanko's to encode: the container carries them."""
    pki = load_pki(settings)
    reference, fast = _signers(pki, "ec")
    attrs = PdfCMSSignedAttributes(cades_signed_attrs=CAdESSignedAttrSpec(
        commitment_type=GenericCommitment.PROOF_OF_APPROVAL.asn1))
    digest = hashlib.sha256(b"x").digest()
    der = _sign(fast, digest, use_pades=True, signed_attr_settings=attrs)
    assert der == _sign(reference, digest, use_pades=True, signed_attr_settings=attrs)
    types = {a["type"].native for a in cms.ContentInfo.load(der)["content"]["signer_infos"][0]["signed_attrs"]}
    assert "commitment_type" in types
