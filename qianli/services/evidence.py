"""Append to and verify a case's hash-chained evidence log (storage side of cases.evidence).

Every entry's action is an :class:`~cases.evidence_kinds.EvidenceKind`; :class:`RequestMeta` is
where a request came from, as the evidence records it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Sequence

from sqlalchemy import and_, bindparam, func, insert, select
from sqlalchemy.orm import Session

from cases.evidence import GENESIS_DIGEST, ChainVerification, EvidenceRecord, canonical_json, entry_digest, verify_chain
from cases.evidence_kinds import EvidenceKind
from qianli.db import utcnow
from qianli.models import EvidenceEntry, ResignationCase

__all__ = ["RequestMeta", "append_evidence", "append_case_evidence", "append_case_evidence_many", "NewEntry", "case_evidence", "verify_case_chain", "to_record",
           "employee_view", "EMPLOYEE_HIDDEN_KEYS"]


@dataclass(frozen=True)
class RequestMeta:
    """Where a request came from, for the evidence chain."""

    ip: str = ""
    user_agent: str = ""
    openid: str | None = None

    def as_evidence(self) -> dict[str, Any]:
        return {"ip": self.ip, "user_agent": self.user_agent[:300], "openid": self.openid}


# Built once: the per-call cost of building these expressions showed in the reminder workers' profile.
_LOCK_CASE = select(ResignationCase.id).where(ResignationCase.id == bindparam("case_id")).with_for_update()
_LAST_LINK = (select(EvidenceEntry.seq, EvidenceEntry.digest).where(EvidenceEntry.case_id == bindparam("case_id"))
              .order_by(EvidenceEntry.seq.desc()).limit(1))


def append_evidence(session: Session, case: ResignationCase, actor: str, action: EvidenceKind,
                    payload: dict[str, Any] | None = None, *, occurred_at: datetime | None = None) -> EvidenceEntry:
    """Add the next link. The case row is locked (PostgreSQL) so two writers can't take one seq.

    ``payload`` must be JSON-serialisable and must never contain secrets (SMS codes, keys).
    """
    return append_case_evidence(session, case.id, case.company_id, actor, action, payload, occurred_at=occurred_at)


def append_case_evidence(session: Session, case_id: str, company_id: str, actor: str, action: EvidenceKind,
                         payload: dict[str, Any] | None = None, *, occurred_at: datetime | None = None) -> EvidenceEntry:
    """:func:`append_evidence` for a case known by id and company (no case object needs loading)."""
    try:
        action = EvidenceKind(action)
    except ValueError:
        raise ValueError(f"{action!r} is not an EvidenceKind: add it to cases/evidence_kinds.py "
                         "with its dossier view and zh-CN label") from None
    payload = dict(payload or {})
    occurred_at = occurred_at or utcnow()
    session.execute(_LOCK_CASE, {"case_id": case_id})
    last = session.execute(_LAST_LINK, {"case_id": case_id}).first()
    seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS_DIGEST)
    # Round-trip the payload through canonical JSON types so the stored value digests identically.
    payload = json.loads(canonical_json(payload))
    digest = entry_digest(case_id, seq, occurred_at, actor, action.value, payload, prev)
    entry = EvidenceEntry(company_id=company_id, case_id=case_id, seq=seq, occurred_at=occurred_at,
                          actor=actor, action=action.value, payload=payload, prev_digest=prev, digest=digest)
    session.add(entry)
    session.flush()
    return entry


@dataclass(frozen=True)
class NewEntry:
    """One entry for :func:`append_case_evidence_many`."""

    case_id: str
    company_id: str
    action: EvidenceKind
    payload: dict[str, Any]
    occurred_at: datetime


_INSERT_ENTRIES = insert(EvidenceEntry.__table__)  # type: ignore[arg-type]  # a Table


def append_case_evidence_many(session: Session, actor: str, entries: Sequence[NewEntry]) -> int:
    """:func:`append_case_evidence` for many entries (of many cases) in three statements instead of
    three per entry: lock the cases (PostgreSQL; in id order, so two writers cannot deadlock), read
    each case's last link, insert every entry. A case's entries are chained in the order given.
    Returns the number of entries written."""
    if not entries:
        return 0
    for e in entries:
        EvidenceKind(e.action)  # only known kinds (see append_case_evidence)
    session.flush()  # pending ORM writes (and their entries) first: the statements below bypass the unit of work
    ids = sorted({e.case_id for e in entries})
    session.execute(select(ResignationCase.id).where(ResignationCase.id.in_(ids)).order_by(ResignationCase.id)
                    .with_for_update())
    heads = (select(EvidenceEntry.case_id, func.max(EvidenceEntry.seq).label("seq"))
             .where(EvidenceEntry.case_id.in_(ids)).group_by(EvidenceEntry.case_id).subquery())
    last: dict[str, tuple[int, str]] = {
        c: (seq, digest) for c, seq, digest in session.execute(
            select(EvidenceEntry.case_id, EvidenceEntry.seq, EvidenceEntry.digest)
            .join(heads, and_(EvidenceEntry.case_id == heads.c.case_id, EvidenceEntry.seq == heads.c.seq)))}
    rows: list[dict[str, Any]] = []
    for e in entries:
        seq, prev = last.get(e.case_id, (0, GENESIS_DIGEST))
        seq += 1
        action = EvidenceKind(e.action).value
        payload = json.loads(canonical_json(e.payload))
        digest = entry_digest(e.case_id, seq, e.occurred_at, actor, action, payload, prev)
        rows.append({"company_id": e.company_id, "case_id": e.case_id, "seq": seq, "occurred_at": e.occurred_at,
                     "actor": actor, "action": action, "payload": payload, "prev_digest": prev, "digest": digest})
        last[e.case_id] = (seq, digest)
    session.connection().execute(_INSERT_ENTRIES, rows)  # in list order: a case's ids follow its seq
    return len(rows)


def to_record(e: EvidenceEntry) -> EvidenceRecord:
    return EvidenceRecord(e.case_id, e.seq, e.occurred_at, e.actor, e.action, e.payload, e.prev_digest, e.digest)


def case_evidence(session: Session, case_id: str, company_id: str) -> list[EvidenceEntry]:
    """Entries in stored (insertion) order, which is what the verifier must see."""
    return list(session.scalars(
        select(EvidenceEntry).where(EvidenceEntry.case_id == case_id, EvidenceEntry.company_id == company_id)
        .order_by(EvidenceEntry.id)
    ))


def verify_case_chain(session: Session, case_id: str, company_id: str) -> ChainVerification:
    return verify_chain((to_record(e) for e in case_evidence(session, case_id, company_id)), expected_case_id=case_id)


# What the employee's own timeline leaves out: where HR (and anyone else) connected from, their
# browsers, and how close a failed face attempt came (a hint for someone trying faces). The full
# entries stay in the chain, the HR console and the dossier.
EMPLOYEE_HIDDEN_KEYS = frozenset({"ip", "user_agent", "remote_addr", "client_ip"})
_FAILED_ATTEMPT_KEYS = frozenset({"distance", "max_frame_distance", "threshold"})
_FAILED_ATTEMPT_ACTIONS = frozenset({"face_verification_failed"})


def _strip(value: Any, hidden: frozenset[str]) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v, hidden) for k, v in value.items() if k not in hidden}
    if isinstance(value, list):
        return [_strip(v, hidden) for v in value]
    return value


# Handover tasks are the company's internal work: the employee's timeline shows which task moved and
# when, not the owners' notes, attachments, who was reminded or escalated to (listMyCaseTasks has the rest).
_OFFBOARDING_SHOWN = {
    "offboarding_started": ("departure_type", "last_day", "tasks"),
    "task_completed": ("task_id", "key", "group", "title", "due_date", "on_time"),
    "tasks_cancelled": ("reason", "tasks"),
    "task_reminder_sent": ("task_id", "title", "kind", "day"),
    "task_reminder_failed": ("task_id", "title", "kind", "day"),
    "task_escalated": ("task_id", "title", "due_date", "day"),
}
_OFFBOARDING_TASK_SHOWN = ("task_id", "key", "group", "title", "due_date")


def _offboarding_payload(action: str, payload: dict[str, Any]) -> dict[str, Any]:
    out = {k: payload[k] for k in _OFFBOARDING_SHOWN[action] if k in payload}
    if isinstance(out.get("tasks"), list):
        out["tasks"] = [{k: t[k] for k in _OFFBOARDING_TASK_SHOWN if k in t} for t in out["tasks"] if isinstance(t, dict)]
    return out


def employee_view(entry: EvidenceEntry) -> dict[str, Any]:
    """One chain entry as the employee's timeline shows it (see EMPLOYEE_HIDDEN_KEYS). ``digest`` is
    the stored entry's; the payload shown is a redacted view, so it does not recompute to it."""
    hidden = EMPLOYEE_HIDDEN_KEYS | (_FAILED_ATTEMPT_KEYS if entry.action in _FAILED_ATTEMPT_ACTIONS else frozenset())
    payload = entry.payload or {}
    if entry.action in _OFFBOARDING_SHOWN:
        payload = _offboarding_payload(entry.action, payload)
    return {"seq": entry.seq, "occurred_at": entry.occurred_at, "actor": entry.actor, "action": entry.action,
            "payload": _strip(payload, hidden), "digest": entry.digest, "redacted": True}
