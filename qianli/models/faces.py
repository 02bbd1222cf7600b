"""Face tables: biometric consent, the enrolled reference template, the failure counter and lock.

Face data is sensitive personal information (PIPL art. 28): processing it needs the person's
separate consent (art. 29), recorded here with the version and hash of the text they agreed to.
The template (face_recognition's 128-number encoding) is stored AES-256-GCM encrypted with the
field cipher (key id inside the ciphertext, bound to the employee by associated data); a raw
reference photo is kept only when ``QIANLI_FACE_PHOTO_RETENTION_S`` > 0, encrypted, and only
until its deadline.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from qianli.db import Base, UTCDateTime, new_id, utcnow

__all__ = ["BiometricConsent", "FaceEnrolment", "FaceReferencePhoto", "FaceLockState", "CONSENT_METHODS"]

# employee_app: the employee agreed in the mini-program (giveFaceConsent);
# hr_attested_written: HR attests a signed paper consent form (enrolFace with written_consent_attested).
CONSENT_METHODS = ("employee_app", "hr_attested_written")


class BiometricConsent(Base):
    """One consent to face processing. Withdrawal sets ``withdrawn_at`` (the row is kept as a record)."""

    __tablename__ = "biometric_consents"
    __table_args__ = (Index("ix_biometric_consents_employee", "company_id", "employee_id"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id"))
    employee_id: Mapped[str] = mapped_column(ForeignKey("employees.id"))
    purpose: Mapped[str] = mapped_column(String(32), default="face_verification")
    method: Mapped[str] = mapped_column(String(32))
    text_version: Mapped[str] = mapped_column(String(32))
    text_sha256: Mapped[str] = mapped_column(String(64))
    reference: Mapped[str] = mapped_column(String(200), default="")  # paper form number for HR attestations
    actor: Mapped[str] = mapped_column(String(120))
    ip: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(500), default="")
    given_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class FaceEnrolment(Base):
    """The employee's reference face: one per employee, replaced by a new enrolment."""

    __tablename__ = "face_enrolments"
    __table_args__ = (UniqueConstraint("company_id", "employee_id"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id"))
    employee_id: Mapped[str] = mapped_column(ForeignKey("employees.id"))
    template_enc: Mapped[str] = mapped_column(Text)  # v1:<kid>:<base64>, see qianli.crypto
    key_id: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(64), default="face_recognition/dlib-128")
    # hr_upload, roster_import ("provided by the employer": count only once employee_confirmed_at is set),
    # self_capture (the employee's own capture with liveness), faceid_tencent (certified real-name check)
    source: Mapped[str] = mapped_column(String(32))
    photo_sha256: Mapped[str] = mapped_column(String(64))
    consent_id: Mapped[str] = mapped_column(ForeignKey("biometric_consents.id"))
    consent_given_at: Mapped[datetime] = mapped_column(UTCDateTime)
    consent_text_version: Mapped[str] = mapped_column(String(32))
    enrolled_by: Mapped[str] = mapped_column(String(120))
    employee_confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    provider_ref: Mapped[str | None] = mapped_column(String(128), nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class FaceReferencePhoto(Base):
    """A raw reference photo, encrypted, kept only while ``delete_after`` is in the future."""

    __tablename__ = "face_reference_photos"
    __table_args__ = (Index("ix_face_reference_photos_due", "delete_after"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id"))
    employee_id: Mapped[str] = mapped_column(ForeignKey("employees.id"))
    enrolment_id: Mapped[str] = mapped_column(ForeignKey("face_enrolments.id", ondelete="CASCADE"))
    photo_enc: Mapped[bytes] = mapped_column(LargeBinary)
    content_type: Mapped[str] = mapped_column(String(100))
    sha256: Mapped[str] = mapped_column(String(64))
    delete_after: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class FaceLockState(Base):
    """Consecutive failed face checks; at the limit the employee's face verification is locked
    until HR unlocks it (``unlockFace``). In the database so that a lock survives Redis."""

    __tablename__ = "face_lock_states"
    __table_args__ = (UniqueConstraint("company_id", "employee_id"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id"))
    employee_id: Mapped[str] = mapped_column(ForeignKey("employees.id"))
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_failure_reason: Mapped[str] = mapped_column(String(64), default="")
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    locked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    unlocked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    unlocked_by: Mapped[str | None] = mapped_column(String(120), nullable=True)
