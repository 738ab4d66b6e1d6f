#!/usr/bin/env bash
# `make test-clocks`: the server, detector and ops suites again under two time namespaces, as a
# machine booted 60 s ago and as one up 400 days (CLOCK_MONOTONIC and CLOCK_BOOTTIME moved; the
# wall clock is untouched). No test may depend on the machine's uptime; this is how CI checks it.
# Needs root and unshare (util-linux) on Linux 5.6 or later. Elsewhere it says so and skips; under
# CI=true a missing unshare or permission is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
SUITES=(tests/server tests/detectors tests/ops)
# shellcheck disable=SC2206 # word splitting wanted: extra pytest arguments
EXTRA=(${PYTEST_ARGS:-})

cannot() {
  if [[ "${CI:-}" =~ ^([Tt]rue|TRUE|1|yes)$ ]]; then
    echo "test-clocks: FAILED: $1 (CI=true: the clock runs are part of CI)" >&2
    exit 1
  fi
  echo "test-clocks: SKIPPED: $1" >&2
  exit 0
}

[ "$(id -u)" = "0" ] || cannot "time namespaces need root (run: sudo make test-clocks)"
command -v unshare >/dev/null 2>&1 || cannot "unshare not found (install util-linux)"
unshare --time true 2>/dev/null \
  || cannot "this kernel or container refuses a time namespace (unshare --time; Linux >= 5.6)"

run_as_up_for() {  # seconds, label
  local target=$1 label=$2 mono boot
  read -r mono boot < <(python3 -c 'import time
print(int(time.clock_gettime(time.CLOCK_MONOTONIC)), int(time.clock_gettime(time.CLOCK_BOOTTIME)))')
  echo "== test-clocks: the server, detector and ops suites on a machine up $label =="
  unshare --time --monotonic=$((target - mono)) --boottime=$((target - boot)) \
    "$PY" - "$target" <<'CHECK'
import sys, time
target = float(sys.argv[1])
up = time.monotonic()
assert abs(up - target) < 60, f"the namespace's monotonic clock reads {up:.0f} s, not {target:.0f}"
print(f"monotonic clock in the namespace: {up:.1f} s")
CHECK
  unshare --time --monotonic=$((target - mono)) --boottime=$((target - boot)) \
    "$PY" -m pytest "${SUITES[@]}" "${EXTRA[@]}"
}

# The two runs go side by side (most of their tests wait on processes and moto), each with its
# own log, printed whole when both have ended; the script fails if either failed.
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
run_as_up_for 60 "60 s" >"$logs/fresh" 2>&1 & fresh=$!
run_as_up_for $((400 * 86400)) "400 days" >"$logs/long" 2>&1 & long=$!
status=0
wait "$fresh" || status=1
wait "$long" || status=1
cat "$logs/fresh" "$logs/long"
exit "$status"
