#!/usr/bin/env bash
# Runs every test: unit tests, and the tests against a real Synapse, a real
# mautrix-telegram (Python venv created once) and a real PostgreSQL server
# (Debian's package, installed here when missing; each test starts its own
# private cluster on a free loopback port), systemd-analyze for the unit,
# systemd-journal-remote for journal files, redis-server for Synapse's
# workers, and
# unshare for the compose deployment's mount namespaces (run as root).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-venv.sh >/dev/null
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || ! command -v psql >/dev/null; then
    echo "installing PostgreSQL from Debian's packages" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
fi
# systemd-analyze checks the shipped unit (tests/shipping.rs).
if ! command -v systemd-analyze >/dev/null; then
    echo "installing systemd-analyze from Debian's packages" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd >&2
fi
# systemd-journal-remote writes the real journal files tests/log_sources.rs
# and facts::journald's tests read with libsystemd (libsystemd0, which it
# depends on) and with journalctl.
if [ ! -x /lib/systemd/systemd-journal-remote ] || ! command -v journalctl >/dev/null \
    || ! /sbin/ldconfig -p | grep "libsystemd\.so\.0 " >/dev/null; then
    echo "installing systemd-journal-remote from Debian's packages" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd-journal-remote >&2
fi
# redis-server carries the replication of Synapse with workers (tests/faults.rs).
if ! command -v redis-server >/dev/null; then
    echo "installing redis-server from Debian's packages" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >&2
fi
# unshare (util-linux) makes the "containers" of tests/containers.rs.
if ! command -v unshare >/dev/null; then
    echo "installing util-linux from Debian's packages" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq util-linux >&2
fi
cargo test --locked --all-targets
