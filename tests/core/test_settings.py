import json

import pytest

from qianli.settings import SettingsError, load_settings, settings_table


def test_development_generates_and_keeps_secrets(tmp_path):
    a = load_settings({"QIANLI_ENV": "development", "QIANLI_VAR_DIR": str(tmp_path)})
    b = load_settings({"QIANLI_ENV": "development", "QIANLI_VAR_DIR": str(tmp_path)})
    assert a.secret_key == b.secret_key and len(a.secret_key) >= 32
    assert json.loads((tmp_path / "dev-secrets.json").read_text())["QIANLI_SECRET_KEY"] == a.secret_key
    assert (tmp_path / "dev-secrets.json").stat().st_mode & 0o077 == 0
    assert a.database_url == f"sqlite:///{tmp_path / 'qianli.db'}"


def test_production_refuses_missing_secrets(tmp_path):
    with pytest.raises(SettingsError, match="QIANLI_SECRET_KEY"):
        load_settings({"QIANLI_ENV": "production", "QIANLI_VAR_DIR": str(tmp_path)})
    assert not (tmp_path / "dev-secrets.json").exists()


def test_production_refuses_dev_backends(tmp_path):
    import base64
    env = {"QIANLI_ENV": "production", "QIANLI_VAR_DIR": str(tmp_path), "QIANLI_SECRET_KEY": "x" * 40,
           "QIANLI_DATA_KEYS": "k1:" + base64.b64encode(b"k" * 32).decode(),
           "QIANLI_LOOKUP_KEY": base64.b64encode(b"l" * 32).decode(),
           "DATABASE_URL": "postgresql+psycopg://u:p@127.0.0.1/db"}
    with pytest.raises(SettingsError, match="WECHAT_BACKEND"):
        load_settings(env)


@pytest.mark.parametrize("var,value", [("QIANLI_MAX_REQUEST_BYTES", "12MB"), ("QIANLI_HOLIDAYS_EXTEND_NOTICE", "maybe"),
                                       ("QIANLI_ENV", "staging"), ("QIANLI_SMS_BACKEND", "carrier-pigeon"),
                                       ("QIANLI_DATA_KEYS", "k1:notbase64!"), ("QIANLI_DATA_KEYS", "k1:AAAA"),
                                       ("QIANLI_QUIET_HOURS", "21-8"), ("QIANLI_REMINDER_RETRY_INTERVALS", "abc"),
                                       ("QIANLI_REMINDER_RETRY_INTERVALS", "30,,600"),
                                       ("QIANLI_REMINDER_RETRY_INTERVALS", "30,-5"),
                                       ("QIANLI_FACE_RETAKE_THRESHOLD", "0.45"), ("QIANLI_FACE_THRESHOLD", "0.9"),
                                       ("QIANLI_REMINDER_BATCH_SIZE", "0"), ("QIANLI_REMINDER_SEND_CONCURRENCY", "1000")])
def test_strict_parsing_names_the_variable(tmp_path, var, value):
    with pytest.raises(SettingsError, match=var):
        load_settings({"QIANLI_ENV": "development", "QIANLI_VAR_DIR": str(tmp_path), var: value})


def test_values_are_parsed_by_type(tmp_path):
    s = load_settings({"QIANLI_ENV": "development", "QIANLI_VAR_DIR": str(tmp_path), "QIANLI_MAX_REQUEST_BYTES": "1024",
                       "QIANLI_HOLIDAYS_EXTEND_NOTICE": "yes", "QIANLI_FACE_THRESHOLD": "0.45"})
    assert (s.max_request_bytes, s.holidays_extend_notice, s.face_threshold) == (1024, True, 0.45)
    assert load_settings({"QIANLI_ENV": "development", "QIANLI_VAR_DIR": str(tmp_path), "QIANLI_QUIET_HOURS": "off"}).quiet_hours == "off"
    assert load_settings({"QIANLI_ENV": "development", "QIANLI_VAR_DIR": str(tmp_path)}).reminder_retry_schedule() == (30, 120, 600)
    assert load_settings({"QIANLI_ENV": "development", "QIANLI_VAR_DIR": str(tmp_path),
                          "QIANLI_REMINDER_RETRY_INTERVALS": " 5, 60 "}).reminder_retry_schedule() == (5, 60)


def test_readme_table_lists_every_variable():
    table = settings_table()
    for var in ("DATABASE_URL", "REDIS_URL", "QIANLI_SECRET_KEY", "QIANLI_TSA_URL", "QIANLI_QUIET_HOURS"):
        assert f"`{var}`" in table


@pytest.mark.parametrize("value", [None, ""])
def test_no_explicit_environment_refuses_to_start(tmp_path, value):
    env = {"QIANLI_VAR_DIR": str(tmp_path)}
    if value is not None:
        env["QIANLI_ENV"] = value
    with pytest.raises(SettingsError, match="QIANLI_ENV is not set"):
        load_settings(env)
    assert not (tmp_path / "dev-secrets.json").exists()  # nothing was generated as if it were development


def test_cli_and_wsgi_refuse_to_start_without_environment(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if k != "QIANLI_ENV"}
    env["QIANLI_VAR_DIR"] = str(tmp_path)
    cli = subprocess.run([str(Path(sys.executable).parent / "qianli"), "settings"], env=env, cwd=repo,
                         capture_output=True, text=True, timeout=60)
    assert cli.returncode == 2 and "QIANLI_ENV is not set" in cli.stderr
    wsgi = subprocess.run([sys.executable, "-c", "import api.wsgi"], env=env, cwd=repo, capture_output=True,
                          text=True, timeout=60)
    assert wsgi.returncode != 0 and "QIANLI_ENV is not set" in wsgi.stderr
    assert not (tmp_path / "dev-secrets.json").exists()
