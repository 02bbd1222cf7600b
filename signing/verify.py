"""Verify every signature in a PDF, offline, against given trust anchors (by default: our root).

For each approval signature: pyHanko's AdES long-term validation (ETSI EN 319 102-1 §5.6.3, the
document timestamps acting as the evidence record), using only the validation data embedded in the
file and the trust anchors passed in: no network. The report gives the signer, the timestamped
signing time, validity, the PAdES baseline level the file reaches for that signature, what the
signature covers and how the file was modified after it, and whether it chains to a trust anchor.
Document timestamps are checked too (pdfsig cannot check them).
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass, field
from datetime import datetime
from collections.abc import Sequence
from typing import Any

from asn1crypto import pem as asn1_pem
from asn1crypto import x509 as asn1_x509

from cases.errors import InvalidInput
from signing.aio import run_sync
from signing.pki import signing_context_of

__all__ = ["SignatureReport", "VerificationReport", "verify_pdf", "load_anchor"]

MAX_REVISIONS = 64


@dataclass
class SignatureReport:
    field_name: str
    kind: str  # "signature" | "document_timestamp"
    signer: str | None = None
    signer_serial: str | None = None
    case_id: str | None = None  # from the event certificate's signing-context extension (QianLi's own)
    intent_sha256: str | None = None  # SHA-256 of the signing intent the certificate was issued after
    signing_time: str | None = None  # from the signature timestamp (or the doc timestamp itself), UTC ISO
    claimed_time: str | None = None  # what the signer's software claimed (/M), not trusted
    intact: bool = False
    valid: bool = False
    trusted: bool = False  # chains to one of the trust anchors
    pades_level: str | None = None  # B-B, B-T, B-LT, B-LTA
    ades_indication: str | None = None  # e.g. PASSED, INDETERMINATE/..., FAILED/...
    coverage: str | None = None  # ENTIRE_FILE or ENTIRE_REVISION
    signed_revision: int | None = None
    total_revisions: int | None = None
    modification_level: str | None = None  # NONE, LTA_UPDATES, FORM_FILLING, ANNOTATIONS, OTHER
    modifications_ok: bool = False
    summary: str | None = None
    error: str | None = None


@dataclass
class VerificationReport:
    ok: bool
    signatures: list[SignatureReport] = field(default_factory=list)
    total_revisions: int = 0
    problem: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_anchor(cert: Any) -> asn1_x509.Certificate:
    """An asn1crypto certificate from PEM/DER bytes, a cryptography certificate or an asn1crypto one."""
    if isinstance(cert, asn1_x509.Certificate):
        return cert
    if hasattr(cert, "public_bytes"):
        from cryptography.hazmat.primitives.serialization import Encoding

        return asn1_x509.Certificate.load(cert.public_bytes(Encoding.DER))
    data = bytes(cert)
    if asn1_pem.detect(data):
        data = asn1_pem.unarmor(data)[2]
    return asn1_x509.Certificate.load(data)


def _spec(anchors, ts_anchors=None):
    from pyhanko.sign.validation.policy_decl import (PdfSignatureValidationSpec, RevinfoOnlineFetchingRule,
                                                     RevocationInfoGatheringSpec, SignatureValidationSpec)
    from pyhanko_certvalidator.context import CertValidationPolicySpec
    from pyhanko_certvalidator.policy_decl import CertRevTrustPolicy, RevocationCheckingPolicy, RevocationCheckingRule
    from pyhanko_certvalidator.registry import SimpleTrustManager

    rule = RevocationCheckingRule.CRL_OR_OCSP_REQUIRED

    def policy(roots):
        return CertValidationPolicySpec(
            trust_manager=SimpleTrustManager.build(trust_roots=roots),
            revinfo_policy=CertRevTrustPolicy(RevocationCheckingPolicy(ee_certificate_rule=rule,
                                                                       intermediate_ca_cert_rule=rule)))

    # Signers must chain to ``anchors``; timestamps may also chain to an external TSA's root (``ts_anchors``).
    return PdfSignatureValidationSpec(SignatureValidationSpec(
        cert_validation_policy=policy(anchors),
        ts_cert_validation_policy=policy(ts_anchors) if ts_anchors and ts_anchors != anchors else None,
        revinfo_gathering_policy=RevocationInfoGatheringSpec(online_fetching_rule=RevinfoOnlineFetchingRule.LOCAL_ONLY)))


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt else None


def _indication(res) -> str:
    sub = getattr(res, "ades_subindic", None)
    if sub is None:
        return "UNKNOWN"
    name = type(sub).__name__  # AdESPassed / AdESIndeterminate / AdESFailure
    label = {"AdESPassed": "PASSED", "AdESIndeterminate": "INDETERMINATE", "AdESFailure": "FAILED"}.get(name, name)
    return label if label == "PASSED" else f"{label}/{getattr(sub, 'name', sub)}"


def verify_pdf(data: bytes, *, trust_roots: list[Any], tsa_roots: Sequence[Any] = ()) -> VerificationReport:
    """Check every signature and document timestamp in ``data``; raises InvalidInput for a non-PDF.

    Signatures must chain to ``trust_roots``; timestamps (signature and document timestamps) to
    ``trust_roots`` or ``tsa_roots`` (an external TSA's root, trusted for timestamps only)."""
    from pyhanko.pdf_utils.misc import PdfReadError
    from pyhanko.pdf_utils.reader import PdfFileReader

    if not data.lstrip()[:5].startswith(b"%PDF-"):
        raise InvalidInput("pdf_invalid", "不是 PDF 文件")
    anchors = [load_anchor(c) for c in trust_roots]
    try:
        reader = PdfFileReader(io.BytesIO(data), strict=False)
        if reader.encrypted and not _open_without_password(reader):
            raise InvalidInput("pdf_encrypted", "PDF 已加密，无法校验；请上传未加密的文件")
        total = reader.xrefs.total_revisions
        sigs = list(reader.embedded_signatures)
    except (PdfReadError, ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
        raise InvalidInput("pdf_invalid", "PDF 文件已损坏，无法读取", details={"error": type(exc).__name__}) from None
    if total > MAX_REVISIONS:
        raise InvalidInput("pdf_too_many_revisions", "PDF 修订次数过多")
    report = VerificationReport(ok=False, total_revisions=total)
    if not sigs:
        report.problem = "no_signatures"
        return report
    doc_ts_revisions = [e.signed_revision for e in sigs if _is_doc_ts(e)]
    ts_anchors = anchors + [load_anchor(c) for c in tsa_roots]
    spec = _spec(anchors, ts_anchors)
    for emb in sigs:
        try:
            rep = _check_doc_ts(emb, ts_anchors, spec) if _is_doc_ts(emb) else _check_signature(emb, spec, doc_ts_revisions)
        except Exception as exc:  # noqa: BLE001 - a broken signature is a result, not a crash
            rep = SignatureReport(field_name=str(emb.field_name), kind="document_timestamp" if _is_doc_ts(emb)
                                  else "signature", error=f"{type(exc).__name__}: {exc}"[:300])
        rep.total_revisions = total
        report.signatures.append(rep)
    report.ok = all(s.valid and s.trusted and s.intact and s.modifications_ok for s in report.signatures)
    if not report.ok:
        report.problem = "invalid_signature"
    return report


def _open_without_password(reader) -> bool:
    """Encrypted with an empty user password (open for everyone) is readable; anything else is not."""
    from pyhanko.pdf_utils.crypt import AuthStatus

    try:
        return reader.decrypt(b"").status != AuthStatus.FAILED
    except Exception:  # noqa: BLE001 - unsupported security handler
        return False


def _is_doc_ts(emb) -> bool:
    return emb.sig_object.get("/Type") == "/DocTimeStamp"


def _mod_fields(rep: SignatureReport, status) -> None:
    cov = getattr(status, "coverage", None)
    rep.coverage = getattr(cov, "name", None)
    lvl = getattr(status, "modification_level", None)
    rep.modification_level = getattr(lvl, "name", None)
    docmdp_ok = getattr(status, "docmdp_ok", None)
    if docmdp_ok is None or rep.kind == "document_timestamp":  # only DSS/timestamp updates may follow
        docmdp_ok = rep.modification_level in ("NONE", "LTA_UPDATES", "FORM_FILLING")
    rep.modifications_ok = bool(docmdp_ok) and rep.coverage in ("ENTIRE_FILE", "ENTIRE_REVISION")


def _check_signature(emb, spec, doc_ts_revisions: list[int]) -> SignatureReport:
    from pyhanko.sign.validation import ades

    rep = SignatureReport(field_name=str(emb.field_name), kind="signature", signed_revision=emb.signed_revision)
    cert = emb.signer_cert
    rep.signer = cert.subject.human_friendly
    rep.signer_serial = format(cert.serial_number, "x")
    context = signing_context_of(cert)
    if context is not None:
        rep.case_id, rep.intent_sha256 = context.case_id, context.intent_sha256
    rep.claimed_time = _iso(emb.self_reported_timestamp)
    res = run_sync(ades.ades_lta_validation(emb, spec))
    status = res.api_status
    rep.ades_indication = _indication(res)
    if status is not None:
        rep.intact, rep.valid, rep.trusted = bool(status.intact), bool(status.valid), bool(status.trusted)
        ts = getattr(status, "timestamp_validity", None)
        rep.signing_time = _iso(getattr(ts, "timestamp", None)) if ts is not None else None
        _mod_fields(rep, status)
        rep.summary = status.summary()
    if rep.ades_indication != "PASSED":
        rep.trusted = rep.trusted and rep.ades_indication.startswith("PASSED")
    has_ts = _has_signature_timestamp(emb)
    has_dss = _has_dss(emb)
    later_doc_ts = any(r > emb.signed_revision for r in doc_ts_revisions)
    if not has_ts:
        rep.pades_level = "B-B"
    elif not has_dss:
        rep.pades_level = "B-T"
    elif later_doc_ts and rep.ades_indication == "PASSED":
        rep.pades_level = "B-LTA"
    else:
        rep.pades_level = "B-LT"
    return rep


def _has_signature_timestamp(emb) -> bool:
    attrs = emb.signer_info["unsigned_attrs"]
    if attrs.native is None:
        return False
    return any(a["type"].native == "signature_time_stamp_token" for a in attrs)


def _has_dss(emb) -> bool:
    from pyhanko.sign.validation.dss import DocumentSecurityStore

    try:
        dss = DocumentSecurityStore.read_dss(emb.reader)
    except Exception:  # noqa: BLE001 - no DSS
        return False
    return bool(dss.certs) and bool(dss.crls or dss.ocsps)


def _check_doc_ts(emb, anchors, spec) -> SignatureReport:
    from pyhanko.sign.validation import async_validate_pdf_timestamp
    from pyhanko.sign.validation.dss import DocumentSecurityStore
    from pyhanko_certvalidator import ValidationContext

    rep = SignatureReport(field_name=str(emb.field_name), kind="document_timestamp", signed_revision=emb.signed_revision)
    kwargs = {"trust_roots": anchors, "allow_fetching": False, "revocation_mode": "soft-fail"}
    try:
        vc = DocumentSecurityStore.read_dss(emb.reader).as_validation_context(kwargs)
    except Exception:  # noqa: BLE001 - no DSS: validate with what the token carries
        vc = ValidationContext(**kwargs)
    # The async form through run_sync: the sync wrapper's asyncio.run fails inside a running loop (e.g. Playwright).
    status = run_sync(async_validate_pdf_timestamp(emb, validation_context=vc))
    rep.intact, rep.valid, rep.trusted = bool(status.intact), bool(status.valid), bool(status.trusted)
    rep.signer = status.signing_cert.subject.human_friendly if status.signing_cert else None
    rep.signing_time = _iso(status.timestamp)
    _mod_fields(rep, status)
    rep.summary = status.summary()
    return rep
