#!/usr/bin/env bash
# Runs every fuzz target for a bounded time and prints libFuzzer's final stats line for each.
# Usage: fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]   (default 120 s, all targets)
# Needs a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`). A crash stops the run
# and leaves its input in fuzz/artifacts/TARGET/; turn it into a regression test.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-120}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(frame validate preset api_body)
fi
mkdir -p corpus/preset
cp -n ../crates/voltgate-policy/presets/*.toml corpus/preset/ 2>/dev/null || true
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target"
    log="$(mktemp)"
    cargo +nightly fuzz run "$target" "corpus/$target" -- \
        -max_total_time="$seconds" -print_final_stats=1 2>"$log" || {
        tail -40 "$log" >&2
        echo "fuzz target $target failed" >&2
        exit 1
    }
    runs="$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}')"
    echo "$target: ${seconds}s, ${runs:-?} runs, $(( ${runs:-0} / seconds )) execs/s"
    rm -f "$log"
done
