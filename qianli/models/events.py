"""The transactional outbox: events other systems must hear of (webhooks, WeCom), written in the same
transaction as the change they describe, so that an event exists if and only if the change committed.

Delivery (fan-out to webhook endpoints and connectors, retries, the delivery log) reads these rows;
the rows themselves are never updated except for ``dispatched_at``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from qianli.db import Base, UTCDateTime, new_id, utcnow

__all__ = ["OutboxEvent"]


class OutboxEvent(Base):
    __tablename__ = "outbox_events"
    __table_args__ = (
        Index("ix_outbox_events_company_created", "company_id", "created_at"),
        Index("ix_outbox_events_undispatched", "dispatched_at", "created_at"),
    )
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id"))
    event_type: Mapped[str] = mapped_column(String(64))
    case_id: Mapped[str | None] = mapped_column(ForeignKey("resignation_cases.id"), nullable=True, index=True)
    employee_id: Mapped[str | None] = mapped_column(ForeignKey("employees.id"), nullable=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Set once the event has been handed to delivery (one delivery row per subscribed endpoint).
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
