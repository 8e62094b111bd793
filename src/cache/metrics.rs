//! The cache's counters (CoreDNS's `cache` plugin); registered by `crate::metrics`.

use prometheus::{IntCounter, IntGauge};

/// The metrics of the cache (CoreDNS's `cache` plugin), handed to the cache.
#[derive(Clone)]
pub struct CacheMetrics {
    /// success, denial
    pub hits: [IntCounter; 2],
    pub misses: IntCounter,
    pub requests: IntCounter,
    pub prefetch: IntCounter,
    pub served_stale: IntCounter,
    pub evictions: [IntCounter; 2],
    pub entries: [IntGauge; 2],
}

impl Default for CacheMetrics {
    /// Detached handles, for a cache whose metrics nobody scrapes (benches, tests).
    fn default() -> Self {
        let c = || IntCounter::new("detached", "detached").expect("valid metric");
        let g = || IntGauge::new("detached", "detached").expect("valid metric");
        CacheMetrics {
            hits: [c(), c()],
            misses: c(),
            requests: c(),
            prefetch: c(),
            served_stale: c(),
            evictions: [c(), c()],
            entries: [g(), g()],
        }
    }
}
