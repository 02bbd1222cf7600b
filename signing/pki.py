"""QianLi's internal PKI: root CA -> issuing CA -> {TSA, company seals, per-signing event certificates}.

Layout under ``<var_dir>/pki`` (created by :func:`init_pki`, idempotent)::

    root.pem  root.key.pem        self-signed root (EC P-384, 20 years); export it with export_root_pem
    ca.pem    ca.key.pem          issuing CA (EC P-384, 10 years, pathlen 0)
    tsa.pem   tsa.key.pem         development TSA (EC P-384; older PKIs: RSA 3072; EKU timeStamping, critical)
    seals/<company>.pem (+ .p12)  company seal certificates (key in PKCS#11 or a PKCS#12 file)
    state.json                    our certificate policy OID, creation time
    root.crl                      the root's CRL (covers the issuing CA), pre-signed by ``qianli pki root-crl``
    issued.log                    every certificate the issuing CA issued (serial, kind, expiry): OCSP
                                  answers "unknown" for any other serial

Private keys on disk are PKCS#8 encrypted with ``QIANLI_PKCS12_PASSPHRASE`` (production refuses to
write them otherwise). Every certificate names the CRL distribution point, OCSP responder and CA
issuer URLs that the app itself serves under ``<QIANLI_PUBLIC_BASE_URL>/pki/``. The issuing CA's CRL
and OCSP responses are produced on demand and signed by the issuing key, so a signature's validation
data can be gathered offline, at signing time. The root key is never loaded by the app (web or rq
workers): only the operator's commands (``qianli pki init``, ``qianli pki root-crl``) use it, and the
root CRL they pre-sign is what the app serves and embeds. The root key file can thus live offline
between those runs.

Event certificates (事件证书) are issued for one signing: a fresh EC P-256 key pair made in
memory, a certificate for the employee valid for minutes (nonRepudiation + digitalSignature and
our policy OID), used once and dropped with the key object. It carries the signing context
extension (:data:`SIGNING_CONTEXT_OID`): the case id and the SHA-256 of the signing intent, so the
certificate cannot be reused for another case and names the identity checks it was issued after.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from asn1crypto import core as asn1_core
from asn1crypto import crl as asn1_crl
from asn1crypto import keys as asn1_keys
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

__all__ = ["Pki", "PkiMissing", "KeyProtectionRequired", "RootKeyNotLoaded", "init_pki", "load_pki", "get_pki",
           "EventCredential", "pki_dir", "der_to_asn1", "key_to_asn1", "SIGNING_CONTEXT_OID", "SigningContext",
           "signing_context_of", "sign_root_crl", "root_crl_due", "ROOT_CRL_DAYS"]

ROOT_DAYS = 20 * 365
CA_DAYS = 10 * 365
TSA_DAYS = 5 * 365
SEAL_DAYS = 3 * 365
ROOT_CRL_DAYS = 90  # default validity of a pre-signed root CRL; `qianli pki init` renews it past half-life
# The signing-context extension of event certificates: one fixed OID for every QianLi deployment (a UUID OID,
# ITU-T X.667), so that any verifier can read it. Value: DER SEQUENCE { version INTEGER (1), caseId UTF8String,
# intentSha256 OCTET STRING (32) }.
SIGNING_CONTEXT_OID = "2.25.107674190392219311297959166305681404496"
_cache: dict[str, Pki] = {}
_cache_lock = threading.Lock()


class PkiMissing(RuntimeError):
    """The PKI has not been created (run ``qianli pki init``)."""


class RootKeyNotLoaded(RuntimeError):
    """The root key is only for the operator's commands (``qianli pki init|root-crl``), never the app."""


class _SigningContextValue(asn1_core.Sequence):
    _fields = [("version", asn1_core.Integer), ("case_id", asn1_core.UTF8String),
               ("intent_sha256", asn1_core.OctetString)]


@dataclass(frozen=True)
class SigningContext:
    """What an event certificate was issued for: one case, after one signing intent (its SHA-256, hex)."""

    case_id: str
    intent_sha256: str

    def der(self) -> bytes:
        return _SigningContextValue({"version": 1, "case_id": self.case_id,
                                     "intent_sha256": bytes.fromhex(self.intent_sha256)}).dump()


def signing_context_of(cert) -> SigningContext | None:
    """The signing context of a certificate (cryptography or asn1crypto), None if it has none."""
    if isinstance(cert, asn1_x509.Certificate):
        for ext in cert["tbs_certificate"]["extensions"] or []:
            if ext["extn_id"].dotted == SIGNING_CONTEXT_OID:
                return _parse_context(ext["extn_value"].contents)
        return None
    try:
        ext = cert.extensions.get_extension_for_oid(x509.ObjectIdentifier(SIGNING_CONTEXT_OID))
    except x509.ExtensionNotFound:
        return None
    return _parse_context(ext.value.value)


def _parse_context(der: bytes) -> SigningContext | None:
    try:
        v = _SigningContextValue.load(der, strict=True)
        digest = v["intent_sha256"].native
        if v["version"].native != 1 or len(digest) != 32:
            return None
        return SigningContext(v["case_id"].native, digest.hex())
    except (ValueError, TypeError):
        return None


def pki_dir(settings) -> Path:
    return Path(settings.var_dir) / "pki"


def _utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def _name(cn: str, org: str, *, serial: str | None = None, unit: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"), x509.NameAttribute(NameOID.ORGANIZATION_NAME, org)]
    if unit:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    if serial:
        attrs.append(x509.NameAttribute(NameOID.SERIAL_NUMBER, serial))
    return x509.Name(attrs)


def der_to_asn1(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def key_to_asn1(key) -> asn1_keys.PrivateKeyInfo:
    return asn1_keys.PrivateKeyInfo.load(key.private_bytes(serialization.Encoding.DER,
                                                           serialization.PrivateFormat.PKCS8,
                                                           serialization.NoEncryption()))


def _ku(*, sign=False, nonrep=False, cert_sign=False, crl_sign=False, key_enc=False) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=sign, content_commitment=nonrep, key_encipherment=key_enc,
                         data_encipherment=False, key_agreement=False, key_cert_sign=cert_sign,
                         crl_sign=crl_sign, encipher_only=False, decipher_only=False)


@dataclass
class EventCredential:
    """A one-time signing credential: key (in memory only), certificate and its chain."""

    key: Any  # cryptography EllipticCurvePrivateKey
    cert: x509.Certificate
    chain: list[x509.Certificate]

    def destroy(self) -> None:
        self.key = None


class Pki:
    """The loaded PKI (certificates and CA keys) with the operations that need them."""

    def __init__(self, directory: Path, settings, *, root, root_key, ca, ca_key, tsa, tsa_key, state):
        self.dir = directory
        self.settings = settings
        self.root, self._root_key = root, root_key  # None in the app: see root_key
        self.ca, self.ca_key = ca, ca_key
        self.tsa, self.tsa_key = tsa, tsa_key
        self.policy_oid: str = state["policy_oid"]
        self.base_url = settings.public_base_url.rstrip("/")
        self._crl_cache: dict[str, tuple[datetime, bytes]] = {}
        self._asn1: dict[str, Any] = {}  # parsed once: asn1crypto memoises what validators compute from them
        # The root(s) of an external TSA (QIANLI_TSA_TRUST_ROOTS): trusted for timestamps only.
        roots_file = getattr(settings, "tsa_trust_roots", "") or ""
        self.tsa_roots: list[x509.Certificate] = (
            x509.load_pem_x509_certificates(Path(roots_file).read_bytes()) if roots_file else [])

    @property
    def root_key(self):
        if self._root_key is None:
            raise RootKeyNotLoaded("the root key is not loaded by the app; run 'qianli pki root-crl' to pre-sign "
                                   "the root CRL")
        return self._root_key

    def asn1(self, which: str):
        """The asn1crypto form of ``root``, ``ca`` or ``tsa`` (one object per process, reused)."""
        found = self._asn1.get(which)
        if found is None:
            found = self._asn1[which] = der_to_asn1({"root": self.root, "ca": self.ca, "tsa": self.tsa}[which])
        return found

    # ---- exported material --------------------------------------------------------------
    @property
    def root_pem(self) -> bytes:
        return self.root.public_bytes(serialization.Encoding.PEM)

    @property
    def tsa_roots_pem(self) -> list[bytes]:
        """The external TSA's root certificates (PEM each); empty with the development TSA."""
        return [c.public_bytes(serialization.Encoding.PEM) for c in self.tsa_roots]

    def cert_der(self, which: str) -> bytes:
        cert = {"root": self.root, "ca": self.ca, "tsa": self.tsa}[which]
        return cert.public_bytes(serialization.Encoding.DER)

    @property
    def chain(self) -> list[x509.Certificate]:
        """Issuing CA then root: what a leaf needs to chain to the anchor."""
        return [self.ca, self.root]

    def urls(self) -> dict[str, str]:
        b = self.base_url
        return {"root_crl": f"{b}/pki/crl/root.crl", "ca_crl": f"{b}/pki/crl/ca.crl", "ocsp": f"{b}/pki/ocsp",
                "root_cert": f"{b}/pki/root.cer", "ca_cert": f"{b}/pki/ca.cer", "tsa": f"{b}/pki/tsa"}

    # ---- issuance -----------------------------------------------------------------------
    def _leaf_extensions(self, builder: x509.CertificateBuilder, public_key) -> x509.CertificateBuilder:
        u = self.urls()
        return (builder
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.ca_key.public_key()),
                               critical=False)
                .add_extension(x509.CRLDistributionPoints([x509.DistributionPoint(
                    full_name=[x509.UniformResourceIdentifier(u["ca_crl"])], relative_name=None, reasons=None,
                    crl_issuer=None)]), critical=False)
                .add_extension(x509.AuthorityInformationAccess([
                    x509.AccessDescription(AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(u["ocsp"])),
                    x509.AccessDescription(AuthorityInformationAccessOID.CA_ISSUERS,
                                           x509.UniformResourceIdentifier(u["ca_cert"]))]), critical=False))

    def issue_event_credential(self, *, name: str, employee_no: str, company: str, now: datetime | None = None,
                               context: SigningContext | None = None) -> EventCredential:
        """A fresh key pair and a minutes-long certificate for one signing by one employee (``context``:
        the case and the signing intent, carried in the signing-context extension)."""
        now = now or _utcnow()
        key = ec.generate_private_key(ec.SECP256R1())
        validity = int(getattr(self.settings, "event_cert_validity_s", 600))
        builder = (x509.CertificateBuilder()
                   .subject_name(_name(name, company, serial=employee_no, unit="事件证书 Event certificate"))
                   .issuer_name(self.ca.subject).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - timedelta(seconds=60)).not_valid_after(now + timedelta(seconds=validity)))
        builder = (self._leaf_extensions(builder, key.public_key())
                   .add_extension(_ku(sign=True, nonrep=True), critical=True)
                   .add_extension(x509.CertificatePolicies([x509.PolicyInformation(
                       x509.ObjectIdentifier(self.policy_oid),
                       [x509.UserNotice(None, "QianLi event certificate: one resignation-letter signing after "
                                              "SMS + face verification")])]), critical=False))
        if context is not None:
            builder = builder.add_extension(x509.UnrecognizedExtension(x509.ObjectIdentifier(SIGNING_CONTEXT_OID),
                                                                       context.der()), critical=False)
        cert = builder.sign(self.ca_key, hashes.SHA256())
        self.record_issued(cert, "event")
        return EventCredential(key=key, cert=cert, chain=self.chain)

    def issue_seal_certificate(self, public_key, *, company_name: str, company_code: str) -> x509.Certificate:
        now = _utcnow()
        builder = (x509.CertificateBuilder()
                   .subject_name(_name(f"{company_name} 电子印章", company_name, serial=company_code, unit="Company seal"))
                   .issuer_name(self.ca.subject).public_key(public_key)
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=SEAL_DAYS)))
        builder = (self._leaf_extensions(builder, public_key)
                   .add_extension(_ku(sign=True, nonrep=True), critical=True)
                   .add_extension(x509.CertificatePolicies([x509.PolicyInformation(
                       x509.ObjectIdentifier(self.policy_oid), None)]), critical=False))
        cert = builder.sign(self.ca_key, hashes.SHA256())
        self.record_issued(cert, "seal")
        return cert

    # ---- what the issuing CA issued ----------------------------------------------------------
    def record_issued(self, cert: x509.Certificate, kind: str) -> None:
        """Append the certificate's serial to issued.log (O_APPEND: one short line, atomic across processes)."""
        line = f"{cert.serial_number:x} {kind} {cert.not_valid_after_utc.isoformat()}\n".encode()
        fd = os.open(self.dir / "issued.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    def issued_serials(self) -> frozenset[int]:
        """Every serial in issued.log; only the lines appended since the last call are read."""
        path = self.dir / "issued.log"
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return frozenset()
        done, serials = self._asn1.get("issued") or (0, frozenset())
        if done == size:
            return serials
        if done > size:  # replaced by a shorter file: read it all again
            done, serials = 0, frozenset()
        with open(path, "rb") as f:  # only what was appended since the last read
            f.seek(done)
            tail = f.read(size - done)
        complete = tail[:tail.rfind(b"\n") + 1]  # a line being written right now is read next time
        serials = serials | {int(line.split(b" ", 1)[0], 16) for line in complete.splitlines() if line.strip()}
        self._asn1["issued"] = (done + len(complete), serials)
        return serials

    # ---- revocation data ----------------------------------------------------------------
    def revoked_serials(self) -> dict[int, datetime]:
        path = self.dir / "revoked.json"
        if not path.exists():
            return {}
        raw = json.loads(path.read_text())
        return {int(k): datetime.fromisoformat(v) for k, v in raw.items()}

    def revoke(self, serial: int, when: datetime | None = None) -> None:
        with _locked(self.dir):
            current = {str(k): v.isoformat() for k, v in self.revoked_serials().items()}
            current[str(serial)] = (when or _utcnow()).isoformat()
            _write(self.dir / "revoked.json", json.dumps(current, indent=2).encode())
        self._crl_cache.clear()

    def crl_der(self, which: str, *, now: datetime | None = None) -> bytes:
        """The CRL ``root`` (covers the issuing CA: the pre-signed root.crl) or a fresh ``ca`` one (covers leaves)."""
        if which == "root":
            return self.root_crl_der()
        now = now or _utcnow()
        cached = self._crl_cache.get(which)
        if cached and now - cached[0] < timedelta(minutes=10) and now >= cached[0]:
            return cached[1]
        builder = (x509.CertificateRevocationListBuilder().issuer_name(self.ca.subject)
                   .last_update(now - timedelta(seconds=1)).next_update(now + timedelta(days=1))
                   .add_extension(x509.CRLNumber(int(now.timestamp())), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.ca_key.public_key()),
                                  critical=False))
        for serial, when in self.revoked_serials().items():
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when).build())
        der = builder.sign(self.ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
        self._crl_cache[which] = (now, der)
        return der

    def root_crl_der(self) -> bytes:
        """The pre-signed root CRL (root.crl), re-read when the file changes. Missing: PkiMissing."""
        path = self.dir / "root.crl"
        try:
            mtime = path.stat().st_mtime_ns
        except FileNotFoundError:
            raise PkiMissing(f"no root CRL at {path}; run 'qianli pki root-crl'") from None
        cached = self._asn1.get("root.crl")
        if cached is None or cached[0] != mtime:
            cached = self._asn1["root.crl"] = (mtime, path.read_bytes())
        return cached[1]

    def root_crl_next_update(self) -> datetime:
        return x509.load_der_x509_crl(self.root_crl_der()).next_update_utc

    def crls(self) -> list[asn1_crl.CertificateList]:
        out = []
        for which in ("root", "ca"):
            der = self.crl_der(which)
            parsed = self._asn1.get(f"crl:{which}")
            if parsed is None or parsed[0] is not der:  # re-parse when crl_der made a new one
                parsed = self._asn1[f"crl:{which}"] = (der, asn1_crl.CertificateList.load(der))
            out.append(parsed[1])
        return out

    def ocsp_response_der(self, request_der: bytes | None = None, *, cert: x509.Certificate | None = None,
                          now: datetime | None = None) -> bytes:
        """An OCSP response signed by the issuing CA for a certificate it issued (request or cert given)."""
        now = now or _utcnow()
        if cert is None:
            try:
                req = ocsp.load_der_ocsp_request(request_der or b"")
            except Exception:  # noqa: BLE001 - any malformed request
                return ocsp.OCSPResponseBuilder.build_unsuccessful(
                    ocsp.OCSPResponseStatus.MALFORMED_REQUEST).public_bytes(serialization.Encoding.DER)
            serial = req.serial_number
            nonce = None
            with contextlib.suppress(x509.ExtensionNotFound):
                nonce = req.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
            issuer_key_hash = req.issuer_key_hash
            expected = _key_hash(self.ca, req.hash_algorithm)
            if issuer_key_hash != expected:
                return ocsp.OCSPResponseBuilder.build_unsuccessful(
                    ocsp.OCSPResponseStatus.UNAUTHORIZED).public_bytes(serialization.Encoding.DER)
        else:
            serial, nonce = cert.serial_number, None
        revoked = self.revoked_serials().get(serial)
        # Only serials we recorded at issuance are "good"; any other (a certificate made with a stolen CA key,
        # or a guess) is "unknown" (RFC 6960 2.2), never vouched for. Leaf certificates are not kept.
        if revoked:
            status = ocsp.OCSPCertStatus.REVOKED
        elif serial in self.issued_serials():
            status = ocsp.OCSPCertStatus.GOOD
        else:
            status = ocsp.OCSPCertStatus.UNKNOWN
        hashes_sha1 = self._asn1.get("ca:sha1-hashes")
        if hashes_sha1 is None:
            hashes_sha1 = self._asn1["ca:sha1-hashes"] = (_name_hash(self.ca), _key_hash(self.ca, hashes.SHA1()))
        builder = ocsp.OCSPResponseBuilder().add_response_by_hash(
            issuer_name_hash=hashes_sha1[0], issuer_key_hash=hashes_sha1[1],
            serial_number=serial, algorithm=hashes.SHA1(),
            cert_status=status,
            this_update=now - timedelta(seconds=1), next_update=now + timedelta(hours=12),
            revocation_time=revoked, revocation_reason=None)
        builder = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, self.ca)
        if nonce is not None:
            builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
        return builder.sign(self.ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)

    def ocsp_for(self, cert: x509.Certificate) -> asn1_ocsp.OCSPResponse:
        return asn1_ocsp.OCSPResponse.load(self.ocsp_response_der(cert=cert))

    # ---- pyHanko glue -------------------------------------------------------------------
    def validation_context(self, *, for_signing: bool = True, extra_ocsps=()):
        """A pyHanko ValidationContext trusting only our root, with our CRLs; no network."""
        from pyhanko_certvalidator import ValidationContext

        # An external TSA's chain is not ours: its root is trusted too and its CRLs/OCSP are fetched from the
        # URLs in its certificates (production has the network; our own CRLs and OCSP are given here).
        fetching = bool(self.tsa_roots) and for_signing
        backend = None
        if fetching:  # the requests backend: no aiohttp session left open per validation context
            from pyhanko_certvalidator.fetchers.requests_fetchers import RequestsFetcherBackend

            backend = RequestsFetcherBackend(per_request_timeout=int(getattr(self.settings, "tsa_timeout_s", 10)))
        return ValidationContext(trust_roots=[self.asn1("root"), *(der_to_asn1(c) for c in self.tsa_roots)],
                                 fetcher_backend=backend,
                                 other_certs=[self.asn1("ca")],
                                 crls=self.crls() if for_signing else [], ocsps=list(extra_ocsps),
                                 allow_fetching=fetching,
                                 revocation_mode="hard-fail" if for_signing else "soft-fail")


def _name_hash(cert: x509.Certificate) -> bytes:
    h = hashes.Hash(hashes.SHA1())
    h.update(cert.subject.public_bytes())
    return h.finalize()


def _key_hash(cert: x509.Certificate, algorithm) -> bytes:
    """Hash of the subjectPublicKey BIT STRING value (RFC 6960 issuerKeyHash)."""
    spki = asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER)).public_key
    h = hashes.Hash(type(algorithm)())
    h.update(spki["public_key"].contents[1:])  # drop the unused-bits octet
    return h.finalize()


class _locked:  # noqa: N801 - used as a context manager, named like one
    """An exclusive file lock on the PKI directory (several workers may start at once)."""

    def __init__(self, directory: Path):
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / ".lock"

    def __enter__(self):
        self.fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


def _write(path: Path, data: bytes, mode: int = 0o644) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _passphrase(settings) -> bytes | None:
    value = getattr(settings, "pkcs12_passphrase", "") or ""
    return value.encode() if value else None


class KeyProtectionRequired(RuntimeError):
    """Production refuses to write a private key file that is not encrypted with a passphrase."""


def _save_key(path: Path, key, settings) -> None:
    pw = _passphrase(settings)
    if pw is None and getattr(settings, "env", "") == "production":
        raise KeyProtectionRequired(f"refusing to write {path.name} unencrypted in production: "
                                    "set QIANLI_PKCS12_PASSPHRASE")
    enc = serialization.BestAvailableEncryption(pw) if pw else serialization.NoEncryption()
    _write(path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc), 0o600)


def _load_key(path: Path, settings):
    return serialization.load_pem_private_key(path.read_bytes(), password=_passphrase(settings))


def _load_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _ca_cert(subject: x509.Name, issuer: x509.Name, public_key, signing_key, *, days: int, path_length: int | None,
             crl_url: str | None, issuer_url: str | None) -> x509.Certificate:
    now = _utcnow()
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
         .serial_number(x509.random_serial_number())
         .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=days))
         .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
         .add_extension(_ku(cert_sign=True, crl_sign=True), critical=True)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signing_key.public_key()), critical=False))
    if crl_url:
        b = b.add_extension(x509.CRLDistributionPoints([x509.DistributionPoint(
            full_name=[x509.UniformResourceIdentifier(crl_url)], relative_name=None, reasons=None, crl_issuer=None)]),
            critical=False)
    if issuer_url:
        b = b.add_extension(x509.AuthorityInformationAccess([x509.AccessDescription(
            AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier(issuer_url))]), critical=False)
    return b.sign(signing_key, hashes.SHA384())


def sign_root_crl(settings, *, days: int = ROOT_CRL_DAYS, now: datetime | None = None, root_key=None) -> datetime:
    """Operator command: load the root key, sign a fresh root CRL valid ``days`` days into root.crl (the app
    serves and embeds it; it never loads the root key itself). Returns its nextUpdate."""
    d = pki_dir(settings)
    key = root_key if root_key is not None else _load_key(d / "root.key.pem", settings)
    crl = _root_crl(_load_cert(d / "root.pem"), key, days=days, now=now)
    with _locked(d):
        _write(d / "root.crl", crl.public_bytes(serialization.Encoding.DER))
    return crl.next_update_utc


def _root_crl(root: x509.Certificate, key, *, days: int, now: datetime | None = None) -> x509.CertificateRevocationList:
    """An empty CRL of the root (the root issues only the issuing CA; revoking that is a new PKI)."""
    now = now or _utcnow()
    return (x509.CertificateRevocationListBuilder().issuer_name(root.subject)
            .last_update(now - timedelta(seconds=1)).next_update(now + timedelta(days=days))
            .add_extension(x509.CRLNumber(int(now.timestamp())), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA384()))


def root_crl_due(settings, *, now: datetime | None = None) -> bool:
    """Whether root.crl is missing or past half of its validity (``qianli pki init`` then renews it)."""
    path = pki_dir(settings) / "root.crl"
    if not path.exists():
        return True
    crl = x509.load_der_x509_crl(path.read_bytes())
    now = now or _utcnow()
    return now >= crl.last_update_utc + (crl.next_update_utc - crl.last_update_utc) / 2


def init_pki(settings, *, organisation: str = "QianLi 签离") -> tuple[Pki, bool]:
    """Create the PKI if it does not exist yet. Returns (pki, created). Never overwrites."""
    d = pki_dir(settings)
    with _locked(d):
        if (d / "root.pem").exists():
            return load_pki(settings, reload=True), False
        if getattr(settings, "env", "") == "production" and not _passphrase(settings):
            raise KeyProtectionRequired("refusing to create the PKI in production without QIANLI_PKCS12_PASSPHRASE "
                                        "(its private keys would be written unencrypted)")
        base = settings.public_base_url.rstrip("/")
        root_key = ec.generate_private_key(ec.SECP384R1())
        root_name = _name("QianLi Root CA 签离根证书", organisation)
        root = _ca_cert(root_name, root_name, root_key.public_key(), root_key, days=ROOT_DAYS, path_length=1,
                        crl_url=None, issuer_url=None)
        ca_key = ec.generate_private_key(ec.SECP384R1())
        ca = _ca_cert(_name("QianLi Issuing CA 签离签发证书", organisation), root.subject, ca_key.public_key(), root_key,
                      days=CA_DAYS, path_length=0, crl_url=f"{base}/pki/crl/root.crl", issuer_url=f"{base}/pki/root.cer")
        state = {"policy_oid": f"2.25.{uuid.uuid4().int}", "created_at": _utcnow().isoformat(),
                 "note": "policy OID is a UUID-derived OID (ITU-T X.667) naming this deployment's event-certificate policy"}
        # EC P-384 like the root and CA (RFC 3161 tokens with ECDSA: RFC 5816/5753); a token costs ~0.6 ms to
        # sign instead of ~2.9 ms with RSA-3072. PKIs made before keep their RSA TSA key (DevTsa signs with both).
        tsa_key = ec.generate_private_key(ec.SECP384R1())
        pki = Pki(d, settings, root=root, root_key=root_key, ca=ca, ca_key=ca_key, tsa=None, tsa_key=tsa_key,
                  state=state)
        now = _utcnow()
        tb = (x509.CertificateBuilder()
              .subject_name(_name("QianLi Development TSA 签离开发时间戳", organisation))
              .issuer_name(ca.subject).public_key(tsa_key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=TSA_DAYS)))
        tsa = (pki._leaf_extensions(tb, tsa_key.public_key())
               .add_extension(_ku(sign=True, nonrep=True), critical=True)
               .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
               .sign(ca_key, hashes.SHA256()))
        (d / "seals").mkdir(exist_ok=True)
        for name, key in (("root", root_key), ("ca", ca_key), ("tsa", tsa_key)):
            _save_key(d / f"{name}.key.pem", key, settings)
        _write(d / "state.json", json.dumps(state, indent=2).encode())
        _write(d / "ca.pem", ca.public_bytes(serialization.Encoding.PEM))
        _write(d / "tsa.pem", tsa.public_bytes(serialization.Encoding.PEM))
        pki.record_issued(tsa, "tsa")
        _write(d / "root.crl", _root_crl(root, root_key, days=ROOT_CRL_DAYS).public_bytes(serialization.Encoding.DER))
        _write(d / "root.pem", root.public_bytes(serialization.Encoding.PEM))  # last: marks completion
    return load_pki(settings, reload=True), True


def load_pki(settings, *, reload: bool = False) -> Pki:
    """The PKI under var_dir (cached per process). Missing: development/test create it; production refuses."""
    d = pki_dir(settings)
    key = str(d.resolve())
    with _cache_lock:
        if not reload and key in _cache:
            return _cache[key]
    if not (d / "root.pem").exists():
        if getattr(settings, "env", "development") in ("development", "test"):
            return init_pki(settings)[0]
        raise PkiMissing(f"no PKI under {d}; run 'qianli pki init'")
    state = json.loads((d / "state.json").read_text())
    # No root key: the app (web and rq workers) never loads it; the root CRL comes pre-signed (root.crl).
    pki = Pki(d, settings, root=_load_cert(d / "root.pem"), root_key=None,
              ca=_load_cert(d / "ca.pem"), ca_key=_load_key(d / "ca.key.pem", settings),
              tsa=_load_cert(d / "tsa.pem"), tsa_key=_load_key(d / "tsa.key.pem", settings), state=state)
    if not (d / "issued.log").exists():  # a PKI from before issued.log: record what we still know was issued
        with _locked(d):
            if not (d / "issued.log").exists():
                pki.record_issued(pki.tsa, "tsa")
                for seal in sorted((d / "seals").glob("*.pem")):
                    pki.record_issued(_load_cert(seal), "seal")
    with _cache_lock:
        _cache[key] = pki
    return pki


get_pki = load_pki
