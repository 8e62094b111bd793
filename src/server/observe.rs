//! The one place a query is observed: the driver says what it answered (type, rcode,
//! the stage that answered, sizes, flags, transport, family), and [`Observer::record`]
//! turns that into the CoreDNS metrics and the query log line — for UDP, TCP and
//! suspended answers alike. Nothing here reads a packet again.
//!
//! Counting stays off the query path's shared cache lines: each UDP worker owns a
//! [`QueryRecorder`] of prometheus *local* counters and histograms (plain adds, flushed to
//! the shared metrics every few milliseconds or when the worker goes idle); TCP and
//! suspended answers share one recorder per listener behind a mutex and flush at once.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus::HistogramVec;
use prometheus::local::{LocalHistogram, LocalIntCounter};

use super::chain::Plugin;
use super::driver::{Origin, Transport};
use crate::logging::{Answered, QueryLine, QueryLogFormat, presentation};
use crate::metrics::Metrics;
use crate::wire::{Head, Rcode, rtype};

/// What the response to a query was.
#[derive(Debug, Clone, Copy)]
pub struct Response {
    pub len: usize,
    pub rcode: Rcode,
    /// The header's flags word (QR, AA, TC, RD, RA …).
    pub flags: u16,
    pub plugin: Plugin,
}

impl Response {
    /// Reads the header we just wrote (a response is at least a header); the extended
    /// rcode bits are the caller's to give when it set any.
    pub fn of(out: &[u8], rcode: Rcode, plugin: Plugin) -> Response {
        Response {
            len: out.len(),
            rcode,
            flags: u16::from_be_bytes([out[2], out[3]]),
            plugin,
        }
    }

    /// As [`Response::of`], the rcode taken from the header.
    pub fn read(out: &[u8], plugin: Plugin) -> Response {
        Response::of(
            out,
            Rcode::of_header(out).unwrap_or(Rcode::SERVFAIL),
            plugin,
        )
    }
}

/// One query, as the metrics and the log see it.
#[derive(Debug, Clone, Copy)]
pub struct Observation {
    pub transport: Transport,
    pub peer: SocketAddr,
    /// The query as parsed; `None` for a packet that is not a readable query.
    pub head: Option<Head>,
    pub request_len: usize,
    pub response: Option<Response>,
    /// From the packet's arrival until its answer left.
    pub elapsed: Duration,
    pub received: Instant,
}

impl Observation {
    pub fn new(origin: &Origin<'_>, packet: &[u8], head: Option<Head>) -> Self {
        Observation {
            transport: origin.transport,
            peer: origin.peer,
            head,
            request_len: packet.len(),
            response: None,
            elapsed: Duration::ZERO,
            received: origin.received,
        }
    }

    pub fn answered(self, response: Response) -> Self {
        Observation {
            response: Some(response),
            ..self
        }
    }

    pub fn qtype(&self) -> u16 {
        self.head.map_or(0, |h| h.qtype)
    }
}

/// Query types with a label of their own; the rest count as "other" (as CoreDNS does).
const TYPES: [(u16, &str); 12] = [
    (rtype::A, "A"),
    (rtype::AAAA, "AAAA"),
    (rtype::CNAME, "CNAME"),
    (rtype::PTR, "PTR"),
    (rtype::SRV, "SRV"),
    (rtype::TXT, "TXT"),
    (rtype::SOA, "SOA"),
    (rtype::NS, "NS"),
    (rtype::MX, "MX"),
    (rtype::ANY, "ANY"),
    (rtype::HTTPS, "HTTPS"),
    (rtype::SVCB, "SVCB"),
];
const N_TYPES: usize = TYPES.len() + 1;
const RCODES: [Rcode; 7] = [
    Rcode::NOERROR,
    Rcode::FORMERR,
    Rcode::SERVFAIL,
    Rcode::NXDOMAIN,
    Rcode::NOTIMP,
    Rcode::REFUSED,
    Rcode::BADVERS,
];
const N_RCODES: usize = RCODES.len() + 1;
const PLUGINS: [Plugin; 4] = [
    Plugin::None,
    Plugin::Kubernetes,
    Plugin::Cache,
    Plugin::Forward,
];
const PROTOS: [&str; 2] = ["udp", "tcp"];
/// The zone and view labels: a block answers for ".".
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

fn rcode_index(rcode: Rcode) -> usize {
    RCODES
        .iter()
        .position(|r| *r == rcode)
        .unwrap_or(RCODES.len())
}

fn plugin_index(plugin: Plugin) -> usize {
    PLUGINS.iter().position(|p| *p == plugin).unwrap_or(0)
}

/// Observes the queries of one listener (the `server` label names it).
pub struct Observer {
    server: Arc<str>,
    metrics: Arc<Metrics>,
    /// Count queries (off when `/metrics` is off: nobody would read them).
    count: bool,
    /// The query log (`[log] queries` and `query_format`, changed on reload).
    log: Arc<QueryLog>,
    /// TCP and suspended answers, recorded from the runtime's threads.
    shared: Mutex<QueryRecorder>,
}

impl Observer {
    pub fn new(server: Arc<str>, metrics: Arc<Metrics>, count: bool, log: Arc<QueryLog>) -> Self {
        let shared = Mutex::new(QueryRecorder::new(&metrics, &server));
        Observer {
            server,
            metrics,
            count,
            log,
            shared,
        }
    }

    /// Whether anything is recorded at all (so a worker can skip the loop).
    pub fn is_on(&self) -> bool {
        self.count || self.log.get().is_some()
    }

    /// A recorder of this listener's own, for one UDP worker.
    pub fn recorder(&self) -> QueryRecorder {
        QueryRecorder::new(&self.metrics, &self.server)
    }

    /// Records one query: its metrics into `recorder`, and its log line. `packet` is the
    /// query (the log prints its question name).
    pub fn record(&self, recorder: &mut QueryRecorder, o: &Observation, packet: &[u8]) {
        if self.count {
            recorder.record(o);
        }
        if let Some(format) = self.log.get() {
            query_line(o, packet).log(format);
        }
    }

    /// Records one query answered on the runtime (TCP, suspended answers) and flushes.
    pub fn record_shared(&self, o: &Observation, packet: &[u8]) {
        if !self.is_on() {
            return;
        }
        let mut r = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        self.record(&mut r, o, packet);
        r.flush();
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
    fn new(metrics: &Metrics, server: &str) -> Self {
        let q = &metrics.queries;
        let requests = (0..2 * 2 * N_TYPES)
            .map(|i| {
                let (proto, family, t) = (i / (2 * N_TYPES), (i / N_TYPES) % 2, i % N_TYPES);
                let family = if family == 0 { "1" } else { "2" };
                q.requests
                    .with_label_values(&[server, ZONE, VIEW, PROTOS[proto], family, type_name(t)])
                    .local()
            })
            .collect();
        let responses = (0..N_RCODES * PLUGINS.len())
            .map(|i| {
                let rcode = RCODES.get(i / PLUGINS.len()).map_or("other", |r| r.name());
                let plugin = PLUGINS[i % PLUGINS.len()].label();
                q.responses
                    .with_label_values(&[server, ZONE, VIEW, rcode, plugin])
                    .local()
            })
            .collect();
        let duration = (0..N_TYPES)
            .map(|t| {
                q.duration
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
            request_size: sizes(&q.request_size),
            response_size: sizes(&q.response_size),
            unflushed: 0,
            last_flush: Instant::now(),
        }
    }

    fn record(&mut self, o: &Observation) {
        let proto = usize::from(o.transport == Transport::Tcp);
        let t = type_index(o.qtype());
        let ipv6 = usize::from(o.peer.is_ipv6());
        self.requests[proto * 2 * N_TYPES + ipv6 * N_TYPES + t].inc();
        // CoreDNS records the EDNS buffer size here; the request's length is what we see
        // for every query, with or without EDNS.
        self.request_size[proto].observe(o.request_len as f64);
        self.duration[t].observe(o.elapsed.as_secs_f64());
        if let Some(r) = o.response {
            self.responses[rcode_index(r.rcode) * PLUGINS.len() + plugin_index(r.plugin)].inc();
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

/// Whether queries are logged, and how: shared by a block's listeners, switched on reload.
#[derive(Default)]
pub struct QueryLog(AtomicU8);

impl QueryLog {
    pub fn new(format: Option<QueryLogFormat>) -> Self {
        let log = QueryLog::default();
        log.set(format);
        log
    }

    pub fn get(&self) -> Option<QueryLogFormat> {
        match self.0.load(Ordering::Relaxed) {
            1 => Some(QueryLogFormat::Coredns),
            2 => Some(QueryLogFormat::Fields),
            _ => None,
        }
    }

    pub fn set(&self, format: Option<QueryLogFormat>) {
        let code = match format {
            None => 0,
            Some(QueryLogFormat::Coredns) => 1,
            Some(QueryLogFormat::Fields) => 2,
        };
        self.0.store(code, Ordering::Relaxed);
    }
}

/// The query log's line for an observed query: the values the driver read, the name
/// taken from where the driver found it in the packet (nothing is parsed again).
fn query_line(o: &Observation, packet: &[u8]) -> QueryLine {
    let head = o.head;
    let edns = head.and_then(|h| h.edns);
    let tcp = o.transport == Transport::Tcp;
    QueryLine {
        peer: o.peer,
        // A packet that is no readable query still has its ID logged.
        id: head
            .map(|h| h.id)
            .or_else(|| packet.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]]))),
        name: head.map(|h| presentation(h.qname_wire(packet))),
        qtype: head.map(|h| h.qtype),
        qclass: head.map(|h| h.qclass),
        tcp,
        size: o.request_len,
        dnssec_ok: edns.is_some_and(|e| e.dnssec_ok),
        // As CoreDNS reports it: 65535 over TCP, else the client's size (512 without EDNS).
        bufsize: if tcp {
            u16::MAX
        } else {
            edns.map_or(512, |e| e.udp_size.max(512))
        },
        answered: o.response.map(|r| Answered {
            rcode: r.rcode.value(),
            flags: r.flags,
            size: r.len,
            plugin: r.plugin.label(),
        }),
        duration: o.elapsed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::{Chain, Driver, Replier, Step};

    /// Runs `packet` through a driver with an empty chain and returns the observation.
    fn observe(packet: &[u8], transport: Transport) -> Observation {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let _entered = runtime.enter();
        let metrics = Metrics::new();
        let driver = Driver::new(Chain { stages: Vec::new() }, metrics.panics.clone());
        let observer = Arc::new(Observer::new(
            "dns://t".into(),
            metrics,
            true,
            Arc::default(),
        ));
        let replier = Replier::Udp(Arc::new(std::net::UdpSocket::bind("127.0.0.1:0").unwrap()));
        let peer = "10.0.0.1:999".parse().unwrap();
        let origin = Origin {
            transport,
            peer,
            reply_to: peer,
            received: Instant::now(),
            observer: &observer,
            replier: &replier,
        };
        match driver.handle(packet, &origin, &mut Vec::new()) {
            Step::Answer(o) | Step::Drop(o) => o,
            Step::Pending => panic!("an empty chain suspends nothing"),
        }
    }

    /// ID 0x1234, RD, one question `Web.Ex"a.` AAAA IN, an OPT with DO, 1232 and `version`.
    fn query(version: u8) -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1];
        q.extend_from_slice(b"\x03Web\x04Ex\"a\x00\x00\x1c\x00\x01");
        q.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, version, 0x80, 0, 0, 0]);
        q
    }

    #[test]
    fn the_log_line_holds_what_the_driver_saw() {
        let q = query(1);
        let o = observe(&q, Transport::Udp);
        let line = query_line(&o, &q);
        assert_eq!(line.id, Some(0x1234));
        assert_eq!(line.name.as_deref(), Some("web.ex\\\"a."));
        assert_eq!(
            (line.type_name(), line.class_name()),
            ("AAAA".into(), "IN".into())
        );
        assert_eq!((line.dnssec_ok, line.bufsize), (true, 1232));
        // EDNS version 1: BADVERS, whose upper bits live in the OPT record.
        assert_eq!(line.rcode_name(), "BADVERS");
        assert_eq!(line.flags_text(), "qr,rd");
        assert_eq!(line.answered.map(|a| a.plugin), Some(""));
        let q0 = query(0);
        let tcp = query_line(&observe(&q0, Transport::Tcp), &q0);
        assert_eq!(
            (tcp.bufsize, tcp.rcode_name()),
            (65535, "REFUSED".to_string())
        );
        // Garbage keeps its ID; everything else is a dash.
        let bad = query_line(&observe(&q[..14], Transport::Udp), &q[..14]);
        assert_eq!(
            (bad.id, bad.name_or_dash(), bad.bufsize),
            (Some(0x1234), "-", 512)
        );
    }

    #[test]
    fn counts_reach_the_exposition_after_a_flush() {
        let metrics = Metrics::new();
        let observer = Observer::new(
            "dns://127.0.0.1:53".into(),
            metrics.clone(),
            true,
            Arc::default(),
        );
        let mut r = observer.recorder();
        let q = query(1);
        let o = observe(&q, Transport::Udp);
        observer.record(&mut r, &o, &q);
        assert!(
            !metrics
                .render()
                .contains(r#"type="AAAA",view="",zone="."} 1"#)
        );
        r.flush();
        let text = metrics.render();
        assert!(
            text.contains(r#"coredns_dns_requests_total{family="1",proto="udp",server="dns://127.0.0.1:53",type="AAAA",view="",zone="."} 1"#),
            "{text}"
        );
        assert!(text.contains(r#"coredns_dns_responses_total{plugin="",rcode="BADVERS",server="dns://127.0.0.1:53",view="",zone="."} 1"#), "{text}");
    }
}
