//! The forwarder's counters (CoreDNS's `forward` plugin); registered by `crate::metrics`.

use prometheus::{HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts};

/// The metrics of the forwarder (CoreDNS's `forward` plugin), handed to the forwarder.
#[derive(Clone)]
pub struct ForwardMetrics {
    pub healthcheck_broken: IntCounter,
    pub max_concurrent_rejects: IntCounter,
    /// `proxy_name`, `to`, `rcode`
    pub request_duration: HistogramVec,
    /// `proxy_name`, `to`, `rcode`
    pub healthcheck_failures: IntCounterVec,
}

impl Default for ForwardMetrics {
    fn default() -> Self {
        let c = || IntCounter::new("detached", "detached").expect("valid metric");
        ForwardMetrics {
            healthcheck_broken: c(),
            max_concurrent_rejects: c(),
            request_duration: HistogramVec::new(
                HistogramOpts::new("detached", "detached"),
                &["proxy_name", "to", "rcode"],
            )
            .expect("valid metric"),
            healthcheck_failures: IntCounterVec::new(
                Opts::new("detached", "detached"),
                &["proxy_name", "to", "rcode"],
            )
            .expect("valid metric"),
        }
    }
}
