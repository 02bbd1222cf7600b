#!/usr/bin/env bash
# `make demo`: the end-to-end demo over HTTP (`qianli demo`). Uses the service on
# ${QIANLI_DEMO_URL:-http://127.0.0.1:8000} if one is running (`make run` in another terminal);
# otherwise starts one (scripts/run-dev.sh: API + worker + scheduler on 127.0.0.1:8000) for the
# duration of the demo. The signed PDF and the dossier land in ${DEMO_OUT:-var/demo}.
set -euo pipefail
cd "$(dirname "$0")/.."
export QIANLI_ENV=${QIANLI_ENV:-development}
OUT=${DEMO_OUT:-var/demo}
BASE=${QIANLI_DEMO_URL:-http://127.0.0.1:8000}
healthy() { curl -fsS -o /dev/null --max-time 5 "$BASE/healthz" 2>/dev/null; }
if ! healthy; then
  if [ "$BASE" != "http://127.0.0.1:8000" ]; then
    echo "demo: no service at $BASE (only the default http://127.0.0.1:8000 is started automatically)" >&2
    exit 1
  fi
  echo "demo: no service at $BASE, starting one for the demo (logs: var/demo-server.log)"
  mkdir -p var
  # its own session, so that the whole group (gunicorn, worker, scheduler) is stopped afterwards
  setsid bash scripts/run-dev.sh > var/demo-server.log 2>&1 &
  started=$!
  trap 'kill -- -"$started" 2>/dev/null || true; wait "$started" 2>/dev/null || true' EXIT
  for _ in $(seq 1 120); do
    healthy && break
    if ! kill -0 "$started" 2>/dev/null; then
      echo "demo: the service did not start; last lines of var/demo-server.log:" >&2
      tail -n 20 var/demo-server.log >&2
      exit 1
    fi
    sleep 1
  done
  if ! healthy; then
    echo "demo: the service is not healthy after 120 s; last lines of var/demo-server.log:" >&2
    tail -n 20 var/demo-server.log >&2
    exit 1
  fi
fi
.venv/bin/qianli demo --out "$OUT" --base-url "$BASE"
