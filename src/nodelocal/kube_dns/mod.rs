//! The kube-dns side of the NodeLocal mode: the `kube-dns` ConfigMap as kubelet mounts it
//! (stub domains and upstream nameservers, re-read on every `..data` swap) and the
//! address of the cluster DNS behind the `kube-dns-upstream` Service.
//!
//! ```text
//!   /etc/kube-dns/..data -> ..2026_11_29_09_00_00.1 ──poll──> ConfigMapWatch ──watch──> the mode
//!   KUBE_DNS_UPSTREAM_SERVICE_HOST/_PORT ──> cluster_dns_upstream ──> check_not_loop
//! ```
//! The semantics are kube-dns's and node-cache's: absent keys are empty, bad content is
//! refused as a whole and the last good config stays.

pub mod parse;
pub mod upstream;
pub mod watch;

pub use parse::{ContentError, Key, KubeDnsConfig, MAX_UPSTREAM_NAMESERVERS};
pub use upstream::{
    ClusterUpstreamError, DEFAULT_UPSTREAM_SERVICE, LoopError, ServiceEnv, check_not_loop,
    cluster_dns_upstream, is_own_address,
};
pub use watch::{ConfigMapDir, ConfigMapError, DEFAULT_DIR, DEFAULT_POLL_PERIOD, watch};
