from dataclasses import replace
from datetime import datetime, timedelta, timezone

from cases.evidence import GENESIS_DIGEST, EvidenceRecord, entry_digest, verify_chain

T0 = datetime(2026, 10, 2, 1, 30, tzinfo=timezone.utc)


def build(n=5, case_id="c1"):
    recs, prev = [], GENESIS_DIGEST
    for i in range(1, n + 1):
        payload = {"i": i, "text": "姐，我想离职"}
        at = T0 + timedelta(minutes=i)
        d = entry_digest(case_id, i, at, "hr:1", f"a{i}", payload, prev)
        recs.append(EvidenceRecord(case_id, i, at, "hr:1", f"a{i}", payload, prev, d))
        prev = d
    return recs


def test_intact_chain_verifies():
    r = verify_chain(build())
    assert r.ok and r.entries == 5 and r.first_broken_seq is None and r.head_digest == build()[-1].digest


def test_edited_payload_detected_at_that_entry():
    recs = build()
    recs[2] = replace(recs[2], payload={"i": 3, "text": "我没说过"})
    r = verify_chain(recs)
    assert not r.ok and r.first_broken_seq == 3 and "digest" in r.reason


def test_edited_time_or_actor_detected():
    for field, value in [("occurred_at", T0), ("actor", "hr:2"), ("action", "x")]:
        recs = build()
        recs[1] = replace(recs[1], **{field: value})
        assert verify_chain(recs).first_broken_seq == 2


def test_recomputed_digest_still_breaks_next_link():
    recs = build()
    forged = replace(recs[1], payload={"forged": True})
    forged = replace(forged, digest=entry_digest(forged.case_id, 2, forged.occurred_at, forged.actor, forged.action,
                                                 forged.payload, forged.prev_digest))
    recs[1] = forged
    r = verify_chain(recs)
    assert not r.ok and r.first_broken_seq == 3 and "previous" in r.reason


def test_deleted_entry_detected():
    recs = build()
    del recs[3]
    r = verify_chain(recs)
    assert not r.ok and r.first_broken_seq == 4


def test_deleted_last_entry_changes_head():
    recs = build()
    assert verify_chain(recs[:-1]).head_digest != verify_chain(recs).head_digest


def test_reordered_entries_detected():
    recs = build()
    recs[1], recs[2] = recs[2], recs[1]
    r = verify_chain(recs)
    assert not r.ok and r.first_broken_seq == 2


def test_entry_from_another_case_detected():
    recs = build()
    other = build(case_id="c2")
    recs[1] = other[1]
    assert not verify_chain(recs, expected_case_id="c1").ok
