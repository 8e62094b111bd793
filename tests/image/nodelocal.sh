#!/usr/bin/env bash
# The NodeLocal image test, with no registry: builds an image FROM scratch holding what
# the Dockerfile's `nodelocal` target carries — the release binary, `nft`,
# `xtables-nft-multi` and `xtables-legacy-multi` with their iptables*/ip6tables* links,
# the xtables extension modules, and exactly the shared libraries `ldd` names for all of
# them — and runs it the way the DaemonSet in deploy/nodelocal does: root inside (as
# node-cache; NET_ADMIN for a non-root uid would need file capabilities on every tool),
# every capability dropped but NET_ADMIN, NET_RAW and NET_BIND_SERVICE, no_new_privs
# (allowPrivilegeEscalation: false), read-only root filesystem, the config mounted
# read-only and /run/xtables.lock mounted as the hostPath is. It runs in a network
# namespace of its own (--network none) with, beside it in that namespace (a second
# container joined to it, as containers of one pod), a clusterdns serving the sample
# cluster on 127.0.0.1:5300 as the "cluster DNS". For each backend (nft, iptables-nft,
# iptables-legacy), one after the other, it proves:
#   - the ifb link `nodelocaldns` exists holding 169.254.20.10 and the ClusterIP 10.96.0.10;
#   - the steering rules are programmed, listed by that backend's own tool in the image
#     (`podman exec`, no shell needed): so the tools, links, modules and libraries work;
#   - /ready answers 200 at 169.254.20.10:8080;
#   - dig at 169.254.20.10 and at 10.96.0.10 (UDP and TCP) answers a cluster name
#     through the cache, from the upstream;
#   - SIGTERM: /ready 503, then exit 0 within the grace period (15 s);
# and that `clusterdns nodelocal cleanup` run from the image removes the link and rules.
# Skips (exit 0, saying why) where no container can run, as tests/image/run.sh does.
#
# Usage: tests/image/nodelocal.sh [BINARY]   (default: target/release/clusterdns, built here)
# Needs: podman, runc, nft, xtables-{nft,legacy}-multi, dig, curl, nsenter, strip, ldd, ip.
set -euo pipefail
cd "$(dirname "$0")/../.."

say() { printf 'nodelocal image test: %s\n' "$*" >&2; }
skip() { say "SKIPPED: $*"; exit 0; }
fail() {
    say "FAILED: $*"
    for c in "${ctr:-}" "${up:-}"; do
        if [ -n "$c" ]; then podman logs "$c" 2>&1 | tail -n 30 >&2 || true; fi
    done
    exit 1
}

[ "$(id -u)" = 0 ] || skip "needs root (podman with runc, nsenter into the container's netns)"
for tool in podman runc nft xtables-nft-multi xtables-legacy-multi; do
    command -v "$tool" >/dev/null || skip "$tool is not installed (.ci/run installs it)"
done
for tool in dig curl nsenter strip ldd ip; do
    command -v "$tool" >/dev/null || fail "$tool is missing"
done

started=$(date +%s)
binary=${1:-}
if [ -z "$binary" ]; then
    cargo build --release --locked --quiet --bin clusterdns
    binary="${CARGO_TARGET_DIR:-target}/release/clusterdns"
fi
[ -x "$binary" ] || fail "no binary at $binary"

work=$(mktemp -d)
tag="localhost/clusterdns-nodelocal-image-test:$$"
up="clusterdns-nodelocal-upstream-$$"
ctr=""
cleanup() {
    [ -z "$ctr" ] || podman rm -f -t 0 "$ctr" >/dev/null 2>&1 || true
    podman rm -f -t 0 "$up" >/dev/null 2>&1 || true
    podman rmi -f "$tag" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

# As tests/image/run.sh: runc (crun fails on this host's cgroup layout), no default
# ulimits (they need CAP_SYS_RESOURCE), and no CNI warning with --network none.
printf '[containers]\ndefault_ulimits = []\n' >"$work/containers.conf"
export CONTAINERS_CONF="$work/containers.conf"
podman_() { podman "$@" 2> >(grep -v 'CNI config' >&2); }

# The root filesystem. Tools keep their Debian paths and links, so that libxtables finds
# its extension modules where it was built to look.
rootfs="$work/rootfs"
mkdir -p "$rootfs/usr/sbin"
strip -o "$rootfs/clusterdns" "$binary"
sbin=$(dirname "$(command -v xtables-nft-multi)")
tools=("$(command -v nft)" "$sbin/xtables-nft-multi" "$sbin/xtables-legacy-multi")
for t in "${tools[@]}"; do cp -L "$t" "$rootfs/usr/sbin/"; done
for v in nft legacy; do
    for fam in iptables ip6tables; do
        for suffix in "" -save -restore; do
            ln -s "xtables-$v-multi" "$rootfs/usr/sbin/$fam-$v$suffix"
        done
    done
done
# Debian's alternatives point the plain names at the nft backend.
for name in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
    ln -s "xtables-nft-multi" "$rootfs/usr/sbin/$name"
done
modules=""
for d in /usr/lib/*-linux-gnu/xtables /usr/lib64/xtables /usr/lib/xtables; do
    if [ -d "$d" ]; then modules=$d; break; fi
done
[ -n "$modules" ] || fail "no xtables extension modules found"
mkdir -p "$rootfs$modules"
cp -L "$modules"/*.so "$rootfs$modules/"
[ -f "$rootfs$modules/libxt_socket.so" ] || fail "no libxt_socket.so in $modules (-m socket)"
libs=$(ldd "$binary" "${tools[@]}" "$modules"/*.so |
    awk '/:$/ { next } $2 == "=>" && $3 ~ /^\// { print $3; next } $1 ~ /^\// { print $1 }' | sort -u)
for lib in $libs; do
    mkdir -p "$rootfs$(dirname "$lib")"
    cp -L "$lib" "$rootfs$lib"
done
# iptables names protocols through /etc/protocols (netbase, a dependency of Debian's
# iptables package).
mkdir -p "$rootfs/etc" "$rootfs/run"
[ -f /etc/protocols ] && cp /etc/protocols "$rootfs/etc/"
say "image: $(du -sh "$rootfs" | cut -f1) — clusterdns, nft, xtables-{nft,legacy}-multi," \
    "$(ls "$modules" | wc -l) xtables modules, $(echo "$libs" | wc -w) libraries"

cat >"$work/Containerfile" <<'CONTAINERFILE'
FROM scratch
LABEL org.opencontainers.image.title="clusterdns-nodelocal (image test)"
COPY rootfs/ /
ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin
USER 0:0
ENTRYPOINT ["/clusterdns"]
CONTAINERFILE
podman_ build --quiet --pull=never --tag "$tag" --file "$work/Containerfile" "$work" >/dev/null ||
    fail "podman build failed"

# The "cluster DNS": the sample cluster, in the shared network namespace on 127.0.0.1:5300.
mkdir -p "$work/up" "$work/etc" "$work/kube-dns"
cp config/sample-cluster.yaml "$work/up/cluster.yaml"
cat >"$work/up/clusterdns.toml" <<'TOML'
listen = ["127.0.0.1:5300"]
[kubernetes]
zones = ["cluster.local", "in-addr.arpa", "ip6.arpa"]
[source]
file = "/etc/clusterdns/cluster.yaml"
[forward]
upstreams = []
[health]
listen = "127.0.0.1:5380"
[ready]
listen = "127.0.0.1:5381"
[metrics]
listen = ""
TOML
touch "$work/xtables.lock"

set +e
version=$(podman_ run --rm --runtime runc --network none "$tag" --version)
rc=$?
set -e
[ $rc = 125 ] && skip "podman cannot start a container on this machine (exit 125)"
[ $rc = 0 ] || fail "clusterdns --version exited $rc in the image"
say "in the image: $version"

podman_ run --detach --name "$up" --runtime runc --network none --user 65532:65532 \
    --read-only --read-only-tmpfs=false --cap-drop ALL --security-opt no-new-privileges \
    --volume "$work/up:/etc/clusterdns:ro" "$tag" --config /etc/clusterdns/clusterdns.toml \
    >/dev/null || fail "podman run of the upstream failed"
up_pid=$(podman inspect --format '{{.State.Pid}}' "$up")
in_ns() { nsenter --net="/proc/$up_pid/ns/net" "$@"; }
http_status() { in_ns curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://$1" || true; }
for _ in $(seq 100); do
    [ "$(http_status 127.0.0.1:5381/ready)" = 200 ] && break
    sleep 0.1
done
[ "$(http_status 127.0.0.1:5381/ready)" = 200 ] || fail "the upstream was not ready within 10 s"

# The DaemonSet's securityContext: root, drop ALL, add NET_ADMIN NET_RAW NET_BIND_SERVICE,
# allowPrivilegeEscalation false, readOnlyRootFilesystem; its two mounts.
run_flags=(--runtime runc --network "container:$up" --user 0:0
    --read-only --read-only-tmpfs=false
    --security-opt no-new-privileges
    --cap-drop ALL --cap-add NET_ADMIN,NET_RAW,NET_BIND_SERVICE
    --volume "$work/etc:/etc/clusterdns:ro"
    --volume "$work/kube-dns:/etc/kube-dns:ro"
    --volume "$work/xtables.lock:/run/xtables.lock")

ask() { in_ns dig "@$1" -p 53 +short +time=1 +tries=1 "${@:2}" kubernetes.default.svc.cluster.local A || true; }

# Each backend's own listing of the rules, by the image's tool.
rules() {
    case $1 in
    nft) podman exec "$ctr" nft list table inet clusterdns-nodelocal ;;
    *) podman exec "$ctr" "iptables-${1#iptables-}-save" ;;
    esac
}

one_backend() {
    local backend=$1
    cat >"$work/etc/nodelocal.toml" <<TOML
[nodelocal]
link_kind = "ifb"
addresses = ["169.254.20.10"]
cluster_ips = ["10.96.0.10"]
backend = "$backend"
cluster_dns = ["127.0.0.1:5300"]
kube_dns_dir = "/etc/kube-dns"
[forward]
upstreams = []
[health]
lameduck = 1
TOML
    ctr="clusterdns-nodelocal-image-test-$$-$backend"
    podman_ run --detach --name "$ctr" "${run_flags[@]}" "$tag" \
        --config /etc/clusterdns/nodelocal.toml --log-format json >/dev/null ||
        fail "podman run failed ($backend)"
    local pid status
    pid=$(podman inspect --format '{{.State.Pid}}' "$ctr")
    [ -n "$pid" ] && [ "$pid" != 0 ] || fail "the container is not running ($backend)"

    for _ in $(seq 100); do
        [ "$(http_status 169.254.20.10:8080/ready)" = 200 ] && break
        sleep 0.1
    done
    [ "$(http_status 169.254.20.10:8080/ready)" = 200 ] ||
        fail "/ready at 169.254.20.10:8080 did not answer 200 within 10 s ($backend)"

    local link
    link=$(in_ns ip -d -o addr show dev nodelocaldns) || fail "no link nodelocaldns ($backend)"
    for a in 169.254.20.10/32 10.96.0.10/32; do
        grep -q "inet $a" <<<"$link" || fail "nodelocaldns lacks $a ($backend): $link"
    done
    in_ns ip -d link show dev nodelocaldns | grep -qw ifb || fail "nodelocaldns is not an ifb link"

    local listing
    listing=$(rules "$backend") || fail "listing the $backend rules in the image failed"
    case $backend in
    nft)
        grep -q 'socket wildcard 0' <<<"$listing" || fail "no conditional NOTRACK in nft: $listing"
        grep -Eq 'ip daddr \{ [^}]*10\.96\.0\.10[,} ].* udp dport 53 socket wildcard 0 notrack' <<<"$listing" || fail "the ClusterIP is not steered: $listing"
        ;;
    *)
        grep -Eq -- '-A CLUSTERDNS-NODELOCAL-PRE -d 10\.96\.0\.10/32 -p udp .*-m socket --nowildcard -j NOTRACK' \
            <<<"$listing" || fail "no conditional NOTRACK in $backend: $listing"
        [ "$(grep -c -- '-A PREROUTING -j CLUSTERDNS-NODELOCAL-PRE' <<<"$listing")" = 1 ] ||
            fail "not exactly one jump to CLUSTERDNS-NODELOCAL-PRE in $backend: $listing"
        ;;
    esac

    for ip in 169.254.20.10 10.96.0.10; do
        for proto in +notcp +tcp; do
            [ "$(ask "$ip" "$proto")" = 10.96.0.1 ] ||
                fail "no answer at $ip ($proto, $backend): '$(ask "$ip" "$proto")'"
        done
    done
    # The mode holds no zone: 10.96.0.1 came from the upstream, through the cache.

    local term_at took
    term_at=$(date +%s)
    podman kill --signal TERM "$ctr" >/dev/null
    for _ in $(seq 20); do
        [ "$(http_status 169.254.20.10:8080/ready)" = 503 ] && break
        sleep 0.1
    done
    [ "$(http_status 169.254.20.10:8080/ready)" = 503 ] || fail "/ready did not turn 503 after SIGTERM ($backend)"
    set +e
    status=$(timeout 20 podman wait "$ctr")
    set -e
    took=$(($(date +%s) - term_at))
    [ "$status" = 0 ] || fail "exit code after SIGTERM was '$status', not 0 ($backend)"
    [ "$took" -lt 15 ] || fail "took $took s to exit after SIGTERM ($backend)"
    podman rm -f -t 0 "$ctr" >/dev/null
    ctr=""

    # Uninstall from the image: the link and the rules go.
    podman_ run --rm "${run_flags[@]}" "$tag" nodelocal cleanup \
        --config /etc/clusterdns/nodelocal.toml >/dev/null || fail "cleanup failed ($backend)"
    in_ns ip link show dev nodelocaldns >/dev/null 2>&1 && fail "cleanup left the link ($backend)"
    case $backend in
    nft) in_ns nft list table inet clusterdns-nodelocal >/dev/null 2>&1 && fail "cleanup left the nft table" ;;
    *) in_ns "iptables-${backend#iptables-}-save" | grep -q CLUSTERDNS && fail "cleanup left $backend rules" ;;
    esac
    say "$backend: link, addresses, rules, /ready, answers at 169.254.20.10 and 10.96.0.10," \
        "SIGTERM → exit 0 in $took s, cleanup"
}

for backend in nft iptables-nft iptables-legacy; do
    one_backend "$backend"
done

say "passed in $(($(date +%s) - started)) s"
