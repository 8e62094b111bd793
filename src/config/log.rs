//! `[log]`: the query log and error consolidation.

use std::time::Duration;

use serde::Deserialize;

use super::de::seconds;

/// `[log]`: the query log (CoreDNS's `log` plugin) and how errors are consolidated.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// Log every query: client, name, type, rcode, flags, size, duration.
    #[serde(default)]
    pub queries: bool,
    /// Seconds over which repeated errors are gathered into one line (CoreDNS's
    /// `errors { consolidate }`); 0 logs each one.
    #[serde(default = "default_consolidate", with = "seconds")]
    pub consolidate: Duration,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            queries: false,
            consolidate: default_consolidate(),
        }
    }
}

fn default_consolidate() -> Duration {
    Duration::from_secs(10)
}
