"""Append to and verify a case's hash-chained evidence log (storage side of cases.evidence)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cases.evidence import GENESIS_DIGEST, ChainVerification, EvidenceRecord, canonical_json, entry_digest, verify_chain
from qianli.db import utcnow
from qianli.models import EvidenceEntry, ResignationCase

__all__ = ["append_evidence", "case_evidence", "verify_case_chain", "to_record"]


def append_evidence(session: Session, case: ResignationCase, actor: str, action: str,
                    payload: dict[str, Any] | None = None, *, occurred_at: datetime | None = None) -> EvidenceEntry:
    """Add the next link. The case row is locked (PostgreSQL) so two writers can't take one seq.

    ``payload`` must be JSON-serialisable and must never contain secrets (SMS codes, keys).
    """
    payload = dict(payload or {})
    occurred_at = occurred_at or utcnow()
    session.execute(select(ResignationCase.id).where(ResignationCase.id == case.id).with_for_update())
    last = session.execute(
        select(EvidenceEntry.seq, EvidenceEntry.digest).where(EvidenceEntry.case_id == case.id)
        .order_by(EvidenceEntry.seq.desc()).limit(1)
    ).first()
    seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS_DIGEST)
    # Round-trip the payload through canonical JSON types so the stored value digests identically.
    payload = json.loads(canonical_json(payload))
    digest = entry_digest(case.id, seq, occurred_at, actor, action, payload, prev)
    entry = EvidenceEntry(company_id=case.company_id, case_id=case.id, seq=seq, occurred_at=occurred_at,
                          actor=actor, action=action, payload=payload, prev_digest=prev, digest=digest)
    session.add(entry)
    session.flush()
    return entry


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
