//! UDP: one blocking socket and one thread per core, all bound to the same port with
//! SO_REUSEPORT so the kernel spreads datagrams over them. Each thread takes the queries
//! waiting on its socket in batches ([`super::udp_batch`]) and owns its buffers and its
//! metrics recorder, so answering a query allocates nothing and shares nothing.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

use super::handler::{Plugin, QueryHandler, Reply, Transport};
use super::udp_batch::{BATCH, Inbox, Outbox};
use crate::logging;
use crate::metrics::{self, Metrics};
use crate::shutdown::Shutdown;

/// How often an idle worker looks at the shutdown flag (and flushes its metrics).
const POLL: Duration = Duration::from_millis(100);

/// Binds one socket with SO_REUSEPORT (and a large receive buffer). An IPv6 socket
/// takes IPv4 too (as v4-mapped addresses) only when `dual_stack` says so; otherwise it
/// is IPv6-only, whatever the host's `net.ipv6.bindv6only`, so that an IPv4 socket on the
/// same port can coexist with it.
pub fn bind_reuseport(addr: SocketAddr, dual_stack: bool) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_port(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(!dual_stack)?;
    }
    // Best effort: absorbs bursts while a worker is busy; the kernel caps it anyway.
    let _ = socket.set_recv_buffer_size(4 << 20);
    socket.bind(&addr.into())?;
    let socket: UdpSocket = socket.into();
    socket.set_read_timeout(Some(POLL))?;
    Ok(socket)
}

/// Binds `count` sockets to `addr`; port 0 picks one port for all of them.
pub fn bind(addr: SocketAddr, count: usize, dual_stack: bool) -> io::Result<Vec<UdpSocket>> {
    let first = bind_reuseport(addr, dual_stack)?;
    let addr = first.local_addr()?;
    let mut sockets = vec![first];
    for _ in 1..count.max(1) {
        sockets.push(bind_reuseport(addr, dual_stack)?);
    }
    Ok(sockets)
}

/// What a worker needs besides its socket.
#[derive(Clone)]
pub struct Worker {
    pub handler: Arc<QueryHandler>,
    pub metrics: Arc<Metrics>,
    /// The `server` label: `dns://ADDR:PORT`.
    pub server: Arc<str>,
    /// Count queries in the metrics (off when `/metrics` is off: nobody would read them).
    pub count: bool,
    pub shutdown: Shutdown,
}

/// Starts one worker thread per socket.
pub fn spawn_workers(sockets: Vec<UdpSocket>, worker: Worker) -> io::Result<Vec<JoinHandle<()>>> {
    sockets
        .into_iter()
        .enumerate()
        .map(|(i, socket)| {
            let worker = worker.clone();
            std::thread::Builder::new()
                .name(format!("udp-{i}"))
                .spawn(move || worker.serve(Arc::new(socket)))
        })
        .collect()
}

/// What became of one datagram of a batch.
#[derive(Clone, Copy)]
enum Outcome {
    /// Answered: the index of the answer in the outbox.
    Sent(usize, Plugin),
    /// Read, but nothing to send (not a query, or too broken to answer, or a panic).
    Dropped,
    /// Handed to the runtime, which records it when the upstream answers.
    Deferred,
}

impl Worker {
    fn serve(&self, socket: Arc<UdpSocket>) {
        let fd = socket.as_raw_fd();
        let mut inbox = Inbox::default();
        let mut outbox = Outbox::default();
        let mut outcomes = [Outcome::Dropped; BATCH];
        let mut recorder = self.metrics.recorder(&self.server);
        while !self.shutdown.is_triggered() {
            let count = match inbox.receive(fd) {
                Ok(count) => count,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    recorder.flush();
                    continue;
                }
                Err(e) => {
                    // ICMP errors from earlier sends surface here (ECONNREFUSED): not ours to fix.
                    tracing::debug!(error = %e, "udp receive failed");
                    continue;
                }
            };
            // One clock read per batch: every query of it waited from here until the
            // batch's answers left, and that is the time it is charged.
            let started = Instant::now();
            outbox.clear();
            for (i, outcome) in outcomes.iter_mut().enumerate().take(count) {
                let Some((query, sender, peer)) = inbox.get(i) else {
                    tracing::debug!(
                        "udp datagram dropped: longer than any query, or from an unknown address family"
                    );
                    *outcome = Outcome::Dropped;
                    continue;
                };
                let out = outbox.next_buffer();
                let reply = catch_unwind(AssertUnwindSafe(|| {
                    self.handler.handle(query, Transport::Udp, out)
                }));
                *outcome = match reply {
                    Ok(Reply::Send(plugin)) => Outcome::Sent(outbox.push(sender), plugin),
                    Ok(Reply::Drop) => Outcome::Dropped,
                    Ok(Reply::Defer) => {
                        // The answer goes back to the address as the kernel gave it (a
                        // v4-mapped one on a dual-stack socket); `peer` is for logs.
                        let reply_to = sender.address().unwrap_or(peer);
                        let query = query.to_vec();
                        self.defer(query, peer, reply_to, socket.clone(), started);
                        Outcome::Deferred
                    }
                    Err(_) => {
                        self.metrics.panics.inc();
                        tracing::error!(%peer, "answering a query panicked; the packet was dropped");
                        Outcome::Dropped
                    }
                };
            }
            outbox.send(fd);
            let elapsed = started.elapsed();
            let log = self.handler.query_log();
            if self.count || log.is_some() {
                for (i, outcome) in outcomes.iter().enumerate().take(count) {
                    let response = match *outcome {
                        Outcome::Sent(slot, plugin) => Some((outbox.answer(slot), plugin)),
                        Outcome::Dropped => None,
                        Outcome::Deferred => continue,
                    };
                    let Some((query, _, peer)) = inbox.get(i) else {
                        continue;
                    };
                    if self.count {
                        let sample = metrics::sample(
                            Transport::Udp,
                            peer.is_ipv6(),
                            query,
                            response,
                            elapsed,
                        );
                        recorder.record(&sample);
                    }
                    if let Some(format) = log {
                        logging::log_query(format, peer, Transport::Udp, query, response, elapsed);
                    }
                }
            }
            recorder.maybe_flush();
        }
        recorder.flush();
    }

    /// Answers on the runtime a query that waits for an upstream.
    fn defer(
        &self,
        query: Vec<u8>,
        peer: SocketAddr,
        reply_to: SocketAddr,
        socket: Arc<UdpSocket>,
        started: Instant,
    ) {
        let me = self.clone();
        self.handler.runtime().spawn(async move {
            let answer = me
                .handler
                .clone()
                .handle_deferred(query.clone(), Transport::Udp)
                .await;
            if let Some((out, _)) = &answer {
                let _ = socket.send_to(out, reply_to);
            }
            let response = answer.as_ref().map(|(out, plugin)| (&out[..], *plugin));
            let elapsed = started.elapsed();
            let sample = metrics::sample(Transport::Udp, peer.is_ipv6(), &query, response, elapsed);
            me.metrics.record_shared(&me.server, &sample);
            if let Some(format) = me.handler.query_log() {
                logging::log_query(format, peer, Transport::Udp, &query, response, elapsed);
            }
        });
    }
}
