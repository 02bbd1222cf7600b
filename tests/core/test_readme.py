"""The README stays true: it shows the two commands and documents every setting."""

from pathlib import Path

from qianli.settings import settings_table

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_readme_first_screen_has_the_two_commands():
    first_screen = "\n".join(README.splitlines()[:30])
    assert "make run" in first_screen and "make test" in first_screen and "http://127.0.0.1:8000" in first_screen


def test_readme_settings_table_is_current():
    assert settings_table() in README, "run: .venv/bin/python scripts/sync-readme.py"
