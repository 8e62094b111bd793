//! Prometheus metrics under CoreDNS's names and labels, so existing dashboards and alerts
//! work unchanged. Every handle is made here, once.
//!
//! Counting stays off the query path's shared cache lines: each UDP worker owns a
//! [`QueryRecorder`] of prometheus *local* counters and histograms (plain adds, flushed
//! to the shared metrics every few milliseconds or when the worker goes idle); TCP and
//! deferred answers share one recorder behind a mutex and flush at once.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus::core::Collector;
use prometheus::local::{LocalHistogram, LocalIntCounter};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder, exponential_buckets,
};

use crate::dns::handler::{Plugin, Transport};

/// Query types with a label of their own; the rest count as "other" (as CoreDNS does).
const TYPES: [(u16, &str); 12] = [
    (1, "A"),
    (28, "AAAA"),
    (5, "CNAME"),
    (12, "PTR"),
    (33, "SRV"),
    (16, "TXT"),
    (6, "SOA"),
    (2, "NS"),
    (15, "MX"),
    (255, "ANY"),
    (65, "HTTPS"),
    (64, "SVCB"),
];
const N_TYPES: usize = TYPES.len() + 1;
const RCODES: [&str; 8] = [
    "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "BADVERS", "other",
];
const PLUGINS: [&str; 4] = ["", "kubernetes", "cache", "forward"];
const PROTOS: [&str; 2] = ["udp", "tcp"];
const SIZE_BUCKETS: [f64; 14] = [
    0.0, 100.0, 200.0, 300.0, 400.0, 511.0, 1023.0, 2047.0, 4095.0, 8291.0, 16e3, 32e3, 48e3, 64e3,
];
/// The zone label: clusterdns is one server block for ".".
const ZONE: &str = ".";
const VIEW: &str = "";

fn type_index(qtype: u16) -> usize {
    TYPES
        .iter()
        .position(|(t, _)| *t == qtype)
        .unwrap_or(TYPES.len())
}

fn type_name(i: usize) -> &'static str {
    TYPES.get(i).map_or("other", |(_, n)| n)
}

/// Response code index for the labels; BADVERS is extended (seen in the OPT record).
fn rcode_index(code: u8, badvers: bool) -> usize {
    match code {
        _ if badvers => 6,
        0..=5 => code as usize,
        _ => 7,
    }
}

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

pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    responses: IntCounterVec,
    duration: HistogramVec,
    request_size: HistogramVec,
    response_size: HistogramVec,
    pub panics: IntCounter,
    pub reload_failed: IntCounter,
    /// `service_kind`: cluster_ip, headless
    pub programming_duration: HistogramVec,
    pub cache: CacheMetrics,
    pub forward: ForwardMetrics,
    /// TCP and deferred answers, recorded from the runtime's threads.
    shared: Mutex<Option<QueryRecorder>>,
}

/// What one answered query adds to the metrics.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub transport: Transport,
    pub ipv6: bool,
    pub qtype: u16,
    pub request_len: usize,
    pub response: Option<ResponseSample>,
    pub elapsed: Duration,
}

#[derive(Debug, Clone, Copy)]
pub struct ResponseSample {
    pub len: usize,
    pub rcode: u8,
    pub badvers: bool,
    pub plugin: Plugin,
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
        Arc::new(Metrics {
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
            registry,
            shared: Mutex::new(None),
        })
    }

    /// A recorder for one worker of the listener `server` (e.g. `dns://127.0.0.1:53`).
    pub fn recorder(&self, server: &str) -> QueryRecorder {
        let requests = (0..2 * 2 * N_TYPES)
            .map(|i| {
                let (proto, family, t) = (i / (2 * N_TYPES), (i / N_TYPES) % 2, i % N_TYPES);
                let family = if family == 0 { "1" } else { "2" };
                self.requests
                    .with_label_values(&[server, ZONE, VIEW, PROTOS[proto], family, type_name(t)])
                    .local()
            })
            .collect();
        let responses = (0..RCODES.len() * PLUGINS.len())
            .map(|i| {
                self.responses
                    .with_label_values(&[
                        server,
                        ZONE,
                        VIEW,
                        RCODES[i / PLUGINS.len()],
                        PLUGINS[i % PLUGINS.len()],
                    ])
                    .local()
            })
            .collect();
        let duration = (0..N_TYPES)
            .map(|t| {
                self.duration
                    .with_label_values(&[server, ZONE, VIEW, type_name(t)])
                    .local()
            })
            .collect();
        let sizes = |v: &HistogramVec| {
            PROTOS.map(|p| v.with_label_values(&[server, ZONE, VIEW, p]).local())
        };
        QueryRecorder {
            requests,
            responses,
            duration,
            request_size: sizes(&self.request_size),
            response_size: sizes(&self.response_size),
            unflushed: 0,
            last_flush: Instant::now(),
        }
    }

    /// Records one query answered on the runtime (TCP, deferred answers).
    pub fn record_shared(&self, server: &str, sample: &Sample) {
        let mut shared = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        let r = shared.get_or_insert_with(|| self.recorder(server));
        r.record(sample);
        r.flush();
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

/// Per-worker counters: plain adds on the query path, flushed to the shared metrics.
pub struct QueryRecorder {
    requests: Vec<LocalIntCounter>,
    responses: Vec<LocalIntCounter>,
    duration: Vec<LocalHistogram>,
    request_size: [LocalHistogram; 2],
    response_size: [LocalHistogram; 2],
    unflushed: u32,
    last_flush: Instant,
}

/// Flush after this many queries or this long, whichever comes first.
const FLUSH_EVERY: u32 = 256;
const FLUSH_AFTER: Duration = Duration::from_millis(100);

impl QueryRecorder {
    pub fn record(&mut self, s: &Sample) {
        let proto = usize::from(s.transport == Transport::Tcp);
        let t = type_index(s.qtype);
        self.requests[proto * 2 * N_TYPES + usize::from(s.ipv6) * N_TYPES + t].inc();
        // CoreDNS records the EDNS buffer size here; the request's length is what we see
        // for every query, with or without EDNS.
        self.request_size[proto].observe(s.request_len as f64);
        self.duration[t].observe(s.elapsed.as_secs_f64());
        if let Some(r) = s.response {
            let plugin = match r.plugin {
                Plugin::None => 0,
                Plugin::Kubernetes => 1,
                Plugin::Cache => 2,
                Plugin::Forward => 3,
            };
            self.responses[rcode_index(r.rcode, r.badvers) * PLUGINS.len() + plugin].inc();
            self.response_size[proto].observe(r.len as f64);
        }
        self.unflushed += 1;
    }

    /// Flushes when enough has piled up; cheap to call after every batch of queries (it
    /// reads the clock only when the count is a multiple of 16, and flushes after at most
    /// FLUSH_EVERY queries whatever the batch sizes).
    pub fn maybe_flush(&mut self) {
        if self.unflushed >= FLUSH_EVERY
            || (self.unflushed > 0
                && self.unflushed.is_multiple_of(16)
                && self.last_flush.elapsed() >= FLUSH_AFTER)
        {
            self.flush();
        }
    }

    /// Pushes everything counted so far to the shared metrics.
    pub fn flush(&mut self) {
        if self.unflushed == 0 {
            return;
        }
        self.requests.iter_mut().for_each(|c| c.flush());
        self.responses.iter_mut().for_each(|c| c.flush());
        self.duration.iter_mut().for_each(|h| h.flush());
        self.request_size
            .iter_mut()
            .chain(self.response_size.iter_mut())
            .for_each(|h| h.flush());
        self.unflushed = 0;
        self.last_flush = Instant::now();
    }
}

/// Reads what the metrics need from a query and its response.
pub fn sample(
    transport: Transport,
    ipv6: bool,
    query: &[u8],
    response: Option<(&[u8], Plugin)>,
    elapsed: Duration,
) -> Sample {
    Sample {
        transport,
        ipv6,
        qtype: query_type(query),
        request_len: query.len(),
        response: response
            .filter(|(r, _)| r.len() >= 12)
            .map(|(r, plugin)| ResponseSample {
                len: r.len(),
                rcode: r[3] & 0x0f,
                badvers: has_badvers(r),
                plugin,
            }),
        elapsed,
    }
}

/// The QTYPE of a query, 0 when it has none.
fn query_type(q: &[u8]) -> u16 {
    let mut pos = 12;
    while let Some(&len) = q.get(pos) {
        if len == 0 {
            return q
                .get(pos + 1..pos + 3)
                .map_or(0, |t| u16::from_be_bytes([t[0], t[1]]));
        }
        if len & 0xc0 != 0 {
            return 0;
        }
        pos += 1 + len as usize;
    }
    0
}

/// Whether a response ends in an OPT record carrying extended rcode BADVERS.
fn has_badvers(r: &[u8]) -> bool {
    r.len() >= 23
        && r[r.len() - 11..r.len() - 8] == [0, 0, 41]
        && r[r.len() - 6] == 1
        && r[10..12] != [0, 0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorder_counts_reach_the_exposition_after_a_flush() {
        let m = Metrics::new();
        let mut r = m.recorder("dns://127.0.0.1:53");
        let q = [0u8, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, b'a', 0, 0, 1, 0, 1];
        let mut resp = q.to_vec();
        resp[3] = 3;
        r.record(&sample(
            Transport::Udp,
            false,
            &q,
            Some((&resp, Plugin::Kubernetes)),
            Duration::from_micros(5),
        ));
        assert!(
            !m.render().contains(r#"type="A",view="",zone="."} 1"#),
            "counted before the flush"
        );
        r.flush();
        let text = m.render();
        assert!(
            text.contains(r#"coredns_dns_requests_total{family="1",proto="udp",server="dns://127.0.0.1:53",type="A",view="",zone="."} 1"#),
            "{text}"
        );
        assert!(text.contains(r#"coredns_dns_responses_total{plugin="kubernetes",rcode="NXDOMAIN",server="dns://127.0.0.1:53",view="",zone="."} 1"#));
        assert!(text.contains("coredns_build_info{"));
    }
}
