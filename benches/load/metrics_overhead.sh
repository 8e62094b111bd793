#!/usr/bin/env bash
# What counting queries in the metrics costs under load: the same clusterdns on the
# issue's default cluster with /metrics off (no counting) and on (every query counted),
# each pinned to core 0 with dnsperf on core 1, runs alternating, median of N.
#
# Usage: benches/load/metrics_overhead.sh [RUNS] [SECONDS]   (default 3 × 10 s)
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-3}
secs=${2:-10}
cargo build --release --locked --quiet --bin clusterdns --bin clusterdns-synth
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
"${CARGO_TARGET_DIR:-target}"/release/clusterdns-synth --out "$work" --endpoints-per-headless 5 --queries 100000 >/dev/null
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
start() { # name metrics-listen: starts it; sets $port and appends to $pids
    port=$(free_port)
    cat >"$work/$1.toml" <<EOT
listen = ["127.0.0.1:$port"]
[server]
udp_workers = 1
[kubernetes]
zones = ["cluster.local", "10.in-addr.arpa"]
[source]
file = "$work/cluster.yaml"
[forward]
upstreams = []
[health]
listen = ""
lameduck = 0
[ready]
listen = ""
[metrics]
listen = "$2"
EOT
    RUST_LOG=warn taskset -c 0 "${CARGO_TARGET_DIR:-target}"/release/clusterdns --config "$work/$1.toml" >/dev/null 2>"$work/$1.log" &
    pids+=($!)
    for _ in $(seq 1 200); do
        dig +short +time=1 +tries=1 @127.0.0.1 -p "$port" kube-dns.kube-system.svc.cluster.local | grep -q 10.96.0.10 && break
        sleep 0.1
    done
}
start off ""
off=$port
start on "127.0.0.1:$(free_port)"
on=$port
qps() { # port → per-server-core QPS of one run
    local pid=$1 port=$2
    local before after
    before=$(awk '{print $14+$15}' /proc/"$pid"/stat)
    local out; out=$(taskset -c 1 dnsperf -s 127.0.0.1 -p "$port" -d "$work/queries.txt" -l "$secs" -c 8 -T 1 -q 500 -t 2 2>/dev/null)
    after=$(awk '{print $14+$15}' /proc/"$pid"/stat)
    local q; q=$(awk '/Queries per second/ {print $4}' <<<"$out")
    python3 -c "print(round($q / max(($after - $before) / $(getconf CLK_TCK) / $secs, 1e-9)))"
}
declare -a r_off r_on
for i in $(seq 1 "$runs"); do
    r_off+=("$(qps "${pids[0]}" "$off")")
    r_on+=("$(qps "${pids[1]}" "$on")")
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
m_off=$(median "${r_off[@]}")
m_on=$(median "${r_on[@]}")
echo "QPS per server core, metrics off: ${r_off[*]} (median $m_off)"
echo "QPS per server core, metrics on:  ${r_on[*]} (median $m_on)"
python3 -c "print(f'metrics on ÷ off: {$m_on / $m_off:.3f}')"
