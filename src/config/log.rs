//! `[log]`: the query log and error consolidation.

use std::time::Duration;

use serde::Deserialize;

use super::de::seconds;
use crate::logging::QueryLogFormat;

/// `[log]`: the query log (CoreDNS's `log` plugin) and how errors are consolidated.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// Log every query: client, name, type, rcode, flags, size, duration.
    #[serde(default)]
    pub queries: bool,
    /// How the query log writes a query: CoreDNS's `log` format (default) or fields.
    #[serde(default)]
    pub query_format: QueryLogFormat,
    /// Seconds over which repeated errors are gathered into one line (CoreDNS's
    /// `errors { consolidate }`); 0 logs each one.
    #[serde(default = "default_consolidate", with = "seconds")]
    pub consolidate: Duration,
}

impl LogConfig {
    /// The query log's format, or `None` when queries are not logged.
    pub fn query_log(&self) -> Option<QueryLogFormat> {
        self.queries.then_some(self.query_format)
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            queries: false,
            query_format: QueryLogFormat::default(),
            consolidate: default_consolidate(),
        }
    }
}

fn default_consolidate() -> Duration {
    Duration::from_secs(10)
}
