#!/bin/sh
# Runs the quick fault campaign of `npm test` (test/fault-campaign.test.ts:
# 50 faults, seed 7) RUNS times in a row (default 20), each in a network
# namespace of its own, and stops at the first failure. Not part of CI: it
# takes about RUNS x 2 minutes. Usage: scripts/quick-campaign-loop.sh [RUNS]
# Prints one line per run and, at the end, how many passed; exits 1 on a failure.
set -u
runs=${1:-20}
cd "$(dirname "$0")/.." || exit 2
# The test needs the compiled sources only (no browser bundle).
npx tsc -p tsconfig.json || exit 2
log=$(mktemp -t quick-campaign-XXXXXX.log)
passed=0
i=1
while [ "$i" -le "$runs" ]; do
  start=$(date +%s)
  if unshare -n sh -c 'ip link set lo up && exec node --test --test-concurrency=1 dist/test/fault-campaign.test.js' >"$log" 2>&1; then
    passed=$((passed + 1))
    summary=$(grep -E "time to converge" "$log" | sed 's/^# //')
    echo "run $i/$runs: pass in $(( $(date +%s) - start )) s, load $(cut -d' ' -f1-3 /proc/loadavg); $summary"
  else
    echo "run $i/$runs: FAIL in $(( $(date +%s) - start )) s, load $(cut -d' ' -f1-3 /proc/loadavg); output: $log"
    tail -n 60 "$log"
    echo "$passed of $i runs passed"
    exit 1
  fi
  i=$((i + 1))
done
rm -f "$log"
echo "$passed of $runs runs passed in a row"
