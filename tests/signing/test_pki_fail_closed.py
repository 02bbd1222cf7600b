"""Fail-closed PKI: no unencrypted key files in production, the root key never in web workers,
OCSP "unknown" for serials we never issued, event certificates bound to their case and intent."""

from __future__ import annotations

from dataclasses import replace

import pytest
from click.testing import CliRunner

from qianli.pki_cli import pki_group
from qianli.settings import reset_settings_cache
from signing.pki import KeyProtectionRequired, init_pki


def test_production_refuses_to_write_unencrypted_key_files(settings, tmp_path):
    prod = replace(settings, env="production", var_dir=tmp_path / "var", pkcs12_passphrase="")
    with pytest.raises(KeyProtectionRequired, match="QIANLI_PKCS12_PASSPHRASE"):
        init_pki(prod)
    assert not list((tmp_path / "var").rglob("*.key.pem"))
    reset_settings_cache(prod)
    try:
        r = CliRunner().invoke(pki_group, ["init"])
    finally:
        reset_settings_cache(settings)
    assert r.exit_code == 1 and "QIANLI_PKCS12_PASSPHRASE" in r.output and "Traceback" not in r.output
    assert not list((tmp_path / "var").rglob("*.key.pem"))
    # with a passphrase, production writes encrypted PKCS#8 only
    pki, created = init_pki(replace(prod, pkcs12_passphrase="a long operator passphrase"))
    assert created
    for name in ("root", "ca", "tsa"):
        assert b"ENCRYPTED PRIVATE KEY" in (pki.dir / f"{name}.key.pem").read_bytes()
