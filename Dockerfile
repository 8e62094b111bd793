# syntax=docker/dockerfile:1
# The clusterdns image: a stripped, glibc-linked binary on distroless/cc, uid 65532,
# carrying the file capability cap_net_bind_service so it binds :53 without root.
#
#   docker build -t clusterdns:0.1.0 --build-arg VERSION=0.1.0 \
#     --build-arg COMMIT=$(git rev-parse --short=12 HEAD) --build-arg SOURCE=<repo URL> .
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
    setcap cap_net_bind_service=+ep /out/clusterdns; \
    getcap /out/clusterdns

FROM ${RUNTIME_IMAGE}
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
