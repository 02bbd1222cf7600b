"""HR users' mobile numbers for the daily digest, encrypted at rest."""

from __future__ import annotations

import logging


from qianli.models import (HrUser)
from qianli.runtime import Runtime

__all__ = ["set_hr_phone", "hr_phone"]

log = logging.getLogger(__name__)


def _hr_aad(user: HrUser) -> str:
    return f"hr_users.phone:{user.company_id}:{user.username}"


def set_hr_phone(rt: Runtime, user: HrUser, phone: str | None) -> None:
    """An HR user's mobile number for daily digests (AES-256-GCM, bound to company + username)."""
    from identity.sms import normalize_cn_mobile

    user.phone_enc = rt.cipher.encrypt(normalize_cn_mobile(phone), _hr_aad(user)) if phone else None


def hr_phone(rt: Runtime, user: HrUser) -> str | None:
    return rt.cipher.decrypt(user.phone_enc, _hr_aad(user)) if user.phone_enc else None
