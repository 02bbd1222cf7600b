"""The art. 36 agreement on an earlier last day, as a signed and sealed addendum.

HR proposes an earlier last day at review (``approve_case`` with ``agreed_last_day``); the
employee accepts it only by signing the addendum (``previewAgreementAddendum`` ->
``createSigningIntent`` bound to the addendum's SHA-256 after the same SMS code and face check as
the letter -> ``signAgreementAddendum``). The same transaction seals it with the company seal
(PAdES B-LTA both), stores it with the case (document kind ``agreement_addendum``, so it is in
the dossier with its signature report) and records ``agreement_addendum_signed`` and
``review_last_day_confirmed`` in the evidence chain. Declining needs no signature
(``confirmAgreedLastDay`` with ``accept: false``): the lawful day stands.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cases.clock import SHANGHAI
from cases.errors import Conflict, NotFound, ServiceUnavailable
from cases.evidence_kinds import EvidenceKind
from identity.intent import consume_signing_intent, restore_signing_intent
from qianli.models import Company, Document, EvidenceEntry, ResignationCase
from qianli.runtime import Runtime
from qianli.services.evidence import append_evidence
from qianli.storage import case_documents, sha256_hex, store_document
from signing.addendum import ADDENDUM_TITLE, AddendumData, render_addendum

__all__ = ["addendum_for_case", "preview_addendum", "sign_addendum", "latest_addendum", "EV_ADDENDUM_SIGNED",
           "DOC_KIND"]

log = logging.getLogger(__name__)
EV_ADDENDUM_SIGNED = EvidenceKind.AGREEMENT_ADDENDUM_SIGNED
DOC_KIND = "agreement_addendum"


def _pending_proposal(session: Session, case: ResignationCase) -> EvidenceEntry:
    from qianli.services.review import EV_LAST_DAY_PROPOSED, REVIEW_STATES, pending_agreement

    state, _day = pending_agreement(session, case)
    if case.state not in REVIEW_STATES or state != "pending":
        raise Conflict("no_pending_agreement", "没有待确认的最后工作日")
    entry = session.scalar(select(EvidenceEntry).where(
        EvidenceEntry.case_id == case.id, EvidenceEntry.company_id == case.company_id,
        EvidenceEntry.action == EV_LAST_DAY_PROPOSED).order_by(EvidenceEntry.id.desc()).limit(1))
    assert entry is not None  # pending implies a proposal
    return entry


def addendum_for_case(session: Session, case: ResignationCase) -> AddendumData:
    from datetime import date

    from qianli.models import Employee
    from cases.clock import beijing_today

    proposal = _pending_proposal(session, case)
    company = session.get(Company, case.company_id)
    emp = session.get(Employee, case.employee_id)
    p = proposal.payload
    return AddendumData(
        case_id=case.id, company_name=company.name, company_code=company.code, employee_name=emp.name,
        employee_no=emp.employee_no, notice_arrival_date=case.arrival_date, probation=case.probation,
        earliest_lawful_last_day=case.earliest_lawful_last_day,
        agreed_last_day=date.fromisoformat(p["agreed_last_day"]),
        proposed_by=str(p.get("proposed_by") or proposal.actor), proposed_at=proposal.occurred_at,
        addendum_date=beijing_today())


def _employee_case(session: Session, *, employee_id: str, company_id: str, case_id: str,
                   lock: bool = False) -> ResignationCase:
    from qianli.services.cases import get_employee_case

    case = get_employee_case(session, case_id, employee_id=employee_id, company_id=company_id)
    if lock:
        case = session.scalar(select(ResignationCase).where(ResignationCase.id == case.id).with_for_update()
                              .execution_options(populate_existing=True))
    return case


def preview_addendum(session: Session, *, employee_id: str, company_id: str, case_id: str) -> tuple[bytes, str]:
    """The unsigned addendum and its SHA-256 (what createSigningIntent binds)."""
    case = _employee_case(session, employee_id=employee_id, company_id=company_id, case_id=case_id)
    pdf, _layout = render_addendum(addendum_for_case(session, case))
    return pdf, sha256_hex(pdf)


def latest_addendum(session: Session, case: ResignationCase) -> Document | None:
    docs = [d for d in case_documents(session, case.id, case.company_id) if d.kind == DOC_KIND]
    return max(docs, key=lambda d: d.created_at) if docs else None


def sign_addendum(session: Session, rt: Runtime, *, employee_id: str, company_id: str, case_id: str, intent_id: str,
                  signature_png: bytes, actor: str) -> Document:
    """Employee signature (event certificate, B-LTA) then company seal (B-LTA), in the caller's transaction."""
    from signing.appearance import check_signature_png

    check_signature_png(signature_png, max_bytes=rt.settings.signature_png_max_bytes)
    lock_key = f"qianli:addendum-lock:{employee_id}:{case_id}"
    if not rt.redis.set(lock_key, "1", nx=True, ex=120):
        raise Conflict("signing_in_progress", "签署正在进行中，请稍候")
    try:
        case = _employee_case(session, employee_id=employee_id, company_id=company_id, case_id=case_id, lock=True)
        data = addendum_for_case(session, case)
        unsigned, layout = render_addendum(data)
        sha = sha256_hex(unsigned)
        intent_evidence = consume_signing_intent(rt.redis, intent_id, employee_id=employee_id, case_id=case_id,
                                                 letter_sha256=sha)
        try:
            return _sign_seal_record(session, rt, case, data, unsigned, layout, sha, signature_png, intent_id,
                                     intent_evidence, actor)
        except BaseException:
            restore_signing_intent(rt.redis, rt.settings, intent_id, employee_id=employee_id, case_id=case_id,
                                   letter_sha256=sha, evidence=intent_evidence)
            raise
    finally:
        rt.redis.delete(lock_key)


def _sign_seal_record(session: Session, rt: Runtime, case: ResignationCase, data: AddendumData, unsigned: bytes,
                      layout: Any, sha: str, signature_png: bytes, intent_id: str, intent_evidence: dict[str, Any],
                      actor: str) -> Document:
    from qianli.services.review import EV_LAST_DAY_CONFIRMED
    from signing.appearance import now_text, seal_image
    from signing import pades
    from signing.letter import stamp_font_path
    from signing.seal import seal_signer

    pki = rt.pki
    company = session.get(Company, case.company_id)
    font = stamp_font_path(str(rt.settings.var_dir / "fonts"))
    now = datetime.now(timezone.utc)
    cred = pki.issue_event_credential(name=data.employee_name, employee_no=data.employee_no, company=data.company_name)
    subject, serial = pades.cert_summary(cred.cert)
    try:
        signed = pades.sign_b_lta(
            unsigned, signer=pades.event_signer(cred, pki), pki=pki, timestamper=rt.timestamper,
            field_name="employee_signature", page=layout.page, box=layout.employee_box,
            appearance=pades.Appearance(signature_png, f"乙方：{data.employee_name}（{data.employee_no}）",
                                        "签署时间：" + now_text(now, SHANGHAI), font),
            reason=f"{ADDENDUM_TITLE}（劳动合同法第三十六条）", signer_cert=cred.cert)
        with seal_signer(rt.settings, pki, company_id=company.id, company_name=company.name,
                         company_code=company.code) as (signer, info):
            sealed = pades.sign_b_lta(
                signed, signer=signer, pki=pki, timestamper=rt.timestamper,
                field_name="company_seal", page=layout.page, box=layout.company_box,
                appearance=pades.Appearance(seal_image(company.name), f"甲方：{company.name} 电子印章",
                                            "盖章时间：" + now_text(now, SHANGHAI), font),
                reason=f"{ADDENDUM_TITLE}（甲方盖章）", signer_cert=info.cert)
    except Exception as exc:  # noqa: BLE001 - TSA or seal trouble: nothing is recorded
        log.exception("addendum signing failed for case %s", case.id)
        raise ServiceUnavailable("signing_failed", "签署服务暂不可用，请稍后重试",
                                 details={"error": type(exc).__name__}) from None
    finally:
        cred.destroy()
    seal_subject, seal_serial = pades.cert_summary(info.cert)
    sealed_sha = sha256_hex(sealed)
    doc = store_document(session, rt.store, company_id=case.company_id, kind=DOC_KIND,
                         filename=f"提前离职协议-{data.employee_no}.pdf", content_type="application/pdf", data=sealed,
                         created_by=actor, case_id=case.id, employee_id=case.employee_id,
                         meta={"addendum_sha256": sha, "agreed_last_day": data.agreed_last_day.isoformat(),
                               "event_cert_serial": serial, "seal_cert_serial": seal_serial, "level": "B-LTA"})
    factors = intent_evidence.get("factors", {})
    append_evidence(session, case, actor, EV_ADDENDUM_SIGNED, {
        "document_id": doc.id, "sha256": sealed_sha, "addendum_sha256": sha, "pades_level": "B-LTA",
        "agreed_last_day": data.agreed_last_day.isoformat(),
        "earliest_lawful_last_day": data.earliest_lawful_last_day.isoformat(),
        "parties": {"company": {"name": company.name, "code": company.code},
                    "employee": {"name": data.employee_name, "employee_no": data.employee_no}},
        "event_cert_serial": serial, "event_cert_subject": subject, "event_cert_pem": pades.pem(cred.cert).decode(),
        "signature_png_sha256": hashlib.sha256(signature_png).hexdigest(),
        "intent": {"id_sha256": hashlib.sha256(intent_id.encode()).hexdigest(),
                   "issued_at": intent_evidence.get("issued_at"),
                   "factors": {k: {"at": v.get("at"), "evidence": v.get("evidence")} for k, v in factors.items()}},
        "seal_backend": info.backend, "seal_cert_serial": seal_serial, "seal_cert_subject": seal_subject,
        "signed_at": now.isoformat()})
    append_evidence(session, case, actor, EV_LAST_DAY_CONFIRMED, {
        "agreed_last_day": data.agreed_last_day.isoformat(), "legal_basis": "劳动合同法第三十六条（协商一致）",
        "addendum_document_id": doc.id, "addendum_sha256": sealed_sha})
    case.agreed_last_day = data.agreed_last_day
    session.flush()
    return doc


def addendum_document(session: Session, case: ResignationCase) -> Document:
    doc = latest_addendum(session, case)
    if doc is None:
        raise NotFound("addendum_not_found", "还没有已签署的提前离职协议")
    return doc
