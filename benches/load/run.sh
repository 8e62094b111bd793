#!/usr/bin/env bash
# Load benchmark of clusterdns beside NSD, Knot DNS and Unbound, on loopback: the server
# pinned to core 0, dnsperf to core 1, every run bounded in time, the median of the runs
# reported as a table and as JSON. See benches/README.md.
#
# Usage: benches/load/run.sh [--quick] [--out FILE] [--runs N] [--seconds S]
#                            [--scenarios a,b,...] [--rate QPS] [--baseline-bin PATH]
#                            [--no-install] [--keep] [-- clusterdns-synth options]
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
bench="$here/bench.py"

usage() {
    cat <<'EOF'
Usage: benches/load/run.sh [options] [-- clusterdns-synth options]

  --quick            a few seconds, small cluster (clusterdns-synth --small), clusterdns
                     only, one run of 2 s per scenario; exits non-zero if clusterdns answers
                     nothing, loses more than 1% of queries, or no table/JSON is produced
  --out FILE         JSON results [benches/load/results.json; --quick: results-quick.json]
  --runs N           runs per measurement, the median is reported [3; --quick: 1]
  --seconds S        length of each dnsperf run [10; --quick: 2]
  --scenarios LIST   comma-separated subset of
                     authoritative,cache,nodelocal,latency,churn,memory
                     [all; --quick: all but cache and nodelocal]
  --rate QPS         the fixed offered rate at which authoritative and cache also measure
                     every server's CPU time per answered query [100000; --quick: 20000]
  --baseline-bin P   also run this clusterdns binary (e.g. one built from an older commit)
                     as the server `clusterdns-baseline`, beside the current one, in the
                     authoritative, cache and memory scenarios of the same run
  --no-install       do not apt-get install missing tools (fail instead)
  --keep             keep the temporary directory (configs, logs, dnsperf output)

Options after `--` go to clusterdns-synth and change the cluster (default: its defaults
with --endpoints-per-headless 5).
EOF
}

quick=0 out="" runs="" seconds="" scenarios="" install=1 keep=0 fixed_rate="" baseline_bin=""
synth_args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) quick=1 ;;
        --out) out=$2; shift ;;
        --runs) runs=$2; shift ;;
        --seconds) seconds=$2; shift ;;
        --scenarios) scenarios=$2; shift ;;
        --rate) fixed_rate=$2; shift ;;
        --baseline-bin) baseline_bin=$2; shift ;;
        --no-install) install=0 ;;
        --keep) keep=1 ;;
        -h|--help) usage; exit 0 ;;
        --) shift; synth_args=("$@"); break ;;
        *) echo "run.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
if [ "$quick" = 1 ]; then
    runs=${runs:-1} seconds=${seconds:-2}
    scenarios=${scenarios:-authoritative,latency,churn,memory}
    out=${out:-$here/results-quick.json}
    [ ${#synth_args[@]} -gt 0 ] || synth_args=(--small)
    rates=(10000)
    fixed_rate=${fixed_rate:-20000}
    peers=()
else
    runs=${runs:-3} seconds=${seconds:-10}
    scenarios=${scenarios:-authoritative,cache,nodelocal,latency,churn,memory}
    out=${out:-$here/results.json}
    [ ${#synth_args[@]} -gt 0 ] || synth_args=(--endpoints-per-headless 5)
    rates=(10000 50000)
    fixed_rate=${fixed_rate:-100000}
    peers=(nsd knot)
fi
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac
if [ -n "$baseline_bin" ]; then
    case "$baseline_bin" in /*) ;; *) baseline_bin="$PWD/$baseline_bin" ;; esac
    [ -x "$baseline_bin" ] || { echo "run.sh: --baseline-bin $baseline_bin is not an executable" >&2; exit 2; }
fi
want() { case ",$scenarios," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
for s in ${scenarios//,/ }; do
    case "$s" in authoritative|cache|nodelocal|latency|churn|memory) ;; *) echo "run.sh: unknown scenario $s" >&2; exit 2 ;; esac
done
if [ "$quick" = 1 ] && { want cache || want nodelocal; }; then
    echo "run.sh: --quick runs clusterdns only; the cache and nodelocal scenarios need Knot and Unbound" >&2
    exit 2
fi
# The nodelocal scenario compares a NodeLocal cache hit with the cluster zone's answer
# (the clusterdns of the authoritative scenario) and with Unbound's cache hit (the cache
# scenario's Unbound, forwarding to the same Knot).
uses_cache_setup() { want cache || want nodelocal; }

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf '\nrun.sh: FAILED: %s\n' "$*" >&2; exit 1; }

# ------------------------------------------------------------------ cleanup
work=$(mktemp -d /tmp/clusterdns-load.XXXXXX)
pids=()
policy_rc=""
stop_pid() { # TERM the process and its descendants, KILL what is left after 5 s
    local pid=$1 tree p
    kill -0 "$pid" 2>/dev/null || return 0
    tree=$(python3 "$bench" tree "$pid" 2>/dev/null || echo "$pid")
    for p in $tree; do kill -TERM "$p" 2>/dev/null || true; done
    for _ in $(seq 50); do
        local alive=0
        for p in $tree; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ $alive = 0 ] && break
        sleep 0.1
    done
    for p in $tree; do kill -KILL "$p" 2>/dev/null || true; done
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    local i
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do stop_pid "${pids[$i]}"; done
    [ -n "$policy_rc" ] && rm -f "$policy_rc"
    if [ "$keep" = 1 ]; then
        echo "kept $work" >&2
    else
        rm -rf "$work"
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------------ tools
need=()
command -v dnsperf >/dev/null || need+=(dnsperf)
command -v dig >/dev/null || need+=(bind9-dnsutils)
command -v taskset >/dev/null || need+=(util-linux)
if [ "$quick" = 0 ]; then
    if want authoritative || want latency || want memory; then
        command -v nsd >/dev/null || need+=(nsd)
    fi
    if want authoritative || want memory || uses_cache_setup; then
        command -v knotd >/dev/null || need+=(knot)
    fi
    if uses_cache_setup; then
        command -v unbound >/dev/null || need+=(unbound)
    fi
fi
if [ ${#need[@]} -gt 0 ]; then
    [ "$install" = 1 ] || die "missing tools (packages: ${need[*]}) and --no-install given"
    log "installing ${need[*]}"
    # Keep the packages' maintainer scripts from starting the daemons on port 53.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        policy_rc=/usr/sbin/policy-rc.d
        printf '#!/bin/sh\nexit 101\n' >"$policy_rc"
        chmod +x "$policy_rc"
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    [ -n "$policy_rc" ] && rm -f "$policy_rc" && policy_rc=""
fi
[ "$(nproc)" -ge 2 ] || die "needs 2 cores (server on core 0, dnsperf on core 1); nproc = $(nproc)"

# ------------------------------------------------------------------ build and data
log "building clusterdns (release)"
(cd "$repo" && cargo build --release --locked --quiet -p clusterdns -p clusterdns-testkit \
    --bin clusterdns --bin clusterdns-synth)
target_dir=${CARGO_TARGET_DIR:-$repo/target}
clusterdns="$target_dir/release/clusterdns"
synth="$target_dir/release/clusterdns-synth"

data="$work/data"
nqueries=100000
[ "$quick" = 1 ] && nqueries=20000
"$synth" --out "$data" --queries "$nqueries" "${synth_args[@]}" >"$work/synth.log"
cluster_desc=$(head -n1 "$work/synth.log")
log "$cluster_desc"
log "cluster.yaml: $(du -h "$data/cluster.yaml" | cut -f1)"

# From here on this shell, and whatever it starts without taskset, runs on core 1:
# the servers are started with `taskset -c 0`, the load with `taskset -c 1`.
taskset -cp 1 $$ >/dev/null

records="$work/records.jsonl"
: >"$records"
mkdir -p "$work/out"
read -r -a ports <<<"$(python3 "$bench" ports 10 | tr '\n' ' ')"
port_cd=${ports[0]} port_nsd=${ports[1]} port_knot=${ports[2]} port_unbound=${ports[3]}
port_cdfwd=${ports[4]} port_churn=${ports[5]} port_base=${ports[6]} port_basefwd=${ports[7]}
port_nl=${ports[8]} port_nlhealth=${ports[9]}

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
load_start=$(loadavg)
log "load average: $load_start"
awk '{ exit !($1 >= 1.0) }' /proc/loadavg &&
    log "WARNING: load average is above 1.0; other work on the machine will skew the numbers"

# dnsperf options: loopback, one dnsperf thread, bounded time and outstanding queries.
perf_base=(-s 127.0.0.1 -l "$seconds" -c 8 -T 1)
perf_max=(-q 500 -t 2)   # throughput: as fast as the server answers
perf_rated=(-q 2000 -t 1) # fixed offered rate (-Q): latency
# CPU per answered query: the same fixed rate (-Q) offered to every server, so that each
# does the same work at the same batch sizes and the comparison does not depend on how
# close dnsperf is to saturating its own core (see perf-notes: "Comparing at a fixed rate").
perf_fixed=(-q 500 -t 2 -Q "$fixed_rate")

# ------------------------------------------------------------------ servers
start() { # name cmd... → sets $pid; stderr to $work/name.log
    local name=$1
    shift
    taskset -c 0 "$@" >"$work/$name.log" 2>&1 &
    pid=$!
    pids+=("$pid")
}
# wait_answer NAME PORT PID QNAME EXPECT [TIMEOUT]: until `dig QNAME` prints EXPECT.
wait_answer() {
    local name=$1 port=$2 p=$3 q=$4 expect=$5 timeout=${6:-60}
    local deadline=$((SECONDS + timeout))
    while [ $SECONDS -lt $deadline ]; do
        if ! kill -0 "$p" 2>/dev/null; then
            echo "$name exited; its log:" >&2
            tail -n 15 "$work/$name.log" >&2
            return 1
        fi
        if dig +short +time=1 +tries=1 @127.0.0.1 -p "$port" $q 2>/dev/null | grep -qxF "$expect"; then
            return 0
        fi
        sleep 0.2
    done
    echo "$name did not answer '$q' with '$expect' within ${timeout}s; its log:" >&2
    tail -n 15 "$work/$name.log" >&2
    return 1
}
verify_cluster() { # name port pid: the two zones answer
    wait_answer "$1" "$2" "$3" "kube-dns.kube-system.svc.cluster.local A" 10.96.0.10 "${4:-120}" &&
        wait_answer "$1" "$2" "$3" "-x 10.96.0.10" "kube-dns.kube-system.svc.cluster.local." 10
}

# Several clusterdns instances run side by side: turn their HTTP endpoints (health,
# ready, metrics) off and the lameduck wait to 0, for the versions whose config has
# those sections (the config refuses unknown keys, so each candidate is tried first).
cd_extra="$work/clusterdns-extra.toml"
: >"$cd_extra"
for candidate in '[health]\nlisten = ""\nlameduck = 0' '[health]\nlisten = ""' \
    '[ready]\nlisten = ""' '[metrics]\nlisten = ""'; do
    section=${candidate%%]*}]
    grep -qF "$section" "$cd_extra" && continue
    printf '[source]\nsample = true\n%b\n' "$candidate" >"$work/probe.toml"
    if "$clusterdns" --config "$work/probe.toml" --validate >/dev/null 2>&1 &&
        { [ -z "$baseline_bin" ] || "$baseline_bin" --config "$work/probe.toml" --validate >/dev/null 2>&1; }; then
        printf '%b\n' "$candidate" >>"$cd_extra"
    fi
done
# cd_config FILE: append the extra sections to a clusterdns config
cd_config() { cat "$cd_extra" >>"$1"; }
# cd_cluster_config FILE PORT SOURCE [SOURCE-LINE]: a clusterdns config serving the
# generated cluster from SOURCE (a file or a folder) on one UDP worker
cd_cluster_config() {
    cat >"$1" <<EOF
listen = ["127.0.0.1:$2"]
[server]
udp_workers = 1
[kubernetes]
zones = ["cluster.local", "10.in-addr.arpa"]
ttl = 5
[source]
file = "$3"
${4:-}
EOF
    cd_config "$1"
}
# first_error LOG: the first line of a server log that looks like an error
first_error() { grep -m1 -iE 'error|cannot|failed|clusterdns:' "$1" 2>/dev/null | cut -c1-160 || true; }

servers=()
declare -A pid_of port_of
if want authoritative || want latency || want memory || want nodelocal; then
    cd_cluster_config "$work/clusterdns.toml" "$port_cd" "$data/cluster.yaml"
    log "starting clusterdns on 127.0.0.1:$port_cd"
    RUST_LOG=warn start clusterdns "$clusterdns" --config "$work/clusterdns.toml"
    pid_of[clusterdns]=$pid port_of[clusterdns]=$port_cd
    # The cache scenario reuses the name `clusterdns` for its forwarder.
    pid_of[clusterdns-zone]=$pid port_of[clusterdns-zone]=$port_cd
    verify_cluster clusterdns "$port_cd" "$pid" || die "clusterdns does not answer"
    servers+=(clusterdns)
    if [ -n "$baseline_bin" ]; then
        cd_cluster_config "$work/clusterdns-baseline.toml" "$port_base" "$data/cluster.yaml"
        log "starting clusterdns-baseline ($baseline_bin) on 127.0.0.1:$port_base"
        RUST_LOG=warn start clusterdns-baseline "$baseline_bin" --config "$work/clusterdns-baseline.toml"
        pid_of[clusterdns-baseline]=$pid port_of[clusterdns-baseline]=$port_base
        verify_cluster clusterdns-baseline "$port_base" "$pid" || die "clusterdns-baseline does not answer"
        servers+=(clusterdns-baseline)
    fi
fi

if [ ${#peers[@]} -gt 0 ] && { want authoritative || want latency || want memory; }; then
    mkdir -p "$work/nsd"
    cat >"$work/nsd/nsd.conf" <<EOF
server:
    ip-address: 127.0.0.1@$port_nsd
    port: $port_nsd
    do-ip6: no
    server-count: 1
    username: ""
    chroot: ""
    zonesdir: "$data"
    pidfile: "$work/nsd/nsd.pid"
    zonelistfile: "$work/nsd/zone.list"
    xfrdfile: "$work/nsd/xfrd.state"
    xfrdir: "$work/nsd"
    database: ""
    logfile: "$work/nsd.log"
    verbosity: 0
    rrl-ratelimit: 0
    rrl-whitelist-ratelimit: 0
    minimal-responses: yes
remote-control:
    control-enable: no
zone:
    name: cluster.local
    zonefile: cluster.local.zone
zone:
    name: 10.in-addr.arpa
    zonefile: 10.in-addr.arpa.zone
EOF
    log "starting NSD on 127.0.0.1:$port_nsd"
    start nsd nsd -d -c "$work/nsd/nsd.conf"
    pid_of[nsd]=$pid port_of[nsd]=$port_nsd
    verify_cluster nsd "$port_nsd" "$pid" || die "NSD does not answer"
    servers+=(nsd)
fi

knot_zones="cluster.local 10.in-addr.arpa"
if [ "$quick" = 0 ] && { want authoritative || want memory || uses_cache_setup; }; then
    mkdir -p "$work/knot/run" "$work/knot/db" "$work/knot/zones"
    ln -f "$data/cluster.local.zone" "$data/10.in-addr.arpa.zone" "$work/knot/zones/" 2>/dev/null ||
        cp "$data/cluster.local.zone" "$data/10.in-addr.arpa.zone" "$work/knot/zones/"
    if uses_cache_setup; then
        python3 "$bench" example-zone --zone "$work/knot/zones/example.org.zone" \
            --queries "$data/cache-queries.txt" --names 10000
        knot_zones="$knot_zones example.org"
    fi
    {
        cat <<EOF
server:
    rundir: "$work/knot/run"
    listen: 127.0.0.1@$port_knot
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
    user: root:root
database:
    storage: "$work/knot/db"
log:
  - target: stderr
    any: warning
template:
  - id: default
    storage: "$work/knot/zones"
    file: "%s.zone"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
    semantic-checks: off
zone:
EOF
        for z in $knot_zones; do echo "  - domain: $z"; done
    } >"$work/knot/knot.conf"
    log "starting Knot DNS on 127.0.0.1:$port_knot"
    start knot knotd -c "$work/knot/knot.conf"
    pid_of[knot]=$pid port_of[knot]=$port_knot
    verify_cluster knot "$port_knot" "$pid" || die "Knot DNS does not answer"
    if uses_cache_setup; then
        wait_answer knot "$port_knot" "$pid" "host-00000.example.org A" 198.18.1.1 30 ||
            die "Knot DNS does not answer example.org"
    fi
    if want authoritative || want memory; then servers+=(knot); fi
fi

record() { python3 "$bench" "$@"; }

# ------------------------------------------------------------------ memory
if want memory; then
    log "memory: resident size with the data loaded"
    for s in "${servers[@]}"; do
        record mem --record "$records" --scenario memory --server "$s" --pid "${pid_of[$s]}"
    done
fi

# ------------------------------------------------------------------ authoritative
perf() { # scenario variant server run [--latency --rate R] -- dnsperf args
    local scenario=$1 variant=$2 server=$3 run=$4
    shift 4
    record dnsperf --record "$records" --scenario "$scenario" --variant "$variant" \
        --server "$server" --run "$run" --pid "${pid_of[$server]}" --tmp "$work/out" "$@" ||
        log "WARNING: $scenario $server run $run failed"
}
if want authoritative; then
    log "authoritative: ${servers[*]} × $runs runs of ${seconds}s, cluster query mix"
    for run in $(seq "$runs"); do
        for s in "${servers[@]}"; do
            perf authoritative "" "$s" "$run" -- "${perf_base[@]}" "${perf_max[@]}" \
                -p "${port_of[$s]}" -d "$data/queries.txt"
        done
    done
    log "authoritative: CPU per answered query at $fixed_rate QPS offered, ${servers[*]} × $runs runs"
    for run in $(seq "$runs"); do
        for s in "${servers[@]}"; do
            perf authoritative "$fixed_rate" "$s" "$run" --rate "$fixed_rate" -- \
                "${perf_base[@]}" "${perf_fixed[@]}" -p "${port_of[$s]}" -d "$data/queries.txt"
        done
    done
fi

# ------------------------------------------------------------------ latency
if want latency; then
    lat_servers=(clusterdns)
    [ -n "${pid_of[nsd]:-}" ] && lat_servers+=(nsd)
    log "latency: ${lat_servers[*]} at ${rates[*]} QPS × $runs runs of ${seconds}s"
    for rate in "${rates[@]}"; do
        for run in $(seq "$runs"); do
            for s in "${lat_servers[@]}"; do
                perf latency "$rate" "$s" "$run" --latency --rate "$rate" -- \
                    "${perf_base[@]}" "${perf_rated[@]}" -Q "$rate" \
                    -p "${port_of[$s]}" -d "$data/queries.txt"
            done
        done
    done
fi

# ------------------------------------------------------------------ cache
if uses_cache_setup; then
    cat >"$work/unbound.conf" <<EOF
server:
    interface: 127.0.0.1@$port_unbound
    port: $port_unbound
    do-ip6: no
    num-threads: 1
    do-daemonize: no
    username: ""
    chroot: ""
    directory: "$work"
    pidfile: "$work/unbound.pid"
    use-syslog: no
    logfile: ""
    verbosity: 0
    module-config: "iterator"
    do-not-query-localhost: no
    access-control: 127.0.0.0/8 allow
    msg-cache-size: 64m
    rrset-cache-size: 128m
    prefetch: no
    qname-minimisation: no
    minimal-responses: yes
remote-control:
    control-enable: no
forward-zone:
    name: "example.org"
    forward-addr: 127.0.0.1@$port_knot
EOF
    log "starting Unbound on 127.0.0.1:$port_unbound (forwarding example.org to Knot)"
    start unbound unbound -d -c "$work/unbound.conf"
    pid_of[unbound]=$pid port_of[unbound]=$port_unbound
    wait_answer unbound "$port_unbound" "$pid" "host-00000.example.org A" 198.18.1.1 30 ||
        die "Unbound does not answer"
fi
if want cache; then
    cache_servers=()

    # clusterdns's forwarder: run the scenario only if the config accepts a [forward] table.
    "$synth" --out "$work/small" --small --queries 10 >/dev/null
    cat >"$work/clusterdns-fwd.toml" <<EOF
listen = ["127.0.0.1:$port_cdfwd"]
[server]
udp_workers = 1
[source]
file = "$work/small/cluster.yaml"
[forward]
upstreams = ["127.0.0.1:$port_knot"]
EOF
    cd_config "$work/clusterdns-fwd.toml"
    if "$clusterdns" --config "$work/clusterdns-fwd.toml" --validate >"$work/fwd-validate.log" 2>&1; then
        log "starting clusterdns with [forward] on 127.0.0.1:$port_cdfwd"
        RUST_LOG=warn start clusterdns-fwd "$clusterdns" --config "$work/clusterdns-fwd.toml"
        pid_of[clusterdns]=$pid port_of[clusterdns]=$port_cdfwd
        if wait_answer clusterdns-fwd "$port_cdfwd" "$pid" "host-00000.example.org A" 198.18.1.1 30; then
            cache_servers+=(clusterdns)
        else
            record note --record "$records" --scenario cache --server clusterdns --status failed \
                --reason "clusterdns accepts [forward] but does not answer example.org names ($(first_error "$work/clusterdns-fwd.log"))"
            log "FAILED: clusterdns (forwarding) does not answer example.org names"
        fi
    else
        record note --record "$records" --scenario cache --server clusterdns \
            --reason "clusterdns has no forwarder yet"
        log "cache: skipped for clusterdns: clusterdns has no forwarder yet ($(tail -n1 "$work/fwd-validate.log"))"
    fi
    if [ -n "$baseline_bin" ]; then
        sed "s/127.0.0.1:$port_cdfwd/127.0.0.1:$port_basefwd/" "$work/clusterdns-fwd.toml" \
            >"$work/clusterdns-basefwd.toml"
        log "starting clusterdns-baseline with [forward] on 127.0.0.1:$port_basefwd"
        RUST_LOG=warn start clusterdns-basefwd "$baseline_bin" --config "$work/clusterdns-basefwd.toml"
        pid_of[clusterdns-baseline]=$pid port_of[clusterdns-baseline]=$port_basefwd
        wait_answer clusterdns-basefwd "$port_basefwd" "$pid" "host-00000.example.org A" 198.18.1.1 30 ||
            die "clusterdns-baseline (forwarding) does not answer example.org names"
        cache_servers+=(clusterdns-baseline)
    fi
    cache_servers+=(unbound)

    for s in "${cache_servers[@]}"; do
        log "cache: warming $s (one pass over the 10,000 names)"
        taskset -c 1 dnsperf -s 127.0.0.1 -p "${port_of[$s]}" -d "$data/cache-queries.txt" -n 1 \
            -l 30 -Q 5000 -c 8 -T 1 -q 500 -t 2 >"$work/out/warm-$s.txt" 2>&1 ||
            log "WARNING: warm-up of $s failed"
    done
    log "cache: ${cache_servers[*]} × $runs runs of ${seconds}s, example.org names, cache hits"
    for run in $(seq "$runs"); do
        for s in "${cache_servers[@]}"; do
            perf cache "" "$s" "$run" -- "${perf_base[@]}" "${perf_max[@]}" \
                -p "${port_of[$s]}" -d "$data/cache-queries.txt"
        done
    done
    log "cache: CPU per answered query at $fixed_rate QPS offered, ${cache_servers[*]} × $runs runs"
    for run in $(seq "$runs"); do
        for s in "${cache_servers[@]}"; do
            perf cache "$fixed_rate" "$s" "$run" --rate "$fixed_rate" -- "${perf_base[@]}" \
                "${perf_fixed[@]}" -p "${port_of[$s]}" -d "$data/cache-queries.txt"
        done
    done
    for s in "${cache_servers[@]}"; do
        record mem --record "$records" --scenario memory --variant cache --server "$s" --pid "${pid_of[$s]}"
    done
fi

# ------------------------------------------------------------------ nodelocal
# clusterdns in NodeLocal mode on loopback (no link, no rules: those are the netns
# tests' business): the cluster zone to the clusterdns above, `.` to Knot. Its cache hits
# on the example.org names against Unbound's on the same names, and against the zone
# path of the clusterdns above, at the same fixed rate; its memory after 10,000 answers.
if want nodelocal; then
    cat >"$work/nodelocal.toml" <<EOF
[server]
udp_workers = 1
[nodelocal]
addresses = ["127.0.0.1"]
dns_port = $port_nl
setup_interface = false
setup_rules = false
cluster_dns = ["127.0.0.1:$port_cd"]
kube_dns_dir = "$work/kube-dns"
health_listen = "127.0.0.1:$port_nlhealth"
metrics_listen = ""
[forward]
upstreams = ["127.0.0.1:$port_knot"]
[health]
lameduck = 0
EOF
    log "starting clusterdns in NodeLocal mode on 127.0.0.1:$port_nl"
    RUST_LOG=warn start clusterdns-nodelocal "$clusterdns" --config "$work/nodelocal.toml"
    pid_of[clusterdns-nodelocal]=$pid port_of[clusterdns-nodelocal]=$port_nl
    wait_answer clusterdns-nodelocal "$port_nl" "$pid" "host-00000.example.org A" 198.18.1.1 30 ||
        die "clusterdns (NodeLocal mode) does not answer example.org names"
    wait_answer clusterdns-nodelocal "$port_nl" "$pid" "kube-dns.kube-system.svc.cluster.local A" 10.96.0.10 30 ||
        die "clusterdns (NodeLocal mode) does not answer cluster names"
    nl_servers=(clusterdns-nodelocal unbound)
    for s in "${nl_servers[@]}"; do
        log "nodelocal: warming $s (one pass over the 10,000 names)"
        taskset -c 1 dnsperf -s 127.0.0.1 -p "${port_of[$s]}" -d "$data/cache-queries.txt" -n 1 \
            -l 30 -Q 5000 -c 8 -T 1 -q 500 -t 2 >"$work/out/nl-warm-$s.txt" 2>&1 ||
            log "WARNING: warm-up of $s failed"
    done
    record mem --record "$records" --scenario memory --variant nodelocal-10k \
        --server clusterdns-nodelocal --pid "${pid_of[clusterdns-nodelocal]}"
    log "nodelocal: CPU per answered query at $fixed_rate QPS offered (NodeLocal and Unbound cache hits, the zone path) × $runs runs"
    for run in $(seq "$runs"); do
        for s in "${nl_servers[@]}"; do
            perf nodelocal "$fixed_rate" "$s" "$run" --rate "$fixed_rate" -- "${perf_base[@]}" \
                "${perf_fixed[@]}" -p "${port_of[$s]}" -d "$data/cache-queries.txt"
        done
        perf nodelocal "$fixed_rate" clusterdns-zone "$run" --rate "$fixed_rate" -- "${perf_base[@]}" \
            "${perf_fixed[@]}" -p "${port_of[clusterdns-zone]}" -d "$data/queries.txt"
    done
fi

# ------------------------------------------------------------------ churn
if want churn; then
    churn_dir="$work/churn"
    mkdir -p "$churn_dir"
    ln "$data/cluster.yaml" "$churn_dir/cluster.yaml" 2>/dev/null || cp "$data/cluster.yaml" "$churn_dir/"
    python3 "$bench" churn-file --dir "$churn_dir" --gen 0 --services 50
    cd_cluster_config "$work/clusterdns-churn.toml" "$port_churn" "$churn_dir" "poll_interval_ms = 100"
    log "churn: starting clusterdns on the folder $churn_dir (big cluster.yaml + churn.yaml)"
    RUST_LOG=warn start clusterdns-churn "$clusterdns" --config "$work/clusterdns-churn.toml"
    pid_churn=$pid
    churn_ok=0
    if verify_cluster clusterdns-churn "$port_churn" "$pid_churn" 120 2>"$work/churn-verify.log"; then
        if wait_answer clusterdns-churn "$port_churn" "$pid_churn" "churn-000.churn.svc.cluster.local A" 10.100.0.1 15; then
            churn_ok=1
        else
            record note --record "$records" --scenario churn --server clusterdns --status failed \
                --reason "clusterdns serves cluster.yaml from the folder but not churn.yaml"
            log "FAILED: churn: clusterdns does not serve churn.yaml from the folder"
        fi
    elif grep -qiE 'is a directory|os error 21' "$work/clusterdns-churn.log"; then
        # A clusterdns that reads the folder as a file: no folder source yet.
        record note --record "$records" --scenario churn --server clusterdns \
            --reason "clusterdns has no folder source yet ($(first_error "$work/clusterdns-churn.log"))"
        log "churn: skipped: clusterdns does not serve a folder"
        stop_pid "$pid_churn"
    else
        record note --record "$records" --scenario churn --server clusterdns --status failed \
            --reason "clusterdns on a folder does not answer ($(first_error "$work/clusterdns-churn.log"))"
        log "FAILED: churn: clusterdns on a folder does not answer:"
        cat "$work/churn-verify.log" >&2
        stop_pid "$pid_churn"
    fi
    if [ "$churn_ok" = 1 ]; then
        pid_of[clusterdns]=$pid_churn
        gen=1
        log "churn: $runs × (steady run, run with 50 services re-addressed every 100 ms) of ${seconds}s"
        for run in $(seq "$runs"); do
            perf churn steady clusterdns "$run" -- "${perf_base[@]}" "${perf_max[@]}" \
                -p "$port_churn" -d "$data/queries.txt"
            python3 "$bench" churn --record "$records" --run "$run" --dir "$churn_dir" \
                --port "$port_churn" --seconds "$seconds" --period 0.1 --services 50 \
                --first-gen "$gen" >"$work/churn-gen" &
            writer=$!
            pids+=("$writer")
            perf churn churn clusterdns "$run" -- "${perf_base[@]}" "${perf_max[@]}" \
                -p "$port_churn" -d "$data/queries.txt"
            wait "$writer" || log "WARNING: churn writer failed"
            gen=$(($(tail -n1 "$work/churn-gen") + 1))
        done
    fi
fi

# ------------------------------------------------------------------ report
versions=$(
    printf 'dnsperf %s' "$(dnsperf -h 2>&1 | sed -n 's/^Version //p' | head -1)"
    command -v nsd >/dev/null && printf '; NSD %s' "$(nsd -v 2>&1 | head -1 | awk '{print $3}')"
    command -v knotd >/dev/null && printf '; Knot DNS %s' "$(knotd -V 2>&1 | awk '{print $NF}')"
    command -v unbound >/dev/null && printf '; Unbound %s' "$(unbound -V 2>&1 | sed -n 's/^Version //p')"
    true
)
commit=$(cd "$repo" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
[ -n "$(cd "$repo" && git status --porcelain --untracked-files=no -- src Cargo.toml Cargo.lock 2>/dev/null)" ] && commit="$commit+dirty"
meta=$(
    MODE=$([ "$quick" = 1 ] && echo quick || echo full) RUNS=$runs SECONDS_=$seconds \
    CLUSTER="$cluster_desc" SYNTH="${synth_args[*]}" LOAD_START="$load_start" LOAD_END="$(loadavg)" \
    VERSIONS="$versions" COMMIT="$commit" SCENARIOS="$scenarios" \
    PERF_MAX="dnsperf ${perf_base[*]} ${perf_max[*]}" PERF_RATED="dnsperf ${perf_base[*]} ${perf_rated[*]} -Q RATE -v" \
    PERF_FIXED="dnsperf ${perf_base[*]} ${perf_fixed[*]}" BASELINE="$baseline_bin" \
    python3 - <<'EOF'
import json, os, platform, datetime
model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
e = os.environ
print(json.dumps({
    "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
    "mode": e["MODE"], "runs": int(e["RUNS"]), "seconds": float(e["SECONDS_"]),
    "scenarios": e["SCENARIOS"].split(","),
    "cluster": e["CLUSTER"], "synth_args": e["SYNTH"],
    "machine": {"nproc": os.cpu_count(), "cpu": model, "kernel": platform.release()},
    "load_average_start": e["LOAD_START"], "load_average_end": e["LOAD_END"],
    "versions": e["VERSIONS"], "clusterdns_commit": e["COMMIT"],
    "dnsperf_throughput": e["PERF_MAX"], "dnsperf_latency": e["PERF_RATED"],
    "dnsperf_cpu_per_query": e["PERF_FIXED"], "baseline_bin": e["BASELINE"] or None,
    "pinning": "server: taskset -c 0; dnsperf and the harness: taskset -c 1",
}))
EOF
)
log "load average at the end: $(loadavg)"
check=()
[ "$quick" = 1 ] && check=(--check)
rc=0
python3 "$bench" report --records "$records" --json "$out" --meta "$meta" "${check[@]}" || rc=$?
[ -s "$out" ] || die "no JSON written to $out"
[ $rc = 0 ] || die "see PROBLEMS above"
