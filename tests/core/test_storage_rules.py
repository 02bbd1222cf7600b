"""Encryption at rest, the database-enforced append-only log, and the stored evidence chain."""

import pytest
from sqlalchemy import text

from qianli.db import utcnow
from qianli.models import EvidenceEntry
from qianli.services.cases import open_case
from qianli.services.employees import employee_national_id, employee_phone
from qianli.services.evidence import append_evidence, verify_case_chain


def test_no_plaintext_personal_data_in_raw_rows(db_session, factory, runtime):
    c = factory.company()
    e = factory.employee(c, phone="13912345678", national_id="11010519491231002X")
    raw = db_session.execute(text("SELECT * FROM employees WHERE id = :id"), {"id": e.id}).mappings().one()
    dump = " ".join(str(v) for v in raw.values())
    assert "13912345678" not in dump and "11010519491231002X" not in dump and "491231" not in dump
    assert raw["phone_enc"].startswith("v1:") and len(raw["phone_hash"]) == 64
    assert employee_phone(runtime, e) == "13912345678"
    assert employee_national_id(runtime, e) == "11010519491231002X"


def test_lookup_by_phone_uses_keyed_hash(db_session, factory, runtime):
    from qianli.models import Employee

    c = factory.company()
    e = factory.employee(c, phone="13912345679")
    found = db_session.query(Employee).filter(Employee.phone_hash == runtime.lookup("phone", "13912345679")).one()
    assert found.id == e.id


def _case(db_session, factory, runtime):
    c = factory.company()
    e = factory.employee(c)
    case = open_case(db_session, runtime.settings, employee=e, source="instant_message",
                     notice_arrived_at=utcnow(), actor="hr:test", reason_text="姐，我想离职")
    for i in range(3):
        append_evidence(db_session, case, "system", "reminder_sent", {"slot": i})
    db_session.commit()
    return case


def test_stored_chain_verifies_and_detects_edit(db_session, factory, runtime):
    case = _case(db_session, factory, runtime)
    assert verify_case_chain(db_session, case.id, case.company_id).ok
    if db_session.bind.dialect.name == "postgresql":
        pytest.skip("PostgreSQL refuses the edit itself (see the next test)")
    db_session.execute(text("UPDATE evidence_entries SET payload = :p WHERE case_id = :c AND seq = 2"),
                       {"p": '{"slot": 99}', "c": case.id})
    r = verify_case_chain(db_session, case.id, case.company_id)
    assert not r.ok and r.first_broken_seq == 2


def test_stored_chain_detects_delete_and_reorder_on_sqlite(db_session, factory, runtime):
    if db_session.bind.dialect.name == "postgresql":
        pytest.skip("PostgreSQL refuses deletes")
    case = _case(db_session, factory, runtime)
    db_session.execute(text("DELETE FROM evidence_entries WHERE case_id = :c AND seq = 3"), {"c": case.id})
    assert verify_case_chain(db_session, case.id, case.company_id).first_broken_seq == 3
    # Reorder: swap the ids (storage order) of entries 1 and 2.
    case2 = _case(db_session, factory, runtime)
    ids = [e.id for e in db_session.query(EvidenceEntry).filter_by(case_id=case2.id).order_by(EvidenceEntry.seq)]
    db_session.execute(text("UPDATE evidence_entries SET id = -1 WHERE id = :a"), {"a": ids[0]})
    db_session.execute(text("UPDATE evidence_entries SET id = :a WHERE id = :b"), {"a": ids[0], "b": ids[1]})
    db_session.execute(text("UPDATE evidence_entries SET id = :b WHERE id = -1"), {"b": ids[1]})
    db_session.expire_all()
    r = verify_case_chain(db_session, case2.id, case2.company_id)
    assert not r.ok and r.first_broken_seq == 1


@pytest.mark.parametrize("stmt", ["UPDATE evidence_entries SET actor = 'forger' WHERE case_id = :c",
                                  "DELETE FROM evidence_entries WHERE case_id = :c"])
def test_postgres_refuses_update_and_delete(db_session, factory, runtime, stmt):
    if db_session.bind.dialect.name != "postgresql":
        pytest.skip("database-level refusal is a PostgreSQL feature")
    from sqlalchemy.exc import DBAPIError

    case = _case(db_session, factory, runtime)
    with pytest.raises(DBAPIError, match="append-only"), db_session.begin_nested():
        db_session.execute(text(stmt), {"c": case.id})
    assert verify_case_chain(db_session, case.id, case.company_id).ok
