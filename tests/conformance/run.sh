#!/usr/bin/env bash
# Run the conformance suite: every SCM v3 operation through the official huaweicloudsdkscm
# client, against the real binary, on SQLite and PostgreSQL.
#
#   tests/conformance/run.sh [pytest args...]
#
# Same setup as tests/e2e/run.sh (venv, Debian packages, throwaway PostgreSQL database), whose
# fixtures it shares. The binary under test is $OPENSCM_BIN (default target/release/openscm).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OPENSCM_SUITE_DIR="$HERE" exec "$HERE/../e2e/run.sh" "$@"
