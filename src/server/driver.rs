//! The driver: one query path for every transport and every block. It parses a packet
//! once, applies the wire rules that need no zone, runs the block's chain, and returns
//! what to send with what was observed. A query that needs an upstream is resumed on
//! the runtime by the driver itself, which then sends the answer through the transport's
//! [`Replier`] and records it: the transports never see a continuation.

use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use prometheus::IntCounter;

use arc_swap::Guard;

use super::chain::{Chain, Outcome, Pass, Pending, Plugin};
use super::observe::{Observation, Observer, Response};
use super::tcp;
use crate::forward::ForwardError;
use crate::wire::writer::{ADVERTISED_UDP_SIZE, ResponseWriter, Section};
use crate::wire::{
    CLASS_ANY, CLASS_IN, Head, QName, Query, Rcode, Rejected, WireError, parse_query, rtype,
};

/// The transport a query came over, which bounds the answer's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// How a transport takes an answer that comes later: cloned only when a query suspends.
#[derive(Clone)]
pub enum Replier {
    /// The worker's socket (answers go back to the query's sender).
    Udp(Arc<std::net::UdpSocket>),
    /// The connection's writer task.
    Tcp(tokio::sync::mpsc::Sender<Vec<u8>>),
}

impl Replier {
    async fn send(&self, peer: SocketAddr, answer: &[u8]) {
        match self {
            Replier::Udp(socket) => {
                if let Err(e) = socket.send_to(answer, peer) {
                    tracing::debug!(%peer, error = %e, "udp send failed");
                }
            }
            Replier::Tcp(tx) => {
                let _ = tx.send(tcp::frame(answer)).await;
            }
        }
    }
}

/// Where a packet came from, and how to reach its sender later.
pub struct Origin<'a> {
    pub transport: Transport,
    /// The client, as logs and metrics name it (an IPv4 client of a dual-stack socket
    /// as IPv4).
    pub peer: SocketAddr,
    /// Where a later answer goes: the address as the kernel gave it (v4-mapped on a
    /// dual-stack socket).
    pub reply_to: SocketAddr,
    /// When the transport took the packet in (a suspended query is charged from here).
    pub received: Instant,
    pub observer: &'a Arc<Observer>,
    pub replier: &'a Replier,
}

/// What the transport does with a packet.
pub enum Step {
    /// Send `out`; record the observation (its `elapsed` is the transport's to fill in).
    Answer(Observation),
    /// Send nothing; record the observation.
    Drop(Observation),
    /// The driver answers later, sends and records it itself.
    Pending,
}

/// Runs one block's chain. The chain is swapped whole on reload.
pub struct Driver {
    chain: ArcSwap<Chain>,
    runtime: tokio::runtime::Handle,
    panics: IntCounter,
    /// The largest UDP answer, whatever larger size a client advertises.
    max_udp_size: u16,
}

impl Driver {
    /// Must be called inside a Tokio runtime: continuations run on it.
    pub fn new(chain: Chain, panics: IntCounter) -> Self {
        Driver {
            chain: ArcSwap::from_pointee(chain),
            runtime: tokio::runtime::Handle::current(),
            panics,
            max_udp_size: ADVERTISED_UDP_SIZE,
        }
    }

    /// Honours clients' EDNS buffer sizes up to `size` (at least 512) instead of
    /// [`ADVERTISED_UDP_SIZE`].
    pub fn with_max_udp_size(mut self, size: u16) -> Self {
        self.max_udp_size = size.max(512);
        self
    }

    /// The chain queries are answered from now.
    pub fn chain(&self) -> Arc<Chain> {
        self.chain.load_full()
    }

    /// Replaces the chain (reload); queries in flight finish on the old one.
    pub fn set_chain(&self, chain: Chain) {
        self.chain.store(Arc::new(chain));
    }

    /// Answers one packet into `out` (cleared first), or takes it over. A panic while
    /// answering is counted and the packet dropped: one bad packet never stops a worker.
    pub fn handle(&self, packet: &[u8], origin: &Origin<'_>, out: &mut Vec<u8>) -> Step {
        match catch_unwind(AssertUnwindSafe(|| self.run(packet, origin, out))) {
            Ok(step) => step,
            Err(_) => {
                self.panics.inc();
                tracing::error!(peer = %origin.peer, "answering a query panicked; the packet was dropped");
                Step::Drop(Observation::new(origin, packet, None))
            }
        }
    }

    fn run(&self, packet: &[u8], origin: &Origin<'_>, out: &mut Vec<u8>) -> Step {
        let (q, limit) = match checked(packet, origin.transport, self.max_udp_size, out) {
            Ok(checked) => checked,
            Err(Some((head, rcode))) => {
                let response = Response::of(out, rcode, Plugin::None);
                return Step::Answer(Observation::new(origin, packet, head).answered(response));
            }
            Err(None) => return Step::Drop(Observation::new(origin, packet, None)),
        };
        let observation = Observation::new(origin, packet, Some(q.head()));
        let name = QName::question(&q);
        let chain = self.chain.load();
        let mut pass = Pass {
            query: &q,
            name: &name,
            transport: origin.transport,
            limit,
            out,
        };
        match chain.run(&mut pass) {
            Outcome::Answered(plugin) => {
                Step::Answer(observation.answered(Response::read(out, plugin)))
            }
            Outcome::AnsweredRefresh(plugin, pending) => {
                let chain = Guard::into_inner(chain);
                if let Pending::Forward { at, question } = pending {
                    self.runtime.spawn(async move {
                        let _ = chain.resolve(at, question).await;
                    });
                }
                Step::Answer(observation.answered(Response::read(out, plugin)))
            }
            Outcome::Suspend(pending) => {
                // A chase goes on writing the response the zone began.
                let written = match pending {
                    Pending::Chase { .. } => out.clone(),
                    Pending::Forward { .. } => Vec::new(),
                };
                let suspended = Suspended {
                    chain: Guard::into_inner(chain),
                    pending,
                    packet: packet.to_vec(),
                    head: q.head(),
                    limit,
                    written,
                    observation,
                    observer: origin.observer.clone(),
                    replier: origin.replier.clone(),
                    reply_to: origin.reply_to,
                };
                self.runtime.spawn(suspended.resume());
                Step::Pending
            }
        }
    }
}

/// A query waiting for an upstream, with all it needs to be answered: the packet (its
/// question is echoed), what the synchronous pass learned and wrote, and how to reply.
struct Suspended {
    chain: Arc<Chain>,
    pending: Pending,
    packet: Vec<u8>,
    head: Head,
    limit: usize,
    /// The response written so far (a chase), else empty.
    written: Vec<u8>,
    observation: Observation,
    observer: Arc<Observer>,
    replier: Replier,
    reply_to: SocketAddr,
}

impl Suspended {
    async fn resume(self) {
        let Suspended {
            chain,
            pending,
            packet,
            head,
            limit,
            mut written,
            observation,
            observer,
            replier,
            reply_to,
        } = self;
        let at = match &pending {
            Pending::Forward { at, .. } | Pending::Chase { at, .. } => *at,
        };
        let (mut out, plugin) = match pending {
            Pending::Forward { at, question } => {
                let mut out = Vec::with_capacity(512);
                let plugin = match chain.resolve(at, question).await {
                    Ok((entry, stale)) => {
                        let now = tokio::time::Instant::now();
                        entry
                            .answer
                            .serve_head(&head, &packet, now, stale, limit, &mut out);
                        if stale {
                            Plugin::Cache
                        } else {
                            Plugin::Forward
                        }
                    }
                    Err(ForwardError::Overloaded) => {
                        let mut w = ResponseWriter::for_head(&mut out, &head, &packet, limit);
                        w.set_rcode(Rcode::REFUSED);
                        w.finish();
                        Plugin::Forward
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "forwarding failed");
                        let mut w = ResponseWriter::for_head(&mut out, &head, &packet, limit);
                        w.set_rcode(Rcode::SERVFAIL);
                        w.set_recursion_available();
                        w.finish();
                        Plugin::Forward
                    }
                };
                (out, plugin)
            }
            Pending::Chase { at, target, writer } => {
                let mut w = ResponseWriter::resume(&mut written, writer);
                match chain.resolve(at, target).await {
                    Ok((entry, stale)) => {
                        let now = tokio::time::Instant::now();
                        entry
                            .answer
                            .for_each_answer(now, stale, |owner, rtype, ttl, rdata| {
                                w.raw_record(Section::Answer, owner, rtype, ttl, rdata);
                            });
                        if entry.answer.truncated() {
                            w.set_truncated();
                        }
                        w.set_rcode(entry.answer.rcode());
                    }
                    Err(_) => w.set_rcode(Rcode::SERVFAIL),
                }
                w.set_recursion_available();
                w.finish();
                (written, Plugin::Kubernetes)
            }
        };
        chain.balance(at, &mut out);
        replier.send(reply_to, &out).await;
        let mut observation = observation.answered(Response::read(&out, plugin));
        observation.elapsed = observation.received.elapsed();
        observer.record_shared(&observation, &packet);
    }
}

/// Parses the packet and applies the wire rules that need no zone; returns the query and
/// the largest response its transport takes (over UDP the client's EDNS size, at most
/// `max_udp_size`). On `Err(Some(..))` `out` holds the answer
/// (with what was read of the query, and the code it got); on `Err(None)` nothing is to
/// be sent.
#[allow(clippy::type_complexity)]
fn checked<'p>(
    packet: &'p [u8],
    transport: Transport,
    max_udp_size: u16,
    out: &mut Vec<u8>,
) -> Result<(Query<'p>, usize), Option<(Option<Head>, Rcode)>> {
    let q = match parse_query(packet) {
        Ok(q) => q,
        Err(Rejected {
            header: Some((id, flags)),
            error,
        }) => {
            let code = match error {
                WireError::Opcode(_) => Rcode::NOTIMP,
                _ => Rcode::FORMERR,
            };
            ResponseWriter::header_only(out, id, flags, code);
            return Err(Some((None, code)));
        }
        Err(_) => return Err(None),
    };
    let limit = match (transport, q.edns) {
        (Transport::Tcp, _) => u16::MAX as usize,
        (Transport::Udp, None) => 512,
        (Transport::Udp, Some(e)) => e.udp_size.clamp(512, max_udp_size) as usize,
    };
    let refuse_with = |out: &mut Vec<u8>, code: Rcode| {
        let mut w = ResponseWriter::new(out, &q, limit);
        w.set_rcode(code);
        w.finish();
        Err(Some((Some(q.head()), code)))
    };
    if q.edns.is_some_and(|e| e.version > 0) {
        return refuse_with(out, Rcode::BADVERS);
    }
    if q.qclass != CLASS_IN && q.qclass != CLASS_ANY {
        return refuse_with(out, Rcode::REFUSED);
    }
    match q.qtype {
        // Zone transfers are not offered.
        rtype::AXFR | rtype::IXFR => return refuse_with(out, Rcode::REFUSED),
        // OPT is not a question.
        rtype::OPT => return refuse_with(out, Rcode::FORMERR),
        _ => {}
    }
    Ok((q, limit))
}
