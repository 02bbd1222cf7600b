"""The development TSA's tokens, assembled from pre-encoded DER parts: the same structure asn1crypto would
build, canonical DER, and valid RFC 3161 tokens for both key types (new PKIs: EC P-384; PKIs made
before: RSA-3072)."""

from __future__ import annotations

import copy
import shutil
import subprocess
import hashlib
from datetime import datetime, timedelta, timezone

import pytest
from asn1crypto import tsp
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID
from pyhanko.sign.validation.status import TimestampSignatureStatus
from pyhanko.sign.validation.generic_cms import validate_tst_signed_data
from pyhanko_certvalidator import ValidationContext

from signing.pki import _ku, der_to_asn1, load_pki
from signing.tsa import DevTsa


def _with_rsa_tsa(pki):
    """The PKI as one made before the EC TSA key: an RSA-3072 TSA certificate from the same CA."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    now = datetime.now(timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(pki.tsa.subject).issuer_name(pki.ca.subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=30)))
    cert = (pki._leaf_extensions(builder, key.public_key()).add_extension(_ku(sign=True, nonrep=True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
            .sign(pki.ca_key, hashes.SHA256()))
    old = copy.copy(pki)
    old.tsa, old.tsa_key = cert, key
    return old


@pytest.mark.parametrize("kind", ["ec", "rsa"])
def test_token_matches_the_reference_structure_and_validates(settings, kind):
    pki = load_pki(settings)
    if kind == "rsa":
        pki = _with_rsa_tsa(pki)
    assert isinstance(pki.tsa_key, ec.EllipticCurvePrivateKey if kind == "ec" else rsa.RSAPrivateKey)
    tsa = DevTsa(pki)
    digest = hashlib.sha256(b"manifest").digest()
    nonce, req = tsa.request_cms(digest, "sha256")
    dt = datetime(2026, 10, 1, 8, 30, 5, 120000, tzinfo=timezone.utc)
    der = tsa.response_der(req, dt, 0x1234_5678_9ABC)
    resp = tsp.TimeStampResp.load(der)
    assert resp.dump(force=True) == der, "canonical DER (sorted SET OF, minimal lengths)"
    assert resp["status"]["status"].native == "granted"
    signed_data = resp["time_stamp_token"]["content"]
    info = signed_data["encap_content_info"]["content"].parsed
    reference = tsp.TSTInfo({  # the same TSTInfo built with asn1crypto, as pyHanko's DummyTimeStamper does
        "version": "v1", "policy": tsa.policy_oid, "message_imprint": req["message_imprint"],
        "serial_number": 0x1234_5678_9ABC, "gen_time": dt, "accuracy": {"seconds": 1},
        "nonce": req["nonce"], "tsa": {"directory_name": tsa.tsa_cert.subject}})
    assert info.dump() == tsp.TSTInfo.load(reference.dump()).dump(force=True)
    assert info["nonce"].native == nonce and info["gen_time"].native == dt
    assert info["message_imprint"]["hashed_message"].native == digest
    si = signed_data["signer_infos"][0]
    expected_alg = "sha256_ecdsa" if kind == "ec" else "rsassa_pkcs1v15"
    assert si["signature_algorithm"]["algorithm"].native == expected_alg
    attrs = {a["type"].native: a["values"][0].native for a in si["signed_attrs"]}
    assert attrs["content_type"] == "tst_info" and attrs["signing_time"] == dt.replace(microsecond=0)
    assert attrs["message_digest"] == hashlib.sha256(signed_data["encap_content_info"]["content"].contents).digest()
    certs = {c.chosen.dump() for c in signed_data["certificates"]}
    assert certs == {der_to_asn1(pki.tsa).dump(), der_to_asn1(pki.ca).dump()}

    import asyncio

    vc = ValidationContext(trust_roots=[der_to_asn1(pki.root)], allow_fetching=False, revocation_mode="soft-fail")
    status = TimestampSignatureStatus(**asyncio.run(validate_tst_signed_data(signed_data, vc, lambda _algo: digest)))
    assert status.intact and status.valid and status.trusted
    # one flipped byte in the TSTInfo breaks the signature
    tampered = bytearray(der)
    at = der.index(digest)
    tampered[at] ^= 1
    bad = tsp.TimeStampResp.load(bytes(tampered))["time_stamp_token"]["content"]
    assert not TimestampSignatureStatus(**asyncio.run(validate_tst_signed_data(bad, vc, lambda _algo: digest))).intact


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_openssl_verifies_the_token_as_the_dossier_readme_says(settings, tmp_path):
    """The dossier's README tells arbitrators to run `openssl ts -verify ... -CAfile pki/root.pem`."""
    pki = load_pki(settings)
    data = b'{"format": "qianli-dossier/1"}'
    nonce, req = DevTsa(pki).request_cms(hashlib.sha256(data).digest(), "sha256")
    (tmp_path / "manifest.json").write_bytes(data)
    (tmp_path / "manifest.json.tsr").write_bytes(DevTsa(pki).request_tsa_response(req).dump())
    (tmp_path / "root.pem").write_bytes(pki.root_pem)

    def verify():
        return subprocess.run(["openssl", "ts", "-verify", "-data", str(tmp_path / "manifest.json"),
                               "-in", str(tmp_path / "manifest.json.tsr"), "-CAfile", str(tmp_path / "root.pem")],
                              capture_output=True, text=True)

    ok = verify()
    assert ok.returncode == 0 and "Verification: OK" in ok.stdout, ok.stderr
    (tmp_path / "manifest.json").write_bytes(data + b" ")
    assert verify().returncode != 0

