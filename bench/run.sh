#!/usr/bin/env bash
# Load benchmark of the Voltgate gateway, driven by voltgate-sim.
#
#   bench/run.sh [SCENARIO...]     scenarios: smoke connections closed-loop commands peers
#                                  (default: all but smoke and peers)
#
# Builds release binaries, starts the gateway pinned to one CPU and the simulator pinned to
# another (taskset), runs each scenario, and writes the simulator's JSON reports, the gateway's
# CPU time (/proc/PID/stat) and memory (/proc/PID/status) and a summary to bench/results/<time>/.
# Every load stays on loopback and stops by itself.
#
# Environment: GW_CPU (0), SIM_CPU (1), OCPP_PORT (19000), API_PORT (18080),
# CARGO_TARGET_DIR (target), OUT (results folder), CHARGERS_MAX (19000), BOOT_RAMP (2500),
# CLOSED_LOOP_CHARGERS (1000), COMMAND_RATE (5000), DURATION (30), PEERS_DURATION (20),
# IDLE_CHARGERS (2000), PEERS_DIR (TARGET/bench-peers: where `peers` installs the other servers),
# SIM_PROCESSES (unset: the simulator picks its number of processes from the open-file limit),
# GW_ARGS (more gateway flags, word-split, e.g. "--local-auth-lists false").
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
OUT=${OUT:-$ROOT/bench/results/$(date -u +%Y%m%dT%H%M%SZ)}
GW_CPU=${GW_CPU:-0}
SIM_CPU=${SIM_CPU:-1}
OCPP_PORT=${OCPP_PORT:-19000}
API_PORT=${API_PORT:-18080}
CHARGERS_MAX=${CHARGERS_MAX:-19000}
BOOT_RAMP=${BOOT_RAMP:-2500}
CLOSED_LOOP_CHARGERS=${CLOSED_LOOP_CHARGERS:-1000}
COMMAND_RATE=${COMMAND_RATE:-5000}
DURATION=${DURATION:-30}
PEERS_DURATION=${PEERS_DURATION:-20}
IDLE_CHARGERS=${IDLE_CHARGERS:-2000}
TOKEN=bench-admin-token
SCOPE=bench
SCENARIOS=("$@")
if [ ${#SCENARIOS[@]} -eq 0 ]; then
    SCENARIOS=(connections closed-loop commands)
fi

mkdir -p "$OUT"
# Each process may hold at most 20,000 open files here; ask for all of them.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

echo "building release binaries" >&2
(cd "$ROOT" && cargo build --release -p voltgate -p voltgate-sim)
GW=$TARGET/release/voltgate
SIM=$TARGET/release/voltgate-sim
PEERS_DIR=${PEERS_DIR:-$TARGET/bench-peers}

{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
    echo "cpus: $(nproc --all)"
    echo "memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
    echo "kernel: $(uname -r)"
    echo "open files per process: $(ulimit -n)"
    echo "rustc: $(rustc --version)"
    echo "gateway cpu: $GW_CPU, simulator cpu: $SIM_CPU"
} > "$OUT/machine.txt"

GW_PID=
cpu_ticks() { awk '{ i = index($0, ") "); split(substr($0, i + 2), f, " "); print f[12] + f[13] }' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
hwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }

start_gateway() {
    local name=$1
    # A load bench is a closed network: its simulated chargers register and are trusted at once.
    local register="--auto-register $SCOPE --auto-register-trusted --auto-register-address-burst 1000000 --auto-register-total-burst 1000000"
    echo "+ voltgate (for $name) --db sqlite::memory: $register --heartbeat-interval 60 ${GW_ARGS:-}" >>"$OUT/commands.txt"
    # shellcheck disable=SC2086
    VOLTGATE_LOG=warn taskset -c "$GW_CPU" "$GW" \
        --db sqlite::memory: --admin-token "$TOKEN" $register \
        --ocpp-listen "127.0.0.1:$OCPP_PORT" --api-listen "127.0.0.1:$API_PORT" \
        --heartbeat-interval 60 ${GW_ARGS:-} >"$OUT/$name.gateway.log" 2>&1 &
    GW_PID=$!
    for _ in $(seq 1 100); do
        if curl -fsS "http://127.0.0.1:$API_PORT/healthz" >/dev/null 2>&1; then
            break
        fi
        sleep 0.1
    done
    curl -fsS "http://127.0.0.1:$API_PORT/healthz" >/dev/null
    # the scope auto-registered chargers land in ("site" is a kind of the default preset)
    curl -sS -o /dev/null -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
        -d "{\"id\":\"$SCOPE\",\"kind\":\"site\",\"parent\":\"root\"}" "http://127.0.0.1:$API_PORT/api/v1/scopes"
    # the simulator's drivers and remote starts use the card SIM-TAG: a driver of that scope
    # who may charge there holds it (a remote start must name a card that may charge)
    api_post() {
        curl -sS -o /dev/null -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
            -d "$2" "http://127.0.0.1:$API_PORT/api/v1/$1"
    }
    api_post roles '{"id":"sim-driver","permissions":["charge-at-sites"]}'
    api_post principals "{\"id\":\"sim-driver\",\"kind\":\"driver\",\"home_scope\":\"$SCOPE\"}"
    api_post assignments "{\"principal\":\"sim-driver\",\"role\":\"sim-driver\",\"scope\":\"$SCOPE\"}"
    api_post principals/sim-driver/id-tokens '{"id_token":"SIM-TAG"}'
    echo "gateway pid $GW_PID, rss $(rss_kib "$GW_PID") KiB" >&2
}

stop_gateway() {
    local name=$1
    if [ -n "$GW_PID" ] && kill -0 "$GW_PID" 2>/dev/null; then
        echo "{\"cpu_ticks\": $(cpu_ticks "$GW_PID"), \"rss_kib\": $(rss_kib "$GW_PID"), \"hwm_kib\": $(hwm_kib "$GW_PID")}" \
            >"$OUT/$name.gateway-final.json"
        kill -INT "$GW_PID"
        wait "$GW_PID" || true
    fi
    GW_PID=
}
PEER_PID=
trap 'if [ -n "$GW_PID" ]; then kill -INT "$GW_PID" 2>/dev/null || true; fi
      if [ -n "$PEER_PID" ]; then kill -TERM "$PEER_PID" 2>/dev/null || true; fi' EXIT

sim() {
    taskset -c "$SIM_CPU" "$SIM" --url "${SIM_URL:-ws://127.0.0.1:$OCPP_PORT/ocpp}" --api "http://127.0.0.1:$API_PORT" \
        --api-token "$TOKEN" --report json --quiet "$@"
}

run_logged() {
    # run_logged NAME ARGS...: the simulator's JSON report to NAME.json, its exit code kept
    local name=$1
    shift
    echo "+ voltgate-sim $*" | tee -a "$OUT/commands.txt" >&2
    local rc=0
    sim "$@" >"$OUT/$name.json" 2>"$OUT/$name.stderr" || rc=$?
    echo "$name exit $rc" >>"$OUT/exit-codes.txt"
}

scenario_smoke() {
    # CI-sized: both versions, sessions, operator commands; fails on anything lost or refused
    start_gateway smoke
    run_logged smoke --chargers 2000 --ramp 1000 --duration 20 --ocpp mixed --heartbeat 10 \
        --meter-interval 10 --sessions 30 --session-length 15 --commands 200 --watch-pid "$GW_PID"
    stop_gateway smoke
}

scenario_connections() {
    # The most chargers one gateway holds, as a boot storm, from one simulator command: it
    # spreads the chargers over as many processes as the per-process open-file limit needs
    # (one report with exact totals and latency percentiles over all of them) and over the
    # loopback source addresses 127.0.0.2-127.0.0.9 so local ports do not run out.
    # SIM_PROCESSES=K forces K processes instead of the automatic choice.
    start_gateway connections
    local hold=$((CHARGERS_MAX / BOOT_RAMP + 40))
    local args=(--chargers "$CHARGERS_MAX" --ramp "$BOOT_RAMP" --duration "$hold" --ocpp mixed --heartbeat 30
        --source-addrs 127.0.0.2-127.0.0.9 --call-timeout 60 --watch-pid "$GW_PID")
    if [ -n "${SIM_PROCESSES:-}" ]; then
        args+=(--processes "$SIM_PROCESSES")
    fi
    local before_rss before_ticks
    before_rss=$(rss_kib "$GW_PID")
    before_ticks=$(cpu_ticks "$GW_PID")
    echo "+ voltgate-sim ${args[*]}" | tee -a "$OUT/commands.txt" >&2
    sim "${args[@]}" >"$OUT/connections.json" 2>"$OUT/connections.stderr" &
    local sim_pid=$!
    # memory once everyone is connected and has booted (ramp + settle)
    sleep $((CHARGERS_MAX / BOOT_RAMP + 20))
    local connected
    connected=$(curl -fsS "http://127.0.0.1:$API_PORT/metrics" | awk '/^voltgate_chargers_connected/ { n += $2 } END { print n + 0 }')
    local steady_rss
    steady_rss=$(rss_kib "$GW_PID")
    local rc=0
    wait "$sim_pid" || rc=$?
    echo "connections exit $rc" >>"$OUT/exit-codes.txt"
    echo "{\"rss_kib_before\": $before_rss, \"rss_kib_connected\": $steady_rss, \"connected\": $connected," \
        "\"cpu_ticks_before\": $before_ticks, \"cpu_ticks_after\": $(cpu_ticks "$GW_PID"), \"hwm_kib\": $(hwm_kib "$GW_PID")}" \
        >"$OUT/connections.gateway.json"
    stop_gateway connections
}

scenario_closed_loop() {
    for version in 1.6 2.0.1; do
        start_gateway "closed-loop-$version"
        run_logged "closed-loop-$version" --chargers "$CLOSED_LOOP_CHARGERS" --ramp 0 --duration "$DURATION" \
            --ocpp "$version" --closed-loop --watch-pid "$GW_PID" --call-timeout 60
        stop_gateway "closed-loop-$version"
    done
}

scenario_commands() {
    start_gateway commands
    run_logged commands --chargers 1000 --ramp 0 --duration "$DURATION" --ocpp mixed --heartbeat 60 \
        --commands "$COMMAND_RATE" --watch-pid "$GW_PID" --call-timeout 60
    stop_gateway commands
}

install_peers() {
    # The other OCPP servers, from their registries, outside the source tree.
    mkdir -p "$PEERS_DIR/node"
    if [ ! -x "$PEERS_DIR/venv/bin/python" ]; then
        python3 -m venv "$PEERS_DIR/venv"
    fi
    "$PEERS_DIR/venv/bin/pip" install --quiet --disable-pip-version-check ocpp==2.1.0 websockets==17.4
    cp "$ROOT/bench/peers/package.json" "$PEERS_DIR/node/package.json"
    (cd "$PEERS_DIR/node" && npm install --no-audit --no-fund --silent)
    {
        echo "python: $("$PEERS_DIR/venv/bin/python" --version 2>&1)"
        "$PEERS_DIR/venv/bin/pip" list --disable-pip-version-check 2>/dev/null | awk '$1 ~ /^(ocpp|websockets|jsonschema)$/ { print "pypi " $1 ": " $2 }'
        echo "node: $(node --version)"
        echo "npm ocpp-rpc: $(node -p "require('$PEERS_DIR/node/node_modules/ocpp-rpc/package.json').version")"
    } >"$OUT/peers-versions.txt"
}

start_peer() {
    # start_peer NAME PORT COMMAND...: a peer server pinned like the gateway, up when its port answers
    local name=$1 port=$2
    shift 2
    taskset -c "$GW_CPU" "$@" --host 127.0.0.1 --port "$port" >"$OUT/peers-$name.server.log" 2>&1 &
    PEER_PID=$!
    for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            break
        fi
        sleep 0.1
    done
    echo "$name pid $PEER_PID, rss $(rss_kib "$PEER_PID") KiB" >&2
}

stop_peer() {
    if [ -n "$PEER_PID" ]; then
        kill -TERM "$PEER_PID" 2>/dev/null || true
        wait "$PEER_PID" || true
    fi
    PEER_PID=
}

measure_server() {
    # measure_server NAME PORT PID: idle connections (on the freshly started server, so its
    # memory before is its own baseline), then the same closed loop, against one server
    local name=$1 port=$2 pid=$3
    local url="ws://127.0.0.1:$port/ocpp"
    echo "# $name: simulator --url $url" >>"$OUT/commands.txt"
    # chargers that only boot and hold their connection; RSS sampled once they have settled
    local ramp=500 hold=$((IDLE_CHARGERS / 500 + 16))
    local before_rss
    before_rss=$(rss_kib "$pid")
    echo "+ voltgate-sim --chargers $IDLE_CHARGERS --ramp $ramp --duration $hold --ocpp 1.6 --heartbeat 300" \
        | tee -a "$OUT/commands.txt" >&2
    local rc=0
    SIM_URL=$url sim --chargers "$IDLE_CHARGERS" --first-index 100001 --ramp "$ramp" --duration "$hold" \
        --ocpp 1.6 --heartbeat 300 --watch-pid "$pid" --call-timeout 60 \
        >"$OUT/peers-$name-idle.json" 2>"$OUT/peers-$name-idle.stderr" &
    local sim_pid=$!
    sleep $((hold - 3))
    local settled_rss
    settled_rss=$(rss_kib "$pid")
    wait "$sim_pid" || rc=$?
    echo "peers-$name-idle exit $rc" >>"$OUT/exit-codes.txt"
    echo "{\"chargers\": $IDLE_CHARGERS, \"rss_kib_before\": $before_rss, \"rss_kib_settled\": $settled_rss}" \
        >"$OUT/peers-$name-idle.rss.json"
    SIM_URL=$url run_logged "peers-$name-closed-loop" --chargers "$CLOSED_LOOP_CHARGERS" --ramp 0 \
        --duration "$PEERS_DURATION" --ocpp 1.6 --closed-loop --watch-pid "$pid" --call-timeout 60
}

scenario_peers() {
    # Voltgate against the Python `ocpp` central system and the Node `ocpp-rpc` strict server:
    # each pinned to GW_CPU in turn, under the same simulator load pinned to SIM_CPU.
    install_peers
    start_gateway peers-voltgate
    measure_server voltgate "$OCPP_PORT" "$GW_PID"
    stop_gateway peers-voltgate
    start_peer python-ocpp "$((OCPP_PORT + 100))" "$PEERS_DIR/venv/bin/python" "$ROOT/bench/peers/python_ocpp_server.py"
    measure_server python-ocpp "$((OCPP_PORT + 100))" "$PEER_PID"
    stop_peer
    start_peer node-ocpp-rpc "$((OCPP_PORT + 200))" env NODE_PATH="$PEERS_DIR/node/node_modules" \
        node "$ROOT/bench/peers/node_ocpp_rpc_server.js"
    measure_server node-ocpp-rpc "$((OCPP_PORT + 200))" "$PEER_PID"
    stop_peer
}

for s in "${SCENARIOS[@]}"; do
    echo "== $s" >&2
    case "$s" in
        smoke) scenario_smoke ;;
        connections) scenario_connections ;;
        closed-loop) scenario_closed_loop ;;
        commands) scenario_commands ;;
        peers) scenario_peers ;;
        *) echo "unknown scenario $s" >&2; exit 2 ;;
    esac
done

python3 "$ROOT/bench/summarise.py" "$OUT" | tee "$OUT/summary.md"
echo "results in $OUT" >&2
if grep -qv ' exit 0$' "$OUT/exit-codes.txt"; then
    exit 1
fi
