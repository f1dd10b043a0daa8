#!/usr/bin/env bash
# Run the OpenSCM end-to-end suite.
#
#   tests/e2e/run.sh [pytest args...]     e.g.  tests/e2e/run.sh -k flow -x
#   tests/e2e/run.sh --prepare-only       packages and venv only (scripts/test-all does this once
#                                         before it runs the two suites side by side)
#
# - installs nginx, openssl, postgresql-client, prometheus (promtool), a Java runtime (keytool),
#   chromium and chromium-driver, pebble (Pebble and challtestsrv), bind9 and bind9-utils (named),
#   dnsutils (dig, nsupdate), lego, faketime, haproxy, wrk, jq, git, sudo and iproute2 with apt-get
#   when missing (we are root);
# - creates/reuses the venv <repo>/.venv-e2e with tests/e2e/requirements.txt;
# - creates a throwaway PostgreSQL database on 127.0.0.1:5432 (or, if nothing answers
#   there, on a private cluster on 127.0.0.1:15432) and exports OPENSCM_TEST_PG_URL;
# - runs pytest -q -ra with HOME pointing at a temp dir (the Huawei SDK writes
#   ~/.huaweicloud/application_id), then drops the database(s).
# The binary under test is $OPENSCM_BIN (default <repo>/target/release/openscm).
# OPENSCM_SUITE_DIR runs another suite that shares this one's fixtures (tests/conformance/run.sh).
# Exit code = pytest's.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SUITE="${OPENSCM_SUITE_DIR:-$HERE}"
REPO="$(cd "$HERE/../.." && pwd)"
VENV="$REPO/.venv-e2e"
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

log() { echo "[e2e] $*" >&2; }

# ---------------------------------------------------------------- Debian packages
missing=()
command -v nginx >/dev/null 2>&1 || missing+=(nginx)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v keytool >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)  # test_cli.py: PKCS#12
# the web console's browser tests (test_console.py)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)  # promtool: the shipped alert rules
# domain validation: challtestsrv is the suite's DNS server (components.ChallTestSrv), dig asks it;
# faketime shifts a server's clock
command -v pebble-challtestsrv >/dev/null 2>&1 || missing+=(pebble)
command -v dig >/dev/null 2>&1 || missing+=(dnsutils)
command -v faketime >/dev/null 2>&1 || missing+=(faketime)
# ACME issuance (acme_support.py): Pebble, BIND authoritative with TSIG updates (named,
# tsig-keygen; named-checkconf), nsupdate, and lego as a reference client
command -v pebble >/dev/null 2>&1 || missing+=(pebble)
command -v named >/dev/null 2>&1 || missing+=(bind9)
command -v named-checkconf >/dev/null 2>&1 || missing+=(bind9-utils)
command -v nsupdate >/dev/null 2>&1 || missing+=(dnsutils)
command -v lego >/dev/null 2>&1 || missing+=(lego)
# test_deployment.py: HAProxy as a push target (runtime API), wrk as the load during its swaps
command -v haproxy >/dev/null 2>&1 || missing+=(haproxy)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
# test_cli.py: the --help examples pipe into jq
command -v jq >/dev/null 2>&1 || missing+=(jq)
# test_newcomer.py: a clone of the repository (git) follows the README, whose steps use the real
# sudo (sudo, visudo), in a private network namespace whose loopback it brings up (ip)
command -v git >/dev/null 2>&1 || missing+=(git)
command -v sudo >/dev/null 2>&1 || missing+=(sudo)
command -v visudo >/dev/null 2>&1 || missing+=(sudo)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
for tool in psql createdb dropdb pg_dump pg_isready; do
  if ! command -v "$tool" >/dev/null 2>&1; then missing+=(postgresql-client); break; fi
done
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# ---------------------------------------------------------------- venv
if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV"
  python3 -m venv "$VENV"
fi
# keep the venv out of git without touching the repository's .gitignore
[ -f "$VENV/.gitignore" ] || echo '*' > "$VENV/.gitignore"
want="$(sha256sum "$HERE/requirements.txt" | cut -d' ' -f1)"
if [ "$(cat "$VENV/.e2e-requirements.sha256" 2>/dev/null || true)" != "$want" ]; then
  log "installing requirements.txt into $VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$HERE/requirements.txt"
  echo "$want" > "$VENV/.e2e-requirements.sha256"
fi

if [ "${1:-}" = "--prepare-only" ]; then
  exit 0
fi

# ---------------------------------------------------------------- PostgreSQL
# shellcheck source=../../scripts/postgres.sh
source "$REPO/scripts/postgres.sh"
E2E_HOME=""
DB=""

cleanup() {
  set +e
  if [ -n "$DB" ]; then
    # the suite makes one database per server named "${DB}_<suffix>"; drop leftovers too
    for name in $(psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -tAc \
        "SELECT datname FROM pg_database WHERE datname LIKE '${DB}%'" 2>/dev/null); do
      dropdb -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" --force --if-exists "$name"
    done
  fi
  stop_private_postgres
  [ -n "$E2E_HOME" ] && rm -rf "$E2E_HOME"
}
trap cleanup EXIT
ensure_postgres

DB="scm_e2e_$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')"
createdb -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" "$DB"
export OPENSCM_TEST_PG_URL="postgres://$PG_USER@$PG_HOST:$PG_PORT/$DB"
log "OPENSCM_TEST_PG_URL=$OPENSCM_TEST_PG_URL"

# ---------------------------------------------------------------- pytest
E2E_HOME="$(mktemp -d -t openscm-e2e-home.XXXXXX)"
export OPENSCM_E2E_HOME="$E2E_HOME"

# pytest runs from the suite's folder (its pytest.ini); turn path arguments given relative to the
# caller's directory into absolute ones.
args=()
for a in "$@"; do
  p="${a%%::*}"
  if [ -n "$p" ] && [ "${a:0:1}" != "-" ] && [ -e "$p" ]; then
    args+=("$(realpath "$p")${a#"$p"}")
  else
    args+=("$a")
  fi
done

set +e
(cd "$SUITE" && HOME="$E2E_HOME" "$VENV/bin/python" -m pytest -q -ra ${args[@]+"${args[@]}"})
rc=$?
set -e
exit "$rc"
