"""RQ job functions for reports (queue ``reports``): the quarterly departure analysis report. They take
ids only and re-read everything from the database."""

from __future__ import annotations

from typing import Any

from qianli.runtime import get_runtime

__all__ = ["departure_report_job"]


def departure_report_job(company_id: str, year: int, quarter: int) -> dict[str, Any]:
    from qianli.services.analytics_report import generate_quarterly_report

    return generate_quarterly_report(get_runtime(), company_id, int(year), int(quarter))
