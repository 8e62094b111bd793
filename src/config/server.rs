//! `[server]`: how DNS is served (UDP workers, TCP limits).

use std::time::Duration;

use serde::Deserialize;

use super::de::seconds;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// UDP sockets (and threads) per listen address, sharing the port with SO_REUSEPORT;
    /// 0 means one per core.
    #[serde(default)]
    pub udp_workers: usize,
    /// How long a TCP connection may sit idle, or take to deliver one message.
    #[serde(default = "default_tcp_idle", with = "seconds")]
    pub tcp_idle_timeout: Duration,
    /// Open TCP connections at most; beyond it new connections are closed at once.
    #[serde(default = "default_tcp_max")]
    pub tcp_max_connections: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            udp_workers: 0,
            tcp_idle_timeout: default_tcp_idle(),
            tcp_max_connections: default_tcp_max(),
        }
    }
}

fn default_tcp_idle() -> Duration {
    Duration::from_secs(10)
}
fn default_tcp_max() -> usize {
    4096
}
