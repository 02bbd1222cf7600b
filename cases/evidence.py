"""The hash-chained evidence log, as pure functions.

Each entry's digest is SHA-256 over a canonical JSON encoding of (case id, sequence, time, actor,
action, payload, previous digest). Editing any field, deleting an entry or reordering entries
breaks the chain at a point the verifier names. Storage lives elsewhere; this module only
computes and checks.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable, Sequence

__all__ = ["GENESIS_DIGEST", "EvidenceRecord", "ChainVerification", "canonical_json", "entry_digest", "verify_chain"]

GENESIS_DIGEST = "0" * 64


def canonical_json(value: Any) -> str:
    """Stable JSON: sorted keys, no whitespace, UTF-8 kept (so Chinese text digests identically)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_default)


def _default(obj: Any) -> Any:
    if isinstance(obj, datetime):
        return format_time(obj)
    raise TypeError(f"not JSON-serialisable in evidence: {type(obj).__name__}")


def format_time(t: datetime) -> str:
    if t.tzinfo is None:
        raise ValueError("evidence times must be timezone-aware")
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class EvidenceRecord:
    case_id: str
    seq: int
    occurred_at: datetime
    actor: str
    action: str
    payload: dict[str, Any]
    prev_digest: str
    digest: str


def entry_digest(case_id: str, seq: int, occurred_at: datetime, actor: str, action: str,
                 payload: dict[str, Any], prev_digest: str) -> str:
    body = canonical_json({
        "case_id": case_id, "seq": seq, "occurred_at": format_time(occurred_at),
        "actor": actor, "action": action, "payload": payload, "prev": prev_digest,
    })
    return hashlib.sha256(body.encode()).hexdigest()


@dataclass(frozen=True)
class ChainVerification:
    ok: bool
    entries: int
    first_broken_seq: int | None = None
    reason: str | None = None
    head_digest: str | None = None


def verify_chain(records: Iterable[EvidenceRecord], *, expected_case_id: str | None = None) -> ChainVerification:
    """Walk the records in stored order; report the first broken link.

    Detects: an edited entry (its digest no longer matches its content), a deleted entry (a gap
    in sequence numbers or a previous-digest mismatch), reordering (sequence not increasing by one).
    """
    prev = GENESIS_DIGEST
    count = 0
    expected_seq = 1
    recs: Sequence[EvidenceRecord] = list(records)
    for r in recs:
        count += 1
        if expected_case_id is not None and r.case_id != expected_case_id:
            return ChainVerification(False, len(recs), r.seq, "entry belongs to another case")
        if r.seq != expected_seq:
            return ChainVerification(False, len(recs), expected_seq, f"sequence gap or reorder: expected {expected_seq}, found {r.seq}")
        if r.prev_digest != prev:
            return ChainVerification(False, len(recs), r.seq, "previous-digest link broken")
        recomputed = entry_digest(r.case_id, r.seq, r.occurred_at, r.actor, r.action, r.payload, r.prev_digest)
        if recomputed != r.digest:
            return ChainVerification(False, len(recs), r.seq, "entry content does not match its digest")
        prev = r.digest
        expected_seq += 1
    return ChainVerification(True, count, None, None, prev)
