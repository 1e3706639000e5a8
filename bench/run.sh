#!/usr/bin/env bash
# Load benchmark of the Voltgate gateway, driven by voltgate-sim.
#
#   bench/run.sh [SCENARIO...]     scenarios: smoke connections closed-loop commands peers
#                                  cluster (default: all but smoke, peers and cluster)
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
# The cluster scenario (see scenario_cluster): CLUSTER_NODES (3), CLUSTER_CHARGERS (300 in all;
# the issue's figure is 57000), CLUSTER_COMMAND_RATE (30 per second in all), CLUSTER_DURATION
# (60; the failover phase needs the ramp, CLUSTER_KILL_AT and 30 s more), CLUSTER_KILL_AT (10:
# seconds after every charger is online when one node is SIGKILLed), CLUSTER_RAMP
# (200 new connections per second per simulator), CLUSTER_CHANGES (100 changes timed from one
# node to another), CLUSTER_LOG (warn: the nodes' VOLTGATE_LOG, e.g.
# "warn,voltgate::cluster=debug" for how long each node took to follow each change),
# PG_PORT (19432), NATS_PORT (19422).
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

# PROFILE=dev runs the debug binaries (to try a scenario out quickly, not to measure).
PROFILE=${PROFILE:-release}
echo "building $PROFILE binaries" >&2
(cd "$ROOT" && cargo build --profile "$PROFILE" -p voltgate -p voltgate-sim)
PROFILE_DIR=$PROFILE
if [ "$PROFILE" = dev ]; then
    PROFILE_DIR=debug
fi
GW=$TARGET/$PROFILE_DIR/voltgate
SIM=$TARGET/$PROFILE_DIR/voltgate-sim
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
DEFAULT_TRAP='if [ -n "$GW_PID" ]; then kill -INT "$GW_PID" 2>/dev/null || true; fi
      if [ -n "$PEER_PID" ]; then kill -TERM "$PEER_PID" 2>/dev/null || true; fi'
# shellcheck disable=SC2064
trap "$DEFAULT_TRAP" EXIT

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

# --- cluster: several nodes on one PostgreSQL and one NATS -----------------------------------
CLUSTER_NODES=${CLUSTER_NODES:-3}
CLUSTER_CHARGERS=${CLUSTER_CHARGERS:-300}
CLUSTER_COMMAND_RATE=${CLUSTER_COMMAND_RATE:-30}
CLUSTER_DURATION=${CLUSTER_DURATION:-60}
CLUSTER_KILL_AT=${CLUSTER_KILL_AT:-10}
CLUSTER_RAMP=${CLUSTER_RAMP:-200}
CLUSTER_CHANGES=${CLUSTER_CHANGES:-100}
PG_PORT=${PG_PORT:-19432}
NATS_PORT=${NATS_PORT:-19422}
PG_BIN=
PG_DIR=
PG_RUN=()
NATS_PID=
NODE_PIDS=()
SIM_PIDS=()

cluster_fail() {
    echo "cluster: $*" >&2
    echo "cluster exit 2 ($*)" >>"$OUT/exit-codes.txt"
    exit 2
}

cluster_preflight() {
    command -v nats-server >/dev/null || cluster_fail "needs nats-server (Debian package nats-server)"
    PG_BIN=$(find /usr/lib/postgresql -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -1)
    [ -n "$PG_BIN" ] && [ -x "$PG_BIN/initdb" ] ||
        cluster_fail "needs the PostgreSQL server (Debian package postgresql: /usr/lib/postgresql/*/bin/initdb)"
    "$GW" --help | grep -q -- '--cluster' || cluster_fail "this voltgate has no --cluster flag"
}

start_postgres() {
    # A throwaway server as tests/postgres.rs starts one: initdb refuses root, so as root it
    # runs as the postgres user, under target/ when that user may write there.
    PG_DIR=$TARGET/bench-cluster/postgres-$$
    mkdir -p "$PG_DIR"
    if [ "$(id -u)" = 0 ]; then
        chown postgres: "$PG_DIR"
        if ! runuser -u postgres -- test -w "$PG_DIR"; then
            rm -rf "$PG_DIR"
            PG_DIR=$(mktemp -d /tmp/voltgate-bench-postgres.XXXXXX)
            chown postgres: "$PG_DIR"
        fi
        PG_RUN=(runuser -u postgres --)
    fi
    "${PG_RUN[@]}" "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres --auth=trust --encoding=UTF8 \
        --locale=C --no-sync >"$OUT/cluster.postgres-initdb.log" 2>&1 || cluster_fail "initdb failed (see cluster.postgres-initdb.log)"
    # fsync off: the single-node scenarios run on an in-memory store, so this compares the
    # cluster path, not the disk
    "${PG_RUN[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 30 start \
        -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off -c synchronous_commit=off -c shared_preload_libraries=pg_stat_statements" \
        >>"$OUT/cluster.postgres-initdb.log" 2>&1 || cluster_fail "PostgreSQL did not start on port $PG_PORT (see $PG_DIR/server.log)"
    pg_sql "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" >/dev/null ||
        cluster_fail "pg_stat_statements is not available"
}

pg_sql() {
    # pg_sql SQL...: runs statements in the server's postgres database, rows unaligned
    local args=() statement
    for statement in "$@"; do args+=(-c "$statement"); done
    PGOPTIONS="-c client_min_messages=warning" "${PG_RUN[@]}" "$PG_BIN/psql" -X -q -A -F ' | ' \
        -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres "${args[@]}"
}

stop_postgres() {
    if [ -n "$PG_DIR" ] && [ -d "$PG_DIR/data" ]; then
        "${PG_RUN[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast stop >/dev/null 2>&1 || true
        cp "$PG_DIR/server.log" "$OUT/cluster.postgres.log" 2>/dev/null || true
        rm -rf "$PG_DIR"
    fi
    PG_DIR=
}

pg_database() {
    # pg_database NAME: a fresh, empty database
    PGOPTIONS="-c client_min_messages=warning" "${PG_RUN[@]}" "$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres \
        -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1" >/dev/null || cluster_fail "cannot create database $1"
    echo "postgres://postgres@127.0.0.1:$PG_PORT/$1"
}

start_nats() {
    mkdir -p "$TARGET/bench-cluster/nats-$$"
    nats-server -js -a 127.0.0.1 -p "$NATS_PORT" -sd "$TARGET/bench-cluster/nats-$$" \
        >"$OUT/cluster.nats.log" 2>&1 &
    NATS_PID=$!
    for _ in $(seq 1 50); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$NATS_PORT") 2>/dev/null; then
            return
        fi
        sleep 0.1
    done
    cluster_fail "nats-server did not listen on $NATS_PORT (see cluster.nats.log)"
}

stop_nats() {
    if [ -n "$NATS_PID" ]; then
        kill -TERM "$NATS_PID" 2>/dev/null || true
        wait "$NATS_PID" 2>/dev/null || true
    fi
    NATS_PID=
    rm -rf "$TARGET/bench-cluster/nats-$$"
}

start_node() {
    # start_node N DB_URL [CLUSTER_FLAGS...]: node N on ports OCPP_PORT+N and API_PORT+N
    local n=$1 db=$2
    shift 2
    local register="--auto-register $SCOPE --auto-register-trusted --auto-register-address-burst 1000000 --auto-register-total-burst 1000000"
    echo "+ VOLTGATE_LOG=${CLUSTER_LOG:-warn} voltgate (node $n) --db $db $* $register --heartbeat-interval 60 ${GW_ARGS:-}" >>"$OUT/commands.txt"
    # shellcheck disable=SC2086
    VOLTGATE_LOG="${CLUSTER_LOG:-warn}" taskset -c "$GW_CPU" "$GW" --db "$db" "$@" --admin-token "$TOKEN" $register \
        --ocpp-listen "127.0.0.1:$((OCPP_PORT + n))" --api-listen "127.0.0.1:$((API_PORT + n))" \
        --heartbeat-interval 60 ${GW_ARGS:-} >"$OUT/cluster.node-$n.log" 2>&1 &
    NODE_PIDS[n]=$!
    for _ in $(seq 1 300); do
        if curl -fsS "http://127.0.0.1:$((API_PORT + n))/readyz" >/dev/null 2>&1; then
            return
        fi
        kill -0 "${NODE_PIDS[n]}" 2>/dev/null || cluster_fail "node $n exited at start (see cluster.node-$n.log)"
        sleep 0.1
    done
    cluster_fail "node $n is not ready after 30 s (see cluster.node-$n.log)"
}

stop_nodes() {
    local n
    for n in "${!NODE_PIDS[@]}"; do
        kill -INT "${NODE_PIDS[n]}" 2>/dev/null || true
        wait "${NODE_PIDS[n]}" 2>/dev/null || true
    done
    NODE_PIDS=()
}

seed_estate() {
    # seed_estate API_PORT: the scope and the driver the simulators need, as start_gateway does
    local api="http://127.0.0.1:$1/api/v1"
    post() {
        curl -sS -o /dev/null -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d "$2" "$api/$1"
    }
    post scopes "{\"id\":\"$SCOPE\",\"kind\":\"site\",\"parent\":\"root\"}"
    post roles '{"id":"sim-driver","permissions":["charge-at-sites"]}'
    post principals "{\"id\":\"sim-driver\",\"kind\":\"driver\",\"home_scope\":\"$SCOPE\"}"
    post assignments "{\"principal\":\"sim-driver\",\"role\":\"sim-driver\",\"scope\":\"$SCOPE\"}"
    post principals/sim-driver/id-tokens '{"id_token":"SIM-TAG"}'
}

wait_all_online() {
    # wait_all_online LIMIT_S PORT...: until the nodes behind these API ports report
    # CLUSTER_CHARGERS connected chargers; prints how long it took, or nothing after LIMIT_S
    local limit=$1 started now
    shift
    started=$(date +%s.%N)
    while :; do
        if [ "$(connected_on "$@")" -ge "$CLUSTER_CHARGERS" ]; then
            awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'
            return
        fi
        now=$(date +%s.%N)
        if awk -v a="$started" -v b="$now" -v l="$limit" 'BEGIN { exit !(b - a > l) }'; then
            return
        fi
        sleep 0.5
    done
}

connected_on() {
    # connected_on PORT...: chargers connected to these nodes, by their metrics
    local total=0 port n
    for port in "$@"; do
        n=$(curl -fsS --max-time 2 "http://127.0.0.1:$port/metrics" 2>/dev/null |
            awk '/^voltgate_chargers_connected/ { n += $2 } END { print n + 0 }')
        total=$((total + ${n:-0}))
    done
    echo "$total"
}

propagation_probe() {
    # propagation_probe FROM_PORT TO_PORT KIND: CLUSTER_CHANGES changes made through one node's
    # API, each then looked for through another's; per change, the microseconds from sending
    # the change until the other node shows it (two curl processes included, so an upper
    # bound). KIND scopes: a site created, then asked for alone (GET /api/v1/scopes/ID, 404
    # until the other node's engine holds it); KIND roles: a custom role defined (a rule
    # change, which the other nodes replay onto the stations they hold), found in the role
    # list, which is read from the engine alone.
    local from=$1 to=$2 kind=$3 i t0 t1 id body
    local auth="Authorization: Bearer $TOKEN"
    for i in $(seq 1 "$CLUSTER_CHANGES"); do
        case $kind in
        scopes)
            id="probe-$i"
            body="{\"id\":\"$id\",\"kind\":\"site\",\"parent\":\"root\"}"
            ;;
        roles)
            id="probe-role-$i"
            body="{\"id\":\"$id\",\"permissions\":[\"charge-at-sites\"]}"
            ;;
        esac
        t0=$(date +%s%N)
        curl -fsS -o /dev/null -H "$auth" -H 'Content-Type: application/json' \
            -d "$body" "http://127.0.0.1:$from/api/v1/$kind" || { echo "change $id refused" >&2; continue; }
        case $kind in
        scopes) until curl -fsS -o /dev/null -H "$auth" "http://127.0.0.1:$to/api/v1/scopes/$id" 2>/dev/null; do :; done ;;
        roles) until curl -fsS -H "$auth" "http://127.0.0.1:$to/api/v1/roles" | grep -q "\"$id\""; do :; done ;;
        esac
        t1=$(date +%s%N)
        echo $(((t1 - t0) / 1000))
    done | sort -n | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "{\"changes\": 0}"; exit }
        p50 = v[int((NR - 1) * 0.50) + 1]; p99 = v[int((NR - 1) * 0.99) + 1]
        printf "{\"changes\": %d, \"p50_ms\": %.2f, \"p99_ms\": %.2f, \"max_ms\": %.2f}\n", NR, p50 / 1000, p99 / 1000, v[NR] / 1000
    }'
}

cluster_load() {
    # cluster_load NAME NODES CHARGERS RATE DURATION: one simulator per node, each with a
    # contiguous share of the charger ids spread over every node's URL (--url A,B,C), its
    # share of the operator commands sent to every node's API at random (--api A,B,C), and
    # the CPU time of its own node watched over its steady window
    local name=$1 nodes=$2 chargers=$3 total_rate=$4 duration=$5 k urls="" apis=""
    SIM_PIDS=()
    for k in $(seq 1 "$nodes"); do
        urls+="${urls:+,}ws://127.0.0.1:$((OCPP_PORT + k))/ocpp"
        apis+="${apis:+,}http://127.0.0.1:$((API_PORT + k))"
    done
    local share=$((chargers / nodes))
    local rate
    rate=$(awk -v r="$total_rate" -v n="$nodes" 'BEGIN { printf "%.3f", r / n }')
    for k in $(seq 1 "$nodes"); do
        local args=(--url "$urls" --api "$apis" --api-token "$TOKEN"
            --chargers "$share" --first-index $(((k - 1) * share + 1)) --ramp "$CLUSTER_RAMP"
            --source-addrs 127.0.0.2-127.0.0.9
            --duration "$duration" --ocpp mixed --heartbeat 30 --commands "$rate"
            --call-timeout 60 --watch-pid "${NODE_PIDS[k]}" --report json --quiet)
        echo "+ voltgate-sim ${args[*]}" >>"$OUT/commands.txt"
        taskset -c "$SIM_CPU" "$SIM" "${args[@]}" >"$OUT/$name-sim-$k.json" 2>"$OUT/$name-sim-$k.stderr" &
        SIM_PIDS+=($!)
    done
}

wait_sims() {
    # wait_sims NAME: waits for the simulators of cluster_load and records their exit code
    local rc=0 pid
    for pid in "${SIM_PIDS[@]}"; do wait "$pid" || rc=$?; done
    SIM_PIDS=()
    stop_cpu_sampler
    echo "$1 exit $rc" >>"$OUT/exit-codes.txt"
}

start_cpu_sampler() {
    # start_cpu_sampler NAME: once a second, the CPU time used so far by each node, the
    # PostgreSQL server with its backends, the NATS server and the simulators, into
    # NAME.cpu.jsonl: where the cores go during the ramp and after it
    local name=$1 k parts=() sims
    for k in "${!NODE_PIDS[@]}"; do parts+=("node-$k=${NODE_PIDS[k]}"); done
    [ -n "$PG_DIR" ] && [ -f "$PG_DIR/data/postmaster.pid" ] &&
        parts+=("postgres=tree:$(head -1 "$PG_DIR/data/postmaster.pid")")
    [ -n "$NATS_PID" ] && parts+=("nats=$NATS_PID")
    sims=$(IFS=,; echo "${SIM_PIDS[*]}")
    parts+=("simulators=$sims")
    echo "+ cpu_sampler.py $name.cpu.jsonl ${parts[*]}" >>"$OUT/commands.txt"
    rm -f "$OUT/$name.cpu.jsonl"
    python3 "$ROOT/bench/cpu_sampler.py" "$OUT/$name.cpu.jsonl" "${parts[@]}" &
    CPU_SAMPLER_PID=$!
    CPU_SAMPLER_NAME=$name
    # and what PostgreSQL spends its time on meanwhile
    pg_sql "SELECT pg_stat_statements_reset()" >/dev/null || true
}

stop_cpu_sampler() {
    if [ -n "${CPU_SAMPLER_PID:-}" ]; then
        kill -TERM "$CPU_SAMPLER_PID" 2>/dev/null || true
        wait "$CPU_SAMPLER_PID" 2>/dev/null || true
        pg_sql "SELECT calls, round(total_exec_time) AS total_ms, round(mean_exec_time::numeric, 3) AS mean_ms, rows,
                       left(regexp_replace(query, '\s+', ' ', 'g'), 160) AS statement
                FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 25" \
            >"$OUT/$CPU_SAMPLER_NAME.pg-statements.txt" 2>&1 || true
    fi
    CPU_SAMPLER_PID=
}

scenario_cluster() {
    # The cluster path against the single-node path, all on one PostgreSQL, in three phases:
    # 1. cluster-single: one node without --cluster carrying one node's share of the load
    #    (CLUSTER_CHARGERS / CLUSTER_NODES chargers, CLUSTER_COMMAND_RATE / CLUSTER_NODES
    #    commands/s), the per-node yardstick;
    # 2. cluster: CLUSTER_NODES nodes with --cluster sharing a NATS server, the whole load
    #    spread over every node's charger URL and API, and the change propagation probe;
    # 3. cluster-failover: the same load again, and CLUSTER_KILL_AT s after every charger is
    #    online the last node is SIGKILLed: how long until the chargers it held are online on
    #    the others (from the survivors' voltgate_chargers_connected).
    cluster_preflight
    # shellcheck disable=SC2064
    trap "stop_cpu_sampler; stop_nodes; stop_nats; stop_postgres; $DEFAULT_TRAP" EXIT
    start_postgres
    start_nats
    local per_node_chargers=$((CLUSTER_CHARGERS / CLUSTER_NODES)) per_node_rate
    per_node_rate=$(awk -v r="$CLUSTER_COMMAND_RATE" -v n="$CLUSTER_NODES" 'BEGIN { printf "%.3f", r / n }')

    # 1. single node, same store
    local db
    db=$(pg_database bench_single)
    start_node 1 "$db"
    seed_estate "$((API_PORT + 1))"
    cluster_load cluster-single 1 "$per_node_chargers" "$per_node_rate" "$CLUSTER_DURATION"
    start_cpu_sampler cluster-single
    wait_sims cluster-single
    stop_nodes

    # 2. the cluster
    db=$(pg_database bench_cluster)
    local k
    start_node 1 "$db" --cluster "nats://127.0.0.1:$NATS_PORT" --node-id node-1
    seed_estate "$((API_PORT + 1))"
    for k in $(seq 2 "$CLUSTER_NODES"); do
        start_node "$k" "$db" --cluster "nats://127.0.0.1:$NATS_PORT" --node-id "node-$k"
    done
    cluster_load cluster "$CLUSTER_NODES" "$CLUSTER_CHARGERS" "$CLUSTER_COMMAND_RATE" "$CLUSTER_DURATION"
    start_cpu_sampler cluster

    # the cluster core must be there: a connected charger names the node holding it
    local probe=SIM-$(printf '%06d' 1) seen="" pid
    for _ in $(seq 1 100); do
        seen=$(curl -fsS -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$((API_PORT + 2))/api/v1/chargers/$probe" 2>/dev/null || true)
        grep -q '"node": *"' <<<"$seen" && break
        sleep 0.2
    done
    if ! grep -q '"node": *"' <<<"$seen"; then
        for pid in "${SIM_PIDS[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
        cluster_fail "no \"node\" in GET /api/v1/chargers/$probe from node 2: this build has no cluster core (presence across nodes); got: ${seen:-nothing}"
    fi
    # change propagation under the load once every charger is online (not during the
    # registration storm of the ramp), node 1 to node 2
    local all_ports=() online_after
    for k in $(seq 1 "$CLUSTER_NODES"); do all_ports+=("$((API_PORT + k))"); done
    online_after=$(wait_all_online "$CLUSTER_DURATION" "${all_ports[@]}")
    echo "cluster: all $CLUSTER_CHARGERS chargers online after ${online_after:-more than $CLUSTER_DURATION} s" >&2
    echo "+ propagation_probe: $CLUSTER_CHANGES scopes created through node 1, each then asked for through node 2" >>"$OUT/commands.txt"
    propagation_probe "$((API_PORT + 1))" "$((API_PORT + 2))" scopes >"$OUT/cluster.propagation.json"
    echo "cluster: change propagation $(cat "$OUT/cluster.propagation.json")" >&2
    echo "+ propagation_probe: $CLUSTER_CHANGES custom roles defined through node 1, each then listed through node 2" >>"$OUT/commands.txt"
    propagation_probe "$((API_PORT + 1))" "$((API_PORT + 2))" roles >"$OUT/cluster.propagation-roles.json"
    echo "cluster: rule change propagation $(cat "$OUT/cluster.propagation-roles.json")" >&2
    wait_sims cluster

    # 3. a node SIGKILLed under the same load, CLUSTER_KILL_AT s after every charger is online
    cluster_load cluster-failover "$CLUSTER_NODES" "$CLUSTER_CHARGERS" "$CLUSTER_COMMAND_RATE" \
        "$CLUSTER_DURATION"
    start_cpu_sampler cluster-failover
    online_after=$(wait_all_online "$CLUSTER_DURATION" "${all_ports[@]}")
    echo "cluster-failover: all online after ${online_after:-more than $CLUSTER_DURATION} s" >&2
    sleep "$CLUSTER_KILL_AT"
    local victim=$CLUSTER_NODES survivors=()
    for k in $(seq 1 $((CLUSTER_NODES - 1))); do survivors+=("$((API_PORT + k))"); done
    local held before after killed_at back=""
    held=$(connected_on "$((API_PORT + victim))")
    before=$(connected_on "${survivors[@]}" "$((API_PORT + victim))")
    killed_at=$(date +%s.%N)
    kill -KILL "${NODE_PIDS[victim]}"
    wait "${NODE_PIDS[victim]}" 2>/dev/null || true
    unset "NODE_PIDS[victim]"
    for _ in $(seq 1 600); do
        after=$(connected_on "${survivors[@]}")
        if [ "$after" -ge "$before" ]; then
            back=$(awk -v a="$killed_at" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
            break
        fi
        sleep 0.1
    done
    echo "{\"killed\": \"node-$victim\", \"held\": $held, \"online_before\": $before," \
        "\"online_after\": ${after:-0}, \"online_again_after_s\": ${back:-null}}" >"$OUT/cluster.failover.json"
    # the killed node's chargers lost their connections, so these simulators count errors;
    # the failover itself is judged here
    local rc=0
    for pid in "${SIM_PIDS[@]}"; do wait "$pid" || rc=$?; done
    SIM_PIDS=()
    stop_cpu_sampler
    echo "cluster-failover exit $rc" >>"$OUT/cluster.sim-exit-codes.txt"
    if [ -z "$back" ]; then
        echo "cluster-failover exit 1 (the chargers of node-$victim were not online again within 60 s)" >>"$OUT/exit-codes.txt"
    else
        echo "cluster-failover exit 0" >>"$OUT/exit-codes.txt"
        echo "cluster: node-$victim held $held chargers; all online again after ${back} s" >&2
    fi
    stop_nodes
    stop_nats
    stop_postgres
    # shellcheck disable=SC2064
    trap "$DEFAULT_TRAP" EXIT
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
        cluster) scenario_cluster ;;
        *) echo "unknown scenario $s" >&2; exit 2 ;;
    esac
done

python3 "$ROOT/bench/summarise.py" "$OUT" | tee "$OUT/summary.md"
echo "results in $OUT" >&2
if grep -qv ' exit 0$' "$OUT/exit-codes.txt"; then
    exit 1
fi
