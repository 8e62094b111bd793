#!/usr/bin/env bash
# The image test, with no registry: builds an image FROM scratch holding the release
# binary (stripped, with the file capability cap_net_bind_service, as the Dockerfile
# makes it) plus exactly the shared libraries `ldd` names, runs it the way the
# Deployment in deploy/cluster does — uid 65532, read-only root filesystem, no_new_privs,
# every capability dropped but NET_BIND_SERVICE, config mounted read-only — and proves:
#   - it answers DNS over UDP and TCP on port 53 inside the container's own network
#     namespace (no network but loopback: --network none; queried through nsenter),
#     with ip_unprivileged_port_start at 1024, so the capability is what binds :53;
#   - the capability came from the file (ambient set empty) and nothing else is held;
#   - /health and /ready answer 200;
#   - SIGTERM: /ready turns 503 while DNS is still answered (lameduck), then the process
#     exits 0 within the Deployment's grace period (15 s).
# Skips (exit 0, saying why) where no container can run: not root, no podman/runc, or a
# runtime that fails before the binary starts (podman's exit 125). Anything else that
# goes wrong fails loudly.
#
# Usage: tests/image/run.sh [BINARY]   (default: target/release/clusterdns, built here)
# Needs: podman, runc, dig, curl, nsenter, setcap, strip, ldd (.ci/run installs them).
set -euo pipefail
cd "$(dirname "$0")/../.."

say() { printf 'image test: %s\n' "$*" >&2; }
skip() { say "SKIPPED: $*"; exit 0; }
fail() {
    say "FAILED: $*"
    if [ -n "${ctr:-}" ]; then podman logs "$ctr" 2>&1 | tail -n 30 >&2 || true; fi
    exit 1
}

[ "$(id -u)" = 0 ] || skip "needs root (podman with runc, nsenter into the container's netns)"
for tool in podman runc; do
    command -v "$tool" >/dev/null || skip "$tool is not installed (.ci/run installs it)"
done
for tool in dig curl nsenter setcap getcap strip ldd; do
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
tag="localhost/clusterdns-image-test:$$"
ctr="clusterdns-image-test-$$"
cleanup() {
    podman rm -f -t 0 "$ctr" >/dev/null 2>&1 || true
    podman rmi -f "$tag" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

# crun fails on this host's cgroup layout, and the default ulimits need
# CAP_SYS_RESOURCE, which the test hosts do not have: runc, no default ulimits.
printf '[containers]\ndefault_ulimits = []\n' >"$work/containers.conf"
export CONTAINERS_CONF="$work/containers.conf"
# Podman prints a warning about CNI plugins it does not need with --network none.
podman_() { podman "$@" 2> >(grep -v 'CNI config' >&2); }

# The root filesystem: the stripped binary with its file capability, and exactly what
# ldd names (the vDSO is the kernel's, not a file).
rootfs="$work/rootfs"
mkdir -p "$rootfs"
strip -o "$rootfs/clusterdns" "$binary"
setcap cap_net_bind_service=+ep "$rootfs/clusterdns"
getcap "$rootfs/clusterdns" | grep -q 'cap_net_bind_service=ep' ||
    fail "setcap did not set cap_net_bind_service"
libs=$(ldd "$binary" | awk '$2 == "=>" && $3 ~ /^\// { print $3; next } $1 ~ /^\// { print $1 }')
[ -n "$libs" ] || fail "ldd named no library: is $binary dynamically linked?"
for lib in $libs; do
    mkdir -p "$rootfs$(dirname "$lib")"
    cp -L "$lib" "$rootfs$lib"
done
say "image: $(du -sh "$rootfs" | cut -f1) — clusterdns + $(echo "$libs" | wc -w) libraries: $(echo $libs)"

cat >"$work/Containerfile" <<'CONTAINERFILE'
FROM scratch
LABEL org.opencontainers.image.title="clusterdns (image test)"
COPY rootfs/ /
USER 65532:65532
ENTRYPOINT ["/clusterdns"]
CONTAINERFILE
podman_ build --quiet --pull=never --tag "$tag" --file "$work/Containerfile" "$work" >/dev/null ||
    fail "podman build failed"

# The config as the ConfigMap mounts it; the sample cluster stands in for the API.
mkdir -p "$work/etc"
cp config/sample-cluster.yaml "$work/etc/cluster.yaml"
cat >"$work/etc/clusterdns.toml" <<'TOML'
listen = ["0.0.0.0:53"]
[kubernetes]
zones = ["cluster.local", "in-addr.arpa", "ip6.arpa"]
ttl = 30
pods = "insecure"
[source]
file = "/etc/clusterdns/cluster.yaml"
[forward]
upstreams = []
[health]
listen = "0.0.0.0:8080"
lameduck = 5
[ready]
listen = "0.0.0.0:8181"
[metrics]
listen = "0.0.0.0:9153"
TOML

run_flags=(--runtime runc --network none --user 65532:65532
    --read-only --read-only-tmpfs=false
    --security-opt no-new-privileges
    --cap-drop ALL --cap-add NET_BIND_SERVICE
    --sysctl net.ipv4.ip_unprivileged_port_start=1024
    --volume "$work/etc:/etc/clusterdns:ro")

# Can a container run here at all? 125 is podman's own failure (runtime, cgroups,
# namespaces) before the binary starts; anything else is the image's.
set +e
version=$(podman_ run --rm "${run_flags[@]}" "$tag" --version)
rc=$?
set -e
[ $rc = 125 ] && skip "podman cannot start a container on this machine (exit 125)"
[ $rc = 0 ] || fail "clusterdns --version exited $rc in the image"
say "in the image: $version"

podman_ run --detach --name "$ctr" "${run_flags[@]}" "$tag" \
    --config /etc/clusterdns/clusterdns.toml --log-format json >/dev/null ||
    fail "podman run failed"
pid=$(podman inspect --format '{{.State.Pid}}' "$ctr")
[ -n "$pid" ] && [ "$pid" != 0 ] || fail "the container is not running"
in_ctr() { nsenter --net="/proc/$pid/ns/net" "$@"; }
http_status() { in_ctr curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$1" || true; }
ask() { in_ctr dig @127.0.0.1 -p 53 +short +time=1 +tries=1 "$@" kubernetes.default.svc.cluster.local A || true; }

for _ in $(seq 100); do
    [ "$(http_status 8181/ready)" = 200 ] && break
    sleep 0.2
done
[ "$(http_status 8181/ready)" = 200 ] || fail "/ready did not answer 200 within 20 s"
[ "$(http_status 8080/health)" = 200 ] || fail "/health did not answer 200"
in_ctr curl -fsS --max-time 2 http://127.0.0.1:9153/metrics | grep -q '^coredns_build_info' ||
    fail "/metrics has no coredns_build_info"

[ "$(ask +notcp)" = 10.96.0.1 ] || fail "no UDP answer on :53 inside the container (got '$(ask +notcp)')"
[ "$(ask +tcp)" = 10.96.0.1 ] || fail "no TCP answer on :53 inside the container (got '$(ask +tcp)')"

# Who it runs as and what it holds: uid 65532, only NET_BIND_SERVICE (bit 10), from
# the file (ambient empty), no_new_privs, and "/" mounted read-only.
status=/proc/$pid/status
grep -Eq '^Uid:\s+65532\s+65532\s+65532\s+65532$' "$status" || fail "not uid 65532: $(grep ^Uid "$status")"
for set in CapEff CapPrm CapBnd; do
    grep -Eq "^$set:\s+0000000000000400$" "$status" || fail "$set is not NET_BIND_SERVICE alone: $(grep "^$set" "$status")"
done
grep -Eq '^CapAmb:\s+0000000000000000$' "$status" || fail "ambient capabilities set: the file capability was not used"
grep -Eq '^NoNewPrivs:\s+1$' "$status" || fail "no_new_privs is not set"
root_opts=$(awk '$5 == "/" { print $6 }' "/proc/$pid/mountinfo" | tail -n 1)
case ",$root_opts," in *,ro,*) ;; *) fail "the root filesystem is not read-only ($root_opts)" ;; esac
[ "$(in_ctr cat /proc/sys/net/ipv4/ip_unprivileged_port_start)" = 1024 ] ||
    fail "port 53 was bindable without the capability"

# SIGTERM: not ready at once, still answering during the lameduck, then exit 0 in time.
term_at=$(date +%s)
podman kill --signal TERM "$ctr" >/dev/null
for _ in $(seq 20); do
    [ "$(http_status 8181/ready)" = 503 ] && break
    sleep 0.1
done
[ "$(http_status 8181/ready)" = 503 ] || fail "/ready did not turn 503 after SIGTERM"
[ "$(ask +notcp)" = 10.96.0.1 ] || fail "DNS stopped answering during the lameduck period"
set +e
exit_code=$(timeout 20 podman wait "$ctr")
set -e
took=$(($(date +%s) - term_at))
[ "$exit_code" = 0 ] || fail "exit code after SIGTERM was '${exit_code}', not 0"
[ "$took" -lt 15 ] || fail "took ${took} s to exit after SIGTERM, the grace period is 15 s"

say "passed in $(($(date +%s) - started)) s: :53 over UDP and TCP as uid 65532 with only" \
    "NET_BIND_SERVICE from the file, read-only root, /health /ready /metrics, SIGTERM → exit 0 in ${took} s"
