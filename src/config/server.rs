//! `[server]`: how DNS is served (UDP workers, TCP limits).

use std::time::Duration;

use serde::{Deserialize, Deserializer, de};

use super::Refusal;
use super::de::seconds;

/// More UDP workers than this is a typo: each is a thread and a socket per address.
pub const MAX_UDP_WORKERS: usize = 1024;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// UDP sockets (and threads) per listen address, sharing the port with SO_REUSEPORT;
    /// 0 means one per core; at most [`MAX_UDP_WORKERS`].
    #[serde(default)]
    pub udp_workers: usize,
    /// How long a TCP connection may sit idle, or take to deliver one message; at least 1.
    #[serde(default = "default_tcp_idle", with = "seconds")]
    pub tcp_idle_timeout: Duration,
    /// Open TCP connections at most; beyond it new connections are closed at once. At
    /// least 1.
    #[serde(default = "default_tcp_max")]
    pub tcp_max_connections: usize,
    /// The largest UDP answer, in bytes: a client's EDNS buffer size is honoured up to
    /// it (BIND's `max-udp-size`). The default, 1232, is the DNS flag day value, safe
    /// from IP fragmentation; 4096 answers as CoreDNS does for clients that ask for it.
    #[serde(default = "default_max_udp_size", deserialize_with = "max_udp_size")]
    pub max_udp_size: u16,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            udp_workers: 0,
            tcp_idle_timeout: default_tcp_idle(),
            tcp_max_connections: default_tcp_max(),
            max_udp_size: default_max_udp_size(),
        }
    }
}

impl ServerConfig {
    pub(super) fn check(&self) -> Result<(), Refusal> {
        let refuse = |key, reason: String| Err(Refusal::new("server", key, reason));
        if self.udp_workers > MAX_UDP_WORKERS {
            return refuse(
                "udp_workers",
                format!(
                    "{} is more than {MAX_UDP_WORKERS} (each is a thread and a socket; 0 means one per core)",
                    self.udp_workers
                ),
            );
        }
        if self.tcp_idle_timeout.is_zero() {
            return refuse(
                "tcp_idle_timeout",
                "0 seconds would close every TCP connection before its first query".into(),
            );
        }
        if self.tcp_max_connections == 0 {
            return refuse(
                "tcp_max_connections",
                "0 would refuse every TCP connection".into(),
            );
        }
        Ok(())
    }
}

fn default_tcp_idle() -> Duration {
    Duration::from_secs(10)
}
fn default_tcp_max() -> usize {
    4096
}

fn default_max_udp_size() -> u16 {
    crate::wire::writer::ADVERTISED_UDP_SIZE
}

fn max_udp_size<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    let v = u64::deserialize(d)?;
    match u16::try_from(v) {
        Ok(size @ 512..=4096) => Ok(size),
        _ => Err(de::Error::custom(format!(
            "max_udp_size {v} is out of range 512..=4096"
        ))),
    }
}
