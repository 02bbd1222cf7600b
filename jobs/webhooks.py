"""RQ job functions for outbound webhooks and access revocation. They take ids only and re-read
everything from the database (qianli.services.webhooks, qianli.services.revocation)."""

from __future__ import annotations

from typing import Any

from qianli.runtime import get_runtime

__all__ = ["deliver_webhook", "replay_webhook", "disable_wecom_member"]


def deliver_webhook(delivery_id: str) -> dict[str, Any]:
    from qianli.services.webhooks import attempt_delivery

    out = attempt_delivery(get_runtime(), delivery_id)
    return {"status": out.status, "attempt": out.attempt, "status_code": out.status_code, "error": out.error}


def replay_webhook(delivery_id: str, actor: str) -> dict[str, Any]:
    from qianli.services.webhooks import attempt_delivery

    out = attempt_delivery(get_runtime(), delivery_id, manual=True, actor=actor)
    return {"status": out.status, "attempt": out.attempt, "status_code": out.status_code, "error": out.error}


def disable_wecom_member(confirmation_id: str, attempt: int = 1) -> dict[str, Any]:
    from qianli.services.revocation import run_wecom_disable

    return {"status": run_wecom_disable(get_runtime(), confirmation_id, int(attempt))}
