"""Outbound webhooks and access revocation: endpoints, deliveries with their attempts, scheduled
revocations and the receivers' confirmations (权限验证).

A delivery is one event for one endpoint; its ``msg_id`` is the Standard Webhooks ``webhook-id``,
the same on every attempt so receivers deduplicate. The body is frozen at fan-out (``body``), so a
retry sends the very same bytes. Secrets are stored encrypted (``qianli.crypto``); never shown again
after creation or rotation.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from qianli.db import Base, UTCDateTime, new_id, utcnow

__all__ = ["WebhookEndpoint", "WebhookEndpointEvent", "WebhookDelivery", "WebhookAttempt", "AccessRevocation",
           "RevocationConfirmation", "WEBHOOK_DELIVERY_STATUSES", "REVOCATION_STATUSES", "CONFIRMATION_STATUSES",
           "WEBHOOK_ENDPOINT_ACTIONS", "WEBHOOK_DISABLED_REASONS"]

WEBHOOK_DELIVERY_STATUSES = ("pending", "succeeded", "failed")
REVOCATION_STATUSES = ("scheduled", "sent", "cancelled")
CONFIRMATION_STATUSES = ("pending", "confirmed", "failed")
WEBHOOK_ENDPOINT_ACTIONS = ("created", "updated", "disabled", "enabled", "auto_disabled", "secret_rotated", "deleted")
WEBHOOK_DISABLED_REASONS = ("manual", "failing")


class WebhookEndpoint(Base):
    __tablename__ = "webhook_endpoints"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))  # the system behind it (门禁, OA, 薪资...), shown in 权限验证
    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str] = mapped_column(String(500), default="")
    event_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    secret_enc: Mapped[str] = mapped_column(Text)
    previous_secret_enc: Mapped[str | None] = mapped_column(Text, nullable=True)
    previous_secret_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    secret_rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Every attempt since then failed (cleared by a successful one); a delivery failing for good while this is
    # older than QIANLI_WEBHOOK_DISABLE_AFTER_S disables the endpoint (disabled_reason "failing").
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(16), nullable=True)  # manual / failing
    disabled_by: Mapped[str | None] = mapped_column(String(120), nullable=True)


class WebhookEndpointEvent(Base):
    """The audit trail of an endpoint: who created, changed, disabled, re-enabled, rotated or deleted it,
    and when the system disabled it for failing (with the evidence: since when, the deliveries that
    failed). Append-only (on PostgreSQL the app role may only INSERT and SELECT)."""

    __tablename__ = "webhook_endpoint_events"
    __table_args__ = (Index("ix_webhook_endpoint_events_endpoint", "endpoint_id", "id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id"))
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("webhook_endpoints.id"))
    action: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(120))
    detail: Mapped[dict] = mapped_column(JSON, default=dict)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookDelivery(Base):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("event_id", "endpoint_id", name="uq_webhook_deliveries_event_endpoint"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_company_created", "company_id", "created_at"),
    )
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id"))
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("webhook_endpoints.id"), index=True)
    event_id: Mapped[str | None] = mapped_column(String(32), nullable=True)  # the outbox event (None: test ping)
    msg_id: Mapped[str] = mapped_column(String(64), unique=True)  # webhook-id, stable across attempts
    event_type: Mapped[str] = mapped_column(String(64))
    case_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    body: Mapped[str] = mapped_column(Text)  # exactly the bytes sent (UTF-8 JSON)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class WebhookAttempt(Base):
    """One HTTP attempt of a delivery (the delivery log)."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (UniqueConstraint("delivery_id", "attempt", name="uq_webhook_attempts_delivery_attempt"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id"))
    delivery_id: Mapped[str] = mapped_column(ForeignKey("webhook_deliveries.id"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    trigger: Mapped[str] = mapped_column(String(16), default="auto")  # auto / replay
    actor: Mapped[str] = mapped_column(String(120), default="system")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    latency_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    ok: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    response_excerpt: Mapped[str | None] = mapped_column(Text, nullable=True)
    next_retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class AccessRevocation(Base):
    """The access revocation of a case: scheduled for 23:59 Asia/Shanghai of the last day, or sent at
    once when HR says so. ``sent_at`` is when the events went out (and WeCom was asked)."""

    __tablename__ = "access_revocations"
    __table_args__ = (Index("ix_access_revocations_due", "status", "due_at"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id"), index=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("resignation_cases.id"), unique=True)
    employee_id: Mapped[str] = mapped_column(ForeignKey("employees.id"))
    last_day: Mapped[date] = mapped_column(Date)  # Asia/Shanghai date; access ends at its 23:59
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), default="scheduled")
    mode: Mapped[str] = mapped_column(String(16), default="scheduled")  # scheduled / immediate
    reason: Mapped[str] = mapped_column(String(500), default="")
    requested_by: Mapped[str] = mapped_column(String(120))
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class RevocationConfirmation(Base):
    """One system's answer to a revocation: each subscribed endpoint (and WeCom, when connected) is
    expected to confirm; receivers may report further systems behind them."""

    __tablename__ = "revocation_confirmations"
    __table_args__ = (UniqueConstraint("revocation_id", "system", name="uq_revocation_confirmations_system"),
                      Index("ix_revocation_confirmations_open", "status", "alerted_at"))
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id"), index=True)
    revocation_id: Mapped[str] = mapped_column(ForeignKey("access_revocations.id"), index=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("resignation_cases.id"))
    system: Mapped[str] = mapped_column(String(100))
    endpoint_id: Mapped[str | None] = mapped_column(ForeignKey("webhook_endpoints.id"), nullable=True)
    expected: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    detail: Mapped[str] = mapped_column(String(500), default="")
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    confirmed_via: Mapped[str | None] = mapped_column(String(120), nullable=True)
    alerted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
