"""Anchoring the evidence chains: Merkle trees over chain heads (RFC 6962 hashing), as pure functions.

Every anchor is a Merkle tree whose leaf 0 is the previous anchor (its id and root; the first anchor
names id 0 and the genesis root) and whose other leaves are the heads (case id, sequence number,
digest) of every case chain that grew since the previous anchor, in case-id order. Its root is
timestamped by an outside TSA (RFC 3161, message imprint = the root itself). So every head ever
anchored is committed to by a token its holder can check without us, and anchors form a chain of
their own: deleting or rewriting one breaks the next.

Hashing follows RFC 6962 section 2.1: leaf hash ``SHA-256(0x00 || leaf)``, node hash
``SHA-256(0x01 || left || right)``, the split at the largest power of two below the size. Inclusion
proofs are RFC 6962 audit paths, verified with RFC 9162's algorithm (section 2.1.3.2).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Sequence

from cases.evidence import GENESIS_DIGEST, canonical_json

__all__ = ["AnchorLeaf", "case_leaf", "previous_anchor_leaf", "leaf_hash", "merkle_root", "inclusion_proof",
           "verify_inclusion", "GENESIS_DIGEST"]


@dataclass(frozen=True)
class AnchorLeaf:
    """One leaf: a case chain's head (``case_id`` set) or the previous anchor (``case_id`` None)."""

    case_id: str | None
    seq: int  # the case's sequence number, or the previous anchor's id
    digest: str  # the entry's digest, or the previous anchor's root (hex)

    def encode(self) -> bytes:
        if self.case_id is None:
            return canonical_json({"previous_anchor": self.seq, "root": self.digest}).encode()
        return canonical_json({"case_id": self.case_id, "seq": self.seq, "digest": self.digest}).encode()


def case_leaf(case_id: str, seq: int, digest: str) -> AnchorLeaf:
    return AnchorLeaf(case_id, int(seq), digest)


def previous_anchor_leaf(anchor_id: int, root: str) -> AnchorLeaf:
    return AnchorLeaf(None, int(anchor_id), root)


def leaf_hash(leaf: AnchorLeaf | bytes) -> bytes:
    data = leaf.encode() if isinstance(leaf, AnchorLeaf) else leaf
    return hashlib.sha256(b"\x00" + data).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def _mth(hashes: Sequence[bytes]) -> bytes:
    if len(hashes) == 1:
        return hashes[0]
    k = _split(len(hashes))
    return _node(_mth(hashes[:k]), _mth(hashes[k:]))


def merkle_root(leaves: Sequence[AnchorLeaf]) -> str:
    """The tree head (hex) of one or more leaves."""
    if not leaves:
        raise ValueError("a Merkle tree needs at least one leaf")
    return _mth([leaf_hash(x) for x in leaves]).hex()


def _path(m: int, hashes: Sequence[bytes]) -> list[bytes]:
    if len(hashes) <= 1:
        return []
    k = _split(len(hashes))
    if m < k:
        return _path(m, hashes[:k]) + [_mth(hashes[k:])]
    return _path(m - k, hashes[k:]) + [_mth(hashes[:k])]


def inclusion_proof(leaves: Sequence[AnchorLeaf], index: int) -> list[str]:
    """The audit path (hex hashes, leaf upwards) of ``leaves[index]``."""
    if not 0 <= index < len(leaves):
        raise IndexError("leaf index out of range")
    return [h.hex() for h in _path(index, [leaf_hash(x) for x in leaves])]


def verify_inclusion(leaf: AnchorLeaf, index: int, size: int, proof: Sequence[str], root: str) -> bool:
    """Whether ``leaf`` is at ``index`` of a tree of ``size`` leaves with head ``root`` (RFC 9162 2.1.3.2)."""
    try:
        path = [bytes.fromhex(p) for p in proof]
        expected = bytes.fromhex(root)
    except (ValueError, TypeError):
        return False
    if not 0 <= index < size or any(len(p) != 32 for p in path):
        return False
    fn, sn, r = index, size - 1, leaf_hash(leaf)
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = _node(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = _node(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == expected
