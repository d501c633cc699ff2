#!/usr/bin/env bash
# Benchmark of `bridge-doctor explain` against `grep -E` with the same
# symptoms, on a generated 400 MB log of bridge and Synapse noise with a few
# known error lines. Prints both times, the ratio (explain / grep; the goal is
# at most 1.0) and explain's peak memory. Run on an otherwise idle machine.
#   bash scripts/bench-explain.sh [SIZE_MB]
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
source scripts/lib.sh
size_mb="${1:-400}"
venv=$(bash scripts/setup-venv.sh)
doctor=$(built_doctor release)
work="${BENCH_DIR:-$HOME/.cache/bridge-doctor/bench}"
mkdir -p "$work"
log="$work/noise-${size_mb}mb.log"
[ -s "$log" ] || "$venv/bin/python" scripts/bench_log.py "$log" "$size_mb"
"$venv/bin/python" scripts/bench_compare.py "$doctor" "$log"
