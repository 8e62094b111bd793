//! UDP: one blocking socket and one thread per core, all bound to the same port with
//! SO_REUSEPORT so the kernel spreads datagrams over them. Each thread takes the queries
//! waiting on its socket in batches ([`super::udp_batch`]), hands each to the driver and
//! sends the batch's answers at once. It owns its buffers and its metrics recorder, so
//! answering a query allocates nothing and shares nothing.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

use super::driver::{Driver, Origin, Replier, Step, Transport};
use super::observe::{Observation, Observer};
use super::udp_batch::{BATCH, Inbox, Outbox};
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
    pub driver: Arc<Driver>,
    pub observer: Arc<Observer>,
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

impl Worker {
    fn serve(&self, socket: Arc<UdpSocket>) {
        let fd = socket.as_raw_fd();
        let mut inbox = Inbox::default();
        let mut outbox = Outbox::default();
        let mut seen: [Option<Observation>; BATCH] = [None; BATCH];
        let mut recorder = self.observer.recorder();
        let replier = Replier::Udp(socket.clone());
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
            for (i, seen) in seen.iter_mut().enumerate().take(count) {
                let Some((query, sender, peer)) = inbox.get(i) else {
                    tracing::debug!(
                        "udp datagram dropped: longer than any query, or from an unknown address family"
                    );
                    *seen = None;
                    continue;
                };
                let origin = Origin {
                    transport: Transport::Udp,
                    peer,
                    // A later answer goes back to the address as the kernel gave it (a
                    // v4-mapped one on a dual-stack socket); `peer` is for logs.
                    reply_to: sender.address().unwrap_or(peer),
                    received: started,
                    observer: &self.observer,
                    replier: &replier,
                };
                *seen = match self.driver.handle(query, &origin, outbox.next_buffer()) {
                    Step::Answer(o) => {
                        outbox.push(sender);
                        Some(o)
                    }
                    Step::Drop(o) => Some(o),
                    Step::Pending => None,
                };
            }
            outbox.send(fd);
            if self.observer.is_on() {
                let elapsed = started.elapsed();
                for (i, seen) in seen.iter_mut().enumerate().take(count) {
                    if let (Some(o), Some((query, _, _))) = (seen.as_mut(), inbox.get(i)) {
                        o.elapsed = elapsed;
                        self.observer.record(&mut recorder, o, query);
                    }
                }
            }
            recorder.maybe_flush();
        }
        recorder.flush();
    }
}
