"""The resignation dossier (离职档案): every piece of evidence of one case in one verifiable zip.

Layout of the zip::

    manifest.json               SHA-256 and size of every other member (except the timestamp)
    manifest.json.tsr           RFC 3161 TimeStampResp over SHA-256(manifest.json)
    README.txt                  what is inside and how to check it (zh-CN + English)
    report.pdf                  the human-readable evidence report (Chinese, fonts embedded)
    case/form.json              the case and its resignation form
    case/employee.json          the employee as on the roster (phone and ID masked)
    evidence/chain.jsonl        the hash-chained evidence log, one entry per line
    evidence/chain-verification.json   the chain check at export time
    evidence/anchor.json        the newest anchor of this chain: the anchored head, its Merkle inclusion proof,
                                the anchor's root and the TSA's RFC 3161 token over it (or "anchored": false)
    evidence/chat.json          chat evidence entries (the WeChat message HR recorded)
    evidence/identity.json      identity evidence (WeChat binding, SMS codes, face consent and checks, intents)
    evidence/reminders.json     every reminder scheduled, sent, failed or escalated
    evidence/approvals.json     every approval, return, withdrawal and countersignature
    evidence/case.json          the case's own course: opened, form updated, letter signed, alerts, exports
    evidence/access.json        access revocation, payroll stop, events sent to the company's systems, 权限验证
    evidence/absconding.json    leaving without notice (empty otherwise): the confirmation, the notices and their service (read
                                receipts, postal deliveries), the employee's answers, the union record, the dismissal
    case/absence.json           leaving without notice only: the absent working days, the handbook clause, the
                                notices (deadline, read receipts), postal deliveries, union notifications, answers,
                                the attendance records and approved leave around the absence with their imports
                                (the imported files are under documents/attendance_import/)
    evidence/offboarding.json   handover tasks: generated, completed, cancelled, reminded, escalated; the tasks now
    documents/index.json        every stored document: kind, SHA-256, creation, signature report
    documents/<kind>/<file>     the documents' bytes (signed PDFs, screenshots, ...)
    pki/root.pem                the root certificate, for offline verification of PDFs and timestamp

:func:`verify_dossier` checks, offline: the member set against the manifest (nothing missing,
nothing extra, no duplicates), every SHA-256, the timestamp token (signature, certificate path to
the root, message imprint = SHA-256 of manifest.json, strict structure), the evidence chain
recomputed from ``chain.jsonl``, the anchor (inclusion proof -> root, the TSA token over the root, the
anchored head present in the chain with the same digest), and each signed PDF's signatures again. The root used is the one
given by the caller (``trust_roots``) or else the one inside the dossier, whose fingerprint is
reported so that it can be compared with the company's published one.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
import zlib
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

from asn1crypto import pem, x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import Certificate as CryptographyCertificate
from pyhanko.sign.timestamps import TimeStamper
from pyhanko.sign.timestamps.common_utils import handle_tsp_response
from sqlalchemy import select
from sqlalchemy.orm import Session

from cases.clock import SHANGHAI
from cases.errors import ServiceUnavailable
from cases.evidence import EvidenceRecord, canonical_json, format_time, verify_chain
from cases.evidence_kinds import EVIDENCE_VIEW, DossierView, EvidenceKind
from qianli.models import Company, Document, Employee, OffboardingTask, ResignationCase, WechatBindingEvent
from qianli.runtime import Runtime
from qianli.services.dossier_report import render_report
from qianli.services.employees import employee_national_id, employee_phone
from qianli.services.evidence import append_evidence, case_evidence, to_record
from qianli.services.identity_trust import dossier_identity
from qianli.services.review import chat_notice
from qianli.storage import case_documents, read_document
from signing.aio import run_sync
from signing.tsa import check_timestamp_response
from signing.verify import VerificationReport, verify_pdf

__all__ = ["DOSSIER_FORMAT", "DossierVerification", "TrustServices", "build_dossier", "verify_dossier",
           "trust_services", "classify_action"]

DOSSIER_FORMAT = "qianli-dossier/1"
MANIFEST = "manifest.json"
TIMESTAMP = "manifest.json.tsr"
ROOT_PEM = "pki/root.pem"
ANCHOR = "evidence/anchor.json"
TSA_ROOTS_PEM = "pki/tsa-roots.pem"  # only with an external TSA (QIANLI_TSA_TRUST_ROOTS)
MAX_MEMBERS = 5000
MAX_UNCOMPRESSED = 1024 * 1024 * 1024
PDF_KINDS = ("letter_signed", "letter_countersigned", "agreement_addendum", "termination_certificate",
             "return_to_work_notice", "dismissal_notice")


# ---- trust services (timestamp authority + root) ------------------------------------------------

@dataclass
class TrustServices:
    """What the dossier needs from the PKI: a timestamper, the root certificate and the PDF verifier."""

    timestamper: TimeStamper
    root_pem: bytes
    verify_pdf: Callable[..., VerificationReport] = verify_pdf
    tsa_roots_pem: tuple[bytes, ...] = ()  # an external TSA's root(s): trusted for timestamps only


def trust_services(rt: Runtime) -> TrustServices:
    """The configured TSA and root, from the signing package."""
    pki = rt.pki
    return TrustServices(timestamper=rt.timestamper, root_pem=pki.root_pem,
                         tsa_roots_pem=tuple(pki.tsa_roots_pem))


# ---- classification of evidence ---------------------------------------------------------------

def classify_action(action: str) -> str | None:
    """The dossier view (``evidence/<view>.json``) of an action; None for an action no longer in the vocabulary."""
    try:
        return EVIDENCE_VIEW[EvidenceKind(action)].value
    except ValueError:
        return None


# ---- building -------------------------------------------------------------------------------------

def _entry_json(e) -> dict[str, Any]:
    return {"case_id": e.case_id, "seq": e.seq, "occurred_at": format_time(e.occurred_at), "actor": e.actor,
            "action": e.action, "payload": e.payload, "prev_digest": e.prev_digest, "digest": e.digest}


def _json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, ensure_ascii=False, indent=2, sort_keys=True, default=str) + "\n").encode()


def _iso(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return format_time(value)
    return value.isoformat()


def _mask(value: str | None, keep_start: int, keep_end: int) -> str | None:
    if not value:
        return None
    return value[:keep_start] + "*" * max(0, len(value) - keep_start - keep_end) + value[-keep_end:]


_SAFE_NAME = re.compile(r"[^A-Za-z0-9._\-\u4e00-\u9fff]+")


def _member_name(doc: Document) -> str:
    name = _SAFE_NAME.sub("_", doc.filename).strip("._") or "file"
    return f"documents/{doc.kind}/{doc.id}-{name[:100]}"


def _pdf_report(services: TrustServices, data: bytes) -> dict[str, Any]:
    roots = [_load_cert(services.root_pem)]
    tsa_roots = [_load_cert(p) for p in services.tsa_roots_pem]
    try:
        report = services.verify_pdf(data, trust_roots=roots, tsa_roots=tsa_roots)
    except Exception as exc:  # noqa: BLE001 - a broken document is reported, not fatal to the export
        return {"checked": True, "ok": False, "error": f"{type(exc).__name__}: {exc}"}
    return {"checked": True, "ok": report.ok, "result": json.loads(json.dumps(report.to_dict(), default=str))}


def _timestamp(services: TrustServices, manifest_bytes: bytes) -> bytes:
    """Ask the TSA for a token over SHA-256(manifest); keep the whole TimeStampResp."""
    digest = hashlib.sha256(manifest_bytes).digest()
    nonce, req = services.timestamper.request_cms(digest, "sha256")
    try:
        resp = run_sync(services.timestamper.async_request_tsa_response(req))
        handle_tsp_response(resp, nonce)  # status granted and our nonce
    except Exception as exc:  # noqa: BLE001 - any TSA failure is the same outcome for the caller
        raise ServiceUnavailable("tsa_unavailable", "时间戳服务暂不可用", details={"error": type(exc).__name__}) from exc
    return resp.dump()


def build_dossier(session: Session, rt: Runtime, case: ResignationCase, *, actor: str = "system",
                  services: TrustServices | None = None, now: datetime | None = None) -> bytes:
    """The dossier of ``case`` as zip bytes. Appends a ``dossier_exported`` evidence entry (flushed,
    committed by the caller) naming the manifest's and the zip's SHA-256."""
    services = services or trust_services(rt)
    now = now or datetime.now(timezone.utc)
    store = rt.store
    company = session.get(Company, case.company_id)
    employee = session.get(Employee, case.employee_id)
    entries = case_evidence(session, case.id, case.company_id)
    chain = verify_chain((to_record(e) for e in entries), expected_case_id=case.id)
    entry_dicts = [_entry_json(e) for e in entries]

    members: dict[str, bytes] = {}
    members["case/form.json"] = _json_bytes({
        "case_id": case.id, "company": {"id": company.id, "code": company.code, "name": company.name},
        "state": case.state, "source": case.source, "notice_arrived_at": _iso(case.notice_arrived_at),
        "arrival_date": _iso(case.arrival_date), "probation": case.probation,
        "reason_category": case.reason_category, "reason_text": case.reason_text,
        "requested_last_day": _iso(case.requested_last_day), "earliest_lawful_last_day": _iso(case.earliest_lawful_last_day),
        "agreed_last_day": _iso(case.agreed_last_day), "handover_items": case.handover_items,
        "letter_due_date": _iso(case.letter_due_date), "dates_provisional": case.dates_provisional,
        "form_submitted_at": _iso(case.form_submitted_at), "letter_submitted_at": _iso(case.letter_submitted_at),
        "created_by": case.created_by, "created_at": _iso(case.created_at),
    })
    notice = chat_notice(session, case)
    notice_json = json.loads(json.dumps(notice, default=_iso)) if notice is not None else None
    members["case/chat-notice.json"] = _json_bytes({"chat_notice": notice_json})
    identity_summary = dossier_identity(session, rt, case)
    members["evidence/identity-provenance.json"] = _json_bytes(identity_summary)
    members["case/employee.json"] = _json_bytes({
        "id": employee.id, "employee_no": employee.employee_no, "name": employee.name,
        "department": employee.department, "position": employee.position, "hire_date": _iso(employee.hire_date),
        "probation_end": _iso(employee.probation_end), "contract_term": employee.contract_term,
        "phone_masked": _mask(employee_phone(rt, employee), 3, 4),
        "national_id_masked": _mask(employee_national_id(rt, employee), 6, 4),
        "wechat_openid": employee.wechat_openid,
    })
    members["evidence/chain.jsonl"] = "".join(canonical_json(d) + "\n" for d in entry_dicts).encode()
    from qianli.services.anchors import case_anchor_proof

    anchor_proof = case_anchor_proof(session, case.id) or {
        "format": "qianli-anchor-proof/1", "case_id": case.id, "anchored": False,
        "note": "not anchored yet: the scheduler anchors grown chains every QIANLI_ANCHOR_INTERVAL_S"}
    members[ANCHOR] = _json_bytes(anchor_proof)
    members["evidence/chain-verification.json"] = _json_bytes({
        "ok": chain.ok, "entries": chain.entries, "first_broken_seq": chain.first_broken_seq, "reason": chain.reason,
        "head_digest": chain.head_digest, "checked_at": format_time(now)})
    by_category: dict[str, list[dict[str, Any]]] = {view.value: [] for view in DossierView}
    for d in entry_dicts:
        cat = classify_action(d["action"])
        if cat:
            by_category[cat].append(d)
    bindings = session.scalars(select(WechatBindingEvent).where(
        WechatBindingEvent.company_id == case.company_id, WechatBindingEvent.employee_id == case.employee_id)
        .order_by(WechatBindingEvent.id)).all()
    members["evidence/chat.json"] = _json_bytes({"entries": by_category["chat"]})
    members["evidence/identity.json"] = _json_bytes({
        "entries": by_category["identity"],
        "wechat_bindings": [{"action": b.action, "openid": b.openid, "actor": b.actor, "reason": b.reason,
                             "ip": b.ip, "occurred_at": _iso(b.occurred_at)} for b in bindings]})
    members["evidence/reminders.json"] = _json_bytes({"entries": by_category["reminders"]})
    members["evidence/approvals.json"] = _json_bytes({"entries": by_category["approvals"]})
    members["evidence/case.json"] = _json_bytes({"entries": by_category["case"]})
    members["evidence/access.json"] = _json_bytes({"entries": by_category["access"]})
    absence = _absence_member(session, rt, case)
    if absence is not None:
        members["case/absence.json"] = _json_bytes(absence)
    members["evidence/offboarding.json"] = _json_bytes({"entries": by_category["offboarding"],
                                                        "tasks": _offboarding_tasks(session, case)})
    for view in DossierView:  # every view has its member (absconding, access, ...), empty when nothing is in it
        members.setdefault(f"evidence/{view.value}.json", _json_bytes({"entries": by_category[view.value]}))

    doc_index = []
    pdf_reports: list[dict[str, Any]] = []
    for doc in case_documents(session, case.id, case.company_id):
        if doc.kind == "dossier":
            continue
        data = read_document(store, doc)
        name = _member_name(doc)
        members[name] = data
        item = {"id": doc.id, "kind": doc.kind, "filename": doc.filename, "content_type": doc.content_type,
                "size": doc.size, "sha256": doc.sha256, "created_at": _iso(doc.created_at), "created_by": doc.created_by,
                "member": name, "meta": doc.meta}
        if doc.kind in PDF_KINDS or (doc.content_type == "application/pdf" and data[:5] == b"%PDF-"
                                     and b"/ByteRange" in data):
            report = _pdf_report(services, data)
            item["signature_report"] = report
            pdf_reports.append({"member": name, "kind": doc.kind, **report})
        doc_index.append(item)
    for item in ((absence or {}).get("attendance") or {}).get("imports", []):  # the attendance files themselves
        doc = session.get(Document, item["document_id"]) if item.get("document_id") else None
        if doc is None or doc.company_id != case.company_id:
            continue
        name = _member_name(doc)
        members[name] = read_document(store, doc)
        doc_index.append({"id": doc.id, "kind": doc.kind, "filename": doc.filename, "content_type": doc.content_type,
                          "size": doc.size, "sha256": doc.sha256, "created_at": _iso(doc.created_at),
                          "created_by": doc.created_by, "member": name, "meta": doc.meta})
    members["documents/index.json"] = _json_bytes({"documents": doc_index})
    members[ROOT_PEM] = services.root_pem
    if services.tsa_roots_pem:
        members[TSA_ROOTS_PEM] = b"".join(services.tsa_roots_pem)

    root_cert = _load_cert(services.root_pem)
    members["report.pdf"] = render_report(
        company=company, case=case, employee=employee, entries=entry_dicts, chain=chain, documents=doc_index,
        pdf_reports=pdf_reports, root_sha256=root_cert.sha256.hex(), generated_at=now,
        chat_notice=notice_json, identity=identity_summary, anchor=anchor_proof)
    members["README.txt"] = _readme(case, root_cert.sha256.hex(),
                                    [_load_cert(p).sha256.hex() for p in services.tsa_roots_pem]).encode()

    manifest = {
        "format": DOSSIER_FORMAT, "case_id": case.id, "company_code": company.code, "generated_at": format_time(now),
        "generated_by": actor, "chain_head": chain.head_digest, "chain_entries": chain.entries,
        "root_sha256": root_cert.sha256.hex(),
        "files": [{"path": n, "sha256": hashlib.sha256(b).hexdigest(), "size": len(b)} for n, b in sorted(members.items())],
    }
    manifest_bytes = _json_bytes(manifest)
    tsr = _timestamp(services, manifest_bytes)

    buf = io.BytesIO()
    stamp = now.astimezone(SHANGHAI).timetuple()[:6]
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in [(MANIFEST, manifest_bytes), (TIMESTAMP, tsr), *sorted(members.items())]:
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    out = buf.getvalue()
    append_evidence(session, case, actor, EvidenceKind.DOSSIER_EXPORTED, {
        "manifest_sha256": hashlib.sha256(manifest_bytes).hexdigest(), "zip_sha256": hashlib.sha256(out).hexdigest(),
        "members": len(members) + 2, "chain_head": chain.head_digest, "chain_entries": chain.entries})
    return out


def _absence_member(session: Session, rt: Runtime, case: ResignationCase) -> dict[str, Any] | None:
    """A departure without notice: the confirmed absence, both notices with their service (read
    receipts, postal deliveries), the union notifications and the employee's answers (None for a
    resignation)."""
    from qianli.models import AbsenceCase
    from qianli.services.absconding import absence_detail

    if session.get(AbsenceCase, case.id) is None:
        return None
    return json.loads(json.dumps(absence_detail(session, rt, case), default=_iso))


def _readme(case: ResignationCase, root_sha256: str, tsa_root_sha256s: list[str] | None = None) -> str:
    tsa = "".join(f"""
时间戳机构根证书 SHA-256 / TSA root certificate SHA-256 ({TSA_ROOTS_PEM}; trusted for timestamps only):
  {fp}
""" for fp in tsa_root_sha256s or [])
    return f"""离职档案 / Resignation dossier — case {case.id}

本档案由 QianLi 签离生成。manifest.json 列出其余每个文件的 SHA-256；manifest.json.tsr 是对
manifest.json 的 RFC 3161 可信时间戳。任何文件被改动、增加或删除，校验都会失败。

校验 / Verify:
  qianli dossier verify THIS.zip [--root ROOT.pem]
  openssl ts -verify -in manifest.json.tsr -data manifest.json -CAfile pki/root.pem
  sha256sum -c  (compare with manifest.json "files")

根证书 SHA-256 / root certificate SHA-256 (compare with the company's published value):
  {root_sha256}
""" + tsa


# ---- verification -------------------------------------------------------------------------------

@dataclass
class DossierVerification:
    ok: bool
    problems: list[str] = field(default_factory=list)
    case_id: str | None = None
    members: int = 0
    timestamp_time: str | None = None
    tsa_subject: str | None = None
    trust_source: str | None = None  # "given" or "dossier"
    root_sha256: str | None = None
    chain: dict[str, Any] = field(default_factory=dict)
    anchor: dict[str, Any] = field(default_factory=dict)
    signatures: list[dict[str, Any]] = field(default_factory=list)

    @property
    def reason(self) -> str | None:
        return self.problems[0] if self.problems else None

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "reason": self.reason}


def _load_cert(data: bytes) -> x509.Certificate:
    if pem.detect(data):
        _, _, data = pem.unarmor(data)
    return x509.Certificate.load(data)


def _load_certs(items: Iterable[Any]) -> list[x509.Certificate]:
    out = []
    for item in items:
        if isinstance(item, x509.Certificate):
            out.append(item)
        elif isinstance(item, CryptographyCertificate):
            out.append(x509.Certificate.load(item.public_bytes(Encoding.DER)))
        elif isinstance(item, (bytes, bytearray)):
            out.append(_load_cert(bytes(item)))
        else:  # a path
            out.append(_load_cert(Path(item).read_bytes()))
    return out


def _check_timestamp(tsr_bytes: bytes, manifest_bytes: bytes, roots: list[x509.Certificate],
                     result: DossierVerification, *, imprint: bytes | None = None) -> None:
    """Check a TimeStampResp over SHA-256(``manifest_bytes``), or over the SHA-256 value ``imprint`` if given."""
    check = check_timestamp_response(tsr_bytes, roots, data=manifest_bytes if imprint is None else None, imprint=imprint)
    result.problems.extend(check.problems)
    if check.time is not None:
        result.timestamp_time = check.time
    if check.tsa_subject is not None:
        result.tsa_subject = check.tsa_subject


def _check_chain(data: bytes, case_id: str | None, manifest: dict[str, Any], result: DossierVerification) -> None:
    records = []
    try:
        for line in data.decode("utf-8").splitlines():
            if not line.strip():
                continue
            d = json.loads(line)
            occurred = datetime.strptime(d["occurred_at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
            records.append(EvidenceRecord(d["case_id"], d["seq"], occurred, d["actor"], d["action"], d["payload"],
                                          d["prev_digest"], d["digest"]))
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        result.problems.append(f"evidence chain: unreadable ({type(exc).__name__})")
        return
    v = verify_chain(records, expected_case_id=case_id)
    result.chain = {"ok": v.ok, "entries": v.entries, "first_broken_seq": v.first_broken_seq, "reason": v.reason,
                    "head_digest": v.head_digest}
    if not v.ok:
        result.problems.append(f"evidence chain: broken at entry {v.first_broken_seq}: {v.reason}")
    elif v.head_digest != manifest.get("chain_head") or v.entries != manifest.get("chain_entries"):
        result.problems.append("evidence chain: head does not match the manifest")


def _check_anchor(data: bytes, chain_jsonl: bytes, case_id: str | None, roots: list[x509.Certificate],
                  result: DossierVerification) -> None:
    from qianli.services.anchors import verify_anchor_proof

    try:
        proof = json.loads(data)
        digests = {int(d["seq"]): d["digest"] for d in map(json.loads, filter(str.strip, chain_jsonl.decode().splitlines()))}
    except (ValueError, KeyError, TypeError) as exc:
        result.problems.append(f"{ANCHOR}: unreadable ({type(exc).__name__})")
        return
    if not isinstance(proof, dict) or proof.get("case_id") != case_id:
        result.problems.append(f"{ANCHOR}: not the anchor proof of this case")
        return
    if proof.get("anchored") is False:
        result.anchor = {"present": True, "anchored": False}
        return
    problems = verify_anchor_proof(proof, trust_roots_der=[r.dump() for r in roots], chain_digests=digests)
    result.problems += problems
    anchor = proof.get("anchor") or {}
    result.anchor = {"present": True, "anchored": True, "ok": not problems, "anchor_id": anchor.get("id"),
                     "root": anchor.get("root"), "timestamped_at": anchor.get("timestamped_at"),
                     "anchored_seq": (proof.get("leaf") or {}).get("seq"), "chain_entries": len(digests)}


def verify_dossier(data: bytes, *, trust_roots: Iterable[Any] | None = None,
                   verify_pdf: Callable[..., VerificationReport] = verify_pdf) -> DossierVerification:
    """Check a dossier offline. Never raises for a bad dossier: the result says what is wrong."""
    result = DossierVerification(ok=False)
    problems = result.problems
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        problems.append(f"not a readable zip file ({exc})")
        return result
    names = [i.filename for i in infos]
    if len(names) > MAX_MEMBERS or sum(i.file_size for i in infos) > MAX_UNCOMPRESSED:
        problems.append("dossier too large")
        return result
    if len(set(names)) != len(names):
        problems.append("duplicate member names in the zip")
        return result
    result.members = len(names)

    def read(name: str) -> bytes | None:
        try:
            return zf.read(name)
        except (zipfile.BadZipFile, zlib.error, KeyError, OSError, EOFError, ValueError, NotImplementedError) as exc:
            problems.append(f"{name}: cannot be read ({type(exc).__name__}: {exc})")
            return None

    if MANIFEST not in names or TIMESTAMP not in names:
        problems.append("manifest.json or manifest.json.tsr is missing")
        return result
    manifest_bytes = read(MANIFEST)
    tsr_bytes = read(TIMESTAMP)
    if manifest_bytes is None or tsr_bytes is None:
        return result
    try:
        manifest = json.loads(manifest_bytes)
        files = {f["path"]: f for f in manifest["files"]}
        if manifest.get("format") != DOSSIER_FORMAT or len(files) != len(manifest["files"]):
            raise ValueError("format")
        if not all(isinstance(f.get("sha256"), str) and isinstance(f.get("size"), int) for f in files.values()):
            raise ValueError("file entry")
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        problems.append("manifest.json is not a valid dossier manifest")
        return result
    result.case_id = manifest.get("case_id")

    # 1. members against the manifest
    present = set(names) - {MANIFEST, TIMESTAMP}
    for missing in sorted(set(files) - present):
        problems.append(f"{missing}: listed in the manifest but missing")
    for extra in sorted(present - set(files)):
        problems.append(f"{extra}: not listed in the manifest (added)")
    contents: dict[str, bytes] = {}
    for name in sorted(present & set(files)):
        body = read(name)
        if body is None:
            continue
        if hashlib.sha256(body).hexdigest() != files[name]["sha256"] or len(body) != files[name]["size"]:
            problems.append(f"{name}: SHA-256 does not match the manifest (changed)")
            continue
        contents[name] = body

    # 2. the timestamp over the manifest, against the given roots or the dossier's own root
    roots: list[x509.Certificate] = []
    tsa_roots: list[x509.Certificate] = []  # trusted for timestamps only
    if trust_roots is not None:
        try:
            roots = _load_certs(trust_roots)
        except Exception:  # noqa: BLE001
            problems.append("the given trust roots are not certificates")
            return result
        result.trust_source = "given"
    elif ROOT_PEM in contents:
        try:
            roots = [_load_cert(contents[ROOT_PEM])]
        except Exception:  # noqa: BLE001
            problems.append(f"{ROOT_PEM}: not a certificate")
        if TSA_ROOTS_PEM in contents:
            try:
                tsa_roots = [x509.Certificate.load(der) for _, _, der in pem.unarmor(contents[TSA_ROOTS_PEM], multiple=True)]
            except Exception:  # noqa: BLE001
                problems.append(f"{TSA_ROOTS_PEM}: not certificates")
        result.trust_source = "dossier"
    else:
        problems.append(f"{ROOT_PEM}: no root certificate to check the timestamp against")
    if roots:
        result.root_sha256 = roots[0].sha256.hex()
        _check_timestamp(tsr_bytes, manifest_bytes, roots + tsa_roots, result)

    # 3. the evidence chain, recomputed
    if "evidence/chain.jsonl" in contents:
        _check_chain(contents["evidence/chain.jsonl"], result.case_id, manifest, result)
    elif "evidence/chain.jsonl" in files and not any(p.startswith("evidence/chain.jsonl") for p in problems):
        problems.append("evidence/chain.jsonl: missing")

    # 3b. the anchor: the chain's head as timestamped outside the employer's reach
    if ANCHOR in contents and roots:
        _check_anchor(contents[ANCHOR], contents.get("evidence/chain.jsonl", b""), result.case_id,
                      roots + tsa_roots, result)
    elif ANCHOR not in files and not problems:
        result.anchor = {"present": False}  # dossiers made before anchoring existed

    # 4. signed PDFs, verified again
    try:
        index = json.loads(contents.get("documents/index.json", b"{}")).get("documents", [])
    except (ValueError, AttributeError, RecursionError):
        index = []
    for item in index:
        if "signature_report" not in item or item.get("member") not in contents:
            continue
        entry = {"member": item["member"], "kind": item.get("kind")}
        if not roots:
            entry.update(checked=False)
        else:
            others = roots[1:] + tsa_roots  # given roots beyond the first, or the dossier's TSA roots: timestamps
            report = _pdf_report(TrustServices(None, pem.armor("CERTIFICATE", roots[0].dump()), verify_pdf,
                                               tuple(pem.armor("CERTIFICATE", c.dump()) for c in others)),
                                 contents[item["member"]])
            entry.update(report)
            if report.get("checked") and not report.get("ok"):
                problems.append(f"{item['member']}: signature verification failed")
            for sig in (report.get("result") or {}).get("signatures") or []:
                if sig.get("case_id") not in (None, result.case_id):  # an event certificate issued for another case
                    problems.append(f"{item['member']}: signed with a certificate issued for case {sig['case_id']}")
        result.signatures.append(entry)

    result.ok = not problems
    return result


def _offboarding_tasks(session: Session, case: ResignationCase) -> list[dict[str, Any]]:
    """The case's handover tasks as they stand at export (the evidence entries record each step)."""
    tasks = session.scalars(select(OffboardingTask).where(OffboardingTask.case_id == case.id)
                            .order_by(OffboardingTask.due_date, OffboardingTask.item_key)).all()
    return [{"id": t.id, "key": t.item_key, "source": t.source, "template_version": t.template_version,
             "group": t.group, "title": t.title, "owner_role": t.owner_role, "owner_user_id": t.owner_user_id,
             "owner_department": t.owner_department, "due_date": t.due_date.isoformat(),
             "due_provisional": t.due_provisional, "status": t.status, "completed_at": _iso(t.completed_at),
             "completed_by": t.completed_by, "note": t.note, "document_id": t.document_id,
             "cancelled_at": _iso(t.cancelled_at), "cancel_reason": t.cancel_reason} for t in tasks]
