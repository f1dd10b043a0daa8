# Sourced by the test scripts: make sure a PostgreSQL answers for the tests.
#
# ensure_postgres: uses the server every machine of this project runs on 127.0.0.1:5432; if none
# answers, starts a private throwaway cluster on 127.0.0.1:15432 (initdb as the postgres user).
# Sets PG_HOST, PG_PORT, PG_USER. stop_private_postgres stops and removes what it started.

PG_HOST=127.0.0.1
PG_PORT=5432
PG_USER=postgres
PRIVATE_PGD=""
PG_BIN=""

pg_answers() {  # port
  pg_isready -q -h "$PG_HOST" -p "$1" -t 3 \
    && psql -h "$PG_HOST" -p "$1" -U "$PG_USER" -d postgres -tAc 'SELECT 1' >/dev/null 2>&1
}

ensure_postgres() {
  local missing=0 tool
  for tool in psql createdb dropdb pg_dump pg_isready; do
    command -v "$tool" >/dev/null 2>&1 || missing=1
  done
  if [ "$missing" = 1 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-client >/dev/null
  fi
  if pg_answers "$PG_PORT"; then
    return 0
  fi
  PG_PORT=15432
  if pg_answers "$PG_PORT"; then
    echo "[postgres] 5432 does not answer; using the server already on $PG_PORT" >&2
    return 0
  fi
  echo "[postgres] 5432 does not answer; starting a private cluster on $PG_PORT" >&2
  PG_BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)"
  if [ -z "$PG_BIN" ] || [ ! -x "$PG_BIN/initdb" ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    PG_BIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)"
  fi
  PRIVATE_PGD="$(mktemp -d)"
  chown postgres:postgres "$PRIVATE_PGD"
  runuser -u postgres -- "$PG_BIN/initdb" -D "$PRIVATE_PGD/data" -U postgres --auth=trust \
    --encoding=UTF8 --locale=C.UTF-8 -N >/dev/null
  runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PRIVATE_PGD/data" -l "$PRIVATE_PGD/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PRIVATE_PGD -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    start >/dev/null
}

stop_private_postgres() {
  if [ -n "$PRIVATE_PGD" ]; then
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PRIVATE_PGD/data" -m fast -w stop >/dev/null
    rm -rf "$PRIVATE_PGD"
    PRIVATE_PGD=""
  fi
}
