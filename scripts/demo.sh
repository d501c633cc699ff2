#!/usr/bin/env bash
# The main job as a demo on a fresh machine: builds the doctor, starts a
# throwaway Synapse on loopback with the doctor's registration loaded, runs
# the doctor and shows its startup self-check. Everything lives in a temp dir
# that is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
venv=$(bash scripts/setup-venv.sh)
cargo build --locked --quiet
doctor="${CARGO_TARGET_DIR:-$repo/target}/debug/bridge-doctor"
work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

free_port() { "$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
fill() { sed -e "s|@DIR@|$work/hs|g" -e "s|@PORT@|$hs_port|g" -e "s|@REGISTRATIONS@|$registrations|g" "scripts/$1"; }

echo "== 1. The doctor's config and registration"
hs_port=$(free_port); as_port=$(free_port)
sed -e "s|address: http://localhost:8008|address: http://127.0.0.1:$hs_port|" \
    -e "s|domain: example.com|domain: doctor.test|" \
    -e "s|http://localhost:29399|http://127.0.0.1:$as_port|" -e "s|port: 29399|port: $as_port|" \
    -e 's|"@admin:example.com"|"@admin:doctor.test"|' \
    config.example.yaml > "$work/config.yaml"
"$doctor" generate-registration -c "$work/config.yaml" -r "$work/registration.yaml"

echo; echo "== 2. A local Synapse loading that registration (port $hs_port)"
mkdir -p "$work/hs"
registrations="['$work/registration.yaml']"
fill synapse-log.config.template > "$work/hs/log.config"
fill synapse-homeserver.yaml.template > "$work/hs/homeserver.yaml"
"$venv/bin/python" -m synapse.app.homeserver -c "$work/hs/homeserver.yaml" --generate-keys >/dev/null 2>&1
"$venv/bin/python" -m synapse.app.homeserver -c "$work/hs/homeserver.yaml" >"$work/hs/stdout.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 90); do curl -fs "http://127.0.0.1:$hs_port/_matrix/client/versions" >/dev/null && break; sleep 1; done

echo; echo "== 3. bridge-doctor run: startup self-check"
"$doctor" run -c "$work/config.yaml" 2>&1 | tee "$work/doctor.log" &
pids+=($!)
for _ in $(seq 1 60); do grep -q "self-check passed\|self-check failed" "$work/doctor.log" 2>/dev/null && break; sleep 1; done
echo; echo "== done: the doctor registered its bot, the homeserver pinged it, and it is serving."
