//! `[health]`, `[ready]` and `[metrics]`: the HTTP endpoints, each on its own address.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

use super::de::{optional_addr, seconds};

/// Which endpoint a listener serves. Named here, where the addresses are, so that the
/// config need not import the HTTP server that serves them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Health,
    Ready,
    Metrics,
    /// `/health` and `/ready` on one address (the NodeLocal mode, as node-cache).
    Probes,
}

/// `[health]`: liveness on `/health` (CoreDNS's `health` plugin), and the lameduck period.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthConfig {
    /// Address of `/health`; `""` turns it off.
    #[serde(default = "default_health_listen", deserialize_with = "optional_addr")]
    pub listen: Option<SocketAddr>,
    /// Seconds between SIGTERM and closing the listeners, while `/ready` says 503 and
    /// DNS is still answered (CoreDNS's `lameduck`).
    #[serde(default = "default_lameduck", with = "seconds")]
    pub lameduck: Duration,
}

/// `[ready]`: readiness on `/ready` (CoreDNS's `ready` plugin).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadyConfig {
    #[serde(default = "default_ready_listen", deserialize_with = "optional_addr")]
    pub listen: Option<SocketAddr>,
}

/// `[metrics]`: Prometheus metrics on `/metrics` (CoreDNS's `prometheus` plugin).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    #[serde(default = "default_metrics_listen", deserialize_with = "optional_addr")]
    pub listen: Option<SocketAddr>,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            listen: default_health_listen(),
            lameduck: default_lameduck(),
        }
    }
}

impl Default for ReadyConfig {
    fn default() -> Self {
        ReadyConfig {
            listen: default_ready_listen(),
        }
    }
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            listen: default_metrics_listen(),
        }
    }
}

fn default_health_listen() -> Option<SocketAddr> {
    Some(SocketAddr::from(([127, 0, 0, 1], 8080)))
}
fn default_ready_listen() -> Option<SocketAddr> {
    Some(SocketAddr::from(([127, 0, 0, 1], 8181)))
}
fn default_metrics_listen() -> Option<SocketAddr> {
    Some(SocketAddr::from(([127, 0, 0, 1], 9153)))
}
fn default_lameduck() -> Duration {
    Duration::from_secs(5)
}
