"""Document storage (local files and an S3-compatible server) and HR alerts."""

from __future__ import annotations

import hashlib
import socket
from datetime import datetime, timezone

import pytest

from cases.errors import NotFound, ServiceUnavailable
from qianli.models import Document, EvidenceEntry, HrAlert
from qianli.services.alerts import open_alerts, raise_alert, resolve_alert
from qianli.storage import LocalStore, S3Store, read_document, store_document


def test_local_store_roundtrip_is_content_addressed(tmp_path):
    store = LocalStore(tmp_path)
    store.put("c1/ab/abc", b"hello", "text/plain")
    store.put("c1/ab/abc", b"hello", "text/plain")  # idempotent
    assert store.get("c1/ab/abc") == b"hello"
    assert store.exists("c1/ab/abc") and not store.exists("c1/ab/zzz")
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == ["abc"]  # no temp files left
    with pytest.raises(NotFound):
        store.get("c1/ab/zzz")
    with pytest.raises(ValueError):
        store.put("../escape", b"x", "text/plain")


def test_store_document_records_sha_and_detects_corruption(runtime, db_session, factory, tmp_path):
    company = factory.company()
    store = LocalStore(tmp_path)
    data = b"%PDF-1.7 letter"
    doc = store_document(db_session, store, company_id=company.id, kind="letter_signed", filename="letter.pdf",
                         content_type="application/pdf", data=data, created_by="test")
    db_session.commit()
    row = db_session.get(Document, doc.id)
    assert row.sha256 == hashlib.sha256(data).hexdigest() and row.size == len(data)
    assert read_document(store, row) == data
    (tmp_path / row.storage_key).write_bytes(b"%PDF-1.7 letteR")
    with pytest.raises(ServiceUnavailable) as exc:
        read_document(store, row)
    assert exc.value.code == "document_corrupted"
    with pytest.raises(ValueError):
        store_document(db_session, store, company_id=company.id, kind="nonsense", filename="x", content_type="x",
                       data=b"x", created_by="t")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def s3_server():
    """A local server speaking the S3 wire protocol (moto), standing in for MinIO/OSS/COS."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def test_s3_store_against_a_local_s3_server(s3_server):
    store = S3Store(endpoint_url=s3_server, bucket="qianli-docs", access_key_id="test", secret_access_key="test")
    store.client.create_bucket(Bucket="qianli-docs")
    store.put("c1/ab/abc", b"signed pdf bytes", "application/pdf")
    assert store.get("c1/ab/abc") == b"signed pdf bytes"
    assert store.exists("c1/ab/abc") and not store.exists("c1/ab/nope")
    with pytest.raises(NotFound):
        store.get("c1/ab/nope")
    head = store.client.head_object(Bucket="qianli-docs", Key="c1/ab/abc")
    assert head["ContentType"] == "application/pdf"


def test_s3_store_unreachable_is_a_503_not_a_crash():
    store = S3Store(endpoint_url=f"http://127.0.0.1:{_free_port()}", bucket="b", access_key_id="a",
                    secret_access_key="s")
    with pytest.raises(ServiceUnavailable) as exc:
        store.put("k", b"x", "text/plain")
    assert exc.value.code == "storage_unavailable"


def test_alerts_are_company_scoped_and_go_into_the_case_chain(runtime, db_session, factory):
    from qianli.services.cases import open_case

    company, other = factory.company(), factory.company()
    emp = factory.employee(company)
    case = open_case(db_session, runtime.settings, employee=emp, source="miniprogram",
                     notice_arrived_at=datetime(2025, 3, 3, 2, tzinfo=timezone.utc), actor="employee:x")
    alert = raise_alert(db_session, company_id=company.id, kind="face_locked", message="人脸核验已锁定",
                        case_id=case.id, employee_id=emp.id, payload={"failures": 5})
    db_session.commit()
    assert [a.id for a in open_alerts(db_session, company.id)] == [alert.id]
    assert open_alerts(db_session, other.id) == []
    actions = [e.action for e in db_session.query(EvidenceEntry).filter_by(case_id=case.id)]
    assert actions[-1] == "hr_alert_raised"
    with pytest.raises(NotFound):
        resolve_alert(db_session, other.id, alert.id, actor="hr:x")
    resolve_alert(db_session, company.id, alert.id, actor="hr:x")
    db_session.commit()
    assert open_alerts(db_session, company.id) == [] and db_session.get(HrAlert, alert.id).resolved_by == "hr:x"
