//! `tcp_framing`: an arbitrary byte stream, arriving in arbitrary pieces, through a TCP
//! connection's reader (`server::tcp::serve_stream`) on the sample cluster's driver.
//! Invariants: no panic; what the connection writes back is exactly the framed answers
//! the driver gives, in order, for each complete message of the stream (cut where the
//! stream is cut: a partial length or message at the end gets nothing).
//!
//! Input: a byte `n`, then `n % 8` piece sizes (each byte `b` is a piece of `b + 1`
//! bytes, cycled; none means one piece), then the stream.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use clusterdns::server::tcp::{TcpContext, TcpLimits, frame, serve_stream};
use clusterdns::server::{Origin, Step, Transport};
use clusterdns::shutdown::Shutdown;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::query_chain::fixture;

const PEER: &str = "127.0.0.1:53001";

pub fn run(input: &[u8]) {
    let Some((&n, rest)) = input.split_first() else {
        return;
    };
    let n = (n % 8) as usize;
    if rest.len() < n {
        return;
    }
    let (pieces, stream) = rest.split_at(n);
    let expected = expected(stream);

    let f = fixture();
    let cx = TcpContext {
        driver: f.driver.clone(),
        observer: f.observer.clone(),
        limits: TcpLimits {
            idle_timeout: Duration::from_secs(30),
            max_connections: 1,
        },
    };
    let written = Arc::new(Mutex::new(Vec::new()));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let reader = Pieces {
            stream,
            pieces,
            next: 0,
            pos: 0,
            waited: false,
        };
        let sink = Sink(written.clone());
        let _ = serve_stream(reader, sink, PEER.parse().unwrap(), &cx, &Shutdown::new()).await;
        // On an error the connection returns at once and its writer task finishes on its
        // own: wait for it to let go of the sink.
        for _ in 0..10_000 {
            if Arc::strong_count(&written) == 1 {
                break;
            }
            tokio::task::yield_now().await;
        }
    });
    assert_eq!(
        Arc::strong_count(&written),
        1,
        "tcp_framing: the writer never finished"
    );
    let written = written.lock().unwrap();
    assert!(
        *written == expected,
        "tcp_framing: wrote {written:02x?}\nexpected {expected:02x?}\ninput {input:02x?}"
    );
}

/// The answers the driver gives, framed, to each complete message of `stream`.
fn expected(mut stream: &[u8]) -> Vec<u8> {
    let f = fixture();
    let peer: SocketAddr = PEER.parse().unwrap();
    let mut answers = Vec::new();
    let mut out = Vec::new();
    while let Some((len, rest)) = stream.split_first_chunk::<2>() {
        let Some((message, rest)) = rest.split_at_checked(u16::from_be_bytes(*len) as usize) else {
            break;
        };
        let origin = Origin {
            transport: Transport::Tcp,
            peer,
            reply_to: peer,
            received: Instant::now(),
            observer: &f.observer,
            replier: &f.replier,
        };
        match f.driver.handle(message, &origin, &mut out) {
            Step::Answer(_) => {
                super::query_chain::check(message, Transport::Tcp, &out);
                answers.extend_from_slice(&frame(&out));
            }
            Step::Drop(_) => {}
            Step::Pending => panic!("a zone-only chain suspended: {message:02x?}"),
        }
        stream = rest;
    }
    answers
}

/// A stream delivered in pieces of the given sizes, each after the reader has once been
/// told to wait (as a socket with nothing yet to read does).
struct Pieces<'a> {
    stream: &'a [u8],
    pieces: &'a [u8],
    next: usize,
    pos: usize,
    waited: bool,
}

impl AsyncRead for Pieces<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.pos == self.stream.len() {
            return Poll::Ready(Ok(())); // end of stream
        }
        if !self.waited {
            self.waited = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let piece = match self.pieces.get(self.next % self.pieces.len().max(1)) {
            Some(&b) => b as usize + 1,
            None => self.stream.len(),
        };
        let take = piece.min(self.stream.len() - self.pos).min(buf.remaining());
        let pos = self.pos;
        buf.put_slice(&self.stream[pos..pos + take]);
        self.pos += take;
        self.next += 1;
        self.waited = false;
        Poll::Ready(Ok(()))
    }
}

/// What the connection writes, kept.
struct Sink(Arc<Mutex<Vec<u8>>>);

impl AsyncWrite for Sink {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
