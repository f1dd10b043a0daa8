#!/usr/bin/env bash
# HTTP benchmark: authenticated v2 push-history requests per second beside the unauthenticated
# /health route, both measured with wrk in the same run on loopback (target: >= 50 %); then the
# same server (same store, same port, so the same signed request) restarted with HTTPS (--tls
# builtin) and both measured again over TLS (wrk's keep-alive connections: one handshake each),
# with the HTTPS/HTTP ratio of the authenticated read.
#
#   bench/http.sh [seconds]        (builds the release binaries first)
#
# With OPENSCM_BIN set (scripts/test-all sets it), that binary and the `signed` tool beside it
# are used as they are, with no build: a `cargo build -p` here would unify features differently
# from the workspace build and compile the server a second time.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SECONDS_PER_RUN="${1:-5}"
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
if [ -n "${OPENSCM_BIN:-}" ]; then
  BIN="$OPENSCM_BIN"
  SIGNED="$(dirname "$OPENSCM_BIN")/signed"
else
  (cd "$REPO" && cargo build --release -q -p openscm -p openscm-bench)
  TARGET="${CARGO_TARGET_DIR:-$REPO/target}"
  BIN="$TARGET/release/openscm"
  SIGNED="$TARGET/release/signed"
fi
[ -x "$BIN" ] && [ -x "$SIGNED" ] || { echo "bench/http.sh: $BIN or $SIGNED is missing" >&2; exit 1; }
D="$(mktemp -d)"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
PID=""
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null; rm -rf "$D"; }
trap cleanup EXIT
SCHEME=http
start() { "$BIN" server --listen "127.0.0.1:$PORT" --data-dir "$D/data" "$@" >"$D/out" 2>"$D/log" & PID=$!;
  for _ in $(seq 100); do curl -sf --cacert "$D/data/https-root.pem" "$SCHEME://127.0.0.1:$PORT/health" >/dev/null 2>&1 && return; sleep 0.05; done; cat "$D/log"; exit 1; }

start
DOMAIN="$(python3 -c "import json;print(json.load(open('$D/data/credentials.json'))['domain_id'])")"
PROJECT="$(python3 -c "import json;print(json.load(open('$D/data/credentials.json'))['project_id'])")"
kill "$PID"; wait "$PID" || true
mkdir -p "$D/certs"
cat > "$D/openscm.toml" <<TOML
[[push_targets]]
name = "bench"
kind = "nginx"
account = "$DOMAIN"
service = "ELB"
region = "cn-north-4"
cert_path = "$D/certs/site.crt"
key_path = "$D/certs/site.key"
reload_command = ["true"]

# The rate limiter runs (its cost is measured) but above the load.
[limits]
rate_limit_per_second = 1000000
rate_limit_burst = 1000000
TOML
OPENSCM_LOG=warn start --config "$D/openscm.toml" ${OPENSCM_BENCH_SERVER_ARGS:-}
C="$D/data/credentials.json"
CERT="$("$SIGNED" "$C" send POST "/v2/$PROJECT/scm/cert/purchase" \
  '{"cert_brand": "GLOBALSIGN", "cert_type": "OV_SSL_CERT", "domain_type": "SINGLE_DOMAIN", "effective_time": 1, "domain_numbers": 1, "order_number": 1, "agree_privacy_protection": true}' \
  | tail -1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["cert"][0]["cert_id"])')"
"$SIGNED" "$C" send POST "/v2/$PROJECT/scm/cert/$CERT/complete" \
  '{"domain": "bench.test", "company_name": "OpenSCM", "company_province": "Sichuan", "company_city": "Chengdu", "country": "CN", "applicant_name": "Tom", "applicant_phone": "13212345678", "applicant_email": "tom@example.com", "agree_privacy_protection": true}' >/dev/null
for _ in $(seq 10); do
  "$SIGNED" "$C" send POST "/v2/$PROJECT/scm/cert/$CERT/push" '{"service_type": "ELB", "remote_project": "cn-north-4"}' >/dev/null
done
"$SIGNED" "$C" wrk GET "/v2/$PROJECT/scm/cert/$CERT/push-history" > "$D/history.lua"
# A run with any non-2xx answer (say, a signature refused) is not a measurement: fail.
run() {
  local out
  out="$(wrk -t2 -c32 -d"${SECONDS_PER_RUN}s" "$@")"
  if grep -q "Non-2xx" <<<"$out"; then echo "$out" >&2; echo "non-2xx answers: not a valid run" >&2; exit 1; fi
  awk '/Requests\/sec/ {print $2}' <<<"$out"
}
MACHINE="$(nproc) cores ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
echo "OpenSCM HTTP benchmark: authenticated reads per second beside /health, over HTTP and HTTPS (wrk -t2 -c32 -d${SECONDS_PER_RUN}s on loopback, server and wrk on the same machine); machine: $MACHINE"
# A short warm-up first (caches, connections), not measured.
wrk -t2 -c32 -d1s -s "$D/history.lua" "http://127.0.0.1:$PORT" >/dev/null
HEALTH="$(run "http://127.0.0.1:$PORT/health")"
HISTORY="$(run -s "$D/history.lua" "http://127.0.0.1:$PORT")"
awk -v h="$HEALTH" -v p="$HISTORY" 'BEGIN {
  printf "  GET /health (unauthenticated)                      %10.0f req/s\n", h;
  printf "  GET push-history (SDK-HMAC-SHA256, SQLite, 10 rows) %10.0f req/s   %5.1f%% of /health   target >= 50%%: %s\n", p, 100*p/h, (p >= h/2 ? "met" : "NOT MET") }'
# The same store and port over HTTPS (a serving certificate from the built-in CA, P-256).
kill "$PID"; wait "$PID" || true
SCHEME=https
OPENSCM_LOG=warn start --config "$D/openscm.toml" --tls builtin ${OPENSCM_BENCH_SERVER_ARGS:-}
wrk -t2 -c32 -d1s -s "$D/history.lua" "https://127.0.0.1:$PORT" >/dev/null
TLS_HEALTH="$(run "https://127.0.0.1:$PORT/health")"
TLS_HISTORY="$(run -s "$D/history.lua" "https://127.0.0.1:$PORT")"
awk -v h="$TLS_HEALTH" -v p="$TLS_HISTORY" -v plain="$HISTORY" 'BEGIN {
  printf "  HTTPS GET /health                                  %10.0f req/s\n", h;
  printf "  HTTPS GET push-history (signed)                    %10.0f req/s   %5.1f%% of plain-HTTP push-history\n", p, 100*p/plain }'
