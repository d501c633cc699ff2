#!/usr/bin/env bash
# Runs every test: unit tests, and the tests against a real Synapse (and, as
# they come, real bridges), whose Python venv this creates once.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-venv.sh >/dev/null
cargo test --locked --all-targets
