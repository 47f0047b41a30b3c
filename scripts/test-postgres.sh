#!/bin/sh
# A PostgreSQL cluster on 127.0.0.1 for the tests, from Debian's packages (installed by
# scripts/install-test-services.sh when missing). Idempotent: the cluster in DIR is created on
# first use and started unless it runs already. Its role `orchestra` (LOGIN CREATEDB) gets the
# password in ORCHESTRA_TEST_PG_PASSWORD, passed on stdin, never in a command line.
#
#   ORCHESTRA_TEST_PG_PASSWORD=... scripts/test-postgres.sh start /tmp/orchestra-pg 55432
#   scripts/test-postgres.sh stop /tmp/orchestra-pg
#
# A test cluster only: fsync is off. As root, the server runs as the `postgres` user.
set -eu
action=${1:?usage: test-postgres.sh start DIR PORT | stop DIR}
dir=${2:?usage: test-postgres.sh start DIR PORT | stop DIR}
here=$(cd "$(dirname "$0")" && pwd)

bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
bin=$(bindir)
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
  "$here/install-test-services.sh"
  bin=$(bindir)
fi
if [ "$(id -u)" -eq 0 ]; then as="runuser -u postgres --"; else as=""; fi

case "$action" in
stop)
  [ -f "$dir/postmaster.pid" ] && $as "$bin/pg_ctl" -D "$dir" stop -m fast -w >/dev/null
  exit 0
  ;;
start) ;;
*) echo "test-postgres.sh: unknown action $action" >&2; exit 2 ;;
esac

port=${3:?usage: test-postgres.sh start DIR PORT}
: "${ORCHESTRA_TEST_PG_PASSWORD:?set ORCHESTRA_TEST_PG_PASSWORD}"
mkdir -p "$dir"
[ -n "$as" ] && chown postgres:postgres "$dir"
chmod 700 "$dir"
if [ ! -f "$dir/PG_VERSION" ]; then
  $as "$bin/initdb" -D "$dir" -U postgres -E UTF8 --auth-local=trust --auth-host=scram-sha-256 >/dev/null
fi
if ! $as "$bin/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
  $as "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 120 start -o \
    "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$dir -c fsync=off -c max_connections=200" \
    >/dev/null
fi
password=$(printf '%s' "$ORCHESTRA_TEST_PG_PASSWORD" | sed "s/'/''/g")
printf "%s\n" \
  "DO \$\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'orchestra') THEN" \
  "CREATE ROLE orchestra LOGIN CREATEDB; END IF; END \$\$;" \
  "ALTER ROLE orchestra PASSWORD '$password';" |
  $as "$bin/psql" -h "$dir" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 -q -f - >/dev/null
