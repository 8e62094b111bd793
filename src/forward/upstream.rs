//! One upstream server: exchanges over UDP (TCP when truncated or forced, with reused
//! connections), its health, and the background probe that brings it back.

use std::io;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::timeout;

use super::metrics::ForwardMetrics;

/// Idle TCP connections kept per upstream.
const TCP_POOL: usize = 8;

#[derive(Debug)]
pub struct Upstream {
    pub addr: SocketAddr,
    fails: AtomicU32,
    healthy: AtomicBool,
    probing: AtomicBool,
    /// Set when our own loop probe came back through this upstream: never used again.
    looping: AtomicBool,
    idle_tcp: Mutex<Vec<TcpStream>>,
}

impl Upstream {
    pub fn new(addr: SocketAddr) -> Self {
        Upstream {
            addr,
            fails: AtomicU32::new(0),
            healthy: AtomicBool::new(true),
            probing: AtomicBool::new(false),
            looping: AtomicBool::new(false),
            idle_tcp: Mutex::new(Vec::new()),
        }
    }

    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed) && !self.is_looping()
    }

    pub fn is_looping(&self) -> bool {
        self.looping.load(Ordering::Relaxed)
    }

    pub fn mark_looping(&self) {
        self.looping.store(true, Ordering::Relaxed);
    }

    /// Records a success: the failure count starts over.
    pub fn succeeded(&self) {
        self.fails.store(0, Ordering::Relaxed);
    }

    /// Records a failure; returns true when this one marks the upstream down (the caller
    /// then starts the probe).
    pub fn failed(&self, max_fails: u32) -> bool {
        let fails = self.fails.fetch_add(1, Ordering::Relaxed) + 1;
        max_fails > 0 && fails >= max_fails && self.healthy.swap(false, Ordering::Relaxed)
    }

    /// Probes with `. IN NS` every `every` until the upstream answers, then marks it up.
    pub async fn probe_until_healthy(
        &self,
        every: Duration,
        per_try: Duration,
        metrics: &ForwardMetrics,
    ) {
        if self.probing.swap(true, Ordering::Relaxed) {
            return;
        }
        let probe = [
            0x00, 0x00, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 1,
        ];
        loop {
            tokio::time::sleep(every).await;
            let mut q = probe;
            q[..2].copy_from_slice(&rand::random::<u16>().to_be_bytes());
            if self.exchange_udp(&q, per_try).await.is_ok() {
                break;
            }
            metrics
                .healthcheck_failures
                .with_label_values(&["forward", &self.addr.to_string(), "timeout"])
                .inc();
        }
        self.fails.store(0, Ordering::Relaxed);
        self.healthy.store(true, Ordering::Relaxed);
        self.probing.store(false, Ordering::Relaxed);
        tracing::info!(upstream = %self.addr, "upstream answers again");
    }

    /// Sends `query` over UDP and waits for the matching response (same ID and
    /// question); anything else arriving on the socket is ignored.
    pub async fn exchange_udp(&self, query: &[u8], wait: Duration) -> io::Result<Vec<u8>> {
        let local: SocketAddr = if self.addr.is_ipv4() {
            "0.0.0.0:0".parse().expect("address")
        } else {
            "[::]:0".parse().expect("address")
        };
        let socket = UdpSocket::bind(local).await?;
        socket.connect(self.addr).await?;
        socket.send(query).await?;
        let mut buf = vec![0u8; 65535];
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let n = tokio::time::timeout_at(deadline, socket.recv(&mut buf))
                .await
                .map_err(|_| {
                    io::Error::new(io::ErrorKind::TimedOut, "upstream did not answer")
                })??;
            if matches_query(query, &buf[..n]) {
                buf.truncate(n);
                return Ok(buf);
            }
        }
    }

    /// Sends `query` over TCP, on a pooled connection when one is idle.
    pub async fn exchange_tcp(&self, query: &[u8], wait: Duration) -> io::Result<Vec<u8>> {
        let pooled = self.idle_tcp.lock().ok().and_then(|mut p| p.pop());
        if let Some(conn) = pooled {
            // An idle connection may have been closed by the upstream: one retry on a new one.
            if let Ok((answer, conn)) = timeout(wait, tcp_round(conn, query))
                .await
                .unwrap_or_else(|_| Err(timed_out()))
            {
                self.keep(conn);
                return Ok(answer);
            }
        }
        let connect = TcpStream::connect(self.addr);
        let conn = timeout(wait, connect).await.map_err(|_| timed_out())??;
        let _ = conn.set_nodelay(true);
        let (answer, conn) = timeout(wait, tcp_round(conn, query))
            .await
            .map_err(|_| timed_out())??;
        self.keep(conn);
        Ok(answer)
    }

    fn keep(&self, conn: TcpStream) {
        if let Ok(mut pool) = self.idle_tcp.lock()
            && pool.len() < TCP_POOL
        {
            pool.push(conn);
        }
    }
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "upstream did not answer over TCP")
}

async fn tcp_round(mut conn: TcpStream, query: &[u8]) -> io::Result<(Vec<u8>, TcpStream)> {
    let mut framed = Vec::with_capacity(query.len() + 2);
    framed.extend_from_slice(&(query.len() as u16).to_be_bytes());
    framed.extend_from_slice(query);
    conn.write_all(&framed).await?;
    loop {
        let mut len = [0u8; 2];
        conn.read_exact(&mut len).await?;
        let mut answer = vec![0u8; u16::from_be_bytes(len) as usize];
        conn.read_exact(&mut answer).await?;
        if matches_query(query, &answer) {
            return Ok((answer, conn));
        }
    }
}

/// Whether `answer` answers `query`: a response, same ID, same question (any case).
pub fn matches_query(query: &[u8], answer: &[u8]) -> bool {
    if answer.len() < 12 || query.len() < 12 || answer[..2] != query[..2] || answer[2] & 0x80 == 0 {
        return false;
    }
    let Some(qend) = crate::wire::answer::skip_name(query, 12).map(|e| e + 4) else {
        return false;
    };
    let question = &query[12..qend.min(query.len())];
    answer
        .get(12..12 + question.len())
        .is_some_and(|a| a.eq_ignore_ascii_case(question))
        || answer[4..6] == [0, 0] // FORMERR/NOTIMP without a question
}
