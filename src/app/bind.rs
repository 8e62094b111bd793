//! Binding a DNS listen address: its UDP sockets and TCP listener on one port.

use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;

use crate::server::udp;

/// Whether `addr` is `[::]:P` with no IPv4 address on port P in `listen`: then it takes
/// IPv4 clients too, as Go (and so CoreDNS) does with `[::]`. Listed with an IPv4
/// address on the same port, it is IPv6-only so that both sockets can be bound, in
/// either order, whatever the host's `net.ipv6.bindv6only`.
pub(super) fn serves_both_families(addr: SocketAddr, listen: &[SocketAddr]) -> bool {
    addr.ip() == IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        && !listen
            .iter()
            .any(|a| a.is_ipv4() && a.port() == addr.port())
}

/// Binds UDP and TCP on the same port; with port 0 the UDP port is chosen first and TCP
/// follows it (retrying a few times if another process holds that TCP port).
pub(super) fn bind_pair(
    addr: SocketAddr,
    workers: usize,
    dual_stack: bool,
    reuse_port: bool,
) -> io::Result<(Vec<std::net::UdpSocket>, TcpListener)> {
    let mut last_err = None;
    for _ in 0..16 {
        let sockets = udp::bind(addr, workers, dual_stack)?;
        let port = sockets[0].local_addr()?.port();
        let tcp_addr = SocketAddr::new(addr.ip(), port);
        match bind_tcp(tcp_addr, dual_stack, reuse_port) {
            Ok(l) => return Ok((sockets, l)),
            Err(e) if addr.port() == 0 => last_err = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_err.unwrap_or_else(|| io::Error::other("no free port")))
}

/// Binds a TCP listener; an IPv6 one is IPv6-only unless `dual_stack` (as for UDP).
fn bind_tcp(addr: SocketAddr, dual_stack: bool, reuse_port: bool) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    if addr.is_ipv6() {
        socket.set_only_v6(!dual_stack)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    socket.set_nonblocking(true)?;
    TcpListener::from_std(socket.into())
}
