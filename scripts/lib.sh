# Shell helpers shared by demo.sh and bench-check.sh: a throwaway Synapse and
# real mautrix-telegram setups. Source it after setting $venv (the path
# setup-venv.sh prints) and $repo (the repository root).

free_port() {
    "$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
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
