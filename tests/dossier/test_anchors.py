"""Anchored chains: Merkle trees over chain heads, timestamped by the TSA, kept append-only, exported,
carried by the dossier and checked by `qianli evidence verify` / `qianli dossier verify`.

The attacks: whoever controls the database rewrites a case's chain consistently (every digest
recomputed, so the chain alone still verifies), removes an anchor, or edits an anchor's root.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import re
import zipfile
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner
from sqlalchemy import select, text, update

from cases.anchor import (AnchorLeaf, case_leaf, inclusion_proof, leaf_hash, merkle_root, previous_anchor_leaf,
                          verify_inclusion)
from cases.evidence import entry_digest
from qianli.models import ChainAnchor, ChainAnchorLeaf, EvidenceEntry
from qianli.services.anchors import (anchor_if_due, case_anchor_proof, make_anchor, trust_roots_der,
                                     verify_anchor_proof, verify_anchors)
from qianli.services.dossier import build_dossier, verify_dossier
from qianli.services.evidence import append_evidence, verify_case_chain

# ---- the tree ---------------------------------------------------------------------------------------


def test_rfc6962_reference_root():
    """The certificate-transparency reference tree of 8 leaves (RFC 6962 hashing)."""
    raw = [b"", b"\x00", b"\x10", b"\x20\x21", b"\x30\x31", b"\x40\x41\x42\x43", bytes(range(0x50, 0x58)),
           bytes(range(0x60, 0x70))]

    class Raw(AnchorLeaf):
        def encode(self) -> bytes:  # the reference leaves are raw bytes
            return self.digest.encode("latin-1")

    leaves = [Raw(None, 0, b.decode("latin-1")) for b in raw]
    assert leaf_hash(leaves[0]).hex() == "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    assert merkle_root(leaves) == "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 7, 8, 9, 13, 16, 17])
def test_every_leaf_proves_inclusion_and_nothing_else_does(size):
    leaves = [previous_anchor_leaf(3, "ab" * 32)] + [case_leaf(f"case{i}", i, f"{i:064x}") for i in range(1, size)]
    root = merkle_root(leaves)
    for i, leaf in enumerate(leaves):
        proof = inclusion_proof(leaves, i)
        assert verify_inclusion(leaf, i, size, proof, root)
        assert not verify_inclusion(case_leaf("forged", 1, "00" * 32), i, size, proof, root)
        assert not verify_inclusion(leaf, i, size, proof, "00" * 32)
        if size > 1:
            assert not verify_inclusion(leaf, (i + 1) % size, size, proof, root)
            assert not verify_inclusion(leaf, i, size, proof[:-1], root)


# ---- making and checking anchors ----------------------------------------------------------------------


@pytest.fixture
def cases3(factory, db_session):
    company = factory.company()
    out = []
    for n in range(3):
        from qianli.services import cases as case_svc

        emp = factory.employee(company, employee_no=f"X{n}")
        c = case_svc.open_case(db_session, factory.rt.settings, employee=emp, source="instant_message",
                               notice_arrived_at=datetime(2026, 10, 2, 6, 30, tzinfo=timezone.utc), actor="hr:1",
                               reason_category="other", reason_text="想离职", requested_last_day=None,
                               handover_items=[])
        append_evidence(db_session, c, "hr:1", "chat_evidence_recorded", {"text": f"第{n}条"})
        out.append(c)
    db_session.commit()
    return out


@contextlib.contextmanager
def _owner_powers(db_session, *tables):
    """PostgreSQL: what only the tables' owner (or a superuser) can do: switch the append-only triggers off."""
    pg = db_session.get_bind().dialect.name == "postgresql"
    for t in tables if pg else ():
        db_session.execute(text(f"ALTER TABLE {t} DISABLE TRIGGER {t}_append_only"))
    yield
    for t in tables if pg else ():
        db_session.execute(text(f"ALTER TABLE {t} ENABLE TRIGGER {t}_append_only"))


def _rewrite_consistently(db_session, case, seq: int, payload: dict) -> None:
    """What whoever owns the database can do (the app's own role cannot: see test_pg_roles): switch the
    append-only trigger off (PostgreSQL), edit one entry and recompute every digest after it, so the chain on
    its own verifies again."""
    with _owner_powers(db_session, "evidence_entries"):
        _rewrite(db_session, case, seq, payload)
    db_session.commit()
    db_session.expire_all()
    assert verify_case_chain(db_session, case.id, case.company_id).ok  # the forgery is self-consistent


def _rewrite(db_session, case, seq: int, payload: dict) -> None:
    entries = db_session.scalars(select(EvidenceEntry).where(EvidenceEntry.case_id == case.id)
                                 .order_by(EvidenceEntry.seq)).all()
    prev = entries[seq - 2].digest if seq > 1 else "0" * 64
    for e in entries[seq - 1:]:
        body = payload if e.seq == seq else e.payload
        d = entry_digest(e.case_id, e.seq, e.occurred_at, e.actor, e.action, body, prev)
        db_session.execute(update(EvidenceEntry).where(EvidenceEntry.id == e.id)
                           .values(payload=body, prev_digest=prev, digest=d))
        prev = d


def test_anchor_covers_grown_chains_and_links_to_its_predecessor(runtime, db_session, cases3):
    first = make_anchor(db_session, runtime)
    db_session.commit()
    assert first.prev_anchor_id == 0 and first.prev_root == "0" * 64
    assert first.leaf_count == 1 + 3  # the predecessor leaf and the three chains' heads
    assert make_anchor(db_session, runtime) is None  # nothing grew
    append_evidence(db_session, cases3[1], "system", "reminder_sent", {"n": 1})
    db_session.commit()
    second = make_anchor(db_session, runtime)
    db_session.commit()
    assert (second.prev_anchor_id, second.prev_root, second.leaf_count) == (first.id, first.root, 2)
    leaves = db_session.scalars(select(ChainAnchorLeaf).where(ChainAnchorLeaf.anchor_id == second.id)).all()
    head = db_session.scalars(select(EvidenceEntry).where(EvidenceEntry.case_id == cases3[1].id)
                              .order_by(EvidenceEntry.seq.desc())).first()
    assert [(x.case_id, x.seq, x.digest) for x in leaves] == [(cases3[1].id, head.seq, head.digest)]
    check = verify_anchors(db_session, trust_roots_der(runtime))
    assert check.ok and check.anchors == 2 and check.leaves == 4, check.problems

    # the case's proof leads from its newest anchored head to a token over the root
    proof = case_anchor_proof(db_session, cases3[1].id)
    assert proof["anchor"]["id"] == second.id and proof["leaf"]["seq"] == head.seq
    digests = {e.seq: e.digest for e in db_session.scalars(select(EvidenceEntry).where(
        EvidenceEntry.case_id == cases3[1].id))}
    assert verify_anchor_proof(proof, trust_roots_der=trust_roots_der(runtime), chain_digests=digests) == []
    from asn1crypto import tsp

    tst = tsp.TimeStampResp.load(base64.b64decode(proof["anchor"]["token"]))
    imprint = tst["time_stamp_token"]["content"]["encap_content_info"]["content"].parsed["message_imprint"]
    assert imprint["hashed_message"].native.hex() == second.root


def test_a_consistently_rewritten_chain_is_caught_by_its_anchor(runtime, db_session, cases3):
    make_anchor(db_session, runtime)
    db_session.commit()
    victim = cases3[0]
    _rewrite_consistently(db_session, victim, 1, {"forged": "员工主动辞职"})
    check = verify_anchors(db_session, trust_roots_der(runtime), case_id=victim.id)
    assert not check.ok and any("was rewritten" in p for p in check.problems), check.problems
    assert verify_anchors(db_session, trust_roots_der(runtime), case_id=cases3[2].id).ok  # others untouched

    # the dossier built from the rewritten database says so too
    data = build_dossier(db_session, runtime, victim, actor="hr:1")
    result = verify_dossier(data)
    assert not result.ok and any("chain rewritten" in p for p in result.problems), result.problems
    assert "证据链在锚定后被改写" in _report_text(data)


def test_removed_or_altered_anchors_are_caught(runtime, db_session, cases3):
    make_anchor(db_session, runtime)
    append_evidence(db_session, cases3[0], "system", "reminder_sent", {"n": 1})
    make_anchor(db_session, runtime)
    append_evidence(db_session, cases3[0], "system", "reminder_sent", {"n": 2})
    third = make_anchor(db_session, runtime)
    db_session.commit()
    roots = trust_roots_der(runtime)
    assert verify_anchors(db_session, roots).ok

    # an altered root: its leaves no longer give it, and the TSA's token is over the old one
    with _owner_powers(db_session, "chain_anchors"):
        db_session.execute(update(ChainAnchor).where(ChainAnchor.id == third.id).values(root="11" * 32))
    problems = verify_anchors(db_session, roots).problems
    assert any("do not give its root" in p for p in problems) and any("imprint" in p for p in problems), problems
    db_session.rollback()

    # the middle anchor removed: the third no longer follows anything
    middle = third.prev_anchor_id
    with _owner_powers(db_session, "chain_anchors", "chain_anchor_leaves"):
        db_session.execute(ChainAnchorLeaf.__table__.delete().where(ChainAnchorLeaf.anchor_id == middle))
        db_session.execute(ChainAnchor.__table__.delete().where(ChainAnchor.id == middle))
    problems = verify_anchors(db_session, roots).problems
    assert any(f"anchor {third.id}: does not follow" in p for p in problems), problems
    db_session.rollback()


def test_anchor_if_due_keeps_the_interval(runtime, db_session, cases3):
    now = datetime.now(timezone.utc)
    assert anchor_if_due(runtime, now=now)["leaves"] == 4
    append_evidence(db_session, cases3[0], "system", "reminder_sent", {"n": 1})
    db_session.commit()
    assert anchor_if_due(runtime, now=now + timedelta(seconds=60)) is None  # not due yet
    later = now + timedelta(seconds=runtime.settings.anchor_interval_s + 1)
    assert anchor_if_due(runtime, now=later)["leaves"] == 2
    assert anchor_if_due(runtime, now=later + timedelta(days=1)) is None  # due, but nothing grew


# ---- the dossier and the CLI ------------------------------------------------------------------------------


def _report_text(data: bytes) -> str:
    from pypdf import PdfReader

    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(_members(data)["report.pdf"])).pages)
    return re.sub(r"\s+", " ", text)  # the extractor spaces and wraps CJK lines freely


def _zip_of(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, body in files.items():
            zf.writestr(name, body)
    return buf.getvalue()


def _members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {i.filename: zf.read(i.filename) for i in zf.infolist()}


def test_dossier_carries_the_inclusion_proof_and_the_token(runtime, db_session, cases3):
    case = cases3[2]
    before = _members(build_dossier(db_session, runtime, case, actor="hr:1"))
    assert json.loads(before["evidence/anchor.json"])["anchored"] is False
    anchor = make_anchor(db_session, runtime)  # covers the dossier_exported entry too
    db_session.commit()
    data = build_dossier(db_session, runtime, case, actor="hr:1")
    files = _members(data)
    proof = json.loads(files["evidence/anchor.json"])
    assert proof["anchor"]["id"] == anchor.id and proof["anchor"]["root"] == anchor.root
    result = verify_dossier(data)
    assert result.ok, result.problems
    assert result.anchor["anchored"] and result.anchor["ok"] and result.anchor["anchor_id"] == anchor.id
    text = _report_text(data)
    assert f"锚点 #{anchor.id}" in text and "与现存记录一致" in text, text
    assert "尚未锚定" in _report_text(_zip_of(before))
    # the anchor came after the first export and before this one: it covers the whole chain in the dossier
    assert result.anchor["anchored_seq"] == result.anchor["chain_entries"] == result.chain["entries"]

    # a proof whose token is replaced by another anchor's, or whose leaf was edited, fails
    other = dict(proof, leaf=dict(proof["leaf"], digest="22" * 32))
    assert "anchor: the inclusion proof does not lead to the anchor's root" in verify_anchor_proof(
        other, trust_roots_der=trust_roots_der(runtime))
    forged_token = dict(proof, anchor=dict(proof["anchor"], root="33" * 32))
    assert any("imprint" in p for p in verify_anchor_proof(forged_token, trust_roots_der=trust_roots_der(runtime)))


def test_cli_export_and_verify(runtime, db_session, cases3, tmp_path):
    from qianli.cli import cli

    make_anchor(db_session, runtime)
    db_session.commit()
    out = tmp_path / "anchors.jsonl"
    r = CliRunner().invoke(cli, ["evidence", "anchors", "export", "--leaves", "--out", str(out)])
    assert r.exit_code == 0, r.output
    exported = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(exported) == 1 and len(exported[0]["leaves"]) == 3
    assert merkle_root([previous_anchor_leaf(0, "0" * 64)] + [case_leaf(x["case_id"], x["seq"], x["digest"])
                                                              for x in exported[0]["leaves"]]) == exported[0]["root"]
    assert hashlib.sha256(base64.b64decode(exported[0]["token"])).hexdigest()  # base64 DER
    r = CliRunner().invoke(cli, ["evidence", "verify", cases3[0].id])
    assert r.exit_code == 0 and json.loads(r.output)["anchors"]["ok"], r.output
    r = CliRunner().invoke(cli, ["evidence", "anchors", "verify"])
    assert r.exit_code == 0, r.output

    _rewrite_consistently(db_session, cases3[0], 1, {"forged": True})
    r = CliRunner().invoke(cli, ["evidence", "verify", cases3[0].id])
    body = json.loads(r.output)
    assert r.exit_code == 1 and body["reason"] is None and not body["anchors"]["ok"], r.output  # chain alone is "fine"
    assert CliRunner().invoke(cli, ["evidence", "anchors", "verify"]).exit_code == 1


def test_sqlite_has_no_trigger_but_postgres_refuses_rewrites(runtime, db_session, cases3):
    """On PostgreSQL even the table owner hits the append-only trigger on the anchor tables."""
    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("the append-only triggers exist on PostgreSQL only (SQLite is for development)")
    make_anchor(db_session, runtime)
    db_session.commit()
    for stmt in ("UPDATE chain_anchors SET root = 'x'", "DELETE FROM chain_anchor_leaves",
                 "TRUNCATE chain_anchors CASCADE"):
        with pytest.raises(Exception, match="append-only"), db_session.begin_nested():
            db_session.execute(text(stmt))
