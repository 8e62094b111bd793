//! Batched datagram I/O: `recvmmsg` takes every query waiting on the socket (up to
//! [`BATCH`]) in one system call, and `sendmmsg` sends their answers in one more. On this
//! machine the kernel is over half of each query's cost; two system calls per batch
//! instead of two per query is what `perf-notes.md` measured as the step from 0.84× to
//! 0.93× NSD for the same work.
//!
//! `MSG_WAITFORONE` makes the receive return as soon as one datagram is there, with
//! whatever else is already queued: an idle server answers a lone query at once, a busy
//! one spreads the system calls over the backlog it has anyway.
//!
//! This is the crate's one module with `unsafe`: the two system calls and reading the
//! sender's address out of the kernel's `sockaddr_storage`. Neither crate we could use does
//! it soundly today: socket2 0.6 has no mmsg calls, and nix 0.32's `sendmmsg` result
//! iterator reads address slots it never initialised.

#![allow(unsafe_code)]

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;
use std::ptr::null_mut;

/// Datagrams per system call. NSD takes up to 100; beyond a few dozen the gain is nil,
/// and each one adds to the wait of the first answer in a full batch.
pub const BATCH: usize = 32;

/// Room for one query. Resolvers send queries of a few dozen bytes and advertise at most
/// 4096 for EDNS; a longer datagram is no query we could answer over UDP, and is dropped
/// (the kernel flags it `MSG_TRUNC`).
const SLOT: usize = 4096;

/// Where a datagram came from, kept in the kernel's form so that the answer goes back
/// without a conversion.
#[derive(Clone, Copy)]
pub struct Sender {
    name: libc::sockaddr_storage,
    len: libc::socklen_t,
}

impl Sender {
    fn empty() -> Self {
        Self {
            // SAFETY: sockaddr_storage is plain old data; all zeroes is AF_UNSPEC.
            name: unsafe { zeroed() },
            len: 0,
        }
    }

    /// The address as the kernel gave it, in the standard library's spelling (an IPv4
    /// client of a dual-stack socket is a v4-mapped IPv6 address); `None` for a family
    /// other than IPv4 and IPv6 (which a UDP socket of ours never reports).
    pub fn address(&self) -> Option<SocketAddr> {
        let len = self.len as usize;
        match i32::from(self.name.ss_family) {
            libc::AF_INET if len >= size_of::<libc::sockaddr_in>() => {
                // SAFETY: the kernel wrote a sockaddr_in (the family says so, the length
                // covers it), and sockaddr_storage is large and aligned enough for any.
                let sin = unsafe { &*(&self.name as *const _ as *const libc::sockaddr_in) };
                Some(SocketAddr::V4(SocketAddrV4::new(
                    Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)),
                    u16::from_be(sin.sin_port),
                )))
            }
            libc::AF_INET6 if len >= size_of::<libc::sockaddr_in6>() => {
                // SAFETY: as above, for sockaddr_in6.
                let sin6 = unsafe { &*(&self.name as *const _ as *const libc::sockaddr_in6) };
                Some(SocketAddr::V6(SocketAddrV6::new(
                    Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                    u16::from_be(sin6.sin6_port),
                    u32::from_be(sin6.sin6_flowinfo),
                    sin6.sin6_scope_id,
                )))
            }
            _ => None,
        }
    }
}

/// An IPv4 client of a dual-stack socket as the IPv4 address it is.
fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

fn empty_header() -> libc::mmsghdr {
    // SAFETY: mmsghdr is plain old data; null pointers with zero lengths are what the
    // kernel takes for "no name, no data, no control".
    unsafe { zeroed() }
}

fn empty_iovec() -> libc::iovec {
    libc::iovec {
        iov_base: null_mut(),
        iov_len: 0,
    }
}

/// The receive side: buffers and headers reused for every batch, so receiving allocates
/// nothing. Its headers hold raw pointers into itself, refreshed before each call, so it
/// stays on the thread that made it (it is not `Send`).
pub struct Inbox {
    buffers: Box<[u8]>,
    senders: [Sender; BATCH],
    lens: [usize; BATCH],
    /// Each sender's address, read once per datagram, v4-mapped addresses as IPv4 (for
    /// logs and metrics; answers go to the [`Sender`] as is); `None` for a datagram to
    /// drop (longer than a slot, or from an address family we cannot answer).
    peers: [Option<SocketAddr>; BATCH],
    iovs: [libc::iovec; BATCH],
    headers: [libc::mmsghdr; BATCH],
    count: usize,
}

impl Default for Inbox {
    fn default() -> Self {
        Self {
            buffers: vec![0u8; BATCH * SLOT].into_boxed_slice(),
            senders: [Sender::empty(); BATCH],
            lens: [0; BATCH],
            peers: [None; BATCH],
            iovs: [empty_iovec(); BATCH],
            headers: [empty_header(); BATCH],
            count: 0,
        }
    }
}

impl Inbox {
    /// Waits for a datagram (up to the socket's read timeout) and takes it with all that
    /// are queued behind it, up to [`BATCH`]. Returns how many it took.
    pub fn receive(&mut self, fd: RawFd) -> io::Result<usize> {
        self.count = 0;
        for (i, ((iov, header), sender)) in self
            .iovs
            .iter_mut()
            .zip(self.headers.iter_mut())
            .zip(self.senders.iter_mut())
            .enumerate()
        {
            *iov = libc::iovec {
                iov_base: self.buffers[i * SLOT..].as_mut_ptr().cast(),
                iov_len: SLOT,
            };
            sender.len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            *header = empty_header();
            header.msg_hdr.msg_name = (&mut sender.name as *mut libc::sockaddr_storage).cast();
            header.msg_hdr.msg_namelen = sender.len;
            header.msg_hdr.msg_iov = iov;
            header.msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: every header points at its own iovec, slot of `buffers` (SLOT bytes) and
        // sockaddr_storage, all owned by `self`, which is borrowed mutably for the call.
        let received = unsafe {
            libc::recvmmsg(
                fd,
                self.headers.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_WAITFORONE,
                null_mut(),
            )
        };
        if received < 0 {
            return Err(io::Error::last_os_error());
        }
        self.count = (received as usize).min(BATCH);
        for i in 0..self.count {
            let header = &self.headers[i];
            self.senders[i].len = header.msg_hdr.msg_namelen;
            self.lens[i] = (header.msg_len as usize).min(SLOT);
            let truncated = header.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
            self.peers[i] = if truncated {
                None
            } else {
                self.senders[i].address().map(canonical)
            };
        }
        Ok(self.count)
    }

    /// The `i`th datagram of the last batch, with its sender, or `None` for one to drop
    /// (longer than a slot, or from an address we cannot answer).
    pub fn get(&self, i: usize) -> Option<(&[u8], &Sender, SocketAddr)> {
        if i >= self.count {
            return None;
        }
        let peer = self.peers[i]?;
        let start = i * SLOT;
        Some((
            &self.buffers[start..start + self.lens[i]],
            &self.senders[i],
            peer,
        ))
    }
}

/// The send side: one answer buffer per slot of the batch, kept with its capacity, so
/// writing answers allocates nothing once warm.
pub struct Outbox {
    answers: Vec<Vec<u8>>,
    to: [Sender; BATCH],
    iovs: [libc::iovec; BATCH],
    headers: [libc::mmsghdr; BATCH],
    count: usize,
}

impl Default for Outbox {
    fn default() -> Self {
        Self {
            answers: (0..BATCH).map(|_| Vec::with_capacity(1232)).collect(),
            to: [Sender::empty(); BATCH],
            iovs: [empty_iovec(); BATCH],
            headers: [empty_header(); BATCH],
            count: 0,
        }
    }
}

impl Outbox {
    /// The buffer the next answer is written into; [`Outbox::push`] queues it.
    pub fn next_buffer(&mut self) -> &mut Vec<u8> {
        &mut self.answers[self.count]
    }

    /// Queues the answer written into [`Outbox::next_buffer`] for `to`, and returns its
    /// index for [`Outbox::answer`].
    pub fn push(&mut self, to: &Sender) -> usize {
        self.to[self.count] = *to;
        self.count += 1;
        self.count - 1
    }

    /// The `i`th answer queued since the last [`Outbox::clear`].
    pub fn answer(&self, i: usize) -> &[u8] {
        &self.answers[i]
    }

    /// Sends every queued answer. An answer the kernel refuses (the error is logged at
    /// debug level: a client that went away is not ours to fix) does not hold back the
    /// ones after it.
    pub fn send(&mut self, fd: RawFd) {
        for i in 0..self.count {
            let answer = &self.answers[i];
            self.iovs[i] = libc::iovec {
                iov_base: answer.as_ptr().cast_mut().cast(),
                iov_len: answer.len(),
            };
            let header = &mut self.headers[i];
            *header = empty_header();
            header.msg_hdr.msg_name = (&mut self.to[i].name as *mut libc::sockaddr_storage).cast();
            header.msg_hdr.msg_namelen = self.to[i].len;
            header.msg_hdr.msg_iov = &mut self.iovs[i];
            header.msg_hdr.msg_iovlen = 1;
        }
        let mut sent = 0;
        while sent < self.count {
            // SAFETY: headers[sent..count] point at their own iovec, answer and address,
            // all owned by `self` and unchanged for the call; the kernel only reads them.
            let done = unsafe {
                libc::sendmmsg(
                    fd,
                    self.headers[sent..].as_mut_ptr(),
                    (self.count - sent) as libc::c_uint,
                    0,
                )
            };
            if done > 0 {
                sent += done as usize;
                continue;
            }
            let error = io::Error::last_os_error();
            if error.kind() != io::ErrorKind::Interrupted {
                let to = self.to[sent].address();
                tracing::debug!(%error, ?to, "udp send failed");
                sent += 1;
            }
        }
    }

    /// Forgets the queued answers (their buffers are kept).
    pub fn clear(&mut self) {
        self.count = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;
    use std::time::Duration;

    fn pair(server: &str, client: &str) -> io::Result<(UdpSocket, UdpSocket)> {
        let server = UdpSocket::bind(server)?;
        server.set_read_timeout(Some(Duration::from_secs(2)))?;
        let client = UdpSocket::bind(client)?;
        client.set_read_timeout(Some(Duration::from_secs(2)))?;
        Ok((server, client))
    }

    /// Echoes `total` datagrams back with an "a" in front, in as many batches as it takes.
    fn echo(server: &UdpSocket, client: &UdpSocket, total: usize) {
        let mut inbox = Inbox::default();
        let mut outbox = Outbox::default();
        let mut seen = 0;
        let mut batches = 0;
        while seen < total {
            let n = inbox.receive(server.as_raw_fd()).unwrap();
            assert!((1..=BATCH).contains(&n));
            batches += 1;
            outbox.clear();
            for i in 0..n {
                let (bytes, sender, peer) = inbox.get(i).unwrap();
                assert_eq!(peer, client.local_addr().unwrap());
                assert_eq!(bytes, format!("q{}", seen + i).as_bytes());
                let out = outbox.next_buffer();
                out.clear();
                out.push(b'a');
                out.extend_from_slice(bytes);
                let slot = outbox.push(sender);
                assert_eq!(outbox.answer(slot)[0], b'a');
            }
            outbox.send(server.as_raw_fd());
            seen += n;
        }
        assert!(batches < total, "{total} datagrams took {batches} receives");
        let mut buf = [0u8; 64];
        for i in 0..total {
            let (len, _) = client.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..len], format!("aq{i}").as_bytes());
        }
    }

    fn burst(server: &UdpSocket, client: &UdpSocket, total: usize) {
        for i in 0..total {
            client
                .send_to(format!("q{i}").as_bytes(), server.local_addr().unwrap())
                .unwrap();
        }
    }

    #[test]
    fn a_burst_over_ipv4_is_received_and_answered_in_batches() {
        let (server, client) = pair("127.0.0.1:0", "127.0.0.1:0").unwrap();
        burst(&server, &client, BATCH + 5);
        echo(&server, &client, BATCH + 5);
    }

    #[test]
    fn a_burst_over_ipv6_is_received_and_answered_in_batches() {
        let Ok((server, client)) = pair("[::1]:0", "[::1]:0") else {
            eprintln!("no IPv6 loopback here");
            return;
        };
        burst(&server, &client, 10);
        echo(&server, &client, 10);
    }

    #[test]
    fn an_oversized_datagram_is_dropped_and_the_rest_kept() {
        let (server, client) = pair("127.0.0.1:0", "127.0.0.1:0").unwrap();
        let to = server.local_addr().unwrap();
        client.send_to(&vec![7u8; SLOT + 100], to).unwrap();
        client.send_to(b"small", to).unwrap();
        let mut inbox = Inbox::default();
        let mut got = Vec::new();
        while got.len() < 2 {
            let n = inbox.receive(server.as_raw_fd()).unwrap();
            got.extend((0..n).map(|i| inbox.get(i).map(|(bytes, _, _)| bytes.to_vec())));
        }
        assert_eq!(got, vec![None, Some(b"small".to_vec())]);
    }

    #[test]
    fn an_answer_that_cannot_be_sent_does_not_hold_back_the_next() {
        let (server, client) = pair("127.0.0.1:0", "127.0.0.1:0").unwrap();
        burst(&server, &client, 1);
        let mut inbox = Inbox::default();
        assert_eq!(inbox.receive(server.as_raw_fd()).unwrap(), 1);
        let (_, sender, _) = inbox.get(0).unwrap();
        let mut outbox = Outbox::default();
        // A datagram too long for UDP: the kernel refuses it with EMSGSIZE.
        outbox.next_buffer().resize(70_000, 0);
        outbox.push(sender);
        outbox.next_buffer().clear();
        outbox.next_buffer().extend_from_slice(b"second");
        outbox.push(sender);
        outbox.send(server.as_raw_fd());
        let mut buf = [0u8; 64];
        let (len, _) = client.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"second");
    }
}
