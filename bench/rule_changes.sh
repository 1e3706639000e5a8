#!/usr/bin/env bash
# What rule changes cost one node that holds many chargers with local lists.
#
#   bench/rule_changes.sh [LISTS]      LISTS: true (default) or false (--local-auth-lists)
#
# Starts one gateway (SQLite in a throwaway folder, pinned to CPU 0) and one simulator
# (CPU 1) with CHARGERS (14000) auto-registered chargers, then defines CHANGES (100) custom
# roles through the API one after another (PAUSE, 0.15 s, apart) and prints the gateway's
# CPU time while they were made, and for as long again afterwards. Build the release
# binaries first (bench/run.sh does; or cargo build --release -p voltgate -p voltgate-sim).
# Environment: CHARGERS, CHANGES, PAUSE, OCPP_PORT (19701), API_PORT (19702),
# CARGO_TARGET_DIR (target).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
LISTS=${1:-true}
CHARGERS=${CHARGERS:-14000}
CHANGES=${CHANGES:-100}
PAUSE=${PAUSE:-0.15}
OCPP_PORT=${OCPP_PORT:-19701}
API_PORT=${API_PORT:-19702}
TOKEN=bench-admin-token-rules
API="http://127.0.0.1:$API_PORT"
WORK=$(mktemp -d)
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

cleanup() {
    kill "${SIM_PID:-}" "${GW_PID:-}" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

VOLTGATE_LOG=warn taskset -c 0 "$TARGET/release/voltgate" --db "sqlite://$WORK/rules.db" \
    --ocpp-listen "127.0.0.1:$OCPP_PORT" --api-listen "127.0.0.1:$API_PORT" \
    --admin-token "$TOKEN" --auto-register bench --auto-register-trusted \
    --auto-register-address-burst 1000000 --auto-register-total-burst 1000000 \
    --heartbeat-interval 60 --local-auth-lists "$LISTS" >"$WORK/gateway.log" 2>&1 &
GW_PID=$!
until curl -fs -o /dev/null "$API/healthz"; do
    kill -0 "$GW_PID" 2>/dev/null || { echo "the gateway did not start:" >&2; cat "$WORK/gateway.log" >&2; exit 1; }
    sleep 0.1
done
curl -fsS -o /dev/null -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -d '{"id":"bench","kind":"site","parent":"root"}' "$API/api/v1/scopes"

taskset -c 1 "$TARGET/release/voltgate-sim" --url "ws://127.0.0.1:$OCPP_PORT/ocpp" \
    --chargers "$CHARGERS" --ramp 2000 --source-addrs 127.0.0.2-127.0.0.9 \
    --duration 600 --ocpp mixed --heartbeat 60 --report json --quiet \
    >"$WORK/sim.json" 2>"$WORK/sim.err" &
SIM_PID=$!
# Every charger connected and booted, and the first lists sent, before the changes start.
sleep $((CHARGERS / 2000 + 15))

before=$(cpu_ticks "$GW_PID")
started=$(date +%s%N)
for i in $(seq 1 "$CHANGES"); do
    curl -fsS -o /dev/null -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
        -d "{\"id\":\"rule-$i\",\"permissions\":[\"charge-at-sites\"]}" "$API/api/v1/roles"
    sleep "$PAUSE"
done
during=$(($(cpu_ticks "$GW_PID") - before))
took_ms=$((($(date +%s%N) - started) / 1000000))
sleep "$((took_ms / 1000 + 1))"
after=$(($(cpu_ticks "$GW_PID") - before - during))
hz=$(getconf CLK_TCK)
echo "local lists $LISTS, $CHARGERS chargers: $CHANGES custom roles defined in $took_ms ms;" \
    "gateway CPU $(awk -v t="$during" -v hz="$hz" 'BEGIN { printf "%.2f", t / hz }') s while they were made," \
    "$(awk -v t="$after" -v hz="$hz" 'BEGIN { printf "%.2f", t / hz }') s as long again afterwards"
