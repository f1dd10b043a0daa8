#!/usr/bin/env bash
# Builds every fuzz target and runs each for a few seconds.
#
#   fuzz/run.sh [seconds]      (default 5 seconds per target)
#
# Installs cargo-fuzz (into ~/.cargo/bin) when it is missing. The targets are built with
# AddressSanitizer, which needs `-Zsanitizer`: RUSTC_BOOTSTRAP=1 lets the stable toolchain take it.
# Each target runs on a temporary copy of its seed corpus (fuzz/corpus/<target>/), so the corpus
# libFuzzer grows stays out of the repository; a crashing input is kept in
# fuzz/artifacts/<target>/ and fails the script. Prints `target: N execs (M exec/s)` per target.
# FUZZ_JOBS (default 2, one per core) targets run at once.
set -euo pipefail

SECONDS_EACH="${1:-5}"
JOBS="${FUZZ_JOBS:-2}"
FUZZ="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$FUZZ/.."
export PATH="$PATH:$HOME/.cargo/bin"
export RUSTC_BOOTSTRAP=1
# The binaries are looked for in fuzz/target; a target dir set for the workspace would move them.
unset CARGO_TARGET_DIR

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz"
  cargo install cargo-fuzz --locked --quiet
fi

targets=()
while IFS= read -r t; do targets+=("$t"); done < <(cargo fuzz list)
((${#targets[@]})) || { echo "no fuzz targets found" >&2; exit 1; }

echo "building ${#targets[@]} fuzz targets (AddressSanitizer)"
cargo fuzz build
bin="$FUZZ/target/x86_64-unknown-linux-gnu/release"
# What `cargo fuzz run` sets for AddressSanitizer.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_odr_violation=0"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Runs one target on a copy of its seeds; its log is $work/<target>.log, its exit code .rc.
run_one() {
  local t="$1" status=0
  mkdir -p "$work/corpus/$t" "$FUZZ/artifacts/$t"
  if [[ -d "$FUZZ/corpus/$t" ]]; then cp -R "$FUZZ/corpus/$t/." "$work/corpus/$t/"; fi
  "$bin/$t" "$work/corpus/$t" -max_total_time="$SECONDS_EACH" -print_final_stats=1 \
    -artifact_prefix="$FUZZ/artifacts/$t/" >"$work/$t.log" 2>&1 || status=$?
  echo "$status" >"$work/$t.rc"
}

running=0
for t in "${targets[@]}"; do
  if ((running >= JOBS)); then
    wait -n || true
    running=$((running - 1))
  fi
  run_one "$t" &
  running=$((running + 1))
done
wait

failed=()
for t in "${targets[@]}"; do
  log="$work/$t.log"
  status="$(cat "$work/$t.rc" 2>/dev/null || echo 1)"
  # libFuzzer's last words: `Done N runs in S second(s)`, and with -print_final_stats the same N
  # as stat::number_of_executed_units (the only count left after a crash).
  runs="$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)"
  secs="$SECONDS_EACH"
  done_line="$(grep -E '^Done [0-9]+ runs in [0-9]+ second' "$log" | tail -n 1 || true)"
  if [[ -n "$done_line" ]]; then
    read -r runs secs < <(sed -E 's/^Done ([0-9]+) runs in ([0-9]+) second.*/\1 \2/' <<<"$done_line")
  fi
  runs="${runs:-0}"
  ((secs > 0)) || secs=1
  echo "$t: $runs execs ($((runs / secs)) exec/s)"
  if [[ "$status" != 0 ]]; then
    failed+=("$t")
    echo "--- $t failed (exit $status):"
    # From the panic or sanitizer report on, then where the input was saved.
    sed -n '/panicked at\|ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|ERROR: libFuzzer/,$p' "$log" |
      head -n 50 | sed 's/^/    /'
    grep -E '^(Test unit written to|Base64:)' "$log" | sed 's/^/    /' || true
  fi
  # Keep artifacts/<target>/ only when it holds something.
  rmdir "$FUZZ/artifacts/$t" 2>/dev/null || true
done
rmdir "$FUZZ/artifacts" 2>/dev/null || true

if ((${#failed[@]})); then
  echo "fuzz targets that failed: ${failed[*]} (crashing inputs in fuzz/artifacts/)" >&2
  exit 1
fi
echo "all ${#targets[@]} fuzz targets ran ${SECONDS_EACH}s each without a crash"
