#!/usr/bin/env bash
# Benchmark of a journald log source: `bridge-doctor explain --unit` reading
# a 50 MiB window from real journal files (written by systemd-journal-remote)
# through libsystemd's sd-journal API and through the journalctl fallback,
# against `explain` on the same text in a file, and journalctl alone with
# each output format.
# Prints times and ratios; the data (about 50 MiB of text and 130 MiB of
# journal) is deleted afterwards. Run on an otherwise idle machine.
#   bash scripts/bench-journald.sh [SIZE_MB]     (BENCH_PROFILE=debug to skip the release build)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
source scripts/lib.sh
size_mb="${1:-50}"
venv=$(bash scripts/setup-venv.sh)
doctor=$(built_doctor release)
work=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/bench-journald.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$venv/bin/python" scripts/bench_log.py "$work/noise.log" "$size_mb" >/dev/null
"$venv/bin/python" scripts/bench_journald.py "$doctor" "$work/noise.log" "$work/journal"
