"""The company seal (电子印章): a long-lived key per company, in a PKCS#11 token or a PKCS#12 file.

``QIANLI_SEAL_BACKEND=pkcs11`` (production: an HSM; development and tests: SoftHSM2): the key pair is
generated *inside* the token (CKA_SENSITIVE, not extractable) under the label ``seal-<company id>``,
and only its certificate is stored next to it. Signing happens in the token through pyHanko's
PKCS#11 signer; the private key never leaves it.
``QIANLI_SEAL_BACKEND=pkcs12``: the key lives in ``<var>/pki/seals/<company id>.p12``, encrypted
with ``QIANLI_PKCS12_PASSPHRASE`` (simpler deployments; weaker than an HSM).

For SoftHSM2, when ``SOFTHSM2_CONF`` is not set, the token directory is ``<var>/softhsm/tokens`` and
:func:`ensure_softhsm_token` creates the token (label and user PIN from the settings).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from signing.pki import Pki, _locked, _write, der_to_asn1

__all__ = ["SealInfo", "seal_signer", "ensure_seal", "ensure_softhsm_token", "softhsm_conf"]

_lock = threading.Lock()


@dataclass(frozen=True)
class SealInfo:
    company_id: str
    backend: str
    cert: x509.Certificate
    created: bool


def _label(company_id: str) -> str:
    return f"seal-{company_id}"


def _seal_dir(pki: Pki) -> Path:
    d = pki.dir / "seals"
    d.mkdir(parents=True, exist_ok=True)
    return d


# ---- SoftHSM2 / PKCS#11 ---------------------------------------------------------------------

def softhsm_conf(settings) -> Path | None:
    """Point SoftHSM2 at a token directory under var/ unless SOFTHSM2_CONF is already set."""
    if "softhsm" not in str(settings.pkcs11_module):
        return None
    if os.environ.get("SOFTHSM2_CONF"):
        return Path(os.environ["SOFTHSM2_CONF"])
    base = Path(settings.var_dir).resolve() / "softhsm"
    tokens = base / "tokens"
    tokens.mkdir(parents=True, exist_ok=True)
    conf = base / "softhsm2.conf"
    if not conf.exists():
        conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    return conf


def ensure_softhsm_token(settings) -> bool:
    """Initialise the SoftHSM2 token named by the settings if it is missing. Returns True if created."""
    softhsm_conf(settings)
    out = subprocess.run(["softhsm2-util", "--show-slots"], capture_output=True, text=True, check=True).stdout
    labels = {line.split(":", 1)[1].strip() for line in out.splitlines() if line.strip().startswith("Label:")}
    if settings.pkcs11_token_label in labels:
        return False
    if not settings.pkcs11_user_pin:
        raise RuntimeError("QIANLI_PKCS11_USER_PIN is required to initialise the SoftHSM2 token")
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", settings.pkcs11_token_label,
                    "--pin", settings.pkcs11_user_pin, "--so-pin", settings.pkcs11_user_pin + "-so"],
                   capture_output=True, text=True, check=True)
    return True


@contextlib.contextmanager
def _p11_session(settings, *, rw: bool = False):
    import pkcs11

    softhsm_conf(settings)
    lib = pkcs11.lib(settings.pkcs11_module)
    token = lib.get_token(token_label=settings.pkcs11_token_label)
    with token.open(rw=rw, user_pin=settings.pkcs11_user_pin) as session:
        yield session


def _p11_find_cert(session, label: str) -> x509.Certificate | None:
    from pkcs11 import Attribute, ObjectClass

    for obj in session.get_objects({Attribute.CLASS: ObjectClass.CERTIFICATE, Attribute.LABEL: label}):
        return x509.load_der_x509_certificate(bytes(obj[Attribute.VALUE]))
    return None


def _p11_create(settings, pki: Pki, company_id: str, company_name: str, company_code: str) -> x509.Certificate:
    from pkcs11 import Attribute, CertificateType, KeyType, ObjectClass

    label = _label(company_id)
    key_id = company_id.encode()[:32]
    with _p11_session(settings, rw=True) as session:
        existing = _p11_find_cert(session, label)
        if existing is not None:
            return existing
        for orphan in list(session.get_objects({Attribute.LABEL: label})):  # keys left by an interrupted create
            orphan.destroy()
        pub, _priv = session.generate_keypair(
            KeyType.RSA, 3072, label=label, id=key_id, store=True,
            private_template={Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False, Attribute.SIGN: True},
            public_template={Attribute.VERIFY: True})
        public_key = rsa.RSAPublicNumbers(int.from_bytes(pub[Attribute.PUBLIC_EXPONENT], "big"),
                                          int.from_bytes(pub[Attribute.MODULUS], "big")).public_key()
        cert = pki.issue_seal_certificate(public_key, company_name=company_name, company_code=company_code)
        session.create_object({Attribute.CLASS: ObjectClass.CERTIFICATE, Attribute.CERTIFICATE_TYPE: CertificateType.X_509,
                               Attribute.TOKEN: True, Attribute.LABEL: label, Attribute.ID: key_id,
                               Attribute.SUBJECT: cert.subject.public_bytes(), Attribute.ISSUER: cert.issuer.public_bytes(),
                               Attribute.SERIAL_NUMBER: der_to_asn1(cert)["tbs_certificate"]["serial_number"].dump(),
                               Attribute.VALUE: cert.public_bytes(serialization.Encoding.DER)})
    return cert


# ---- PKCS#12 ---------------------------------------------------------------------------------

def _p12_path(pki: Pki, company_id: str) -> Path:
    return _seal_dir(pki) / f"{company_id}.p12"


def _p12_pass(settings) -> bytes:
    value = settings.pkcs12_passphrase or ""
    if not value:
        raise RuntimeError("QIANLI_PKCS12_PASSPHRASE is required for the pkcs12 seal backend")
    return value.encode()


def _p12_create(settings, pki: Pki, company_id: str, company_name: str, company_code: str) -> x509.Certificate:
    path = _p12_path(pki, company_id)
    key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    cert = pki.issue_seal_certificate(key.public_key(), company_name=company_name, company_code=company_code)
    blob = pkcs12.serialize_key_and_certificates(_label(company_id).encode(), key, cert, [pki.ca, pki.root],
                                                 serialization.BestAvailableEncryption(_p12_pass(settings)))
    _write(path, blob, 0o600)
    return cert


def _p12_load(settings, pki: Pki, company_id: str):
    key, cert, _extra = pkcs12.load_key_and_certificates(_p12_path(pki, company_id).read_bytes(), _p12_pass(settings))
    return key, cert


# ---- public API ------------------------------------------------------------------------------

def ensure_seal(settings, pki: Pki, *, company_id: str, company_name: str, company_code: str) -> SealInfo:
    """The company's seal certificate, creating the key (in the token or file) on first use."""
    backend = settings.seal_backend
    cert_path = _seal_dir(pki) / f"{company_id}.pem"
    with _lock, _locked(pki.dir):
        if backend == "pkcs11":
            if "softhsm" in str(settings.pkcs11_module):
                ensure_softhsm_token(settings)
            with _p11_session(settings) as session:
                cert = _p11_find_cert(session, _label(company_id))
            created = cert is None
            if created:
                cert = _p11_create(settings, pki, company_id, company_name, company_code)
        else:
            created = not _p12_path(pki, company_id).exists()
            cert = _p12_create(settings, pki, company_id, company_name, company_code) if created \
                else _p12_load(settings, pki, company_id)[1]
        _write(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    return SealInfo(company_id=company_id, backend=backend, cert=cert, created=created)


@contextlib.contextmanager
def seal_signer(settings, pki: Pki, *, company_id: str, company_name: str, company_code: str):
    """A pyHanko signer for the company seal (a context manager: the PKCS#11 session is closed after)."""
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    from signing.pades import DerCmsSigner

    info = ensure_seal(settings, pki, company_id=company_id, company_name=company_name, company_code=company_code)
    chain = [der_to_asn1(pki.ca), der_to_asn1(pki.root)]
    if info.backend == "pkcs11":
        from pyhanko.sign.pkcs11 import PKCS11Signer

        with _p11_session(settings) as session:
            yield PKCS11Signer(session, key_label=_label(company_id), signing_cert=der_to_asn1(info.cert),
                               ca_chain=chain), info
    else:
        key, cert = _p12_load(settings, pki, company_id)
        yield DerCmsSigner(key=key, signing_cert=der_to_asn1(cert),  # the loaded key, the CMS from DER parts
                           cert_registry=SimpleCertificateStore.from_certs(chain)), info
