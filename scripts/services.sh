#!/usr/bin/env bash
# Start (idempotently) the local services QianLi needs: redis-server with config/redis.conf, and,
# with --postgres, the Debian PostgreSQL cluster with two roles and the databases:
#   qianli      owns the databases and tables and runs the migrations (QIANLI_MIGRATION_DATABASE_URL)
#   qianli_app  what the app connects as (DATABASE_URL): `qianli db upgrade` grants it read/write on
#               ordinary tables and only INSERT + SELECT on the evidence and anchor tables.
# Development passwords (qianli / qianli_app); production: see README "Deploying".
# Everything listens on 127.0.0.1 only. Usage: scripts/services.sh [--postgres] | --stop
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VAR=${QIANLI_VAR_DIR:-$ROOT/var}
mkdir -p "$VAR/redis"
REDIS_PORT=${QIANLI_REDIS_PORT:-6379}

if [ "${1:-}" = "--stop" ]; then
  redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  exit 0
fi

if ! redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then
  redis-server "$ROOT/config/redis.conf" --port "$REDIS_PORT" --dir "$VAR/redis" \
    --daemonize yes --pidfile "$VAR/redis/redis.pid" --logfile "$VAR/redis/redis.log"
  for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
fi
redis-cli -p "$REDIS_PORT" ping >/dev/null

if [ "${1:-}" = "--postgres" ]; then
  PGVER=$(ls /usr/lib/postgresql | sort -n | tail -1)
  if ! pg_lsclusters -h 2>/dev/null | grep -q "^$PGVER main"; then
    pg_createcluster "$PGVER" main >/dev/null
  fi
  if ! pg_lsclusters -h | grep -q "^$PGVER main .* online"; then
    pg_ctlcluster "$PGVER" main start
  fi
  for _ in $(seq 50); do pg_isready -h 127.0.0.1 -q && break; sleep 0.2; done
  asp() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi; }
  asp psql -qAtc "SELECT 1 FROM pg_roles WHERE rolname='qianli'" | grep -q 1 || \
    asp psql -qc "CREATE ROLE qianli LOGIN PASSWORD 'qianli' CREATEDB"
  asp psql -qAtc "SELECT 1 FROM pg_roles WHERE rolname='qianli_app'" | grep -q 1 || \
    asp psql -qc "CREATE ROLE qianli_app LOGIN PASSWORD 'qianli_app' NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT"
  for db in qianli qianli_test; do
    asp psql -qAtc "SELECT 1 FROM pg_database WHERE datname='$db'" | grep -q 1 || \
      asp psql -qc "CREATE DATABASE $db OWNER qianli"
  done
fi
