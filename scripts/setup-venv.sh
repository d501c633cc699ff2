#!/usr/bin/env bash
# Creates (once) the Python venv with the real programs the tests and the demo
# run: Synapse as the homeserver, mautrix-telegram and heisenbridge as bridges, matrix-nio with
# libolm (python-olm ships a wheel) as a client, also in encrypted rooms;
# psycopg2 and txredisapi for Synapse on PostgreSQL with Redis and workers.
# Prints the venv's path. Safe to run again: it only installs what is missing.
set -euo pipefail
cache="${BRIDGE_DOCTOR_CACHE:-$HOME/.cache/bridge-doctor}"
venv="$cache/venv"
packages=(matrix-synapse mautrix-telegram heisenbridge aiosqlite "matrix-nio[e2e]" python-olm
    psycopg2-binary "txredisapi>=1.4.12,<1.6.0" hiredis)
mkdir -p "$cache"
exec 9>"$cache/venv.lock"
flock 9
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv" >&2
fi
if ! "$venv/bin/python" -c 'import synapse, mautrix_telegram, heisenbridge, aiosqlite, nio, olm, peewee, psycopg2, txredisapi, hiredis' 2>/dev/null; then
    echo "installing ${packages[*]} into $venv (about a minute, once)" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check "${packages[@]}" >&2
fi
echo "$venv"
