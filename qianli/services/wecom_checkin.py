"""WeCom (企业微信) check-ins into the attendance records: the daily pull of ``checkin/getcheckindata``.

:func:`pull_checkins` asks WeCom (``rt.wecom``, the client of ``qianli.integrations.wecom``; nothing
when it is not configured) for the check-ins of the company's active employees that have a WeCom
userid, over the ``QIANLI_WECOM_CHECKIN_DAYS`` days ending on the given day (late and corrected
records arrive on the next pulls), and merges them like a file import: one
:class:`~qianli.models.AttendanceImport` (source ``wecom``) whose document is WeCom's answer as
canonical JSON (its SHA-256 on every record), a day is *present* when it has a check-in whose
``exception_type`` is not 未打卡 (WeCom reports a missed scheduled check-in as a record with that
exception), and every pulled employee's days are covered, so a member with no check-in at all is
judged absent on those working days.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select

from cases.clock import SHANGHAI, beijing_day_start
from qianli.db import new_id, session_scope
from qianli.models import AttendanceImport, Employee
from qianli.runtime import Runtime
from qianli.services.attendance import DayPunches, apply_day_records, record_coverage
from qianli.storage import store_document

__all__ = ["pull_checkins", "ACTOR", "MISSED"]

ACTOR = "system:wecom-checkin"
MISSED = "未打卡"


def pull_checkins(rt: Runtime, company_id: str, last_day: date, *, days: int | None = None) -> dict[str, Any]:
    """Pull and merge the check-ins of ``days`` (default QIANLI_WECOM_CHECKIN_DAYS) days ending ``last_day``."""
    wecom = rt.wecom
    if wecom is None:
        return {"status": "not_configured"}
    days = days or rt.settings.wecom_checkin_days
    first_day = last_day - timedelta(days=days - 1)
    with session_scope(rt.session_factory) as session:
        members = dict(session.execute(select(Employee.wecom_userid, Employee.id).where(
            Employee.company_id == company_id, Employee.active.is_(True), Employee.wecom_userid.is_not(None))).all())
    members = {k: v for k, v in members.items() if k}
    if not members:
        return {"status": "no_members"}
    start = beijing_day_start(first_day)
    end = beijing_day_start(last_day + timedelta(days=1)) - timedelta(seconds=1)
    records = wecom.get_checkin_data(sorted(members), start, end)
    raw = [r.raw for r in records]
    body = json.dumps({"first_day": first_day.isoformat(), "last_day": last_day.isoformat(),
                       "userids": sorted(members), "checkindata": raw}, ensure_ascii=False, sort_keys=True,
                      separators=(",", ":")).encode()
    by_day: dict[tuple[str, date], list[Any]] = defaultdict(list)
    for r in records:
        emp_id = members.get(r.userid)
        when = r.checkin_time if r.checkin_time.timestamp() > 0 else r.scheduled_time
        if emp_id is None or when is None:
            continue
        day = when.astimezone(SHANGHAI).date()
        if first_day <= day <= last_day:
            by_day[(emp_id, day)].append(r)
    facts: list[DayPunches] = []
    for (emp_id, day), rs in sorted(by_day.items()):
        real = sorted(r.checkin_time for r in rs if r.exception_type != MISSED and r.checkin_time.timestamp() > 0)
        result = "；".join(dict.fromkeys(f"{r.checkin_type}{('·' + r.exception_type) if r.exception_type else ''}"
                                        for r in rs))[:100]
        facts.append(DayPunches(emp_id, day, bool(real), real[0] if real else None, real[-1] if real else None,
                                result, None))
    with session_scope(rt.session_factory) as session:
        imp = AttendanceImport(id=new_id(), company_id=company_id, source="wecom", filename="checkin/getcheckindata",
                               format="wecom", sha256=hashlib.sha256(body).hexdigest(), size=len(body), actor=ACTOR,
                               first_day=first_day, last_day=last_day)
        doc = store_document(session, rt.store, company_id=company_id, kind="attendance_import",
                             filename=f"wecom-checkin-{first_day.isoformat()}-{last_day.isoformat()}.json",
                             content_type="application/json", data=body, created_by=ACTOR, meta={"kind": "wecom"})
        imp.document_id = doc.id
        session.add(imp)
        session.flush()
        created, updated, unchanged = apply_day_records(session, company_id=company_id, days=facts, imp=imp)
        record_coverage(session, company_id=company_id, employee_ids=sorted(members.values()), first=first_day,
                        last=last_day, import_id=imp.id)
        summary = {"status": "done", "import_id": imp.id, "members": len(members), "checkins": len(records),
                   "first_day": first_day.isoformat(), "last_day": last_day.isoformat(),
                   "records_created": created, "records_updated": updated, "records_unchanged": unchanged}
        imp.summary = summary
    return summary
