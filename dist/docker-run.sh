#!/bin/sh
# The container's entry, after the mautrix bridges' docker-run.sh: config
# and data live in /data.
# - First start, no config: writes the example config and stops, saying
#   what to fill in.
# - Later starts: generate the doctor's registration when it is missing
#   (saying where the homeserver must load it from), then run the doctor.
# BRIDGE_DOCTOR_DATA and BRIDGE_DOCTOR_BIN override /data and the binary
# (the tests run this script outside Docker).
set -eu
data="${BRIDGE_DOCTOR_DATA:-/data}"
doctor="${BRIDGE_DOCTOR_BIN:-bridge-doctor}"
config="$data/config.yaml"
registration="$data/registration.yaml"

if [ ! -f "$config" ]; then
    "$doctor" generate-registration -c "$config" >/dev/null
    cat <<TEXT
Didn't find a config file, so wrote the example config to $config.
Fill it in, then start the container again:
  - homeserver.address and homeserver.domain: your homeserver;
  - appservice.address: how the homeserver reaches this container
    (for example http://bridge-doctor:29399), and appservice.hostname: 0.0.0.0;
  - permissions: your own Matrix ID as admin.
The next start generates the registration for the homeserver.
TEXT
    exit 0
fi

if [ ! -f "$registration" ]; then
    "$doctor" generate-registration -c "$config" -r "$registration"
    cat <<TEXT
Generated the registration $registration.
Add it to app_service_config_files of the homeserver and restart the
homeserver; until then the doctor's self-check says the homeserver does not
know it.
TEXT
fi

exec "$doctor" run -c "$config"
