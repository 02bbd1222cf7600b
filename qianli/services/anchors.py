"""Anchors of the evidence chains: make them (the scheduler), export them, prove a case's inclusion,
and check them against the chains as stored now (see cases.anchor for the tree).

An anchor is made when some case chain grew since the previous one: a Merkle tree over the previous
anchor and those chains' heads, its root timestamped by the configured TSA (RFC 3161; message imprint =
the root). The anchors and their leaves live in their own append-only tables. Whoever keeps the
exported anchors (or a dossier) can later show that a chain was rewritten: its entry at an anchored
sequence number no longer has the anchored digest, or an anchor's root no longer matches its token.
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Iterator

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cases.anchor import (GENESIS_DIGEST, AnchorLeaf, case_leaf, inclusion_proof, merkle_root, previous_anchor_leaf,
                          verify_inclusion)
from cases.errors import ServiceUnavailable
from qianli.db import utcnow
from qianli.models import ChainAnchor, ChainAnchorLeaf, EvidenceEntry
from qianli.runtime import Runtime
from signing.aio import run_sync

__all__ = ["AnchorCheck", "make_anchor", "anchor_if_due", "anchor_leaves", "export_anchors", "anchor_json",
           "case_anchor_proof", "verify_anchor_proof", "verify_anchors", "check_timestamp_token", "trust_roots_der"]

log = logging.getLogger(__name__)


# ---- making -----------------------------------------------------------------------------------------

def _grown_heads(session: Session) -> list[tuple[str, int, str]]:
    """(case id, seq, digest) of every chain whose last entry is newer than its last anchored one."""
    heads = (select(EvidenceEntry.case_id, func.max(EvidenceEntry.seq).label("seq"))
             .group_by(EvidenceEntry.case_id).subquery())
    anchored = (select(ChainAnchorLeaf.case_id, func.max(ChainAnchorLeaf.seq).label("seq"))
                .group_by(ChainAnchorLeaf.case_id).subquery())
    rows = session.execute(
        select(EvidenceEntry.case_id, EvidenceEntry.seq, EvidenceEntry.digest)
        .join(heads, (heads.c.case_id == EvidenceEntry.case_id) & (heads.c.seq == EvidenceEntry.seq))
        .outerjoin(anchored, anchored.c.case_id == EvidenceEntry.case_id)
        .where((anchored.c.seq.is_(None)) | (anchored.c.seq < heads.c.seq))
        .order_by(EvidenceEntry.case_id)).all()
    return [(r[0], r[1], r[2]) for r in rows]


def _last_anchor(session: Session) -> ChainAnchor | None:
    return session.scalar(select(ChainAnchor).order_by(ChainAnchor.id.desc()).limit(1))


def _tsa_name(settings) -> str:
    return (settings.tsa_url or "development TSA (QianLi's own; not a trusted third party)")[:300]


def _timestamp_root(rt: Runtime, root: str) -> tuple[bytes, datetime]:
    """A granted TimeStampResp whose message imprint is the root (SHA-256), from the configured TSA."""
    from pyhanko.sign.timestamps.common_utils import handle_tsp_response

    timestamper = rt.timestamper
    nonce, req = timestamper.request_cms(bytes.fromhex(root), "sha256")
    try:
        resp = run_sync(timestamper.async_request_tsa_response(req))
        handle_tsp_response(resp, nonce)
    except Exception as exc:  # noqa: BLE001 - any TSA failure: no anchor this time, the next run retries
        raise ServiceUnavailable("tsa_unavailable", "时间戳服务暂不可用", details={"error": type(exc).__name__}) from exc
    gen_time = resp["time_stamp_token"]["content"]["encap_content_info"]["content"].parsed["gen_time"].native
    return resp.dump(), gen_time


def make_anchor(session: Session, rt: Runtime) -> ChainAnchor | None:
    """Anchor every chain that grew since the previous anchor; None if none grew. Flushes; the caller commits.

    Two schedulers racing on the same predecessor: the second insert violates the unique
    ``prev_anchor_id`` and is dropped (IntegrityError is turned into None after a rollback).
    """
    grown = _grown_heads(session)
    if not grown:
        return None
    prev = _last_anchor(session)
    leaves: list[AnchorLeaf] = [previous_anchor_leaf(prev.id if prev else 0, prev.root if prev else GENESIS_DIGEST)]
    leaves += [case_leaf(c, s, d) for c, s, d in grown]
    root = merkle_root(leaves)
    token, gen_time = _timestamp_root(rt, root)
    anchor = ChainAnchor(prev_anchor_id=prev.id if prev else 0, prev_root=prev.root if prev else GENESIS_DIGEST,
                         root=root, leaf_count=len(leaves), created_at=utcnow(), timestamped_at=gen_time,
                         tsa=_tsa_name(rt.settings), token=token)
    session.add(anchor)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        log.info("anchor: another scheduler anchored first")
        return None
    session.add_all([ChainAnchorLeaf(anchor_id=anchor.id, position=i, case_id=leaf.case_id, seq=leaf.seq,
                                     digest=leaf.digest) for i, leaf in enumerate(leaves) if leaf.case_id])
    session.flush()
    return anchor


def anchor_if_due(rt: Runtime, *, now: datetime | None = None) -> dict[str, Any] | None:
    """The scheduler's step: anchor when the last anchor is older than QIANLI_ANCHOR_INTERVAL_S."""
    now = now or datetime.now(timezone.utc)
    with rt.session_factory() as session:
        last = _last_anchor(session)
        if last is not None and now - last.created_at < timedelta(seconds=rt.settings.anchor_interval_s):
            return None
        anchor = make_anchor(session, rt)
        if anchor is None:
            session.rollback()
            return None
        session.commit()
        out = {"anchor_id": anchor.id, "root": anchor.root, "leaves": anchor.leaf_count}
    log.info("anchored: %s", out)
    return out


# ---- reading ------------------------------------------------------------------------------------------

def anchor_leaves(session: Session, anchor: ChainAnchor) -> list[AnchorLeaf]:
    """All leaves of ``anchor`` in position order (leaf 0 rebuilt from the anchor row)."""
    rows = session.scalars(select(ChainAnchorLeaf).where(ChainAnchorLeaf.anchor_id == anchor.id)
                           .order_by(ChainAnchorLeaf.position)).all()
    return [previous_anchor_leaf(anchor.prev_anchor_id, anchor.prev_root),
            *(case_leaf(r.case_id, r.seq, r.digest) for r in rows)]


def anchor_json(anchor: ChainAnchor) -> dict[str, Any]:
    return {"id": anchor.id, "prev_anchor_id": anchor.prev_anchor_id, "prev_root": anchor.prev_root,
            "root": anchor.root, "leaf_count": anchor.leaf_count, "created_at": _iso(anchor.created_at),
            "timestamped_at": _iso(anchor.timestamped_at), "tsa": anchor.tsa,
            "token": base64.b64encode(anchor.token).decode()}


def _iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).isoformat()


def export_anchors(session: Session, *, since_id: int = 0, with_leaves: bool = False) -> Iterator[dict[str, Any]]:
    """Anchors after ``since_id`` in order, as JSON-ready dicts (``leaves`` too if asked)."""
    for anchor in session.scalars(select(ChainAnchor).where(ChainAnchor.id > since_id).order_by(ChainAnchor.id)):
        item = anchor_json(anchor)
        if with_leaves:
            item["leaves"] = [{"case_id": x.case_id, "seq": x.seq, "digest": x.digest}
                              for x in anchor_leaves(session, anchor)[1:]]
        yield item


def case_anchor_proof(session: Session, case_id: str) -> dict[str, Any] | None:
    """The newest anchor of ``case_id``'s chain with its inclusion proof, or None if never anchored."""
    leaf_row = session.scalar(select(ChainAnchorLeaf).where(ChainAnchorLeaf.case_id == case_id)
                              .order_by(ChainAnchorLeaf.seq.desc(), ChainAnchorLeaf.anchor_id.desc()).limit(1))
    if leaf_row is None:
        return None
    anchor = session.get(ChainAnchor, leaf_row.anchor_id)
    leaves = anchor_leaves(session, anchor)
    return {"format": "qianli-anchor-proof/1", "case_id": case_id,
            "leaf": {"seq": leaf_row.seq, "digest": leaf_row.digest, "index": leaf_row.position},
            "proof": inclusion_proof(leaves, leaf_row.position), "tree_size": len(leaves),
            "hashing": "RFC 6962 (leaf SHA-256(0x00||canonical JSON {case_id,seq,digest}), node SHA-256(0x01||l||r))",
            "anchor": anchor_json(anchor)}


# ---- checking -----------------------------------------------------------------------------------------

def check_timestamp_token(token: bytes, imprint: bytes, trust_roots_der: Iterable[bytes]) -> tuple[list[str], str | None]:
    """Problems with a TimeStampResp over ``imprint`` (SHA-256) against the roots, and its time (ISO)."""
    from asn1crypto import x509 as asn1_x509

    from qianli.services.dossier import DossierVerification, _check_timestamp

    result = DossierVerification(ok=False)
    roots = [asn1_x509.Certificate.load(d) for d in trust_roots_der]
    _check_timestamp(token, b"", roots, result, imprint=imprint)
    return result.problems, result.timestamp_time


def verify_anchor_proof(proof: dict[str, Any], *, trust_roots_der: Iterable[bytes],
                        chain_digests: dict[int, str] | None = None) -> list[str]:
    """Problems with a case's anchor proof (as in a dossier); ``chain_digests`` maps seq -> digest of the chain."""
    problems: list[str] = []
    try:
        leaf, anchor = proof["leaf"], proof["anchor"]
        ok = verify_inclusion(case_leaf(proof["case_id"], leaf["seq"], leaf["digest"]), int(leaf["index"]),
                              int(proof["tree_size"]), proof["proof"], anchor["root"])
        token = base64.b64decode(anchor["token"], validate=True)
    except (KeyError, TypeError, ValueError) as exc:
        return [f"anchor: unreadable proof ({type(exc).__name__})"]
    if not ok:
        problems.append("anchor: the inclusion proof does not lead to the anchor's root")
    if int(proof["tree_size"]) != int(anchor.get("leaf_count", -1)):
        problems.append("anchor: tree size differs from the anchor's leaf count")
    ts_problems, _ = check_timestamp_token(token, bytes.fromhex(anchor["root"]), trust_roots_der)
    problems += [f"anchor {p}" for p in ts_problems]
    if chain_digests is not None:
        have = chain_digests.get(int(leaf["seq"]))
        if have is None:
            problems.append(f"anchor: the chain has no entry {leaf['seq']} (entries removed after anchoring)")
        elif have != leaf["digest"]:
            problems.append(f"anchor: entry {leaf['seq']} differs from the anchored digest (chain rewritten)")
    return problems


@dataclass
class AnchorCheck:
    ok: bool = True
    anchors: int = 0
    leaves: int = 0
    problems: list[str] = field(default_factory=list)
    last_anchor_id: int | None = None
    last_timestamped_at: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "anchors": self.anchors, "leaves": self.leaves, "problems": self.problems,
                "last_anchor_id": self.last_anchor_id, "last_timestamped_at": self.last_timestamped_at}


def verify_anchors(session: Session, trust_roots_der: list[bytes], *, case_id: str | None = None) -> AnchorCheck:
    """Walk every anchor: the line of predecessors, each root from its leaves, each token, and each anchored
    head against the evidence stored now. With ``case_id``: only that chain's leaves are compared."""
    out = AnchorCheck()
    prev_id, prev_root = 0, GENESIS_DIGEST
    for anchor in session.scalars(select(ChainAnchor).order_by(ChainAnchor.id)):
        out.anchors += 1
        out.last_anchor_id = anchor.id
        if (anchor.prev_anchor_id, anchor.prev_root) != (prev_id, prev_root):
            out.problems.append(f"anchor {anchor.id}: does not follow anchor {prev_id} (an anchor was removed or altered)")
        leaves = anchor_leaves(session, anchor)
        if len(leaves) != anchor.leaf_count or merkle_root(leaves) != anchor.root:
            out.problems.append(f"anchor {anchor.id}: its leaves do not give its root")
        ts_problems, when = check_timestamp_token(anchor.token, bytes.fromhex(anchor.root), trust_roots_der)
        out.problems += [f"anchor {anchor.id} {p}" for p in ts_problems]
        out.last_timestamped_at = when
        for leaf in leaves[1:]:
            if case_id is not None and leaf.case_id != case_id:
                continue
            out.leaves += 1
            digest = session.scalar(select(EvidenceEntry.digest).where(EvidenceEntry.case_id == leaf.case_id,
                                                                       EvidenceEntry.seq == leaf.seq))
            if digest is None:
                out.problems.append(f"anchor {anchor.id}: case {leaf.case_id} has no entry {leaf.seq} any more")
            elif digest != leaf.digest:
                out.problems.append(f"anchor {anchor.id}: case {leaf.case_id} entry {leaf.seq} was rewritten")
        prev_id, prev_root = anchor.id, anchor.root
    out.ok = not out.problems
    return out


def trust_roots_der(rt: Runtime) -> list[bytes]:
    """Our root and any external TSA roots, DER: what anchor tokens are checked against."""
    from cryptography.hazmat.primitives.serialization import Encoding

    pki = rt.pki
    return [pki.cert_der("root"), *(c.public_bytes(Encoding.DER) for c in pki.tsa_roots)]

