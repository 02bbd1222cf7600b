"""The dossier: contents, offline verification, and that any change is detected."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile

from asn1crypto import tsp
from pypdf import PdfReader
from sqlalchemy import select

from cases.evidence_kinds import DossierView
from qianli.models import EvidenceEntry
from qianli.services.dossier import build_dossier, verify_dossier
from .pki_helpers import make_pki


def members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {i.filename: zf.read(i.filename) for i in zf.infolist()}


def rezip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, body in files.items():
            zf.writestr(name, body)
    return buf.getvalue()


def test_contents_and_fresh_export_verifies(runtime, db_session, case, pki):
    services, root = pki
    data = build_dossier(db_session, runtime, case, actor="hr:1", services=services)
    files = members(data)
    for name in ("manifest.json", "manifest.json.tsr", "report.pdf", "case/form.json", "evidence/chain.jsonl",
                 "evidence/chat.json", "evidence/identity.json", "evidence/reminders.json", "evidence/approvals.json",
                 "evidence/case.json", "documents/index.json", "pki/root.pem"):
        assert name in files, name
    manifest = json.loads(files["manifest.json"])
    assert {f["path"] for f in manifest["files"]} == set(files) - {"manifest.json", "manifest.json.tsr"}
    for f in manifest["files"]:
        assert hashlib.sha256(files[f["path"]]).hexdigest() == f["sha256"]
    assert json.loads(files["case/form.json"])["source"] == "instant_message"
    assert len(json.loads(files["evidence/reminders.json"])["entries"]) == 2
    assert [e["action"] for e in json.loads(files["evidence/approvals.json"])["entries"]] == ["case_approve_first"]
    assert "姐，我想离职" in json.loads(files["evidence/chat.json"])["entries"][0]["payload"]["text"]
    # consent withdrawal is identity evidence, not an approval (the word "withdraw" once misfiled it)
    assert [e["action"] for e in json.loads(files["evidence/identity.json"])["entries"]] == [
        "sms_code_verified", "face_consent_withdrawn"]
    assert [e["action"] for e in json.loads(files["evidence/case.json"])["entries"]] == ["case_opened", "case_submit_letter"]
    # every entry of the chain is in exactly one view
    views = [f"evidence/{v.value}.json" for v in DossierView]
    in_views = sorted(e["seq"] for n in views for e in json.loads(files[n])["entries"])
    assert in_views == [json.loads(line)["seq"] for line in files["evidence/chain.jsonl"].decode().splitlines()]
    shots = [n for n in files if n.startswith("documents/chat_screenshot/")]
    assert len(shots) == 1 and files[shots[0]].startswith(b"\x89PNG")
    tsr = tsp.TimeStampResp.load(files["manifest.json.tsr"])
    imprint = tsr["time_stamp_token"]["content"]["encap_content_info"]["content"].parsed["message_imprint"]
    assert imprint["hashed_message"].native == hashlib.sha256(files["manifest.json"]).digest()

    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(files["report.pdf"])).pages)
    assert "离职证据报告" in text and "李雷" in text and "一级审核通过" in text and "哈希链逐条校验通过" in text

    result = verify_dossier(data)
    assert result.ok, result.problems
    assert result.trust_source == "dossier" and result.chain["ok"] and result.chain["entries"] == manifest["chain_entries"]
    assert result.root_sha256 == manifest["root_sha256"]
    assert verify_dossier(data, trust_roots=[root]).ok

    # the export is itself recorded in the chain
    last = db_session.scalars(select(EvidenceEntry).where(EvidenceEntry.case_id == case.id)
                              .order_by(EvidenceEntry.seq.desc())).first()
    assert last.action == "dossier_exported" and last.payload["zip_sha256"] == hashlib.sha256(data).hexdigest()
    assert last.payload["manifest_sha256"] == hashlib.sha256(files["manifest.json"]).hexdigest()


def test_one_byte_changed_in_any_member_fails(runtime, db_session, case, pki):
    services, _ = pki
    data = build_dossier(db_session, runtime, case, services=services)
    files = members(data)
    assert len(files) >= 12
    for name, body in files.items():
        for pos in sorted({0, len(body) // 2, len(body) - 1}):
            changed = bytearray(body)
            changed[pos] ^= 0x01
            result = verify_dossier(rezip({**files, name: bytes(changed)}))
            assert not result.ok, (name, pos)
            assert result.reason


def test_timestamp_response_every_sampled_byte(runtime, db_session, case, pki):
    services, _ = pki
    files = members(build_dossier(db_session, runtime, case, services=services))
    tsr = files["manifest.json.tsr"]
    step = max(1, len(tsr) // 80)
    for pos in range(0, len(tsr), step):
        changed = bytearray(tsr)
        changed[pos] ^= 0x01
        assert not verify_dossier(rezip({**files, "manifest.json.tsr": bytes(changed)})).ok, pos


def test_raw_byte_flip_in_the_zip_fails(runtime, db_session, case, pki):
    services, _ = pki
    data = build_dossier(db_session, runtime, case, services=services)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        infos = zf.infolist()
    for info in infos:
        # the member's data starts after its local header (30 bytes + name + extra)
        start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
        pos = start + info.compress_size // 2
        changed = bytearray(data)
        changed[pos] ^= 0x40
        assert not verify_dossier(bytes(changed)).ok, info.filename


def test_member_added_removed_manifest_edited(runtime, db_session, case, pki):
    services, _ = pki
    files = members(build_dossier(db_session, runtime, case, services=services))
    added = verify_dossier(rezip({**files, "documents/other/extra.txt": b"planted"}))
    assert not added.ok and "added" in added.reason
    for name in ("report.pdf", "evidence/chain.jsonl", "manifest.json", "manifest.json.tsr", "pki/root.pem"):
        removed = verify_dossier(rezip({k: v for k, v in files.items() if k != name}))
        assert not removed.ok, name

    # edit a file AND its manifest entry: the timestamp no longer matches the manifest
    form = files["case/form.json"].replace("instant_message".encode(), b"miniprogram")
    manifest = json.loads(files["manifest.json"])
    for f in manifest["files"]:
        if f["path"] == "case/form.json":
            f["sha256"], f["size"] = hashlib.sha256(form).hexdigest(), len(form)
    forged = {**files, "case/form.json": form, "manifest.json": json.dumps(manifest).encode()}
    result = verify_dossier(rezip(forged))
    assert not result.ok and "imprint" in result.reason

    # baseline: the same members re-zipped verify, so the failures above come from the changes
    assert verify_dossier(rezip(files)).ok


def test_forged_timestamp_and_foreign_root(runtime, db_session, case, pki):
    services, root = pki
    files = members(build_dossier(db_session, runtime, case, services=services))
    # an attacker's own TSA stamps an edited manifest and ships their own root in the zip
    forger, forger_root = make_pki("Forger Root")
    forged = build_dossier(db_session, runtime, case, services=forger)
    forged_files = members(forged)
    assert verify_dossier(forged).ok  # self-consistent...
    result = verify_dossier(forged, trust_roots=[root])  # ...but not trusted by the company's root
    assert not result.ok and "chain to the trusted root" in result.reason
    # the forger's token with the genuine root in the zip
    mixed = {**files, "manifest.json": forged_files["manifest.json"], "manifest.json.tsr": forged_files["manifest.json.tsr"]}
    assert not verify_dossier(rezip(mixed)).ok
    # a genuine token over a different manifest
    other = {**files, "manifest.json.tsr": forged_files["manifest.json.tsr"]}
    assert not verify_dossier(rezip(other), trust_roots=[root]).ok


def test_broken_chain_in_database_is_reported(runtime, db_session, case, pki):
    services, _ = pki
    files = members(build_dossier(db_session, runtime, case, services=services))
    lines = files["evidence/chain.jsonl"].decode().splitlines()
    entry = json.loads(lines[1])
    entry["payload"]["tampered"] = True
    lines[1] = json.dumps(entry, ensure_ascii=False)
    from qianli.services.dossier import _check_chain, DossierVerification

    r = DossierVerification(ok=False)
    _check_chain("\n".join(lines).encode(), case.id, json.loads(files["manifest.json"]), r)
    assert r.chain["ok"] is False and r.chain["first_broken_seq"] == 2


def test_not_a_zip():
    assert not verify_dossier(b"not a zip").ok
    assert not verify_dossier(b"").ok
    assert "missing" in verify_dossier(rezip({"a.txt": b"x"})).reason
