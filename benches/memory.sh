#!/usr/bin/env bash
# Resident memory of the whole clusterdns process holding the generated zone of the
# issue: 10,000 services in 100 namespaces, 1,000 headless services × 20 endpoints,
# 50,000 pods (add args to change it, e.g. `--pods 150000`).
#
# Measures VmRSS (resident now) and VmHWM (peak) from /proc/<pid>/status once the
# server answers and has settled, i.e. with the zone loaded and the load's garbage freed.
#
# Usage: benches/memory.sh [clusterdns-synth args…]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin clusterdns --bin clusterdns-synth
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
"${CARGO_TARGET_DIR:-target}"/release/clusterdns-synth --out "$work" --queries 10 "$@" >/dev/null
port=$((20000 + RANDOM % 20000))
"${CARGO_TARGET_DIR:-target}"/release/clusterdns --cluster-file "$work/cluster.yaml" --listen "127.0.0.1:$port" 2>"$work/log" &
pid=$!
for _ in $(seq 1 300); do
    if dig +short +time=1 +tries=1 @127.0.0.1 -p "$port" kube-dns.kube-system.svc.cluster.local | grep -q 10.96.0.10; then
        break
    fi
    sleep 0.1
done
# Steady state: jemalloc hands freed pages (the parsed file's text) back to the
# system within a second or two of the load.
sleep 3
rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
hwm=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
echo "cluster file: $(du -h "$work/cluster.yaml" | cut -f1)"
echo "clusterdns resident: $((rss / 1024)) MB (peak while loading: $((hwm / 1024)) MB)"
