#!/usr/bin/env bash
# Benchmark of `bridge-doctor check` at scale: 200 targets loaded by a local
# Synapse, a few real mautrix-telegram setups (config, registration the
# bridge generated, SQLite database, log) and the rest registration-only,
# each with its own exclusive users and aliases namespaces, so every pair of
# registrations is compared for overlaps. Every live probe is on. Prints
# the best and median of five runs against the 3 s goal.
#   bash scripts/bench-scale.sh [TARGETS] [REAL]
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
source scripts/lib.sh
count="${1:-200}"
real="${2:-5}"
venv=$(bash scripts/setup-venv.sh)
doctor=$(built_doctor release)
work=$(mktemp -d)
synapse_pid=""
cleanup() { [ -n "$synapse_pid" ] && kill "$synapse_pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

hs_port=$(free_port)
registrations=""
bridges=""
echo "generating $real real bridges with mautrix-telegram -g and $((count - real)) registrations ..."
for i in $(seq 1 "$real"); do
    add_real_bridge "$work/bridge$i" "http://127.0.0.1:$hs_port" "$i"
done
"$venv/bin/python" - "$work/registrations" "$((real + 1))" "$count" <<'PY'
import os, secrets, sys
folder, first, last = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
os.makedirs(folder)
for i in range(first, last + 1):
    with open(os.path.join(folder, f"bridge{i}.yaml"), "w") as f:
        f.write(f"""id: bridge{i}
url: http://127.0.0.1:1
as_token: {secrets.token_hex(32)}
hs_token: {secrets.token_hex(32)}
sender_localpart: {secrets.token_hex(16)}
rate_limited: false
namespaces:
  users:
    - exclusive: true
      regex: '@net{i}_.*:doctor\\.test'
    - exclusive: true
      regex: '@net{i}bot:doctor\\.test'
  aliases:
    - exclusive: true
      regex: '\\#net{i}_.*:doctor\\.test'
""")
PY
for file in "$work"/registrations/*.yaml; do
    registrations+="'$file', "
    bridges+="    - registration: $file\n"
done

doctor_config_for "$work" "$hs_port"
start_synapse "$work/hs" "$hs_port" "['$work/registration.yaml', ${registrations%, }]"

"$doctor" check -c "$work/config.yaml" --format json > "$work/report.json" || true
"$venv/bin/python" - "$work/report.json" "$count" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
targets = [t for t in report["targets"] if t["kind"] == "bridge"]
assert len(targets) == int(sys.argv[2]), f"{len(targets)} bridges in the report"
overlaps = [r for r in report["results"] if r["check"] == "namespace.exclusive_conflict"]
assert len(overlaps) == len(targets) + 1 and all(r["status"] == "pass" for r in overlaps), "overlap checks"
print(f"{len(targets)} bridges, {len(report['results'])} results, {len(report['diagnoses'])} diagnoses, summary {report['summary']}")
PY
"$venv/bin/python" - "$doctor" "$work/config.yaml" "$count" <<'PY'
import subprocess, sys, time
doctor, config, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
def best_and_median(extra):
    times = []
    for _ in range(5):
        start = time.perf_counter()
        subprocess.run([doctor, "check", "-c", config, "--format", "json", *extra], stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    times.sort()
    return times[0], times[2]
best, median = best_and_median([])
print(f"check over {count} targets: best {best:.2f} s, median {median:.2f} s (goal: under 3 s; ratio to goal {median / 3.0:.2f})")
best, median = best_and_median(["--offline"])
print(f"  of which files, databases, logs and the {count * (count + 1) // 2} overlap pairs (--offline): best {best:.2f} s, median {median:.2f} s")
PY
