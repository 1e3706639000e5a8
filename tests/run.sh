#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what the suite needs beside Rust (the
# deployment checkers, and the third-party OCPP implementation the interoperability tests use:
# the Python `ocpp` package, into a virtualenv under target/), then runs every Rust test in the
# workspace, the load tests last and one at a time.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

# Tools the deployment checks use: promtool (Debian's prometheus package), systemd-analyze, sqlite3;
# a headless browser for the API explorer's test (chromium); haproxy; and the PostgreSQL server the store
# and end-to-end tests start a throwaway cluster of (postgresql; Debian keeps its binaries off
# PATH, in /usr/lib/postgresql/VERSION/bin).
missing=()
command -v promtool >/dev/null || missing+=(prometheus)
command -v systemd-analyze >/dev/null || missing+=(systemd)
command -v sqlite3 >/dev/null || missing+=(sqlite3)
command -v chromium >/dev/null || missing+=(chromium)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
# HAProxy: the cluster's load balancer configuration (deploy/haproxy/) is checked and run.
command -v haproxy >/dev/null || missing+=(haproxy)
# NATS: the cluster tests start a throwaway server.
command -v nats-server >/dev/null || missing+=(nats-server)
if [ ${#missing[@]} -gt 0 ]; then
    if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
        echo "tests/run.sh: please install ${missing[*]} (Debian package names)" >&2
        exit 1
    fi
fi

venv="$root/target/test-python"
if ! "$venv/bin/python" -c 'import ocpp, websockets' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'ocpp==2.1.0' 'websockets>=13'
fi
export VOLTGATE_TEST_PYTHON="$venv/bin/python"

# The fuzz targets are their own workspace (cargo-fuzz needs nightly to link them); a stable
# `cargo check` of them, in the shared target directory, keeps them compiling with the code
# they drive. --locked: their lock file must follow the workspace's.
cargo check --quiet --locked --manifest-path fuzz/Cargo.toml --target-dir "${CARGO_TARGET_DIR:-$root/target}" --bins

# Arguments are cargo's (e.g. --release), not the test harness's.
cargo test --workspace "$@"
# The load tests (tests/load/) each fill the machine: after everything else, one at a time.
cargo test --workspace --test load "$@" -- --test-threads=1
