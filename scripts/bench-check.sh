#!/usr/bin/env bash
# Benchmark of `bridge-doctor check` over 20 bridges: 20 real mautrix-telegram
# registrations loaded by a local Synapse, each bridge with its SQLite
# database and a log, every live probe on (the bridges are not running, so
# each ping is a real failed connection). Prints the best and median of five
# runs against the 2 s goal.   bash scripts/bench-check.sh [BRIDGES]
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
source scripts/lib.sh
count="${1:-20}"
venv=$(bash scripts/setup-venv.sh)
doctor=$(built_doctor release)
work=$(mktemp -d)
synapse_pid=""
cleanup() { [ -n "$synapse_pid" ] && kill "$synapse_pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

hs_port=$(free_port)
registrations=""
bridges=""
echo "generating $count bridges with mautrix-telegram -g ..."
for i in $(seq 1 "$count"); do
    add_real_bridge "$work/bridge$i" "http://127.0.0.1:$hs_port" "$i"
done

doctor_config_for "$work" "$hs_port"
start_synapse "$work/hs" "$hs_port" "['$work/registration.yaml', ${registrations%, }]"

"$doctor" check -c "$work/config.yaml" --format json > "$work/report.json" || true
"$venv/bin/python" - "$work/report.json" "$count" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
targets = [t for t in report["targets"] if t["kind"] == "bridge"]
assert len(targets) == int(sys.argv[2]), f"{len(targets)} bridges in the report"
print(f"{len(targets)} bridges, {len(report['results'])} results per run, summary {report['summary']}")
PY
"$venv/bin/python" - "$doctor" "$work/config.yaml" "$count" <<'PY'
import subprocess, sys, time
doctor, config, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
times = []
for _ in range(5):
    start = time.perf_counter()
    subprocess.run([doctor, "check", "-c", config, "--format", "json"], stdout=subprocess.DEVNULL)
    times.append(time.perf_counter() - start)
times.sort()
print(f"check over {count} bridges: best {times[0]:.2f} s, median {times[2]:.2f} s (goal: under 2 s; ratio to goal {times[2] / 2.0:.2f})")
PY
