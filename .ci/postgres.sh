#!/usr/bin/env bash
# Install (from Debian's packages, if missing) and start a local PostgreSQL server for the
# shared-storage tests of chapter 6; prints the database URL the tests should use.
set -euo pipefail
if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
fi
ver=$(ls /usr/lib/postgresql | sort -V | tail -1)
if ! pg_lsclusters -h | awk '{print $1" "$2}' | grep -q "^$ver main$"; then
  pg_createcluster "$ver" main >&2
fi
pg_ctlcluster "$ver" main start >&2 2>/dev/null || true
for _ in $(seq 30); do
  su postgres -c "pg_isready -q" && break
  sleep 1
done
psql_q() { su postgres -c "psql -v ON_ERROR_STOP=1 -tAc \"$1\""; }
[ "$(psql_q "SELECT 1 FROM pg_roles WHERE rolname='trashkit'")" = 1 ] ||
  psql_q "CREATE ROLE trashkit LOGIN PASSWORD 'trashkit'" >&2
[ "$(psql_q "SELECT 1 FROM pg_database WHERE datname='trashkit_test'")" = 1 ] ||
  su postgres -c "createdb -O trashkit trashkit_test" >&2
port=$(pg_lsclusters -h | awk -v v="$ver" '$1==v && $2=="main" {print $3}')
echo "postgresql+psycopg2://trashkit:trashkit@127.0.0.1:${port}/trashkit_test"
