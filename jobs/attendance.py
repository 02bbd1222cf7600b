"""RQ job functions of the attendance early warning (queue ``attendance``). They take ids and a day
and call the service layer, which opens its own units of work."""

from __future__ import annotations

from datetime import date
from typing import Any

from qianli.runtime import get_runtime

__all__ = ["attendance_daily_job"]


def attendance_daily_job(company_id: str, day: str) -> dict[str, Any]:
    """One company's daily run for ``day`` (WeCom pull, risk list, notifications of new reds)."""
    from qianli.services.attrition import run_daily

    return run_daily(get_runtime(), company_id, date.fromisoformat(day))
