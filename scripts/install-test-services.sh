#!/bin/sh
# System packages the test suite drives for real: redis-server (the Redis response cache),
# Chromium (the MLflow UI browser test) and PostgreSQL (the team tracking store; the tests start
# their own cluster with scripts/test-postgres.sh).
# Installs from Debian's packages when missing; needs root (CI runs as root) or sudo.
set -eu
missing=""
command -v redis-server >/dev/null 2>&1 || missing="$missing redis-server"
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$missing postgresql"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -eq 0 ]; then run=""; elif command -v sudo >/dev/null 2>&1; then run="sudo"; else
  echo "install-test-services: need root or sudo to install:$missing" >&2; exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$run apt-get install -y --no-install-recommends $missing >/dev/null 2>&1 || {
  $run apt-get update >/dev/null && $run apt-get install -y --no-install-recommends $missing >/dev/null
}
