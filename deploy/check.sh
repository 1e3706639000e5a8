#!/usr/bin/env bash
# Checks the deployment assets with the tools that understand them:
#   - promtool: the alert rules and their unit tests, and the Prometheus configuration;
#   - systemd-analyze verify: the systemd unit (any warning fails the check).
#
# Needs Debian's `prometheus` package (promtool) and `systemd` (systemd-analyze). The unit's
# ExecStart must name an executable that exists, so the unit is verified with ExecStart pointed
# at a built `voltgate`: $VOLTGATE_BIN, else target/{debug,release}/voltgate (under
# $CARGO_TARGET_DIR when set). When systemd-analyze is missing, that check is skipped with a
# note, except under CI (CI set and not "false"), where it fails; a missing promtool fails.
set -euo pipefail

deploy="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$deploy")"
failed=0

fail() {
    echo "check.sh: FAILED: $*" >&2
    failed=1
}

if command -v promtool >/dev/null 2>&1; then
    (cd "$deploy/prometheus" && promtool check rules alerts.yaml) || fail "promtool check rules"
    (cd "$deploy/prometheus" && promtool test rules alerts_test.yaml) || fail "promtool test rules"
    (cd "$deploy/prometheus" && promtool check config prometheus.yml) || fail "promtool check config"
else
    fail "promtool not found (apt-get install prometheus)"
fi

find_voltgate() {
    if [[ -n "${VOLTGATE_BIN:-}" ]]; then
        echo "$VOLTGATE_BIN"
        return
    fi
    local target="${CARGO_TARGET_DIR:-$root/target}"
    for candidate in "$target/debug/voltgate" "$target/release/voltgate"; do
        if [[ -x "$candidate" ]]; then
            echo "$candidate"
            return
        fi
    done
}

unit="$deploy/systemd/voltgate.service"
if command -v systemd-analyze >/dev/null 2>&1; then
    binary="$(find_voltgate)"
    if [[ -z "$binary" || ! -x "$binary" ]]; then
        fail "no built voltgate to verify the unit with (set VOLTGATE_BIN or build it first)"
    elif ! grep -qx 'ExecStart=/usr/local/bin/voltgate' "$unit"; then
        fail "$unit must start /usr/local/bin/voltgate"
    else
        scratch="$(mktemp -d)"
        trap 'rm -rf "$scratch"' EXIT
        sed "s#^ExecStart=/usr/local/bin/voltgate\$#ExecStart=$binary#" "$unit" \
            >"$scratch/voltgate.service"
        echo "Verifying $unit"
        if ! report="$(systemd-analyze verify "$scratch/voltgate.service" 2>&1)"; then
            echo "$report" >&2
            fail "systemd-analyze verify"
        elif [[ -n "$report" ]]; then
            echo "$report" >&2
            fail "systemd-analyze verify reported problems"
        else
            echo "  SUCCESS"
        fi
    fi
elif [[ -n "${CI:-}" && "${CI}" != "false" ]]; then
    fail "systemd-analyze not found under CI (apt-get install systemd); the unit cannot be verified"
else
    echo "check.sh: NOTE: systemd-analyze not found (apt-get install systemd); the unit was not verified"
fi

if [[ "$failed" != 0 ]]; then
    exit 1
fi
echo "check.sh: all deployment checks passed"
