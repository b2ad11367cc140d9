#!/bin/sh
# Initialise PGDATA on first start like the official image, then run
# postgres in the foreground as the postgres user.
set -eu
mkdir -p "$PGDATA" /run/postgresql
chown -R postgres:postgres "$PGDATA" /run/postgresql
chmod 700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    su postgres -c "initdb -D '$PGDATA' --auth=${POSTGRES_HOST_AUTH_METHOD:-trust} -U postgres" >/dev/null
    echo "host all all all ${POSTGRES_HOST_AUTH_METHOD:-trust}" >> "$PGDATA/pg_hba.conf"
    echo "listen_addresses = '*'" >> "$PGDATA/postgresql.conf"
    if [ -n "${POSTGRES_DB:-}" ] && [ "$POSTGRES_DB" != postgres ]; then
        su postgres -c "pg_ctl -D '$PGDATA' -o '-c listen_addresses=' -w start" >/dev/null
        su postgres -c "createdb '$POSTGRES_DB'"
        su postgres -c "pg_ctl -D '$PGDATA' -m fast -w stop" >/dev/null
    fi
fi
# Like the official image: a command of "postgres -c name=value ..." passes
# its settings on.
[ "${1:-}" = postgres ] && shift
exec su postgres -c "exec postgres -D '$PGDATA' $*"
