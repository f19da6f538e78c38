#!/bin/sh
# PostgreSQL from Debian's package, configured from POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB
# as the postgres image is (the CI stack has no registry image).
set -eu
DATA=/var/lib/postgresql/data
if [ ! -s "$DATA/PG_VERSION" ]; then
  mkdir -p "$DATA" && chown postgres:postgres "$DATA"
  printf '%s' "$POSTGRES_PASSWORD" >/tmp/pwfile && chown postgres /tmp/pwfile
  su postgres -c "/usr/lib/postgresql/15/bin/initdb -D $DATA -U $POSTGRES_USER --pwfile=/tmp/pwfile --auth=scram-sha-256 -E UTF8" >/dev/null
  rm -f /tmp/pwfile
  echo "host all all 0.0.0.0/0 scram-sha-256" >>"$DATA/pg_hba.conf"
  su postgres -c "/usr/lib/postgresql/15/bin/pg_ctl -D $DATA -o '-c listen_addresses=127.0.0.1' -w start" >/dev/null
  PGPASSWORD="$POSTGRES_PASSWORD" su postgres -c "psql -h 127.0.0.1 -U $POSTGRES_USER -d postgres -qc 'CREATE DATABASE $POSTGRES_DB'"
  su postgres -c "/usr/lib/postgresql/15/bin/pg_ctl -D $DATA -w stop" >/dev/null
fi
mkdir -p /var/run/postgresql && chown postgres /var/run/postgresql
exec su postgres -c "exec /usr/lib/postgresql/15/bin/postgres -D $DATA -c listen_addresses='*'"
