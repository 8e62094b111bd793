#!/usr/bin/env bash
# Runs every fuzz target for SECONDS_PER_TARGET seconds (libFuzzer's -max_total_time),
# one after the other, from the checked-in corpus; fails on the first crash. The crash
# input is left in fuzz/artifacts/<target>/: minimise it, add it to
# fuzz/regressions/<target>/ and fix the bug (fuzz/README.md).
#
#   fuzz/run-ci.sh 20
set -euo pipefail

seconds="${1:?usage: fuzz/run-ci.sh SECONDS_PER_TARGET}"
cd "$(dirname "$0")"

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    cargo install --locked cargo-fuzz
fi

targets=(query_chain upstream_answer tcp_framing cluster_file config)
cargo +nightly fuzz build
for t in "${targets[@]}"; do
    # New inputs go to the first directory (not checked in); the seeds are read only.
    mkdir -p "corpus-run/$t"
    echo "== $t: ${seconds}s"
    cargo +nightly fuzz run "$t" "corpus-run/$t" "corpus/$t" -- \
        -max_total_time="$seconds" -print_final_stats=1 -max_len=4096 -timeout=10
done
