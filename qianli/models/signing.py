"""Signing requests: one row per successful signLetter, keyed by the client's idempotency key."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from qianli.db import Base, UTCDateTime, new_id, utcnow

__all__ = ["SigningRequest"]


class SigningRequest(Base):
    """A completed signing: retrying with the same (employee, idempotency key) returns this result.

    Written in the same transaction as the signed document, the state change and the evidence
    entry, so a failure midway leaves no row (and no letter marked as signed)."""

    __tablename__ = "signing_requests"
    __table_args__ = (UniqueConstraint("company_id", "employee_id", "idempotency_key", name="uq_signing_idempotency"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id"), index=True)
    employee_id: Mapped[str] = mapped_column(ForeignKey("employees.id"))
    case_id: Mapped[str] = mapped_column(ForeignKey("resignation_cases.id"), index=True)
    idempotency_key: Mapped[str] = mapped_column(String(64))
    document_id: Mapped[str] = mapped_column(ForeignKey("documents.id"))
    letter_sha256: Mapped[str] = mapped_column(String(64))
    signed_sha256: Mapped[str] = mapped_column(String(64))
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
