"""RQ job for the certificate of termination: issued by the system on the last day (it takes the case id
and re-reads everything; see qianli.services.certificate)."""

from __future__ import annotations

from typing import Any

from qianli.runtime import get_runtime

__all__ = ["issue_certificate_job"]


def issue_certificate_job(case_id: str) -> dict[str, Any]:
    from qianli.services.certificate import issue_certificate_job_body

    return issue_certificate_job_body(get_runtime(), case_id)
