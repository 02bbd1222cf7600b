"""Signing use cases: preview the letter, sign it for the employee (B-LTA), countersign it with the
company seal, verify any PDF. The HTTP layer (api/signing.py) and the CLI call these.

``sign_letter`` in order: idempotency record -> per-request lock -> case row lock and state check ->
render the letter and hash it -> spend the signing intent bound to that hash -> event certificate,
PAdES B-LTA, key dropped -> store the PDF, the Document row, the SigningRequest row, the
``submit_letter`` transition and the evidence entry, all in the caller's transaction. If anything
fails after the intent was spent, the intent is put back (for its remaining lifetime) and nothing
is marked as signed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cases.clock import SHANGHAI, beijing_today
from cases.errors import Conflict, InvalidInput, NotFound, PayloadTooLarge, ServiceUnavailable
from cases.evidence import canonical_json
from cases.evidence_kinds import EvidenceKind
from cases.states import CaseAction, CaseState
from identity.intent import check_signing_intent, spend_signing_intent
from qianli.db import on_commit
from qianli.models import Company, Document, Employee, ResignationCase, SigningRequest
from qianli.observability import observe_signing
from qianli.runtime import Runtime
from qianli.services.cases import apply_action, get_employee_case
from qianli.services.evidence import append_evidence
from qianli.services.identity_trust import assert_ready_to_sign, factor_provenance
from qianli.services.reminders import on_letter_submitted
from qianli.storage import case_documents, read_document, sha256_hex, store_document
from signing import pades
from signing.appearance import check_signature_png, now_text, seal_image, seal_placement
from signing.letter import LetterData, LetterTemplate, render_letter, stamp_font_path
from signing.pki import SigningContext
from signing.seal import seal_signer
from signing.verify import VerificationReport, verify_pdf

__all__ = ["SignOutcome", "CompanySeal", "seal_with_company", "letter_for_case", "preview_letter", "sign_letter", "countersign_case",
           "latest_letter", "verify_document", "SIGNABLE_STATES"]

log = logging.getLogger(__name__)
SIGNABLE_STATES = (CaseState.AWAITING_LETTER.value, CaseState.RETURNED.value)
_IDEMPOTENCY = re.compile(r"^[A-Za-z0-9_\-.:]{8,64}$")


@dataclass(frozen=True)
class SignOutcome:
    document: Document
    request: SigningRequest
    replayed: bool


def letter_for_case(session: Session, case: ResignationCase, *, letter_date: date | None = None) -> LetterData:
    company = session.get(Company, case.company_id)
    emp = session.get(Employee, case.employee_id)
    return LetterData(
        case_id=case.id, company_name=company.name, employee_name=emp.name, employee_no=emp.employee_no,
        department=emp.department, position=emp.position, reason_category=case.reason_category,
        reason_text=case.reason_text or "", requested_last_day=case.requested_last_day,
        earliest_lawful_last_day=case.earliest_lawful_last_day, notice_arrival_date=case.arrival_date,
        source=case.source, probation=case.probation, handover_items=tuple(case.handover_items or ()),
        letter_date=letter_date or beijing_today(), template=LetterTemplate.from_policy(company.policy),
    )


def _signable(case: ResignationCase) -> None:
    if case.state not in SIGNABLE_STATES:
        raise Conflict("letter_not_signable", "当前状态不能签署辞职信", details={"state": case.state})
    if not case.reason_category or case.requested_last_day is None:
        raise Conflict("letter_form_incomplete", "请先填写离职原因和最后工作日",
                       details={"missing": [n for n, v in (("reason_category", case.reason_category),
                                                            ("requested_last_day", case.requested_last_day)) if not v]})


def preview_letter(session: Session, *, employee_id: str, company_id: str, case_id: str) -> tuple[bytes, str]:
    """The unsigned letter and its SHA-256 (what the signing intent binds)."""
    case = get_employee_case(session, case_id, employee_id=employee_id, company_id=company_id)
    _signable(case)
    pdf, _layout = render_letter(letter_for_case(session, case))
    return pdf, sha256_hex(pdf)


def latest_letter(session: Session, case: ResignationCase, kinds=("letter_countersigned", "letter_signed")) -> Document | None:
    docs = case_documents(session, case.id, case.company_id)
    for kind in kinds:
        found = [d for d in docs if d.kind == kind]
        if found:
            return max(found, key=lambda d: d.created_at)
    return None


def _outcome_from(session: Session, req: SigningRequest, *, replayed: bool) -> SignOutcome:
    return SignOutcome(document=session.get(Document, req.document_id), request=req, replayed=replayed)


def _replay(session: Session, *, company_id: str, employee_id: str, case_id: str, key: str) -> SignOutcome | None:
    prior = session.scalar(select(SigningRequest).where(
        SigningRequest.company_id == company_id, SigningRequest.employee_id == employee_id,
        SigningRequest.idempotency_key == key))
    if prior is None:
        return None
    if prior.case_id != case_id:
        raise Conflict("idempotency_key_reused", "该幂等键已用于另一次签署")
    return _outcome_from(session, prior, replayed=True)


def sign_letter(session: Session, rt: Runtime, *, employee_id: str, company_id: str, case_id: str, intent_id: str,
                signature_png: bytes, idempotency_key: str, actor: str) -> SignOutcome:
    if not _IDEMPOTENCY.match(idempotency_key or ""):
        raise InvalidInput("idempotency_key_invalid", "幂等键格式错误（8-64 位字母、数字或 -_.:）")
    replay = _replay(session, company_id=company_id, employee_id=employee_id, case_id=case_id, key=idempotency_key)
    if replay is not None:
        return replay
    check_signature_png(signature_png, max_bytes=rt.settings.signature_png_max_bytes)

    case = get_employee_case(session, case_id, employee_id=employee_id, company_id=company_id)
    # One signing of a case at a time: the case row is locked (PostgreSQL; on SQLite the write
    # transaction holds the database lock). A request with the same key that waited here replays.
    session.refresh(case, with_for_update=True)
    replay = _replay(session, company_id=company_id, employee_id=employee_id, case_id=case_id, key=idempotency_key)
    if replay is not None:
        return replay
    _signable(case)
    employee = session.get(Employee, employee_id)
    assert_ready_to_sign(session, rt, employee)  # a factor may have changed since the intent was issued
    data = letter_for_case(session, case)
    unsigned, layout = render_letter(data)
    letter_sha = sha256_hex(unsigned)
    intent_evidence = check_signing_intent(rt.redis, intent_id, employee_id=employee_id, case_id=case_id,
                                           letter_sha256=letter_sha)
    with observe_signing("employee"):
        outcome = _sign_and_record(session, rt, case, data, unsigned, layout, letter_sha, signature_png,
                                   intent_id, intent_evidence, idempotency_key, actor)
    delay = rt.settings.signing_dev_delay_s
    if delay > 0 and rt.settings.allows_dev_backends:  # development/test hook: widen the crash window
        log.warning("signLetter paused before commit for %.1f s by QIANLI_SIGNING_DEV_DELAY_S (pid %d)", delay,
                    os.getpid())
        time.sleep(delay)
    # Spent once the signature is committed; a signing that fails or dies before leaves it usable.
    on_commit(session, lambda: spend_signing_intent(rt.redis, intent_id))
    return outcome


def _sign_and_record(session, rt, case, data: LetterData, unsigned: bytes, layout, letter_sha: str,
                     signature_png: bytes, intent_id: str, intent_evidence: dict[str, Any], idempotency_key: str,
                     actor: str) -> SignOutcome:
    factors = intent_evidence.get("factors", {})
    # The intent as the evidence records it; its SHA-256 goes into the event certificate (with the case id), so the
    # certificate names the identity checks it was issued after and serves no other case.
    intent = json.loads(canonical_json({
        "id_sha256": hashlib.sha256(intent_id.encode()).hexdigest(), "issued_at": intent_evidence.get("issued_at"),
        "factors": {k: {"at": v.get("at"), "evidence": v.get("evidence")} for k, v in factors.items()},
        "case_id": case.id, "employee_id": case.employee_id, "letter_sha256": letter_sha}))
    intent_sha256 = hashlib.sha256(canonical_json(intent).encode()).hexdigest()
    try:
        sig = pades.sign_employee_letter(
            rt.pki, unsigned, layout, signature_png=signature_png, name=data.employee_name,
            employee_no=data.employee_no, company=data.company_name, timestamper=rt.timestamper,
            font_file=stamp_font_path(str(rt.settings.var_dir / "fonts")), context=SigningContext(case.id, intent_sha256))
    except Exception as exc:  # noqa: BLE001 - TSA down, validation data missing...: nothing is recorded
        log.exception("signing failed for case %s", case.id)
        raise ServiceUnavailable("signing_failed", "签署服务暂不可用，请稍后重试",
                                 details={"error": type(exc).__name__}) from None
    signed, subject, serial, now = sig.pdf, sig.subject, sig.serial, sig.signed_at
    signed_sha = sha256_hex(signed)
    doc = store_document(session, rt.store, company_id=case.company_id, kind="letter_signed",
                         filename=f"辞职通知书-{data.employee_no}.pdf", content_type="application/pdf", data=signed,
                         created_by=actor, case_id=case.id, employee_id=case.employee_id,
                         meta={"letter_sha256": letter_sha, "event_cert_serial": serial, "level": "B-LTA"})
    result = {"document_id": doc.id, "sha256": signed_sha, "letter_sha256": letter_sha, "pades_level": "B-LTA",
              "event_cert_serial": serial, "event_cert_subject": subject, "signed_at": now.isoformat()}
    req = SigningRequest(company_id=case.company_id, employee_id=case.employee_id, case_id=case.id,
                         idempotency_key=idempotency_key, document_id=doc.id, letter_sha256=letter_sha,
                         signed_sha256=signed_sha, result=result)
    session.add(req)
    provenance = factor_provenance(session, rt, session.get(Employee, case.employee_id), at=now)
    append_evidence(session, case, actor, EvidenceKind.LETTER_SIGNED, {
        "identity_provenance": provenance,
        **result, "signature_png_sha256": hashlib.sha256(signature_png).hexdigest(),
        "intent": intent, "intent_sha256": intent_sha256,  # = SHA-256(canonical JSON of "intent"), in the certificate
        "event_cert_pem": sig.cert_pem.decode(),
    })
    apply_action(session, case, CaseAction.SUBMIT_LETTER, actor=actor,
                 payload={"document_id": doc.id, "sha256": signed_sha})
    on_letter_submitted(session, case)  # reminders stop now
    session.flush()
    return SignOutcome(document=doc, request=req, replayed=False)


@dataclass(frozen=True)
class CompanySeal:
    """A PDF with the company's seal signature (PAdES B-LTA) and what the evidence records about it."""

    pdf: bytes
    backend: str
    cert_serial: str
    cert_subject: str
    signed_at: datetime


def seal_with_company(rt: Runtime, company: Company, pdf: bytes, *, page: int, box: tuple[int, int, int, int],
                      caption: str, time_label: str, reason: str, kind: str, failure_code: str,
                      failure_message: str) -> CompanySeal:
    """The company seal (SoftHSM/PKCS#11 or the PKCS#12 seal, see signing.seal) over ``pdf`` as a B-LTA
    signature in field ``company_seal``: the countersignature of the letter and the certificate of
    termination both go through here. TSA or HSM trouble is a 503 ``failure_code``; nothing is recorded."""
    pki = rt.pki
    now = datetime.now(timezone.utc)
    try:
        with observe_signing(kind), seal_signer(rt.settings, pki, company_id=company.id, company_name=company.name,
                                                company_code=company.code) as (signer, info):
            signed = pades.sign_b_lta(
                pdf, signer=signer, pki=pki, timestamper=rt.timestamper,
                field_name="company_seal", page=page, box=box,
                appearance=pades.Appearance(seal_image(company.name), caption, time_label + now_text(now, SHANGHAI),
                                            stamp_font_path(str(rt.settings.var_dir / "fonts"))),
                reason=reason, signer_cert=info.cert)
    except (Conflict, InvalidInput, NotFound):
        raise
    except Exception as exc:  # noqa: BLE001 - HSM or TSA trouble: the caller records nothing either
        log.exception("company seal (%s) failed", kind)
        raise ServiceUnavailable(failure_code, failure_message, details={"error": type(exc).__name__}) from None
    subject, serial = pades.cert_summary(info.cert)
    return CompanySeal(signed, info.backend, serial, subject, now)


def countersign_case(session: Session, rt: Runtime, case: ResignationCase, *, actor: str) -> Document:
    """The company seal over the employee's signed letter (B-LTA again); the employee's signature stays valid."""
    source = latest_letter(session, case, kinds=("letter_signed",))
    if source is None:
        raise Conflict("letter_missing", "该案件还没有员工签名的辞职信")
    data = read_document(rt.store, source)
    if sha256_hex(data) != source.sha256:
        raise Conflict("document_corrupted", "存储的辞职信与登记的摘要不符", details={"document_id": source.id})
    company = session.get(Company, case.company_id)
    page, box = seal_placement(data)
    seal = seal_with_company(rt, company, data, page=page, box=box, caption=f"{company.name} 电子印章",
                             time_label="签收时间：", reason="公司签收（终审通过）", kind="countersign",
                             failure_code="countersign_failed", failure_message="公司签章暂不可用，请稍后重试")
    signed_sha = sha256_hex(seal.pdf)
    doc = store_document(session, rt.store, company_id=case.company_id, kind="letter_countersigned",
                         filename=f"辞职通知书-公司会签-{case.id}.pdf", content_type="application/pdf", data=seal.pdf,
                         created_by=actor, case_id=case.id, employee_id=case.employee_id,
                         meta={"source_document_id": source.id, "seal_cert_serial": seal.cert_serial, "level": "B-LTA"})
    append_evidence(session, case, actor, EvidenceKind.LETTER_COUNTERSIGNED, {
        "document_id": doc.id, "sha256": signed_sha, "source_document_id": source.id, "source_sha256": source.sha256,
        "seal_backend": seal.backend, "seal_cert_serial": seal.cert_serial, "seal_cert_subject": seal.cert_subject,
        "signed_at": seal.signed_at.isoformat(), "pades_level": "B-LTA"})
    session.flush()
    return doc


def verify_document(rt: Runtime, data: bytes) -> VerificationReport:
    if len(data) > rt.settings.verify_max_bytes:
        raise PayloadTooLarge("pdf_too_large", f"文件不能超过 {rt.settings.verify_max_bytes // (1024 * 1024)} MB")
    pki = rt.pki
    return verify_pdf(data, trust_roots=[pki.root_pem], tsa_roots=pki.tsa_roots_pem,
                      max_signatures=rt.settings.verify_max_signatures)
