#!/usr/bin/env bash
# Benchmark of the appservice path: the same transaction load (PUT
# transactions of five m.room.message events each, 16 connections, wrk from
# Debian's packages so the client is not the bottleneck) at the doctor
# (release build, encryption off) and at a real mautrix-python appservice
# (mautrix-telegram from PyPI), both registered with a local Synapse, in
# the same run. Prints transactions/s, p99 latency and RSS of each, and the
# ratios. Every transaction id is durable in the doctor's store before its
# 200.   bash scripts/bench-appservice.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
source scripts/lib.sh
seconds="${1:-10}"
command -v wrk >/dev/null || { echo "installing wrk from Debian's packages" >&2; apt-get install -y -qq wrk >&2; }
venv=$(bash scripts/setup-venv.sh)
doctor=$(built_doctor release)
work=$(mktemp -d)
pids=()
cleanup() { stop_processes "${pids[@]}"; rm -rf "$work"; }
trap cleanup EXIT

hs_port=$(free_port); as_port=$(free_port); tg_port=$(free_port)
make_telegram "$work/telegram" "http://127.0.0.1:$hs_port" "$tg_port"
sed -e "s|address: http://localhost:8008|address: http://127.0.0.1:$hs_port|" -e "s|domain: example.com|domain: doctor.test|" \
    -e "s|http://localhost:29399|http://127.0.0.1:$as_port|" -e "s|port: 29399|port: $as_port|" \
    -e "s|    allow: true|    allow: false|" -e "s|interval_seconds: 300|interval_seconds: 0|" \
    config.example.yaml > "$work/config.yaml"
"$doctor" generate-registration -c "$work/config.yaml" -r "$work/registration.yaml" >/dev/null
start_synapse "$work/hs" "$hs_port" "['$work/registration.yaml', '$work/telegram/registration.yaml']"
pids+=("$synapse_pid")

"$doctor" run -c "$work/config.yaml" >"$work/doctor.log" 2>&1 &
doctor_pid=$!; pids+=("$doctor_pid")
(cd "$work/telegram" && exec "$venv/bin/python" -m mautrix_telegram -c config.yaml --no-update >"$work/telegram.log" 2>&1) &
telegram_pid=$!; pids+=("$telegram_pid")
for _ in $(seq 1 60); do grep -q "self-check passed" "$work/doctor.log" 2>/dev/null && curl -s "http://127.0.0.1:$tg_port" >/dev/null 2>&1 && break; sleep 1; done

cat > "$work/transactions.lua" <<'LUA'
-- PUT a transaction of five m.room.message events, each with its own id.
local counter = 0
local thread_id = 0
local threads = 0
function setup(thread)
    threads = threads + 1
    thread:set("thread_id", threads)
end
function request()
    counter = counter + 1
    local id = thread_id .. "-" .. counter
    local events = {}
    for n = 1, 5 do
        events[n] = string.format('{"type":"m.room.message","room_id":"!bench:doctor.test","sender":"@someone:doctor.test","event_id":"$e%s-%d","origin_server_ts":1,"content":{"msgtype":"m.text","body":"hello %d"}}', id, n, n)
    end
    local body = '{"events":[' .. table.concat(events, ",") .. ']}'
    return wrk.format("PUT", "/_matrix/app/v1/transactions/" .. id, {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json"}, body)
end
LUA

# measure NAME PORT HS_TOKEN PID: wrk's numbers and the process's memory.
measure() {
    local name=$1 port=$2 token=$3 pid=$4
    sed "s|^local counter = 0|token = \"$token\"\nlocal counter = 0|" "$work/transactions.lua" > "$work/$name.lua"
    wrk -t2 -c16 -d"${seconds}s" --latency -s "$work/$name.lua" "http://127.0.0.1:$port" > "$work/$name.wrk"
    echo "$name $(awk '/Requests\/sec/ {print $2}' "$work/$name.wrk") $(awk '$1 == "99%" {print $2}' "$work/$name.wrk") $(awk '/^VmRSS/ {print $2}' "/proc/$pid/status") $(grep -c 'Non-2xx' "$work/$name.wrk" || true)"
}
doctor_token=$(awk -F'"' '/^    hs_token:/ {print $2}' "$work/config.yaml")
telegram_token=$(awk '/^hs_token:/ {print $2}' "$work/telegram/registration.yaml")
{ measure doctor "$as_port" "$doctor_token" "$doctor_pid"; measure mautrix-telegram "$tg_port" "$telegram_token" "$telegram_pid"; } > "$work/results"
"$venv/bin/python" - "$work/results" "$seconds" <<'PY'
import sys
def millis(text):
    for unit, factor in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * factor
    return float(text)
rows = {}
for line in open(sys.argv[1]):
    name, rate, p99, rss_kb, errors = line.split()
    rows[name] = (float(rate), millis(p99), int(rss_kb) / 1024, int(errors))
for name, (rate, p99, rss, errors) in rows.items():
    print(f"{name}: {rate:,.0f} transactions/s, p99 {p99:.1f} ms, RSS {rss:.0f} MB" + (" (some answers were not 2xx)" if errors else ""))
d, t = rows["doctor"], rows["mautrix-telegram"]
print(f"ratio doctor/mautrix-telegram: {d[0] / t[0]:.1f}x transactions/s (goal at least 10x), p99 {d[1]:.1f} ms (goal under 5 ms), RSS {d[2]:.0f} MB (goal under 30 MB)")
PY
