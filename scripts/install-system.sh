#!/usr/bin/env bash
# Install the Debian packages QianLi needs (idempotent). Runs as root, or through sudo when available.
# redis-server: queues and SMS codes; postgresql: the production database (tests run on it too);
# poppler-utils: pdfsig/pdffonts, the independent signature validator; libnss3-tools: certutil for pdfsig's trust store;
# softhsm2 + opensc: the PKCS#11 token for the company seal; chromium: the HR console's end-to-end test;
# gcc + libc6-dev + libnss3-dev + libnspr4-dev: build the test-only preload that works around Debian 12 pdfsig's stale-error bug (tests/tools/pdfsig_pkix_fix.c).
# fonts-noto-cjk / fonts-wqy-zenhei: CJK fonts for the letter; wrk: the HTTP load generator of bench/api.py.
set -euo pipefail
PKGS=(redis-server postgresql postgresql-contrib poppler-utils libnss3-tools softhsm2 opensc chromium fonts-noto-cjk fonts-wqy-zenhei libjpeg62-turbo libopenblas0 liblapack3 gcc libc6-dev libnss3-dev libnspr4-dev wrk)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-system: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts services on install in some images; we run our own instances under var/.
$SUDO systemctl disable --now redis-server postgresql >/dev/null 2>&1 || true
