#!/usr/bin/env bash
# Create .venv and install QianLi with its dev dependencies at the exact versions of constraints.txt
# (regenerate it with `make lock` after changing pyproject.toml). Idempotent: skipped when neither
# pyproject.toml nor constraints.txt has changed since the last successful install.
# face_recognition pins dlib (a 10+ minute compile): we install the prebuilt dlib-bin wheel (a
# declared dependency) and face_recognition itself with --no-deps.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
stamp=.venv/.installed-$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)
if [ -f "$stamp" ]; then exit 0; fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/pip install -q --upgrade "pip>=24" "setuptools>=68,<81" wheel
.venv/bin/pip install -q -c constraints.txt -e '.[dev]'
.venv/bin/pip install -q -c constraints.txt --no-deps "face_recognition==1.3.0"
rm -f .venv/.installed-*
touch "$stamp"
