#!/usr/bin/env bash
# Benchmark of the bot in an encrypted direct chat, as an admin meets it: a
# local Synapse, the doctor (release build) with three real mautrix-telegram
# registrations configured, and a real encrypting client (matrix-nio with
# libolm) that sends `help` and `check` and times each reply from sending to
# receiving it decrypted. Prints medians and the 90th percentile against the
# goals (help under 300 ms, check under 2 s) and the doctor's memory (RSS
# now and at its peak; aim under 60 MB).   bash scripts/bench-chat.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
source scripts/lib.sh
rounds="${1:-20}"
venv=$(bash scripts/setup-venv.sh)
doctor=$(built_doctor release)
work=$(mktemp -d)
pids=()
cleanup() { stop_processes "${pids[@]}"; rm -rf "$work"; }
trap cleanup EXIT

hs_port=$(free_port); as_port=$(free_port)
registrations=""
bridges=""
for i in 1 2 3; do
    dir="$work/bridge$i"
    make_numbered_telegram "$dir" "http://127.0.0.1:$hs_port" "$i"
    registrations+="'$dir/registration.yaml', "
    bridges+="    - config: $dir/config.yaml\n      registration: $dir/registration.yaml\n"
done
sed -e "s|address: http://localhost:8008|address: http://127.0.0.1:$hs_port|" -e "s|domain: example.com|domain: doctor.test|" \
    -e "s|http://localhost:29399|http://127.0.0.1:$as_port|" -e "s|port: 29399|port: $as_port|" \
    -e 's|"@admin:example.com"|"@admin:doctor.test"|' \
    -e "s|^bridges:|bridges:\n$bridges|" config.example.yaml > "$work/config.yaml"
"$doctor" generate-registration -c "$work/config.yaml" -r "$work/registration.yaml" >/dev/null
start_synapse "$work/hs" "$hs_port" "['$work/registration.yaml', ${registrations%, }]"
pids+=("$synapse_pid")
"$venv/bin/register_new_matrix_user" -c "$work/hs/homeserver.yaml" -u admin -p pw-admin --admin "http://127.0.0.1:$hs_port" >/dev/null

"$doctor" run -c "$work/config.yaml" >"$work/doctor.log" 2>&1 &
doctor_pid=$!
pids+=("$doctor_pid")
for _ in $(seq 1 60); do grep -q "check=encryption.doctor_unavailable" "$work/doctor.log" 2>/dev/null && break; sleep 1; done
grep -q "ready and cross-signed" "$work/doctor.log" || { echo "the bot has no device:"; cat "$work/doctor.log"; exit 1; }

"$venv/bin/python" tests/support/e2e_client.py "http://127.0.0.1:$hs_port" @doctor:doctor.test "$work" bench "$rounds" > "$work/latencies.json"
rss=$(awk '/^VmRSS/ {print $2}' "/proc/$doctor_pid/status")
peak=$(awk '/^VmHWM/ {print $2}' "/proc/$doctor_pid/status")
"$venv/bin/python" - "$work/latencies.json" "$rss" "$peak" <<'PY'
import json, statistics, sys
latencies = json.load(open(sys.argv[1]))
rss, peak = int(sys.argv[2]) / 1024, int(sys.argv[3]) / 1024
for name, goal in (("help", 300), ("check", 2000)):
    values = sorted(latencies[name])
    median = statistics.median(values)
    p90 = values[int(0.9 * (len(values) - 1))]
    print(f"{name}: {len(values)} replies in an encrypted DM, median {median:.0f} ms, p90 {p90:.0f} ms (goal: median under {goal} ms; ratio to goal {median / goal:.2f})")
print(f"doctor RSS with encryption on: {rss:.1f} MB now, {peak:.1f} MB at its peak (aim: under 60 MB)")
PY
