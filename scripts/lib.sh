# Shell helpers shared by the demo and the bench scripts: building the doctor,
# a throwaway Synapse, real mautrix-telegram setups, stopping it all. Source
# it after setting $repo (the repository root); the helpers that start
# Python use $venv (the path setup-venv.sh prints).

# built_doctor release|debug: builds the doctor (cargo's output on stderr)
# and prints the path of the binary. For the benches: BENCH_PROFILE=debug
# skips the release build; BENCH_DOCTOR=PATH takes that binary as it is
# (another build, to compare two versions on the same machine).
built_doctor() {
    if [ -n "${BENCH_DOCTOR:-}" ]; then
        echo "$BENCH_DOCTOR"
        return
    fi
    local profile=${BENCH_PROFILE:-$1}
    if [ "$profile" = release ]; then cargo build --release --locked --quiet >&2; else cargo build --locked --quiet >&2; fi
    echo "${CARGO_TARGET_DIR:-$repo/target}/$profile/bridge-doctor"
}

free_port() {
    "$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# stop_processes PID...: asks each to stop, and kills what is still there
# after 10 s (mautrix-telegram under load can take its time over SIGTERM).
stop_processes() {
    local pid alive
    for pid in "$@"; do kill "$pid" 2>/dev/null || true; done
    for _ in $(seq 1 100); do
        alive=0
        for pid in "$@"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ "$alive" = 0 ] && break
        sleep 0.1
    done
    for pid in "$@"; do kill -9 "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}

# start_synapse DIR PORT "['reg1.yaml', 'reg2.yaml']": writes the config from
# the template, generates keys, starts Synapse in the background (its pid in
# $synapse_pid) and waits until it answers.
start_synapse() {
    local dir=$1 port=$2 registrations=$3 template
    mkdir -p "$dir"
    for template in synapse-log.config synapse-homeserver.yaml; do
        sed -e "s|@DIR@|$dir|g" -e "s|@PORT@|$port|g" -e "s|@REGISTRATIONS@|$registrations|g" \
            "$repo/scripts/$template.template" > "$dir/${template/synapse-/}"
    done
    "$venv/bin/python" -m synapse.app.homeserver -c "$dir/homeserver.yaml" --generate-keys >/dev/null 2>&1
    "$venv/bin/python" -m synapse.app.homeserver -c "$dir/homeserver.yaml" >"$dir/stdout.log" 2>&1 &
    synapse_pid=$!
    for _ in $(seq 1 90); do
        curl -fs "http://127.0.0.1:$port/_matrix/client/versions" >/dev/null && return 0
        sleep 1
    done
    echo "Synapse did not start; see $dir/stdout.log" >&2
    return 1
}

# make_telegram DIR HOMESERVER_URL PORT: a mautrix-telegram config from the
# shipped example and the registration the bridge generates itself.
make_telegram() {
    local dir=$1 homeserver=$2 port=$3
    mkdir -p "$dir"
    (cd "$dir" \
        && "$venv/bin/python" "$repo/scripts/telegram-config.py" config.yaml "$homeserver" doctor.test "$port" \
        && "$venv/bin/python" -m mautrix_telegram -g -c config.yaml -r registration.yaml >/dev/null)
}

# make_numbered_telegram DIR HOMESERVER_URL N: make_telegram, with its own
# appservice id, bot and user prefix (telegramN, tgNbot, tgN_), as separate
# installs of one bridge have.
make_numbered_telegram() {
    local dir=$1 homeserver=$2 i=$3
    make_telegram "$dir" "$homeserver" "$(free_port)"
    sed -i -e "s/^id: telegram$/id: telegram$i/" -e "s/telegram_/tg${i}_/g" -e "s/telegrambot/tg${i}bot/g" "$dir/registration.yaml"
    sed -i -e "s/^    id: telegram$/    id: telegram$i/" -e "s/bot_username: telegrambot/bot_username: tg${i}bot/" -e "s/telegram_{userid}/tg${i}_{userid}/" "$dir/config.yaml"
}

# add_real_bridge DIR HOMESERVER_URL N: make_numbered_telegram with a SQLite
# database holding the bridge's tables and a real bridge log; appends it to
# $registrations (Synapse's list) and $bridges (the doctor's list).
add_real_bridge() {
    local dir=$1 homeserver=$2 i=$3
    make_numbered_telegram "$dir" "$homeserver" "$i"
    "$venv/bin/python" -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.executescript('create table portal(id text); create table puppet(id text); create table version(v int);')" "$dir/mautrix-telegram.db"
    cp "$repo/../shared/fixtures/logs/mautrix-telegram-hs_token_mismatch.log" "$dir/mautrix-telegram.log" 2>/dev/null || echo "[INFO@mau.init] started" > "$dir/mautrix-telegram.log"
    registrations+="'$dir/registration.yaml', "
    bridges+="    - config: $dir/config.yaml\n      registration: $dir/registration.yaml\n      logs: [$dir/mautrix-telegram.log]\n"
}

# doctor_config_for WORK HS_PORT: WORK/config.yaml from config.example.yaml
# for the Synapse of start_synapse WORK/hs, listing $bridges, with the
# doctor's registration generated as WORK/registration.yaml.
doctor_config_for() {
    local work=$1 port=$2
    sed -e "s|address: http://localhost:8008|address: http://127.0.0.1:$port|" -e "s|domain: example.com|domain: doctor.test|" \
        -e "s|^    #config: /etc/matrix-synapse/homeserver.yaml|    config: $work/hs/homeserver.yaml|" \
        -e "s|^    #log: /var/log/matrix-synapse/homeserver.log|    log: $work/hs/homeserver.log|" \
        -e "s|^bridges:|bridges:\n$bridges|" "$repo/config.example.yaml" > "$work/config.yaml"
    "$doctor" generate-registration -c "$work/config.yaml" -r "$work/registration.yaml" >/dev/null
}
