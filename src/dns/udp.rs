//! UDP: one blocking socket and one thread per core, all bound to the same port with
//! SO_REUSEPORT so the kernel spreads datagrams over them. Each thread owns its receive
//! and response buffers, so answering a query allocates nothing and shares nothing.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

use super::handler::{QueryHandler, Reply, Transport};
use crate::shutdown::Shutdown;

/// How often an idle worker looks at the shutdown flag.
const POLL: Duration = Duration::from_millis(200);

/// Binds one socket with SO_REUSEPORT (and a large receive buffer).
pub fn bind_reuseport(addr: SocketAddr) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_port(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    // Best effort: absorbs bursts while a worker is busy; the kernel caps it anyway.
    let _ = socket.set_recv_buffer_size(4 << 20);
    socket.bind(&addr.into())?;
    let socket: UdpSocket = socket.into();
    socket.set_read_timeout(Some(POLL))?;
    Ok(socket)
}

/// Binds `count` sockets to `addr`; port 0 picks one port for all of them.
pub fn bind(addr: SocketAddr, count: usize) -> io::Result<Vec<UdpSocket>> {
    let first = bind_reuseport(addr)?;
    let addr = first.local_addr()?;
    let mut sockets = vec![first];
    for _ in 1..count.max(1) {
        sockets.push(bind_reuseport(addr)?);
    }
    Ok(sockets)
}

/// Starts one worker thread per socket.
pub fn spawn_workers(
    sockets: Vec<UdpSocket>,
    handler: Arc<QueryHandler>,
    shutdown: Shutdown,
) -> io::Result<Vec<JoinHandle<()>>> {
    sockets
        .into_iter()
        .enumerate()
        .map(|(i, socket)| {
            let handler = handler.clone();
            let shutdown = shutdown.clone();
            std::thread::Builder::new()
                .name(format!("udp-{i}"))
                .spawn(move || serve(Arc::new(socket), &handler, &shutdown))
        })
        .collect()
}

fn serve(socket: Arc<UdpSocket>, handler: &Arc<QueryHandler>, shutdown: &Shutdown) {
    let mut packet = vec![0u8; 65535];
    let mut out = Vec::with_capacity(4096);
    while !shutdown.is_triggered() {
        let (len, peer) = match socket.recv_from(&mut packet) {
            Ok(r) => r,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                continue;
            }
            Err(e) => {
                // ICMP errors from earlier sends surface here (ECONNREFUSED): not ours to fix.
                tracing::debug!(error = %e, "udp receive failed");
                continue;
            }
        };
        let reply = catch_unwind(AssertUnwindSafe(|| {
            handler.handle(&packet[..len], Transport::Udp, &mut out)
        }));
        match reply {
            Ok(Reply::Send) => {
                if let Err(e) = socket.send_to(&out, peer) {
                    tracing::debug!(error = %e, %peer, "udp send failed");
                }
            }
            Ok(Reply::Drop) => {}
            Ok(Reply::Defer) => {
                // Waits for an upstream: off this thread, on the runtime.
                let Some(runtime) = handler.runtime() else {
                    continue;
                };
                let (handler, socket, packet) =
                    (handler.clone(), socket.clone(), packet[..len].to_vec());
                runtime.spawn(async move {
                    if let Some(answer) = handler.handle_deferred(packet, Transport::Udp).await {
                        let _ = socket.send_to(&answer, peer);
                    }
                });
            }
            Err(_) => tracing::error!(%peer, "answering a query panicked; the packet was dropped"),
        }
    }
}
