"""The anchors of the evidence chains: append-only, like the evidence log (see cases.anchor).

On PostgreSQL a trigger refuses UPDATE, DELETE and TRUNCATE on both tables, and the app's database
role may only INSERT and SELECT them (the migration role owns them; see qianli.migrate).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from qianli.db import Base, UTCDateTime, utcnow

__all__ = ["ChainAnchor", "ChainAnchorLeaf"]


class ChainAnchor(Base):
    """One timestamped Merkle root. Leaf 0 is the previous anchor; ``prev_anchor_id`` is unique, so the
    anchors form one line (a second anchor made concurrently on the same predecessor is refused)."""

    __tablename__ = "chain_anchors"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    prev_anchor_id: Mapped[int] = mapped_column(Integer, unique=True)  # 0 for the first anchor
    prev_root: Mapped[str] = mapped_column(String(64))
    root: Mapped[str] = mapped_column(String(64))
    leaf_count: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    timestamped_at: Mapped[datetime] = mapped_column(UTCDateTime)  # genTime of the token
    tsa: Mapped[str] = mapped_column(String(300))
    token: Mapped[bytes] = mapped_column(LargeBinary)  # the TSA's whole TimeStampResp (DER), imprint = root


class ChainAnchorLeaf(Base):
    """A case chain's head as committed to by an anchor (position >= 1; position 0 is the previous anchor)."""

    __tablename__ = "chain_anchor_leaves"
    __table_args__ = (UniqueConstraint("anchor_id", "position"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    anchor_id: Mapped[int] = mapped_column(ForeignKey("chain_anchors.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    case_id: Mapped[str] = mapped_column(String(32), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    digest: Mapped[str] = mapped_column(String(64))
