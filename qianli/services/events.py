"""Publishing events to the outside world through the transactional outbox.

A service that changes something other systems must hear of (a case approved, access to revoke, pay
to stop, a case closed) calls :func:`publish` inside the same transaction. The row commits with the
change or not at all; delivery to webhook endpoints and connectors happens after the commit, from the
row (see the webhook delivery service). Event payloads carry ids and facts, never secrets.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy.orm import Session

from qianli.models import OutboxEvent

__all__ = ["publish", "EVENT_TYPES", "publish_hooks"]

EVENT_TYPES: dict[str, str] = {
    "case.approved": "离职申请已最终审批",
    "employee.access_revoke": "撤销员工的系统与门禁权限",
    "employee.payroll_stop": "停止发薪",
    "case.closed": "离职案件已结案",
}
"""Event types QianLi publishes, with a zh-CN description (the console lists them for subscriptions).
Delivery modules may add their own types here at import time."""

_TYPE_RE = re.compile(r"^[a-z][a-z_]*(\.[a-z][a-z_]*)+$")

publish_hooks: list = []
"""Callables ``hook(session, event)`` run by :func:`publish` after the row is added (still inside the
transaction): delivery registers here to schedule its work with ``qianli.db.on_commit``."""


def publish(session: Session, *, company_id: str, event_type: str, data: dict[str, Any],
            case_id: str | None = None, employee_id: str | None = None) -> OutboxEvent:
    """Record ``event_type`` for ``company_id`` in the caller's transaction and return the row."""
    if not _TYPE_RE.match(event_type):
        raise ValueError(f"malformed event type {event_type!r}")
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}: add it to EVENT_TYPES")
    event = OutboxEvent(company_id=company_id, event_type=event_type, data=dict(data), case_id=case_id,
                        employee_id=employee_id)
    session.add(event)
    session.flush()
    for hook in list(publish_hooks):
        hook(session, event)
    return event


# Delivery registers its hook when imported; import it here so that every process that publishes
# delivers (the scheduler's sweep also dispatches any event left undispatched).
from qianli.services import webhooks as _webhooks  # noqa: E402,F401
