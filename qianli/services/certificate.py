"""The certificate of termination (解除劳动合同证明): facts, issue, delivery, the last-day job.

Labor Contract Law art. 50 obliges the employer to issue it when the contract ends;
Implementing Regulations art. 24 names what it states: the contract term, the date of
termination, the position, and the years of service with this employer. The employer may defer
severance until the handover is done, never the certificate, so nothing here looks at handover
tasks. It says nothing adverse: the ground is stated only where it is the employee's own act
(art. 37 notice) or a mutual agreement (art. 36); for a dismissal (art. 39(2), after leaving
without notice) only when the employee asked for it (``state_ground``).

``issue_certificate`` works for any departure type: it reads the facts from the roster and the
case, refuses with 422 ``certificate_facts_missing`` naming each missing fact, renders the
PDF/A, seals it with the company seal (B-LTA, ``seal_with_company``: the same code as the
letter's countersignature), stores it as a case document (kind ``termination_certificate``, so it
is in the dossier with its signature report), records ``termination_certificate_issued`` and tells
the employee (SMS + subscribe message). The scheduler enqueues ``issue_due_certificates`` every
sweep: on the last day the certificate is issued by the system when the facts are complete, or HR
is alerted once to complete them. Services never commit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from cases.clock import beijing_today
from cases.departure import DepartureType
from cases.errors import Conflict, InvalidInput, NotFound
from cases.evidence_kinds import EvidenceKind
from cases.states import CaseState
from qianli.models import Company, Document, Employee, HrAlert, ResignationCase
from qianli.runtime import Runtime
from qianli.services.evidence import append_evidence
from qianli.services.employees import employee_national_id
from qianli.storage import case_documents, read_document, sha256_hex, store_document
from signing.certificate import CERTIFICATE_TITLE, CertificateData, certificate_rows, render_certificate

__all__ = ["DOC_KIND", "FACT_LABELS", "CERTIFICATE_STATES", "CertificateFacts", "IssueOutcome", "termination_date",
           "certificate_facts", "issue_certificate", "latest_certificate", "certificate_document",
           "record_download", "due_certificate_cases", "issue_due_certificates", "issue_certificate_job_body",
           "CERTIFICATE_JOB_FUNC"]

log = logging.getLogger(__name__)

DOC_KIND = "termination_certificate"
CERTIFICATE_JOB_FUNC = "jobs.certificates.issue_certificate_job"
CERTIFICATE_STATES = frozenset({CaseState.APPROVED.value, CaseState.DISMISSED.value})
"""States in which the relationship is ending and the certificate may be issued (reissued also when closed):
a resignation at final approval, a dismissal (art. 39(2)) once decided."""

FACT_LABELS = {
    "contract_term": "劳动合同期限",
    "termination_date": "劳动合同解除日期（最后工作日）",
    "position": "工作岗位",
    "hire_date": "入职日期（计算在本单位工作年限）",
}
"""The facts art. 24 requires, by the name a 422 uses for each."""

_FIX_HINT = {
    "contract_term": "请在花名册中补充合同期限（importRoster 的 合同期限/contract_term 列）",
    "position": "请在花名册中补充职位（importRoster 的 职位/position 列）",
    "hire_date": "请在花名册中补充入职日期（importRoster 的 入职日期/hire_date 列）",
    "termination_date": "该案件尚无确定的最后工作日（终审通过时确定）",
}


def _departure_type(case: ResignationCase) -> str:
    return case.departure_type or DepartureType.RESIGNATION.value


def termination_date(case: ResignationCase) -> date | None:
    """The day the contract ends: the last working day confirmed at final approval (an earlier one only
    by a signed art. 36 addendum); for a resignation not yet confirmed, the day the employee asked for.
    Other departure types record their termination date as ``agreed_last_day``."""
    if case.agreed_last_day is not None:
        return case.agreed_last_day
    return case.requested_last_day if _departure_type(case) == DepartureType.RESIGNATION.value else None


def _ground(departure_type: str, *, state_ground: bool) -> tuple[str, str | None]:
    """(neutral sentence for the certificate, legal basis recorded in the evidence)."""
    if departure_type == DepartureType.RESIGNATION.value:
        return "劳动合同由劳动者依据《中华人民共和国劳动合同法》第三十七条提前通知解除。", "劳动合同法第三十七条"
    if departure_type == DepartureType.AGREEMENT.value:
        return "劳动合同经双方依据《中华人民共和国劳动合同法》第三十六条协商一致解除。", "劳动合同法第三十六条"
    if departure_type == DepartureType.ABSCONDING.value:
        if state_ground:  # only at the employee's request: the article, never an evaluation
            return "劳动合同由用人单位依据《中华人民共和国劳动合同法》第三十九条第二项解除（应劳动者要求载明）。", \
                "劳动合同法第三十九条第二项"
        return "", "劳动合同法第三十九条第二项"
    return "", None


@dataclass(frozen=True)
class CertificateFacts:
    data: CertificateData
    departure_type: str
    legal_basis: str | None
    ground_stated: bool


def _missing_error(missing: list[str]) -> InvalidInput:
    return InvalidInput(
        "certificate_facts_missing",
        "无法出具解除劳动合同证明，缺少：" + "、".join(FACT_LABELS[m] for m in missing),
        errors={"facts": {m: [f"缺少{FACT_LABELS[m]}。{_FIX_HINT[m]}"] for m in missing}},
        details={"missing": missing})


def certificate_facts(session: Session, rt: Runtime, case: ResignationCase, *, issue_date: date | None = None,
                      state_ground: bool = False) -> CertificateFacts:
    """The art. 24 facts of ``case`` or 422 ``certificate_facts_missing`` naming every missing one
    (``errors.facts.<name>``; ``details.missing``)."""
    emp = session.get(Employee, case.employee_id)
    company = session.get(Company, case.company_id)
    end = termination_date(case)
    values: dict[str, Any] = {"contract_term": (emp.contract_term or "").strip(), "termination_date": end,
                              "position": (emp.position or "").strip(), "hire_date": emp.hire_date}
    missing = [name for name in FACT_LABELS if not values[name]]
    if missing:
        raise _missing_error(missing)
    if emp.hire_date > end:
        raise InvalidInput("certificate_facts_invalid", "入职日期晚于劳动合同解除日期，请核对花名册",
                           errors={"facts": {"hire_date": ["入职日期晚于劳动合同解除日期"]}},
                           details={"hire_date": emp.hire_date.isoformat(), "termination_date": end.isoformat()})
    dtype = _departure_type(case)
    clause, basis = _ground(dtype, state_ground=state_ground)
    nid = employee_national_id(rt, emp)
    masked = nid[:6] + "*" * (len(nid) - 10) + nid[-4:] if nid and len(nid) > 10 else None
    data = CertificateData(
        case_id=case.id, company_name=company.name, employee_name=emp.name, employee_no=emp.employee_no,
        national_id_masked=masked, department=(emp.department or "").strip(), position=values["position"],
        hire_date=emp.hire_date, contract_term=values["contract_term"], termination_date=end,
        termination_clause=clause, issue_date=issue_date or beijing_today())
    return CertificateFacts(data, dtype, basis, bool(clause) and dtype == DepartureType.ABSCONDING.value)


@dataclass(frozen=True)
class IssueOutcome:
    document: Document
    created: bool


def latest_certificate(session: Session, case: ResignationCase) -> Document | None:
    docs = case_documents(session, case.id, case.company_id, kind=DOC_KIND)
    return max(docs, key=lambda d: (d.created_at, d.id)) if docs else None


def certificate_document(session: Session, case: ResignationCase) -> Document:
    doc = latest_certificate(session, case)
    if doc is None:
        raise NotFound("certificate_not_issued", "尚未出具解除劳动合同证明")
    return doc


def issue_certificate(session: Session, rt: Runtime, case: ResignationCase, *, actor: str, reissue: bool = False,
                      reason: str = "", state_ground: bool = False, today: date | None = None) -> IssueOutcome:
    """Issue (or return the issued) certificate of ``case``, in the caller's transaction.

    Any departure type. Refused (409) before the termination date or outside the states where the
    relationship is ending; 422 when a fact is unknown. A second call returns the issued document
    (``created`` False) unless ``reissue`` (with a reason): a corrected certificate, the earlier one
    kept. Never waits for the handover."""
    from qianli.services.reminders import notify_employee
    from qianli.services.signing import seal_with_company

    case = session.scalar(select(ResignationCase).where(ResignationCase.id == case.id).with_for_update()
                          .execution_options(populate_existing=True))
    existing = latest_certificate(session, case)
    if existing is not None and not reissue:
        return IssueOutcome(existing, False)
    if reissue and existing is None:
        raise Conflict("certificate_not_issued", "尚未出具解除劳动合同证明，无需重新出具")
    reason = (reason or "").strip()
    if reissue and not reason:
        raise InvalidInput("reissue_reason_required", "重新出具须说明原因（例如更正花名册信息）")
    allowed = CERTIFICATE_STATES | ({CaseState.CLOSED.value} if reissue else set())
    if case.state not in allowed:
        raise Conflict("certificate_not_issuable", "劳动关系尚未到解除阶段，不能出具解除劳动合同证明",
                       details={"state": case.state, "allowed_states": sorted(allowed)})
    today = today or beijing_today()
    end = termination_date(case)
    if end is not None and today < end:
        raise Conflict("certificate_before_last_day", "解除劳动合同证明在劳动合同解除之日（最后工作日）出具",
                       details={"termination_date": end.isoformat(), "today": today.isoformat()})
    facts = certificate_facts(session, rt, case, issue_date=today, state_ground=state_ground)
    unsigned, layout = render_certificate(facts.data)
    company = session.get(Company, case.company_id)
    seal = seal_with_company(rt, company, unsigned, page=layout.page, box=layout.seal_box,
                             caption=f"{company.name} 电子印章", time_label="出具时间：",
                             reason=f"{CERTIFICATE_TITLE}（劳动合同法第五十条）", kind="certificate",
                             failure_code="certificate_seal_failed", failure_message="公司签章暂不可用，请稍后重试")
    emp = session.get(Employee, case.employee_id)
    doc = store_document(session, rt.store, company_id=case.company_id, kind=DOC_KIND,
                         filename=f"解除劳动合同证明-{emp.employee_no}.pdf", content_type="application/pdf",
                         data=seal.pdf, created_by=actor, case_id=case.id, employee_id=case.employee_id,
                         meta={"unsigned_sha256": sha256_hex(unsigned), "seal_cert_serial": seal.cert_serial,
                               "level": "B-LTA", "termination_date": facts.data.termination_date.isoformat(),
                               "issue_date": facts.data.issue_date.isoformat(),
                               "reissue_of": existing.id if existing is not None else None})
    append_evidence(session, case, actor, EvidenceKind.TERMINATION_CERTIFICATE_ISSUED, {
        "document_id": doc.id, "sha256": doc.sha256, "unsigned_sha256": sha256_hex(unsigned), "pades_level": "B-LTA",
        "facts": {label: value for label, value in certificate_rows(facts.data)},
        "termination_date": facts.data.termination_date.isoformat(), "issue_date": facts.data.issue_date.isoformat(),
        "departure_type": facts.departure_type, "legal_basis": facts.legal_basis, "ground_stated": facts.ground_stated,
        "reissue_of": existing.id if existing is not None else None, "reissue_reason": reason if reissue else None,
        "seal_backend": seal.backend, "seal_cert_serial": seal.cert_serial, "seal_cert_subject": seal.cert_subject,
        "signed_at": seal.signed_at.isoformat(),
        "delivery": ["miniprogram", "hr_console", "dossier"]})
    notify_employee(session, rt, case, "termination_certificate_issued",
                    {"termination_date": facts.data.termination_date.isoformat()})
    for alert in session.scalars(select(HrAlert).where(
            HrAlert.case_id == case.id, HrAlert.company_id == case.company_id,
            HrAlert.kind == "certificate_facts_missing", HrAlert.resolved_at.is_(None))):
        alert.resolved_at, alert.resolved_by = seal.signed_at, actor
    session.flush()
    return IssueOutcome(doc, True)


def record_download(session: Session, rt: Runtime, case: ResignationCase, doc: Document, *, actor: str) -> bytes:
    """The certificate's bytes (checked against the stored digest); an employee's download is recorded
    (proof that it reached them)."""
    data = read_document(rt.store, doc)
    if actor.startswith("employee:"):
        append_evidence(session, case, actor, EvidenceKind.TERMINATION_CERTIFICATE_DOWNLOADED,
                        {"document_id": doc.id, "sha256": doc.sha256})
    return data


# ---- on the last day: the scheduler's part ---------------------------------------------------------

def due_certificate_cases(session: Session, *, today: date | None = None, limit: int = 500) -> list[str]:
    """Cases whose termination date has come, with no certificate and no open facts-missing alert."""
    today = today or beijing_today()
    has_cert = exists().where(Document.case_id == ResignationCase.id, Document.kind == DOC_KIND)
    alerted = exists().where(HrAlert.case_id == ResignationCase.id, HrAlert.kind == "certificate_facts_missing",
                             HrAlert.resolved_at.is_(None))
    last_day = func.coalesce(ResignationCase.agreed_last_day, ResignationCase.requested_last_day)
    rows = session.execute(select(ResignationCase).where(
        ResignationCase.state.in_(sorted(CERTIFICATE_STATES)), last_day <= today, ~has_cert, ~alerted)
        .order_by(last_day, ResignationCase.created_at).limit(limit)).scalars()
    out = []
    for case in rows:  # termination_date() is the rule; the SQL above only narrows the candidates
        end = termination_date(case)
        if end is not None and end <= today:
            out.append(case.id)
    return out


def issue_due_certificates(rt: Runtime, *, today: date | None = None) -> int:
    """Enqueue one issuing job per due case (deterministic job id, so a queued one is not doubled)."""
    from rq import Queue

    from qianli.services.reminders import QUEUE

    with rt.session_factory() as session:
        ids = due_certificate_cases(session, today=today)
    if not ids:
        return 0
    q = Queue(QUEUE, connection=rt.redis)
    n = 0
    for case_id in ids:
        job_id = f"certificate-{case_id}"
        job = q.fetch_job(job_id)
        if job is not None and job.get_status(refresh=False) in ("queued", "started", "scheduled", "deferred"):
            continue
        q.enqueue(CERTIFICATE_JOB_FUNC, case_id, job_id=job_id, result_ttl=3600, failure_ttl=7 * 86400,
                  job_timeout=300)
        n += 1
    return n


def issue_certificate_job_body(rt: Runtime, case_id: str) -> dict[str, Any]:
    """What the RQ job does: issue as ``system`` on or after the termination date; when a fact is
    missing, alert HR once (the alert names the facts) and leave the case to them."""
    with rt.session_factory() as session:
        case = session.get(ResignationCase, case_id)
        if case is None or case.state not in CERTIFICATE_STATES:
            return {"status": "skipped", "state": case.state if case is not None else None}
        try:
            out = issue_certificate(session, rt, case, actor="system")
        except InvalidInput as exc:
            session.rollback()
            case = session.get(ResignationCase, case_id)
            emp = session.get(Employee, case.employee_id)
            from qianli.services.alerts import raise_alert

            raise_alert(session, company_id=case.company_id, kind="certificate_facts_missing", case_id=case.id,
                        employee_id=case.employee_id,
                        message=f"{emp.name}（{emp.employee_no}）已到最后工作日，{exc.message}",
                        payload={"code": exc.code, "missing": exc.details.get("missing", [])})
            session.commit()
            return {"status": "facts_missing", "code": exc.code, "missing": exc.details.get("missing", [])}
        except Conflict as exc:
            session.rollback()
            return {"status": "skipped", "code": exc.code}
        session.commit()
        return {"status": "issued" if out.created else "exists", "document_id": out.document.id}

