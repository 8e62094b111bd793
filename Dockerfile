# syntax=docker/dockerfile:1
# The clusterdns image: a stripped, glibc-linked binary on distroless/cc, uid 65532,
# carrying the file capability cap_net_bind_service so it binds :53 without root.
# A second target, `nodelocal`, is the NodeLocal DaemonSet's image (its stage says why).
#
#   docker build -t clusterdns:0.1.0 --build-arg VERSION=0.1.0 \
#     --build-arg COMMIT=$(git rev-parse --short=12 HEAD) --build-arg SOURCE=<repo URL> .
#   docker build --target nodelocal -t clusterdns-nodelocal:0.1.0 ...   (same build args)
#   docker buildx build --platform linux/amd64,linux/arm64 ...   (README: Image)
#
# Runtime base: gcr.io/distroless/cc-debian12:nonroot, not scratch. The binary is built
# for glibc (x86_64/aarch64-unknown-linux-gnu): that is the build every benchmark in this
# repository measured, its allocator is jemalloc either way, and distroless/cc carries
# exactly what such a binary needs (glibc, libgcc_s, CA certificates, tzdata, an
# /etc/passwd with `nonroot` = 65532) and no shell or package manager. A static musl
# build FROM scratch would be a few MB smaller, but it is a different binary from the
# one measured. Build stage and runtime are both Debian 12, so the binary never asks
# for a newer glibc than the runtime has. Pin both bases by digest in your own build.
ARG RUST_IMAGE=docker.io/library/rust:1.95-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot
# The NodeLocal image's base (`--target nodelocal`, below).
ARG NODELOCAL_RUNTIME_IMAGE=docker.io/library/debian:12-slim

# The build stage runs on the builder's own platform and cross-compiles to the target's
# (far faster than compiling under emulation for arm64).
FROM --platform=$BUILDPLATFORM ${RUST_IMAGE} AS build
ARG TARGETARCH
ARG COMMIT=unknown
WORKDIR /src
RUN set -eu; \
    case "$TARGETARCH" in \
      amd64) triple=x86_64-unknown-linux-gnu;  gnu=x86_64-linux-gnu;  cross=gcc-x86-64-linux-gnu ;; \
      arm64) triple=aarch64-unknown-linux-gnu; gnu=aarch64-linux-gnu; cross=gcc-aarch64-linux-gnu ;; \
      *) echo "unsupported TARGETARCH $TARGETARCH" >&2; exit 1 ;; \
    esac; \
    pkgs="libcap2-bin"; \
    if [ "$(dpkg --print-architecture)" != "$TARGETARCH" ]; then \
      pkgs="$pkgs $cross libc6-dev-$TARGETARCH-cross"; \
    fi; \
    apt-get update -qq; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $pkgs; \
    rm -rf /var/lib/apt/lists/*; \
    rustup target add "$triple"; \
    echo "$triple" >/target-triple; echo "$gnu" >/target-gnu
COPY . .
# No .git in the context (.dockerignore): build.rs stamps the commit given as build arg.
# Stripped: no symbols, no debug lines (the repository's release profile keeps line
# tables for profiling; the image does not need them).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    set -eu; triple=$(cat /target-triple); gnu=$(cat /target-gnu); \
    export CLUSTERDNS_COMMIT="$COMMIT"; \
    export CARGO_PROFILE_RELEASE_DEBUG=0 CARGO_PROFILE_RELEASE_STRIP=symbols; \
    upper=$(echo "$triple" | tr 'a-z-' 'A-Z_'); \
    export "CARGO_TARGET_${upper}_LINKER=$gnu-gcc" "CC_$(echo "$triple" | tr - _)=$gnu-gcc" \
           "AR_$(echo "$triple" | tr - _)=$gnu-ar"; \
    cargo build --release --locked --target "$triple" --bin clusterdns; \
    install -D -m 0755 "target/$triple/release/clusterdns" /out/clusterdns; \
    install -D -m 0755 "target/$triple/release/clusterdns" /out/nodelocal/clusterdns; \
    setcap cap_net_bind_service=+ep /out/clusterdns; \
    getcap /out/clusterdns

# The NodeLocal image (`--target nodelocal`; deploy/nodelocal's DaemonSet runs it): the
# same binary, plus the firewall tools NodeLocal mode runs to program its steering rules
# — `nft`, and iptables with both backends (`iptables-nft*` and `iptables-legacy*`,
# ip6tables too), as node-cache's image carries them: `backend = "auto"` follows
# whatever kube-proxy uses on the node.
#
# Runtime base: Debian 12 slim with Debian's `nftables` and `iptables` packages, not
# those tools copied onto distroless. The packages bring the binaries, their links, the
# xtables extension modules (`-m socket` is one) and every library they load as one
# consistent, security-maintained set that a rebuild updates; a hand-copied set breaks
# silently when a package gains a library or a module (tests/image/nodelocal.sh copies
# exactly that set FROM scratch to prove it suffices, and would have to be kept in step
# by hand). Kubernetes' own kube-proxy and node-cache images start the same way
# (debian-iptables). Same Debian release as the build stage, so glibc matches. The
# cost: a larger base with a shell and dpkg in it, and for a multi-arch
# build the `apt-get install` below runs under emulation (binfmt/QEMU) for the foreign
# arch — package installs only, no compiling.
#
# Root inside (uid 0), as node-cache: the process and the tools it runs need NET_ADMIN
# (the link, the rules), which a non-root uid would get only through file capabilities
# on every one of those binaries. The DaemonSet still drops every capability but
# NET_ADMIN, NET_RAW and NET_BIND_SERVICE, forbids privilege escalation and mounts the
# root filesystem read-only. The binary carries no file capability here: root holds
# NET_BIND_SERVICE from the container's set.
FROM ${NODELOCAL_RUNTIME_IMAGE} AS nodelocal
ARG VERSION=0.1.0
ARG COMMIT=unknown
ARG SOURCE=https://github.com/clusterdns/clusterdns
RUN set -eu; \
    apt-get update -qq; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nftables iptables; \
    rm -rf /var/lib/apt/lists/*; \
    nft --version; iptables-nft --version; iptables-legacy --version
LABEL org.opencontainers.image.title="clusterdns-nodelocal" \
      org.opencontainers.image.description="clusterdns in NodeLocal mode: a DNS cache on every node at 169.254.20.10, with nft and iptables (nft and legacy) for its steering rules." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/nodelocal/clusterdns /clusterdns
USER 0:0
EXPOSE 53/udp 53/tcp 8080/tcp 9253/tcp
ENTRYPOINT ["/clusterdns"]

# The cluster DNS image, the default target (last stage).

FROM ${RUNTIME_IMAGE} AS cluster
ARG VERSION=0.1.0
ARG COMMIT=unknown
ARG SOURCE=https://github.com/clusterdns/clusterdns
LABEL org.opencontainers.image.title="clusterdns" \
      org.opencontainers.image.description="The DNS server of a Kubernetes cluster: an authoritative cluster.local zone, fast and lean." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0"
# COPY keeps the security.capability extended attribute set in the build stage.
COPY --from=build /out/clusterdns /clusterdns
USER 65532:65532
EXPOSE 53/udp 53/tcp 9153/tcp 8080/tcp 8181/tcp
ENTRYPOINT ["/clusterdns"]
