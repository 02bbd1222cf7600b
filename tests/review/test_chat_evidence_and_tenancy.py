"""The seed case (a WeChat message during the National Day holiday) and the role/company walls."""

from __future__ import annotations

import hashlib
import io
import struct
import zlib
from datetime import date, datetime, timedelta, timezone

import pytest

from qianli.models import Document, EvidenceEntry, ResignationCase

SEED_TEXT = "姐，我想离职，做到这个月底可以吗？"


@pytest.fixture
def settings(base_settings):
    """The seed message is from October 2025; these tests are about its dates and the walls, not the
    late-record rule (QIANLI_CHAT_NOTICE_WINDOW_DAYS, tested in test_chat_notice_dispute.py)."""
    from dataclasses import replace

    return replace(base_settings, chat_notice_window_days=3650)


def png_bytes(w: int = 4, h: int = 3) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + b"\xff\x00\x00" * w for _ in range(h))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def seed_body(emp, **kw):
    body = {"employee_no": emp.employee_no, "text": SEED_TEXT, "sender_name": "小陈", "platform": "wechat",
            "sent_at": "2025-10-03T21:47:00+08:00", "requested_last_day": "2025-10-31"}
    body.update(kw)
    return body


def post_multipart(client, url, data, headers):
    """Like client.post(..., data=...) but closes the builder's spooled body (large uploads use a temp file)."""
    from werkzeug.test import EnvironBuilder

    builder = EnvironBuilder(path=url, method="POST", data=data, headers=headers)
    environ = builder.get_environ()
    try:
        return client.open(environ)
    finally:
        environ["wsgi.input"].close()
        builder.close()


def counts(db_session):
    return (db_session.query(ResignationCase).count(), db_session.query(EvidenceEntry).count(),
            db_session.query(Document).count())


def test_seed_case_json(client, world, db_session, factory):
    emp = factory.employee(world.company, name="陈晓")
    r = client.post("/api/v1/hr/chat-evidence", json=seed_body(emp), headers=world.h(world.spec))
    assert r.status_code == 201, r.json
    body = r.json
    assert body["source"] == "instant_message" and body["state"] == "awaiting_letter"
    assert body["notice_arrived_at"] == "2025-10-03T13:47:00+00:00"
    assert body["arrival_date"] == "2025-10-03"
    # 3 working days after 3 Oct 2025: the holiday runs to 8 Oct, then 9 Oct (Thu), 10 Oct (Fri) and
    # 11 Oct - a Saturday made a working day (调休) for the National Day holiday.
    assert body["letter_due_date"] == "2025-10-11"
    assert body["earliest_lawful_last_day"] == "2025-11-02"
    assert body["requested_last_day"] == "2025-10-31"
    assert body["overdue"] is True  # long past by now, and no letter
    case_id = body["id"]
    chat = db_session.query(EvidenceEntry).filter_by(case_id=case_id, action="chat_evidence_recorded").one()
    assert chat.payload["text"] == SEED_TEXT and chat.payload["sender_name"] == "小陈"
    assert chat.payload["sent_at_local"] == "2025-10-03T21:47:00+08:00" and chat.payload["platform"] == "wechat"
    assert chat.payload["screenshot_sha256"] is None and chat.actor == f"hr:{world.spec.id}"
    opened = db_session.query(EvidenceEntry).filter_by(case_id=case_id, action="case_opened").one()
    assert opened.payload["source"] == "instant_message" and opened.payload["letter_due_date"] == "2025-10-11"


def test_seed_case_multipart_with_screenshot(client, world, db_session, factory):
    emp = factory.employee(world.company)
    shot = png_bytes()
    data = {k: v for k, v in seed_body(emp, employee_no=None, employee_id=emp.id).items() if v is not None}
    data["screenshot"] = (io.BytesIO(shot), "微信截图.png", "image/png")
    r = post_multipart(client, "/api/v1/hr/chat-evidence", data, world.h(world.manager))
    assert r.status_code == 201, r.json
    doc = db_session.query(Document).filter_by(case_id=r.json["id"], kind="chat_screenshot").one()
    assert doc.sha256 == hashlib.sha256(shot).hexdigest() and doc.content_type == "image/png"
    assert doc.meta["original_filename"] == "微信截图.png"
    chat = db_session.query(EvidenceEntry).filter_by(case_id=r.json["id"], action="chat_evidence_recorded").one()
    assert chat.payload["screenshot_sha256"] == doc.sha256 and chat.payload["screenshot_document_id"] == doc.id
    d = client.get(f"/api/v1/hr/cases/{r.json['id']}", headers=world.h(world.spec)).json
    assert [x["kind"] for x in d["documents"]] == ["chat_screenshot"]


@pytest.mark.parametrize("change,status,code", [
    ({"sent_at": "2025-10-03T21:47:00"}, 422, "validation_failed"),  # naive
    ({"platform": "qq"}, 422, "validation_failed"),
    ({"text": "  "}, 422, "validation_failed"),
    ({"employee_no": "NOPE"}, 404, "employee_not_found"),
    ({"employee_id": "x" * 32}, 422, "employee_ref_required"),  # both given
    ({"requested_last_day": "2025-10-01"}, 422, "last_day_not_after_arrival"),
])
def test_bad_chat_evidence_writes_nothing(client, world, db_session, factory, change, status, code):
    emp = factory.employee(world.company)
    before = counts(db_session)
    r = client.post("/api/v1/hr/chat-evidence", json=seed_body(emp, **change), headers=world.h(world.spec))
    assert (r.status_code, r.json["code"]) == (status, code), r.json
    assert counts(db_session) == before


def test_future_message_time_refused(client, world, factory, db_session):
    emp = factory.employee(world.company)
    future = (datetime.now(timezone.utc) + timedelta(hours=2)).isoformat()
    r = client.post("/api/v1/hr/chat-evidence", json=seed_body(emp, sent_at=future), headers=world.h(world.spec))
    assert r.status_code == 422 and r.json["code"] == "sent_at_in_future"


@pytest.mark.parametrize("payload,status,code", [
    (b"GIF89a" + b"\x00" * 50, 415, "screenshot_type"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * (5 * 1024 * 1024), 413, "screenshot_too_large"),
])
def test_bad_screenshot_refused(client, world, db_session, factory, payload, status, code):
    emp = factory.employee(world.company)
    before = counts(db_session)
    data = {k: v for k, v in seed_body(emp).items()}
    data["screenshot"] = (io.BytesIO(payload), "x.png", "image/png")
    r = post_multipart(client, "/api/v1/hr/chat-evidence", data, world.h(world.spec))
    assert (r.status_code, r.json["code"]) == (status, code)
    assert counts(db_session) == before


def test_only_hr_writers_record_chat_evidence(client, world, factory):
    emp = factory.employee(world.company)
    for user in (world.auditor, world.head):
        r = client.post("/api/v1/hr/chat-evidence", json=seed_body(emp), headers=world.h(user))
        assert r.status_code == 403


def test_second_open_case_conflicts(client, world, factory):
    emp = factory.employee(world.company)
    assert client.post("/api/v1/hr/chat-evidence", json=seed_body(emp), headers=world.h(world.spec)).status_code == 201
    r = client.post("/api/v1/hr/chat-evidence", json=seed_body(emp), headers=world.h(world.spec))
    assert r.status_code == 409 and r.json["code"] == "case_already_open"


# ---- role and company walls -----------------------------------------------------------------------

def test_employee_cannot_read_or_answer_for_another_employees_case(client, world, factory):
    c, emp = world.case()
    other = factory.employee(world.company)
    oh = factory.employee_headers(other)
    assert client.get(f"/api/v1/cases/{c.id}", headers=oh).status_code == 404
    assert client.post(f"/api/v1/cases/{c.id}/withdrawal", json={}, headers=oh).status_code == 404
    assert client.post(f"/api/v1/cases/{c.id}/agreed-last-day", json={"agreed_last_day": "2030-01-01"},
                       headers=oh).status_code == 404
    assert client.get(f"/api/v1/cases/{c.id}", headers=factory.employee_headers(emp)).status_code == 200


def test_dept_head_cannot_approve_or_return_another_departments_case(client, world, db_session):
    c, _ = world.case(department="研发部")
    assert client.post(f"/api/v1/hr/cases/{c.id}/approval", json={}, headers=world.h(world.spec)).status_code == 200
    for url, body in ((f"/api/v1/hr/cases/{c.id}/approval", {}), (f"/api/v1/hr/cases/{c.id}/return", {"reason": "x"})):
        r = client.post(url, json=body, headers=world.h(world.other_head))
        assert r.status_code == 404 and r.json["code"] == "case_not_found"
    db_session.expire_all()
    assert db_session.get(ResignationCase, c.id).state == "first_approved"


def test_nothing_crosses_companies(client, world, factory, db_session):
    c, emp = world.case()
    from qianli.services.alerts import raise_alert

    alert = raise_alert(db_session, company_id=world.company.id, kind="other", message="x", case_id=c.id)
    db_session.commit()
    other_co = factory.company()
    b_manager = factory.hr(other_co, "hr_manager")
    hb = factory.hr_headers(b_manager)
    for method, url, body in [
        ("get", f"/api/v1/hr/cases/{c.id}", None),
        ("post", f"/api/v1/hr/cases/{c.id}/approval", {}),
        ("post", f"/api/v1/hr/cases/{c.id}/return", {"reason": "x"}),
        ("post", f"/api/v1/hr/cases/{c.id}/withdrawal-consent", {}),
        ("post", f"/api/v1/hr/alerts/{alert.id}/resolution", None),
        ("post", "/api/v1/hr/chat-evidence", seed_body(emp, employee_no=None, employee_id=emp.id)),
    ]:
        r = getattr(client, method)(url, json=body, headers=hb)
        assert r.status_code == 404, (url, r.json)
    assert client.get("/api/v1/hr/cases", headers=hb).json["total"] == 0
    assert client.get("/api/v1/hr/alerts", headers=hb).json == []
    b_emp = factory.employee(other_co)
    assert client.get(f"/api/v1/cases/{c.id}", headers=factory.employee_headers(b_emp)).status_code == 404
    db_session.expire_all()
    assert db_session.get(ResignationCase, c.id).state == "submitted"


def test_seed_dates_match_the_calendar():
    """The seed case's dates, straight from the calendar (2025 National Day: 1-8 Oct off, 11 Oct worked)."""
    from cases.calendar import ChineseCalendar, DayKind

    cal = ChineseCalendar()
    assert cal.kind(date(2025, 10, 3)) == DayKind.HOLIDAY
    assert cal.kind(date(2025, 10, 11)) == DayKind.SWAPPED_WORKDAY
