//! From query bytes to answer bytes, independent of the transport. The chain: wire checks
//! (opcode, question count, EDNS version, class) → the cluster zones → the response cache
//! → the forwarder. Everything up to a cache hit is answered synchronously on the
//! transport's thread; a cache miss is [`Reply::Defer`]red to [`QueryHandler::handle_deferred`],
//! which waits for the upstream on the runtime.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use arc_swap::ArcSwap;
use tokio::time::Instant;

use super::wire::{CLASS_ANY, CLASS_IN, Query, Rejected, WireError, parse_query, rcode, rtype};
use super::writer::{ADVERTISED_UDP_SIZE, ResponseWriter, Section};
use crate::cache::{self, Entry, Lookup, ResponseCache};
use crate::forward::{ForwardError, Forwarder, Question};
use crate::logging::QueryLogFormat;
use crate::zone::names::QName;
use crate::zone::records::{self, ZoneOutcome};
use crate::zone::{ClusterZone, ZoneSettings};

/// The transport a query came over, which bounds the answer's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// Which part of the chain wrote a response (the `plugin` label of the metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plugin {
    /// The wire checks (FORMERR, NOTIMP, BADVERS, REFUSED …).
    None,
    Kubernetes,
    Cache,
    Forward,
}

/// What became of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// `out` holds the response.
    Send(Plugin),
    /// Nothing to send (not a query, or too broken to answer).
    Drop,
    /// The answer needs an upstream: call [`QueryHandler::handle_deferred`] with the packet.
    Defer,
}

/// The cache and the forwarder behind the zones, and the runtime their work runs on.
pub struct Resolver {
    pub cache: Arc<ResponseCache>,
    pub forwarder: Arc<Forwarder>,
    runtime: tokio::runtime::Handle,
}

impl Resolver {
    pub fn new(
        cache: Arc<ResponseCache>,
        forwarder: Forwarder,
        runtime: tokio::runtime::Handle,
    ) -> Self {
        Resolver {
            cache,
            forwarder: Arc::new(forwarder),
            runtime,
        }
    }

    /// Asks upstream and caches what comes back. On failure, an expired answer within
    /// the serve-stale window stands in.
    async fn resolve(
        &self,
        question: Question,
        name: &QName<'_>,
    ) -> Result<(Arc<Entry>, bool), ForwardError> {
        let key = question.key();
        let result = self.forwarder.forward(question).await;
        let now = Instant::now();
        let stale = || match self.cache.get(&key, now) {
            Lookup::Stale(e) | Lookup::Fresh { entry: e, .. } => Some(e),
            Lookup::Miss => None,
        };
        let fresh = result.as_ref().ok().and_then(|resp| {
            cache::CachedAnswer::from_response(resp, &self.cache.settings().ttl, now)
        });
        match (fresh, result) {
            (Some(a), _) if a.rcode() != rcode::SERVFAIL => {
                Ok((self.cache.insert(&key, name, a), false))
            }
            (Some(a), _) => match stale() {
                Some(e) => self.served_stale(e),
                None => Ok((self.cache.insert(&key, name, a), false)),
            },
            (None, Err(ForwardError::Overloaded)) => Err(ForwardError::Overloaded),
            (None, Err(e)) => match stale() {
                Some(entry) => self.served_stale(entry),
                None => Err(e),
            },
            (None, Ok(_)) => Err(ForwardError::NoAnswer),
        }
    }

    fn served_stale(&self, entry: Arc<Entry>) -> Result<(Arc<Entry>, bool), ForwardError> {
        self.cache.served_stale();
        Ok((entry, true))
    }

    /// Refreshes an entry in the background (prefetch).
    fn prefetch(self: &Arc<Self>, question: Question) {
        let me = self.clone();
        self.runtime.spawn(async move {
            let wire = question.name.clone();
            if let Some(name) = QName::written(&wire, 0) {
                let _ = me.resolve(question, &name).await;
            }
        });
    }
}

/// Everything a query is answered from. Swapped whole on config reload, so a query sees
/// one consistent configuration.
pub struct Chain {
    pub zone: Arc<ClusterZone>,
    pub settings: ZoneSettings,
    pub resolver: Option<Arc<Resolver>>,
}

pub struct QueryHandler {
    chain: ArcSwap<Chain>,
    runtime: tokio::runtime::Handle,
    /// The query log: 0 off, else 1 + the format's index (see [`QueryHandler::query_log`]).
    query_log: AtomicU8,
    /// The largest UDP answer, whatever larger size a client advertises.
    max_udp_size: u16,
}

impl QueryHandler {
    /// Must be called inside a Tokio runtime: deferred answers run on it.
    pub fn new(zone: Arc<ClusterZone>, settings: ZoneSettings, resolver: Option<Resolver>) -> Self {
        QueryHandler {
            chain: ArcSwap::from_pointee(Chain {
                zone,
                settings,
                resolver: resolver.map(Arc::new),
            }),
            runtime: tokio::runtime::Handle::current(),
            query_log: AtomicU8::new(0),
            max_udp_size: ADVERTISED_UDP_SIZE,
        }
    }

    /// Honours clients' EDNS buffer sizes up to `size` (at least 512) instead of
    /// [`ADVERTISED_UDP_SIZE`].
    pub fn with_max_udp_size(mut self, size: u16) -> Self {
        self.max_udp_size = size.max(512);
        self
    }

    /// Whether every query is logged (the `log` plugin of CoreDNS), and how.
    pub fn query_log(&self) -> Option<QueryLogFormat> {
        match self.query_log.load(Ordering::Relaxed) {
            1 => Some(QueryLogFormat::Coredns),
            2 => Some(QueryLogFormat::Fields),
            _ => None,
        }
    }

    pub fn set_query_log(&self, log: Option<QueryLogFormat>) {
        let code = match log {
            None => 0,
            Some(QueryLogFormat::Coredns) => 1,
            Some(QueryLogFormat::Fields) => 2,
        };
        self.query_log.store(code, Ordering::Relaxed);
    }

    /// The chain queries are answered from now.
    pub fn chain(&self) -> Arc<Chain> {
        self.chain.load_full()
    }

    /// Replaces the chain (config reload); queries in flight finish on the old one.
    pub fn set_chain(&self, chain: Chain) {
        self.chain.store(Arc::new(chain));
    }

    /// The runtime deferred answers run on.
    pub fn runtime(&self) -> &tokio::runtime::Handle {
        &self.runtime
    }

    /// Answers one packet into `out` (cleared first), unless it needs an upstream.
    pub fn handle(&self, packet: &[u8], transport: Transport, out: &mut Vec<u8>) -> Reply {
        let (q, limit) = match checked(packet, transport, self.max_udp_size, out) {
            Ok(q) => q,
            Err(reply) => return reply,
        };
        let name = QName::question(&q);
        let chain = self.chain.load();
        let mut w = ResponseWriter::new(out, &q, limit);
        match records::answer(&chain.zone, &chain.settings, &name, q.qtype, &mut w) {
            ZoneOutcome::Answered => {
                w.finish();
                Reply::Send(Plugin::Kubernetes)
            }
            ZoneOutcome::ExternalTarget(_) if chain.resolver.is_some() => Reply::Defer,
            ZoneOutcome::ExternalTarget(_) => {
                w.finish();
                Reply::Send(Plugin::Kubernetes)
            }
            ZoneOutcome::NotOurs | ZoneOutcome::FallThrough => match &chain.resolver {
                Some(r) if r.forwarder.is_loop_probe(&name) => {
                    // Our own probe came back: answer it so the loop ends here.
                    let mut w = ResponseWriter::new(out, &q, limit);
                    w.set_rcode(rcode::NXDOMAIN as u16);
                    w.finish();
                    Reply::Send(Plugin::Forward)
                }
                Some(r) if r.forwarder.serves(&name) => {
                    let mut key = [0u8; cache::MAX_KEY_LEN];
                    let len = cache::key_of(&q, &mut key);
                    // One clock read decides freshness and counts the TTLs down alike.
                    let now = Instant::now();
                    match r.cache.get(&key[..len], now) {
                        Lookup::Fresh { entry, prefetch } => {
                            entry.answer.serve(&q, now, false, limit, out);
                            if prefetch {
                                r.prefetch(Question::of(&q));
                            }
                            Reply::Send(Plugin::Cache)
                        }
                        Lookup::Stale(_) | Lookup::Miss => Reply::Defer,
                    }
                }
                _ => {
                    refuse(out, &q, limit);
                    Reply::Send(Plugin::None)
                }
            },
        }
    }

    /// Answers a packet that [`QueryHandler::handle`] deferred: waits for the cache or
    /// the upstream. `None` when there is nothing to send.
    pub async fn handle_deferred(
        self: Arc<Self>,
        packet: Vec<u8>,
        transport: Transport,
    ) -> Option<(Vec<u8>, Plugin)> {
        let mut out = Vec::with_capacity(512);
        let (q, limit) = match checked(&packet, transport, self.max_udp_size, &mut out) {
            Ok(q) => q,
            Err(Reply::Send(p)) => return Some((out, p)),
            Err(_) => return None,
        };
        let chain = self.chain.load_full();
        let Some(resolver) = chain.resolver.clone() else {
            refuse(&mut out, &q, limit);
            return Some((out, Plugin::None));
        };
        let name = QName::question(&q);
        let mut w = ResponseWriter::new(&mut out, &q, limit);
        let plugin = match records::answer(&chain.zone, &chain.settings, &name, q.qtype, &mut w) {
            ZoneOutcome::Answered => {
                w.finish();
                Plugin::Kubernetes
            }
            ZoneOutcome::ExternalTarget(at) => {
                // Chase the ExternalName target upstream and append its answer.
                let target_wire = w.bytes()[at as usize..].to_vec();
                let target = QName::written(&target_wire, at)?;
                if resolver.forwarder.serves(&target) {
                    let question = Question::with_name(&target, &q);
                    match resolver.resolve(question, &target).await {
                        Ok((entry, stale)) => {
                            let now = Instant::now();
                            entry
                                .answer
                                .for_each_answer(now, stale, |owner, rtype, ttl, rdata| {
                                    w.raw_record(Section::Answer, owner, rtype, ttl, rdata);
                                });
                            if entry.answer.truncated() {
                                w.set_truncated();
                            }
                            w.set_rcode(entry.answer.rcode() as u16);
                        }
                        Err(_) => w.set_rcode(rcode::SERVFAIL as u16),
                    }
                    w.set_recursion_available();
                }
                w.finish();
                Plugin::Kubernetes
            }
            ZoneOutcome::NotOurs | ZoneOutcome::FallThrough => {
                let question = Question {
                    client_tcp: transport == Transport::Tcp,
                    ..Question::of(&q)
                };
                match resolver.resolve(question, &name).await {
                    Ok((entry, stale)) => {
                        entry
                            .answer
                            .serve(&q, Instant::now(), stale, limit, &mut out);
                        if stale {
                            Plugin::Cache
                        } else {
                            Plugin::Forward
                        }
                    }
                    Err(ForwardError::Overloaded) => {
                        refuse(&mut out, &q, limit);
                        Plugin::Forward
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "forwarding failed");
                        let mut w = ResponseWriter::new(&mut out, &q, limit);
                        w.set_rcode(rcode::SERVFAIL as u16);
                        w.set_recursion_available();
                        w.finish();
                        Plugin::Forward
                    }
                }
            }
        };
        Some((out, plugin))
    }
}

/// Parses the packet and applies the wire rules that need no zone; the answer's size
/// limit is the client's EDNS size, at most `max_udp_size`, over UDP. On `Err`, `out`
/// already holds the answer (or nothing is to be sent).
fn checked<'p>(
    packet: &'p [u8],
    transport: Transport,
    max_udp_size: u16,
    out: &mut Vec<u8>,
) -> Result<(Query<'p>, usize), Reply> {
    let q = match parse_query(packet) {
        Ok(q) => q,
        Err(Rejected {
            header: Some((id, flags)),
            error,
        }) => {
            let code = match error {
                WireError::Opcode(_) => rcode::NOTIMP,
                _ => rcode::FORMERR,
            };
            ResponseWriter::header_only(out, id, flags, code);
            return Err(Reply::Send(Plugin::None));
        }
        Err(_) => return Err(Reply::Drop),
    };
    let limit = match (transport, q.edns) {
        (Transport::Tcp, _) => u16::MAX as usize,
        (Transport::Udp, None) => 512,
        (Transport::Udp, Some(e)) => e.udp_size.clamp(512, max_udp_size) as usize,
    };
    let refuse_with = |out: &mut Vec<u8>, code: u16| {
        let mut w = ResponseWriter::new(out, &q, limit);
        w.set_rcode(code);
        w.finish();
        Err(Reply::Send(Plugin::None))
    };
    if q.edns.is_some_and(|e| e.version > 0) {
        return refuse_with(out, rcode::BADVERS);
    }
    if q.qclass != CLASS_IN && q.qclass != CLASS_ANY {
        return refuse_with(out, rcode::REFUSED as u16);
    }
    match q.qtype {
        // Zone transfers are not offered.
        rtype::AXFR | rtype::IXFR => return refuse_with(out, rcode::REFUSED as u16),
        // OPT is not a question.
        rtype::OPT => return refuse_with(out, rcode::FORMERR as u16),
        _ => {}
    }
    Ok((q, limit))
}

/// The end of the chain: nobody here serves this name.
fn refuse(out: &mut Vec<u8>, q: &Query<'_>, limit: usize) {
    let mut w = ResponseWriter::new(out, q, limit);
    w.set_rcode(rcode::REFUSED as u16);
    w.finish();
}
