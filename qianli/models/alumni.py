"""Alumni tables: consent per purpose and its event log, the alumnus profile, retention of a
former employee's data, outreach campaigns and their delivery log, job openings and answers.

Joining the alumni network is a purpose of its own under PIPL: it needs the person's consent,
given per purpose (``ALUMNI_PURPOSES``) against a versioned text, withdrawable at any time. Every
give and withdraw is a row of ``alumni_consent_events`` (never updated), besides the current
state in ``alumni_consents``.

Full-text search over an alumnus's skills, tags and notes reads ``alumni.search_text``:
PostgreSQL through a pg_trgm GIN index (the migration enables the extension), SQLite through an
FTS5 table with the trigram tokenizer kept by the service (``qianli.services.alumni_search``).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import DDL, JSON, Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint, event, text
from sqlalchemy.orm import Mapped, mapped_column

from qianli.db import Base, UTCDateTime, new_id, utcnow

__all__ = ["ALUMNI_PURPOSES", "ALUMNI_CONSENT_METHODS", "PERFORMANCE_GRADES", "AlumniConsent", "AlumniConsentEvent",
           "Alumnus", "RetentionSchedule", "RetentionDeletion", "AlumniCampaign", "CampaignDelivery", "JobOpening",
           "JobOpeningAnswer", "CAMPAIGN_DELIVERY_STATUSES"]

ALUMNI_PURPOSES = ("greetings", "company_news", "job_openings")
# employee_app: in the mini-program; sms_reply: an SMS "TD"/"退订" reply; unsubscribe_link: the link in a message.
ALUMNI_CONSENT_METHODS = ("employee_app", "sms_reply", "unsubscribe_link")
PERFORMANCE_GRADES = ("A", "B", "C", "D")
CAMPAIGN_DELIVERY_STATUSES = ("pending", "sent", "failed", "skipped_no_consent", "skipped_frequency_cap", "skipped_no_phone")


class AlumniConsent(Base):
    """The current consent of one person to one purpose; withdrawal sets ``withdrawn_at``."""

    __tablename__ = "alumni_consents"
    __table_args__ = (Index("ix_alumni_consents_employee", "company_id", "employee_id", "purpose"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id"))
    employee_id: Mapped[str] = mapped_column(ForeignKey("employees.id"))
    purpose: Mapped[str] = mapped_column(String(32))
    text_version: Mapped[str] = mapped_column(String(32))
    text_sha256: Mapped[str] = mapped_column(String(64))
    given_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    withdrawn_method: Mapped[str | None] = mapped_column(String(32), nullable=True)


class AlumniConsentEvent(Base):
    """Evidence of one give or withdraw: who, how, against which text, from where. Never updated."""

    __tablename__ = "alumni_consent_events"
    __table_args__ = (Index("ix_alumni_consent_events_employee", "company_id", "employee_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id"))
    employee_id: Mapped[str] = mapped_column(ForeignKey("employees.id"))
    purpose: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(16))  # given | withdrawn
    method: Mapped[str] = mapped_column(String(32))
    text_version: Mapped[str] = mapped_column(String(32), default="")
    text_sha256: Mapped[str] = mapped_column(String(64), default="")
    reference: Mapped[str] = mapped_column(String(200), default="")  # delivery id, SMS reply id
    actor: Mapped[str] = mapped_column(String(120))
    ip: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(500), default="")
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Alumnus(Base):
    """A former employee in the talent pool (by their consent). ``performance_grade`` is shown to
    the hr_manager role only (``qianli.services.alumni.visible_profile``)."""

    __tablename__ = "alumni"
    __table_args__ = (
        UniqueConstraint("company_id", "employee_id", name="uq_alumni_company_employee"),
        Index("ix_alumni_company_left", "company_id", "left_on"),
        # PostgreSQL: the GIN trigram index of the full-text search. SQLite searches its FTS5 table
        # instead; there the index is an empty partial one (WHERE 0) that only keeps one schema.
        Index("ix_alumni_search_trgm", "search_text", postgresql_using="gin",
              postgresql_ops={"search_text": "gin_trgm_ops"}, sqlite_where=text("0")),
    )
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id"))
    employee_id: Mapped[str] = mapped_column(ForeignKey("employees.id"))
    case_id: Mapped[str | None] = mapped_column(ForeignKey("resignation_cases.id"), nullable=True)
    department: Mapped[str] = mapped_column(String(100), default="")
    positions: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # [{title, from, to}]
    hired_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    left_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    departure_type: Mapped[str] = mapped_column(String(32), default="resignation")
    reason_category: Mapped[str | None] = mapped_column(String(32), nullable=True)
    skills: Mapped[list[str]] = mapped_column(JSON, default=list)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    notes: Mapped[str] = mapped_column(Text, default="")
    rehire_eligible: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    performance_grade: Mapped[str | None] = mapped_column(String(8), nullable=True)
    search_text: Mapped[str] = mapped_column(Text, default="")
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    rehired_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    rehired_by: Mapped[str | None] = mapped_column(String(120), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    updated_by: Mapped[str] = mapped_column(String(120), default="")


class RetentionSchedule(Base):
    """What happens to a former employee's data who is not in the pool: the personal data beyond
    the termination documents is deleted after ``purge_after``; the termination documents are
    kept at least until ``documents_until`` (QIANLI_TERMINATION_RECORDS_RETENTION_DAYS)."""

    __tablename__ = "retention_schedules"
    __table_args__ = (UniqueConstraint("company_id", "employee_id", name="uq_retention_company_employee"),
                      Index("ix_retention_due", "state", "purge_after"))
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id"))
    employee_id: Mapped[str] = mapped_column(ForeignKey("employees.id"))
    case_id: Mapped[str | None] = mapped_column(ForeignKey("resignation_cases.id"), nullable=True)
    reason: Mapped[str] = mapped_column(String(32))  # no_consent | consent_withdrawn
    state: Mapped[str] = mapped_column(String(16), default="pending")  # pending | purged | cancelled
    purge_after: Mapped[datetime] = mapped_column(UTCDateTime)
    documents_until: Mapped[date] = mapped_column(Date)
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RetentionDeletion(Base):
    """One deletion by the retention job: which category of whose data, how many rows."""

    __tablename__ = "retention_deletions"
    __table_args__ = (Index("ix_retention_deletions_employee", "company_id", "employee_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id"))
    employee_id: Mapped[str] = mapped_column(ForeignKey("employees.id"))
    schedule_id: Mapped[str] = mapped_column(ForeignKey("retention_schedules.id"))
    category: Mapped[str] = mapped_column(String(64))
    rows: Mapped[int] = mapped_column(Integer, default=0)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    actor: Mapped[str] = mapped_column(String(120))
    deleted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class JobOpening(Base):
    __tablename__ = "job_openings"
    __table_args__ = (Index("ix_job_openings_company", "company_id", "created_at"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id"))
    title: Mapped[str] = mapped_column(String(200))
    department: Mapped[str] = mapped_column(String(100), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    skills: Mapped[list[str]] = mapped_column(JSON, default=list)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default="open")
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class JobOpeningAnswer(Base):
    __tablename__ = "job_opening_answers"
    __table_args__ = (UniqueConstraint("opening_id", "employee_id", name="uq_job_opening_answer"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id"))
    opening_id: Mapped[str] = mapped_column(ForeignKey("job_openings.id"))
    employee_id: Mapped[str] = mapped_column(ForeignKey("employees.id"))
    answer: Mapped[str] = mapped_column(String(16))  # interested | not_interested
    note: Mapped[str] = mapped_column(String(500), default="")
    answered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AlumniCampaign(Base):
    """A message to the consenting alumni of one purpose, sent by RQ jobs (``jobs.alumni``)."""

    __tablename__ = "alumni_campaigns"
    __table_args__ = (Index("ix_alumni_campaigns_company", "company_id", "created_at"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id"))
    purpose: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    job_opening_id: Mapped[str | None] = mapped_column(ForeignKey("job_openings.id"), nullable=True)
    festival: Mapped[str | None] = mapped_column(String(32), nullable=True)  # spring_festival | mid_autumn
    frequency_cap: Mapped[int] = mapped_column(Integer)  # at most this many messages per person ...
    frequency_window_days: Mapped[int] = mapped_column(Integer)  # ... within this many days
    state: Mapped[str] = mapped_column(String(16), default="queued")  # queued | running | done
    recipients: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class CampaignDelivery(Base):
    """One message of a campaign to one alumnus: the delivery log."""

    __tablename__ = "campaign_deliveries"
    __table_args__ = (UniqueConstraint("campaign_id", "employee_id", name="uq_campaign_delivery"),
                      Index("ix_campaign_deliveries_employee_sent", "company_id", "employee_id", "sent_at"),
                      Index("ix_campaign_deliveries_due", "status", "not_before"))
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id"))
    campaign_id: Mapped[str] = mapped_column(ForeignKey("alumni_campaigns.id"))
    employee_id: Mapped[str] = mapped_column(ForeignKey("employees.id"))
    purpose: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(32), default="pending")
    channel: Mapped[str] = mapped_column(String(16), default="sms")
    unsubscribe_token: Mapped[str] = mapped_column(String(43), unique=True)
    not_before: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    provider_message_id: Mapped[str] = mapped_column(String(128), default="")
    detail: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


# create_all (tests, development) builds the trigram index from the model: the extension comes first.
event.listen(Alumnus.__table__, "before_create",
             DDL("CREATE EXTENSION IF NOT EXISTS pg_trgm").execute_if(dialect="postgresql"))
