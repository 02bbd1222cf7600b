"""``qianli pki init|export-root|selftest`` and ``qianli verify``, through click's CliRunner, with the
selftest's PDF checked again by ``qianli verify`` and independently by poppler's pdfsig."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from dataclasses import replace

import pytest
from click.testing import CliRunner
from cryptography import x509

from qianli.cli.pki import pki_group, verify_command
from qianli.settings import reset_settings_cache
from signing.pki import load_pki


@pytest.fixture
def use_settings(base_settings):
    """Install settings for the commands (they read get_settings()); the session's are restored after."""
    def install(s):
        reset_settings_cache(s)
        return s

    yield install
    reset_settings_cache(base_settings)


@pytest.fixture(scope="module")
def selftest_pdf(base_settings, tmp_path_factory):
    """One selftest run (module-wide): its exit code, JSON summary and PDF."""
    reset_settings_cache(base_settings)
    out = tmp_path_factory.mktemp("selftest") / "selftest.pdf"
    r = CliRunner().invoke(pki_group, ["selftest", "--out", str(out)])
    return r, out


def _json(text: str) -> dict:
    return json.loads(text[text.index("{"):text.rindex("}") + 1])


def test_init_is_idempotent_and_prints_the_root_fingerprint(settings, use_settings, tmp_path):
    s = use_settings(replace(settings, var_dir=tmp_path / "var"))
    first = CliRunner().invoke(pki_group, ["init"])
    assert first.exit_code == 0, first.output
    assert "PKI created" in first.stdout
    fp = re.search(r"root SHA-256: ([0-9a-f]{64})", first.stdout).group(1)
    assert fp == hashlib.sha256(load_pki(s, reload=True).cert_der("root")).hexdigest()
    assert str((tmp_path / "var" / "pki" / "ca.key.pem").resolve()) in first.stdout
    again = CliRunner().invoke(pki_group, ["init", "--json"])
    assert again.exit_code == 0, again.output
    out = _json(again.stdout)
    assert out["created"] is False and out["root_sha256"] == fp
    assert out["seal"]["backend"] == "pkcs12" and out["policy_oid"].startswith("2.25.")
    assert sorted(p.name for p in (tmp_path / "var" / "pki").glob("*.key.pem")) == ["ca.key.pem", "root.key.pem",
                                                                                   "tsa.key.pem"]


def test_init_with_pkcs11_creates_the_softhsm_token_once(settings, use_settings, tmp_path, monkeypatch):
    # A token directory of this test's own: SoftHSM2 config under the fresh var/ (restored afterwards).
    monkeypatch.setenv("SOFTHSM2_CONF", "unset-by-test")
    monkeypatch.delenv("SOFTHSM2_CONF")
    use_settings(replace(settings, var_dir=tmp_path / "var", seal_backend="pkcs11", pkcs11_token_label="cli-test"))
    first = _json(CliRunner().invoke(pki_group, ["init", "--json"]).stdout)
    assert first["seal"]["token_created"] is True and first["seal"]["token_label"] == "cli-test"
    conf = first["seal"]["softhsm2_conf"]
    assert conf == str((tmp_path / "var" / "softhsm" / "softhsm2.conf").resolve())
    r = CliRunner().invoke(pki_group, ["init"])
    assert r.exit_code == 0, r.output
    assert "PKCS#11 token 'cli-test' (present" in r.stdout and f"SOFTHSM2_CONF={conf}" in r.stdout
    slots = subprocess.run(["softhsm2-util", "--show-slots"], capture_output=True, text=True, check=True,
                           env={"PATH": "/usr/bin:/bin", "SOFTHSM2_CONF": conf}).stdout
    assert slots.count("cli-test") == 1


def test_init_company_seal(runtime, factory, use_settings, settings):
    company = factory.company(code="clisealco", name="会签科技有限公司")
    use_settings(settings)
    first = CliRunner().invoke(pki_group, ["init", "--json", "--company", "clisealco"])
    assert first.exit_code == 0, first.output
    seal = _json(first.stdout)["seals"][0]
    assert seal["company_id"] == company.id and seal["created"] is True
    assert (settings.var_dir / "pki" / "seals" / f"{company.id}.p12").exists()
    assert _json(CliRunner().invoke(pki_group, ["init", "--json", "--company", "clisealco"]).stdout)["seals"][0][
        "created"] is False
    r = CliRunner().invoke(pki_group, ["init", "--company", "nosuchco"])
    assert r.exit_code == 1 and "no company 'nosuchco'" in r.output and "Traceback" not in r.output


def test_export_root_writes_the_loaded_root(settings, use_settings, tmp_path):
    use_settings(settings)
    path = tmp_path / "root.pem"
    r = CliRunner().invoke(pki_group, ["export-root", str(path)])
    assert r.exit_code == 0, r.output
    pki = load_pki(settings)
    assert path.read_bytes() == pki.root_pem
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    assert cert == pki.root and cert.subject == cert.issuer
    assert hashlib.sha256(pki.cert_der("root")).hexdigest() in r.stdout
    stdout = CliRunner().invoke(pki_group, ["export-root", "-"])
    assert stdout.exit_code == 0 and stdout.stdout.encode() == pki.root_pem


def test_selftest_pdf_is_accepted_by_verify_and_pdfsig(settings, use_settings, selftest_pdf, pdfsig_for):
    use_settings(settings)
    r, path = selftest_pdf
    assert r.exit_code == 0, r.output
    summary = _json(r.stdout)
    pki = load_pki(settings)
    assert summary["ok"] is True and summary["out"] == str(path)
    assert summary["pades_level"] == "B-LTA" and summary["ades_indication"] == "PASSED" and summary["trusted"]
    assert summary["document_timestamps"] == 1 and summary["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert summary["root_sha256"] == hashlib.sha256(pki.cert_der("root")).hexdigest()
    assert "事件证书" in summary["event_cert_subject"] and summary["signing_time"]

    v = CliRunner().invoke(verify_command, [str(path)])
    assert v.exit_code == 0, v.output
    report = _json(v.stdout)
    assert report["ok"] is True and report["trust_root_sha256"] == summary["root_sha256"]
    sig = next(s for s in report["signatures"] if s["kind"] == "signature")
    assert sig["field_name"] == "employee_signature" and sig["pades_level"] == "B-LTA"
    assert sig["intact"] and sig["valid"] and sig["trusted"] and sig["modifications_ok"]
    assert sig["coverage"] == "ENTIRE_REVISION" and sig["modification_level"] == "LTA_UPDATES"
    assert sig["signer_serial"] == summary["event_cert_serial"] and sig["signing_time"] == summary["signing_time"]

    results = pdfsig_for(pki.root_pem).run(path)
    approval = [x for x in results if x.get("Signature Field Name") == "employee_signature"]
    assert approval and approval[0]["Signature Validation"] == "Signature is Valid."
    assert approval[0]["Certificate Validation"] == "Certificate is Trusted."
    assert approval[0]["Signature Type"] == "ETSI.CAdES.detached"


def test_verify_trusts_only_the_given_root(settings, use_settings, selftest_pdf, tmp_path):
    from tests.dossier.pki_helpers import make_pki

    use_settings(settings)
    _, path = selftest_pdf
    _, foreign = make_pki("Foreign Root")
    from cryptography.hazmat.primitives.serialization import Encoding

    other = tmp_path / "other.pem"
    other.write_bytes(foreign.public_bytes(Encoding.PEM))
    r = CliRunner().invoke(verify_command, [str(path), "--root", str(other)])
    assert r.exit_code == 1, r.output
    assert not any(s["trusted"] for s in _json(r.stdout)["signatures"])


def test_verify_tampered_copy_exits_1(settings, use_settings, selftest_pdf, tmp_path):
    use_settings(settings)
    _, path = selftest_pdf
    data = bytearray(path.read_bytes())
    m = re.search(rb"/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\]", data)
    signed_first_part_end = int(m.group(2))
    at = data.index(b"stream", data.index(b"/Contents")) + 60  # inside a stream of the signed revision
    assert at < signed_first_part_end
    data[at] ^= 0x01
    data[at + 1] ^= 0x01
    bad = tmp_path / "tampered.pdf"
    bad.write_bytes(bytes(data))
    r = CliRunner().invoke(verify_command, [str(bad)])
    assert r.exit_code == 1, r.output
    report = _json(r.stdout)
    assert report["ok"] is False and report["problem"] == "invalid_signature"
    sig = next(s for s in report["signatures"] if s["field_name"] == "employee_signature")
    assert not sig["intact"] or sig["error"]
    assert "Traceback" not in r.output, "pyHanko's logged traceback is shown as one line"


@pytest.mark.parametrize("content", [b"hello, this is not a PDF\n", b"%PDF-1.7\n%garbage with no objects\n", b""])
def test_verify_non_pdf_exits_2_with_a_message(settings, use_settings, tmp_path, content):
    use_settings(settings)
    bad = tmp_path / "not.pdf"
    bad.write_bytes(content)
    r = CliRunner().invoke(verify_command, [str(bad)])
    assert r.exit_code == 2, r.output
    assert "pdf_invalid" in r.stderr and "not a PDF" in r.stderr and str(bad) in r.stderr
    assert r.stdout == "" and "Traceback" not in r.output
    assert isinstance(r.exception, SystemExit)


def test_verify_missing_file_exits_2(settings, use_settings, tmp_path):
    use_settings(settings)
    r = CliRunner().invoke(verify_command, [str(tmp_path / "missing.pdf")])
    assert r.exit_code == 2 and "cannot read the file" in r.stderr and "Traceback" not in r.output


def test_commands_are_registered():
    from qianli.cli import cli

    assert cli.commands["pki"] is pki_group and cli.commands["verify"] is verify_command
    assert {"db", "settings", "company", "evidence", "openapi", "serve", "dev", "outbox", "faces", "roster", "dossier",
            "purge-face-photos", "worker", "scheduler", "reminders", "demo"} <= set(cli.commands)
