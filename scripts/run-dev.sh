#!/usr/bin/env bash
# `make run`: the API on 127.0.0.1:8000 (gunicorn, 2 workers), an RQ worker and the reminder
# scheduler, all with development defaults. Ctrl-C stops all three.
set -euo pipefail
cd "$(dirname "$0")/.."
export QIANLI_ENV=${QIANLI_ENV:-development}
Q=.venv/bin/qianli
$Q db upgrade
$Q dev seed >/dev/null 2>&1 || true
$Q pki init >/dev/null 2>&1 || $Q pki init || true
# One Prometheus multiprocess directory for gunicorn's workers, the rq worker and the scheduler.
export PROMETHEUS_MULTIPROC_DIR=${PROMETHEUS_MULTIPROC_DIR:-$PWD/var/prometheus}
rm -rf "$PROMETHEUS_MULTIPROC_DIR" && mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM
if $Q worker --help >/dev/null 2>&1; then $Q worker & pids+=($!); fi
if $Q scheduler --help >/dev/null 2>&1; then $Q scheduler & pids+=($!); fi
echo "QianLi (development) on http://127.0.0.1:8000  — Swagger UI: http://127.0.0.1:8000/docs  — HR console: http://127.0.0.1:8000/hr/"
.venv/bin/gunicorn -c config/gunicorn.conf.py --bind 127.0.0.1:8000 --workers 2 'api.wsgi:app' &
pids+=($!)
wait -n "${pids[@]}"
