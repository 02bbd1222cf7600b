"""PAdES baseline B-LTA signing with pyHanko: the employee's signature and the company countersignature.

One function, :func:`sign_b_lta`, does both: a visible approval signature in a new field (CAdES
detached, ``ETSI.CAdES.detached``) with a signature timestamp (B-T), the validation data of every
certificate involved (chains, CRLs, OCSP) written into the document security store (B-LT), then a
document timestamp over all of it (B-LTA). The countersignature is an incremental update: the
employee's signature keeps covering its revision and still validates (pyHanko's difference analysis
classifies the later revision as a permitted signature/DSS/timestamp addition).

Validation data is gathered offline from our own PKI (no fetching), so signing does not depend on
the app serving its CRL/OCSP URLs to itself. For a signer certificate our CA issued, the PKI's own
records make the pre-signing check (validity, key usage, revocation) and the data goes into the DSS
of the signed revision; any other certificate, and any TSA but our development one, go through
pyHanko's path validation.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import threading
import weakref
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from asn1crypto import algos, cms, core
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko.sign.fields import SigSeedSubFilter
from pyhanko.sign.general import SigningError, simple_cms_attribute
from pyhanko.sign.signers.pdf_signer import DSSContentSettings, TimestampDSSContentSettings
from pyhanko_certvalidator.registry import SimpleCertificateStore
from pyhanko_certvalidator.util import get_pyca_cryptography_hash

from signing.aio import run_sync
from signing.der import set_of, tlv
from cases.clock import SHANGHAI
from signing.appearance import Appearance, now_text, stamp_style
from signing.pki import EventCredential, Pki, SigningContext, der_to_asn1, key_to_asn1
from signing.tsa import one_http_session

__all__ = ["Appearance", "SignedResult", "sign_b_lta", "event_signer", "KeySigner", "DerCmsSigner", "reserved_size",
           "EmployeeSignature", "sign_employee_letter"]


@dataclass(frozen=True)
class SignedResult:
    pdf: bytes
    field_name: str
    signer_subject: str
    cert_serial: str


class KeySigner(signers.SimpleSigner):
    """pyHanko's SimpleSigner, signing with an already loaded ``cryptography`` key object.

    SimpleSigner re-imports its key from DER for every signature (for RSA that runs the key's
    consistency check, ~100-200 ms); ECDSA and RSA PKCS#1 v1.5 use the loaded key, anything else
    falls back to SimpleSigner.
    """

    def __init__(self, *, key, signing_cert, cert_registry=None):
        super().__init__(signing_cert=signing_cert, signing_key=key_to_asn1(key), cert_registry=cert_registry)
        self._key = key

    def sign_raw(self, data: bytes, digest_algorithm: str) -> bytes:
        try:
            mechanism = self.get_signature_mechanism_for_digest(digest_algorithm).signature_algo
        except ValueError:
            mechanism = None
        hash_algo = get_pyca_cryptography_hash(digest_algorithm)
        if mechanism == "ecdsa" and isinstance(self._key, ec.EllipticCurvePrivateKey):
            return self._key.sign(data, ec.ECDSA(hash_algo))
        if mechanism == "rsassa_pkcs1v15" and isinstance(self._key, rsa.RSAPrivateKey):
            return self._key.sign(data, PKCS1v15(), hash_algo)
        return super().sign_raw(data, digest_algorithm)


_OID = {name: core.ObjectIdentifier(oid).dump() for name, oid in (
    ("message_digest", "1.2.840.113549.1.9.4"), ("signing_certificate_v2", "1.2.840.113549.1.9.16.2.47"),
    ("signed_data", "1.2.840.113549.1.7.2"))}
_CONTENT_TYPE_DATA_ATTR = simple_cms_attribute("content_type", "data").dump()
_ENCAP_DATA = cms.EncapsulatedContentInfo({"content_type": "data"}).dump()
_DIGEST_ALGORITHMS: dict[str, bytes] = {}


class DerCmsSigner(KeySigner):
    """:class:`KeySigner` whose PAdES signature container is assembled from DER parts.

    pyHanko builds the CMS with asn1crypto objects, which re-encode every nested value several times
    (~6 ms of pure Python per signature, a third of a whole B-LTA letter): the signed attributes
    (content type, message digest, signing-certificate-v2) and the SignedData around the signature
    are few fixed layouts, so they are written directly. Byte for byte the structure pyHanko builds
    (tests compare them); any case outside the PAdES layout (CAdES attributes, attribute certificates,
    embedded content, other content types) goes to pyHanko's own code.
    """

    async def signed_attrs(self, data_digest: bytes, digest_algorithm: str, attr_settings=None, content_type="data",
                           use_pades=False, timestamper=None, dry_run=False, is_pdf_sig=True):
        if not (use_pades and is_pdf_sig and content_type == "data" and self.signed_attr_prov_spec is None
                and (attr_settings is None or attr_settings.cades_signed_attrs is None)):
            return await super().signed_attrs(data_digest, digest_algorithm, attr_settings=attr_settings,
                                              content_type=content_type, use_pades=use_pades,
                                              timestamper=timestamper, dry_run=dry_run, is_pdf_sig=is_pdf_sig)
        # what pyHanko's CAdES spec gives at PAdES: content type, message digest, signing-certificate-v2 (RFC 5035,
        # SHA-256: the default algorithm, so not encoded; issuer as a directoryName, and the serial)
        cert = self.signing_cert
        tbs = cert["tbs_certificate"]
        ess_cert_id = tlv(0x30, tlv(0x04, hashlib.sha256(cert.dump()).digest()) + tlv(
            0x30, tlv(0x30, tlv(0xA4, tbs["issuer"].dump())) + tbs["serial_number"].dump()))
        signing_cert_v2 = tlv(0x30, _OID["signing_certificate_v2"] + tlv(0x31, tlv(0x30, tlv(0x30, ess_cert_id))))
        message_digest = tlv(0x30, _OID["message_digest"] + tlv(0x31, tlv(0x04, data_digest)))
        return cms.CMSAttributes.load(set_of([_CONTENT_TYPE_DATA_ATTR, message_digest, signing_cert_v2]))

    def _package_signature(self, *, digest_algorithm: str, cms_version, signed_attrs, signature: bytes,
                           unsigned_attrs, encap_content_info):
        if encap_content_info is not None or self.attribute_certs or cms_version != "v1" \
                or digest_algorithm == "shake256":
            return super()._package_signature(
                digest_algorithm=digest_algorithm, cms_version=cms_version, signed_attrs=signed_attrs,
                signature=signature, unsigned_attrs=unsigned_attrs, encap_content_info=encap_content_info)
        cert = self.signing_cert
        if cert is None:
            raise SigningError("The signer's certificate must be available for SignerInfo assembly to proceed.")
        digest_alg = _DIGEST_ALGORITHMS.get(digest_algorithm)
        if digest_alg is None:
            digest_alg = _DIGEST_ALGORITHMS[digest_algorithm] = algos.DigestAlgorithm(
                {"algorithm": digest_algorithm}).dump()
        tbs = cert["tbs_certificate"]
        signer_info = tlv(0x30, b"".join([
            b"\x02\x01\x01",  # v1: issuer and serial number
            tlv(0x30, tbs["issuer"].dump() + tbs["serial_number"].dump()),
            digest_alg,
            _implicit(0xA0, signed_attrs.dump()),
            self.get_signature_mechanism_for_digest(digest_algorithm).dump(),
            tlv(0x04, signature),
            _implicit(0xA1, unsigned_attrs.dump()) if unsigned_attrs is not None else b"",
        ]))
        # the registry's certificates (without self-signed roots unless embed_roots) and the signer's
        registry = self.cert_registry or ()
        certs = [c.dump() for c in registry if self.embed_roots or c.self_signed == "no"] + [cert.dump()]
        signed_data = tlv(0x30, b"".join([b"\x02\x01\x01", tlv(0x31, digest_alg), _ENCAP_DATA,
                                          set_of(certs, 0xA0), tlv(0x31, signer_info)]))
        return cms.ContentInfo.load(tlv(0x30, _OID["signed_data"] + tlv(0xA0, signed_data)))


def _implicit(tag: int, der: bytes) -> bytes:
    """``der`` (one element) with its identifier octet replaced: IMPLICIT tagging of a SET OF."""
    return bytes((tag,)) + der[1:]


def event_signer(cred: EventCredential, pki: Pki | None = None) -> signers.SimpleSigner:
    chain = [pki.asn1("ca"), pki.asn1("root")] if pki is not None and cred.chain == pki.chain else \
        [der_to_asn1(c) for c in cred.chain]
    return DerCmsSigner(key=cred.key, signing_cert=der_to_asn1(cred.cert),
                        cert_registry=SimpleCertificateStore.from_certs(chain))


def reserved_size(signer: signers.Signer, timestamper, md_algorithm: str = "sha256", *,
                  token_bytes: int | None = None) -> int:
    """Bytes to reserve in /Contents for the signature CMS, instead of pyHanko's dry-run signature.

    The CMS holds the certificates the signer embeds, the signed attributes, the signature value and
    the signature timestamp token (validation data goes to the DSS, outside the CMS). The token's size
    comes from the timestamper's own dummy token (pyHanko caches it per timestamper: one request per
    process), with a 50% margin; 3 KB cover the attributes and a signature value up to RSA-8192.
    Counted twice: /Contents is hex. Too small would fail loudly (pyHanko refuses to write), never
    produce a broken file.
    """
    certs = [signer.signing_cert, *(signer.cert_registry or ())]
    cert_bytes = sum(len(c.dump()) for c in certs if c is not None)
    if token_bytes is None:
        token = asyncio.run(timestamper.async_dummy_response(md_algorithm)) if timestamper is not None else None
        token_bytes = len(token.dump()) if token is not None else 0
    return 2 * (cert_bytes + token_bytes + token_bytes // 2 + 3072)


class _OnePathValidation:
    """The shared timestamper for one signing, validating the TSA's certificate path once.

    pyHanko validates the TSA path before the signature (for the DSS) and again, against the same
    validation context, for the document timestamp; the second result is the first one. Made per
    signing (never shared between threads); everything else goes to the timestamper.
    """

    def __init__(self, timestamper):
        self._inner = timestamper
        self._paths: dict[int, list] = {}

    async def validation_paths(self, validation_context):
        key = id(validation_context)
        if key not in self._paths:
            self._paths[key] = [p async for p in self._inner.validation_paths(validation_context)]
        for path in self._paths[key]:
            yield path

    def __getattr__(self, name):
        return getattr(self._inner, name)


# The document timestamp's DSS update goes in before the timestamp, in its revision (no VRI for it), instead
# of a last revision after it: that revision only added a VRI entry (the TSA is the one that timestamped the
# signature, its chain and CRLs are in the DSS already). The signature's DSS data, with VRI, is unchanged.
_DSS = DSSContentSettings(next_ts_settings=TimestampDSSContentSettings(include_vri=False,
                                                                         update_before_ts=True))


def sign_b_lta(pdf: bytes, *, signer: signers.Signer, pki: Pki, timestamper, field_name: str, page: int,
               box: tuple[int, int, int, int], appearance: Appearance, reason: str, location: str = "中国",
               signer_cert=None) -> bytes:
    """Sign ``pdf`` at PAdES B-LTA in a new visible field; returns the new file (original bytes + updates).

    A signer certificate issued by our own CA (event certificates, seals from ``qianli pki``) takes the
    direct path: its validation data comes from the PKI itself and goes into the DSS of the signed
    revision (see :func:`own_validation_data`). Any other certificate (an imported PKCS#12 seal from
    another CA) goes through pyHanko's pre-signing path validation, as does an external TSA's chain.
    """
    if signer_cert is not None and issued_by_us(pki, signer_cert):
        return run_sync(_sign_direct(pdf, signer=signer, pki=pki, timestamper=timestamper, field_name=field_name,
                                 page=page, box=box, appearance=appearance, reason=reason, location=location,
                                 signer_cert=signer_cert))
    extra_ocsps = [pki.ocsp_for(signer_cert)] if signer_cert is not None else []
    vc = pki.validation_context(extra_ocsps=extra_ocsps)
    meta = signers.PdfSignatureMetadata(
        field_name=field_name, md_algorithm="sha256", reason=reason, location=location,
        subfilter=SigSeedSubFilter.PADES, embed_validation_info=True, use_pades_lta=True,
        validation_context=vc, signer_key_usage={"non_repudiation"}, dss_settings=_DSS,
    )
    timestamper = _OnePathValidation(timestamper) if timestamper is not None else None
    w = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
    pdf_signer = signers.PdfSigner(
        meta, signer=signer, timestamper=timestamper, stamp_style=stamp_style(appearance, box),
        new_field_spec=fields.SigFieldSpec(sig_field_name=field_name, on_page=page, box=box),
    )
    out = io.BytesIO()
    pdf_signer.sign_pdf(w, output=out, bytes_reserved=reserved_size(signer, timestamper))
    return out.getvalue()


class SignerCertificateRefused(ValueError):
    """The signer's certificate may not sign now (revoked, expired, or without non-repudiation)."""


def issued_by_us(pki: Pki, cert) -> bool:
    """Whether ``cert`` was issued (and signed) by our issuing CA."""
    if cert.issuer != pki.ca.subject:
        return False
    try:
        cert.verify_directly_issued_by(pki.ca)
    except Exception:  # noqa: BLE001 - wrong signature or algorithm: not ours
        return False
    return True


def own_validation_data(pki: Pki, signer_cert, *, with_tsa: bool):
    """(certs, CRLs, OCSP responses) for a signer certificate our CA issued, after checking it may sign.

    This is the pre-signing check pyHanko's path validation would make, done from the PKI's own
    records: the chain is root -> issuing CA -> signer (the signature was checked by
    :func:`issued_by_us`; the root's CRL revokes nothing), the certificate is within its validity, carries
    non-repudiation, and its serial is not revoked. The data is what a validator needs later: the
    chain, both CRLs (the CA's covers the TSA certificate too) and a fresh OCSP response for the signer.
    """
    now = datetime.now(timezone.utc)
    if not signer_cert.not_valid_before_utc <= now <= signer_cert.not_valid_after_utc:
        raise SignerCertificateRefused("signer certificate is not valid now")
    try:
        ku = signer_cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        ku = None
    if ku is None or not ku.content_commitment:
        raise SignerCertificateRefused("signer certificate lacks non-repudiation")
    if signer_cert.serial_number in pki.revoked_serials():
        raise SignerCertificateRefused("signer certificate is revoked")
    certs = [der_to_asn1(signer_cert), pki.asn1("ca"), pki.asn1("root")] + ([pki.asn1("tsa")] if with_tsa else [])
    return certs, pki.crls(), [pki.ocsp_for(signer_cert)]


def _is_own_dev_tsa(pki: Pki, timestamper) -> bool:
    from signing.tsa import DevTsa

    return isinstance(timestamper, DevTsa) and timestamper.tsa_cert.dump() == pki.asn1("tsa").dump()


async def _sign_direct(pdf: bytes, *, signer, pki: Pki, timestamper, field_name: str, page: int,
                       box: tuple[int, int, int, int], appearance: Appearance, reason: str, location: str,
                       signer_cert) -> bytes:
    """B-LTA in two revisions: (1) the DSS with the signer's validation data and the signature with its
    timestamp, (2) the document timestamp (with our development TSA its chain and CRL are in the DSS
    already; an external TSA's are validated and added before it, as pyHanko does, reused for a while:
    :func:`tsa_validation_data`)."""
    from pyhanko.sign.signers.pdf_signer import PdfTimeStamper
    from pyhanko.sign.validation.dss import DocumentSecurityStore

    own_tsa = _is_own_dev_tsa(pki, timestamper)
    certs, crls, ocsps = own_validation_data(pki, signer_cert, with_tsa=own_tsa)
    w = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
    DocumentSecurityStore.supply_dss_in_writer(w, None, certs=certs, ocsps=ocsps, crls=crls)
    meta = signers.PdfSignatureMetadata(field_name=field_name, md_algorithm="sha256", reason=reason,
                                        location=location, subfilter=SigSeedSubFilter.PADES)
    pdf_signer = signers.PdfSigner(
        meta, signer=signer, timestamper=timestamper, stamp_style=stamp_style(appearance, box),
        new_field_spec=fields.SigFieldSpec(sig_field_name=field_name, on_page=page, box=box),
    )
    async with one_http_session():  # an HTTP TSA: both timestamps through one session
        token_bytes = await _token_size(timestamper)
        out = io.BytesIO()
        await pdf_signer.async_sign_pdf(w, output=out,
                                        bytes_reserved=reserved_size(signer, None, token_bytes=token_bytes))
        w2 = IncrementalPdfFileWriter(out, strict=False)
        final = io.BytesIO()
        if not own_tsa:  # the TSA chain's validation data before the document timestamp, as pyHanko puts it
            tsa_certs, tsa_ocsps, tsa_crls = await tsa_validation_data(pki, timestamper)
            DocumentSecurityStore.supply_dss_in_writer(w2, None, certs=tsa_certs, ocsps=tsa_ocsps, crls=tsa_crls)
        await PdfTimeStamper(timestamper).async_timestamp_pdf(
            w2, "sha256", output=final, bytes_reserved=2 * (token_bytes + token_bytes // 2 + 1024))
    return final.getvalue()


TSA_DATA_MAX_AGE = timedelta(minutes=10)  # as long as the issuing CA's own CRL is reused (Pki.crl_der)
_tsa_data: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # timestamper -> {PKI key: (until, data)}
_tsa_data_lock = threading.Lock()


async def tsa_validation_data(pki: Pki, timestamper, *, now: datetime | None = None):
    """(certificates, OCSP responses, CRLs) of an external TSA's chain for the DSS, validated by pyHanko.

    What pyHanko's document timestamp with a validation context does (``update_before_ts``): validate the
    TSA's certificate path (from the timestamper's cached dummy token) against our trust roots and the
    TSA roots, hard-fail on revocation, fetching the chain's CRLs and OCSP from the URLs in the
    certificates; then put the path and all that revocation data in the DSS. Done per letter, that
    was a path validation and network fetches every time; the result is reused for the same
    timestamper and PKI until the earliest of: :data:`TSA_DATA_MAX_AGE`, a CRL's or OCSP response's
    nextUpdate, a certificate's notAfter on the path. A failed validation raises, and is not cached.
    """
    now = now or datetime.now(timezone.utc)
    key = (str(pki.dir), pki.root.fingerprint(hashes.SHA256()))
    with _tsa_data_lock:
        found = _tsa_data.get(timestamper, {}).get(key)
    if found is not None and now < found[0]:
        return found[1]
    vc = pki.validation_context()
    paths = [p async for p in timestamper.validation_paths(vc)]
    certs = [c for path in paths for c in path]
    ocsps, crls = list(vc.ocsps), list(vc.crls)
    until = min([now + TSA_DATA_MAX_AGE] + [c["tbs_certificate"]["validity"]["not_after"].native for c in certs]
                + [t for t in (_next_update_crl(c) for c in crls) if t is not None]
                + [t for o in ocsps for t in _next_updates_ocsp(o)])
    data = (certs, ocsps, crls)
    with _tsa_data_lock:
        _tsa_data.setdefault(timestamper, {})[key] = (until, data)
    return data


def _next_update_crl(crl) -> datetime | None:
    return crl["tbs_cert_list"]["next_update"].native


def _next_updates_ocsp(resp) -> list[datetime]:
    basic = resp["response_bytes"]["response"].parsed
    return [r["next_update"].native for r in basic["tbs_response_data"]["responses"]
            if r["next_update"].native is not None]


async def _token_size(timestamper) -> int:
    token = await timestamper.async_dummy_response("sha256")  # pyHanko caches it per timestamper
    return len(token.dump())


def cert_summary(cert) -> tuple[str, str]:
    """(subject as RFC 4514, serial hex) of a cryptography certificate."""
    return cert.subject.rfc4514_string(), format(cert.serial_number, "x")


def pem(cert) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True)
class EmployeeSignature:
    pdf: bytes
    cert_pem: bytes  # the one-use event certificate (its key is gone)
    subject: str
    serial: str
    signed_at: datetime


def sign_employee_letter(pki: Pki, unsigned: bytes, layout, *, signature_png: bytes, name: str, employee_no: str,
                         company: str, timestamper, font_file: str, now: datetime | None = None,
                         context: SigningContext | None = None) -> EmployeeSignature:
    """The employee's signature on the letter, after the identity check: a fresh event certificate for
    this signing, PAdES B-LTA in the employee's field with their handwriting and name, the key dropped.

    The one signing step the service (``qianli.services.signing``), ``qianli pki selftest`` and
    ``bench/sign.py`` all use. ``layout`` is the letter's :class:`~signing.letter.LetterLayout`;
    ``context`` (case id and intent digest) goes into the event certificate.
    """
    now = now or datetime.now(timezone.utc)
    cred = pki.issue_event_credential(name=name, employee_no=employee_no, company=company, context=context)
    subject, serial = cert_summary(cred.cert)
    try:
        signed = sign_b_lta(
            unsigned, signer=event_signer(cred, pki), pki=pki, timestamper=timestamper,
            field_name="employee_signature", page=layout.page, box=layout.employee_box,
            appearance=Appearance(signature_png, f"签署人：{name}（{employee_no}）",
                                  "签署时间：" + now_text(now, SHANGHAI), font_file),
            reason="辞职通知书（劳动合同法第三十七条）", signer_cert=cred.cert)
    finally:
        cred.destroy()  # the event key is used once
    return EmployeeSignature(signed, pem(cred.cert), subject, serial, now)
