//! Prometheus metrics under CoreDNS's names and labels, so existing dashboards and alerts
//! work unchanged. Every handle is registered here, once; the query counters are filled
//! by `server::observe`, the cache's and the forwarder's by them.

use std::sync::Arc;

use prometheus::core::Collector;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder, exponential_buckets,
};

use crate::cache::CacheMetrics;
use crate::forward::ForwardMetrics;
use crate::zone::search::SearchPathCounter;

const SIZE_BUCKETS: [f64; 14] = [
    0.0, 100.0, 200.0, 300.0, 400.0, 511.0, 1023.0, 2047.0, 4095.0, 8291.0, 16e3, 32e3, 48e3, 64e3,
];
/// The zone and view labels of the cache's metrics: a block answers for ".".
const ZONE: &str = ".";
const VIEW: &str = "";

/// The query counters of CoreDNS's `prometheus` plugin (labels `server`, `zone`, `view`
/// and those named), which `server::observe` fills.
pub struct QueryMetrics {
    /// `proto`, `family`, `type`
    pub requests: IntCounterVec,
    /// `rcode`, `plugin`
    pub responses: IntCounterVec,
    /// `type`
    pub duration: HistogramVec,
    /// `proto`
    pub request_size: HistogramVec,
    /// `proto`
    pub response_size: HistogramVec,
}

/// The NodeLocal mode's network setup (label values appear once the mode sets them, so
/// the other modes do not show these).
pub struct NodeLocalMetrics {
    /// `errortype`: node-cache's labels (`nodelocal::ErrorType::label`).
    pub setup_errors: IntCounterVec,
    /// `step`: `link` or `rules`, found broken and repaired.
    pub repairs: IntCounterVec,
    /// `family`, `backend`: 1 while the steering rules of that family are in place.
    pub steering: IntGaugeVec,
}

pub struct Metrics {
    registry: Registry,
    pub queries: QueryMetrics,
    pub panics: IntCounter,
    pub reload_failed: IntCounter,
    /// `service_kind`: cluster_ip, headless
    pub programming_duration: HistogramVec,
    pub cache: CacheMetrics,
    pub forward: ForwardMetrics,
    pub nodelocal: NodeLocalMetrics,
    /// `clusterdns_search_path_queries_total`, filled by the zone stage when
    /// `[search_path] metrics` is on (only it can tell an expansion from a name).
    pub search_path: Arc<SearchPathCounter>,
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        let registry = Registry::new();
        let reg = |c: Box<dyn Collector>| registry.register(c).expect("metric names are unique");
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            let v = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
            reg(Box::new(v.clone()));
            v
        };
        let histogram_vec = |name: &str, help: &str, labels: &[&str], buckets: Vec<f64>| {
            let v = HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels)
                .expect("valid metric");
            reg(Box::new(v.clone()));
            v
        };
        let counter = |name: &str, help: &str| {
            let c = IntCounter::new(name, help).expect("valid metric");
            reg(Box::new(c.clone()));
            c
        };
        let server_zone_view = ["server", "zone", "view"];
        let labels = |extra: &[&'static str]| [&server_zone_view[..], extra].concat();

        let build = IntGaugeVec::new(
            Opts::new("coredns_build_info", "A metric with a constant '1' value labeled by version, revision, and goversion from which CoreDNS was built."),
            &["version", "revision", "goversion"],
        )
        .expect("valid metric");
        build
            .with_label_values(&[
                env!("CARGO_PKG_VERSION"),
                crate::version::COMMIT,
                crate::version::RUSTC,
            ])
            .set(1);
        reg(Box::new(build));
        if let Ok(process) =
            std::panic::catch_unwind(prometheus::process_collector::ProcessCollector::for_self)
        {
            reg(Box::new(process));
        }

        let cache_labels = ["server", "type", "zones", "view"];
        let cache_totals = ["server", "zones", "view"];
        let cache_hits = counter_vec(
            "coredns_cache_hits_total",
            "The count of cache hits.",
            &cache_labels,
        );
        let cache_evictions = counter_vec(
            "coredns_cache_evictions_total",
            "The count of cache evictions.",
            &cache_labels,
        );
        let cache_entries = IntGaugeVec::new(
            Opts::new(
                "coredns_cache_entries",
                "The number of elements in the cache.",
            ),
            &cache_labels,
        )
        .expect("valid metric");
        reg(Box::new(cache_entries.clone()));
        let server = "dns://:53"; // the cache is shared by every listener
        let by_type = |v: &IntCounterVec, t: &str| v.with_label_values(&[server, t, ZONE, VIEW]);
        let total = |name: &str, help: &str| {
            counter_vec(name, help, &cache_totals).with_label_values(&[server, ZONE, VIEW])
        };
        let cache = CacheMetrics {
            hits: [
                by_type(&cache_hits, "success"),
                by_type(&cache_hits, "denial"),
            ],
            misses: total(
                "coredns_cache_misses_total",
                "The count of cache misses. Deprecated, derive misses from cache hits/requests counters.",
            ),
            requests: total(
                "coredns_cache_requests_total",
                "The count of cache requests.",
            ),
            prefetch: total(
                "coredns_cache_prefetch_total",
                "The number of times the cache has prefetched a cached item.",
            ),
            served_stale: total(
                "coredns_cache_served_stale_total",
                "The number of requests served from stale cache entries.",
            ),
            evictions: [
                by_type(&cache_evictions, "success"),
                by_type(&cache_evictions, "denial"),
            ],
            entries: [
                cache_entries.with_label_values(&[server, "success", ZONE, VIEW]),
                cache_entries.with_label_values(&[server, "denial", ZONE, VIEW]),
            ],
        };
        let proxy = ["proxy_name", "to", "rcode"];
        let forward = ForwardMetrics {
            healthcheck_broken: counter(
                "coredns_forward_healthcheck_broken_total",
                "Counter of the number of complete failures of the healthchecks.",
            ),
            max_concurrent_rejects: counter(
                "coredns_forward_max_concurrent_rejects_total",
                "Counter of the number of queries rejected because the concurrent queries were at maximum.",
            ),
            request_duration: histogram_vec(
                "coredns_proxy_request_duration_seconds",
                "Histogram of the time each request took.",
                &proxy,
                exponential_buckets(0.00025, 2.0, 16).expect("valid buckets"),
            ),
            healthcheck_failures: counter_vec(
                "coredns_proxy_healthcheck_failures_total",
                "Counter of the number of failed healthchecks.",
                &proxy,
            ),
        };
        let queries = QueryMetrics {
            requests: counter_vec(
                "coredns_dns_requests_total",
                "Counter of DNS requests made per zone, protocol and family.",
                &labels(&["proto", "family", "type"]),
            ),
            responses: counter_vec(
                "coredns_dns_responses_total",
                "Counter of response status codes.",
                &labels(&["rcode", "plugin"]),
            ),
            duration: histogram_vec(
                "coredns_dns_request_duration_seconds",
                "Histogram of the time (in seconds) each request took per zone.",
                &labels(&["type"]),
                exponential_buckets(0.00025, 2.0, 16).expect("valid buckets"),
            ),
            request_size: histogram_vec(
                "coredns_dns_request_size_bytes",
                "Size of the EDNS0 UDP buffer in bytes (64K for TCP) per zone and protocol.",
                &labels(&["proto"]),
                SIZE_BUCKETS.to_vec(),
            ),
            response_size: histogram_vec(
                "coredns_dns_response_size_bytes",
                "Size of the returned response in bytes.",
                &labels(&["proto"]),
                SIZE_BUCKETS.to_vec(),
            ),
        };
        let steering = IntGaugeVec::new(
            Opts::new(
                "clusterdns_nodecache_steering",
                "1 while the fail-open steering rules of the family are in place, by backend.",
            ),
            &["family", "backend"],
        )
        .expect("valid metric");
        reg(Box::new(steering.clone()));
        let nodelocal = NodeLocalMetrics {
            setup_errors: counter_vec(
                "coredns_nodecache_setup_errors_total",
                "The number of errors during periodic network setup for node-cache",
                &["errortype"],
            ),
            repairs: counter_vec(
                "clusterdns_nodecache_repairs_total",
                "Times the link or the steering rules were found changed and rewritten.",
                &["step"],
            ),
            steering,
        };
        Arc::new(Metrics {
            queries,
            panics: counter(
                "coredns_panics_total",
                "A metrics that counts the number of panics.",
            ),
            reload_failed: counter(
                "coredns_reload_failed_total",
                "Counter of the number of failed reload attempts.",
            ),
            programming_duration: histogram_vec(
                "coredns_kubernetes_dns_programming_duration_seconds",
                "Histogram of the time (in seconds) it took to program a dns instance.",
                &["service_kind"],
                exponential_buckets(0.001, 2.0, 20).expect("valid buckets"),
            ),
            cache,
            forward,
            nodelocal,
            search_path: Arc::new(SearchPathCounter::new(counter_vec(
                "clusterdns_search_path_queries_total",
                "Queries the cluster zone answered that are search-path expansions of another name, by querying namespace (the first ones seen; the rest under other), search domain and rcode.",
                &["namespace", "domain", "rcode"],
            ))),
            registry,
        })
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}
