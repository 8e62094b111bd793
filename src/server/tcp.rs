//! TCP (RFC 7766): length-prefixed messages, several in flight per connection. A reader
//! answers each message as it arrives and hands the answer to a writer task, so pipelined
//! queries never wait for each other. Idle connections, slow senders and connection
//! floods are bounded. On shutdown no new query is read, but answers already owed are
//! written before the connection closes.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio::time::timeout;

use super::driver::{Driver, Origin, Replier, Step, Transport};
use super::observe::Observer;
use crate::shutdown::Shutdown;

#[derive(Debug, Clone, Copy)]
pub struct TcpLimits {
    /// Longest wait for the next message, and longest time one message may take to arrive.
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

/// Answers up to this many messages ahead of a client that is slow to read.
const WRITE_QUEUE: usize = 64;
/// How long, after shutdown, connections may take to deliver answers already owed.
const GRACE: Duration = Duration::from_secs(2);

/// What every connection needs.
#[derive(Clone)]
pub struct TcpContext {
    pub driver: Arc<Driver>,
    pub observer: Arc<Observer>,
    pub limits: TcpLimits,
}

/// Accepts connections until shutdown, then waits (at most [`GRACE`]) for the open ones
/// to finish what they owe.
pub async fn serve(listener: TcpListener, cx: TcpContext, shutdown: Shutdown) {
    let max = cx.limits.max_connections.max(1);
    let slots = Arc::new(Semaphore::new(max));
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.wait() => break,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: wait a little rather than spin.
                tracing::warn!(error = %e, "tcp accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // An IPv4 client of a dual-stack listener is logged and counted as IPv4.
        let peer = SocketAddr::new(peer.ip().to_canonical(), peer.port());
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "tcp connection limit reached; closing the new connection");
            continue;
        };
        let (cx, shutdown) = (cx.clone(), shutdown.clone());
        tokio::spawn(async move {
            let _slot = slot;
            if let Err(e) = connection(stream, peer, &cx, &shutdown).await {
                tracing::debug!(%peer, error = %e, "tcp connection ended");
            }
        });
    }
    drop(listener);
    let _ = timeout(GRACE, slots.acquire_many(max as u32)).await;
}

/// A message with its two-byte length in front, as TCP carries it.
pub fn frame(message: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(message.len() + 2);
    frame.extend_from_slice(&(message.len() as u16).to_be_bytes());
    frame.extend_from_slice(message);
    frame
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    cx: &TcpContext,
    shutdown: &Shutdown,
) -> io::Result<()> {
    let _ = stream.set_nodelay(true);
    let (rd, wr) = stream.into_split();
    serve_stream(rd, wr, peer, cx, shutdown).await
}

/// One connection's messages, read from `rd` and answered on `wr` until the client
/// closes, stalls or shutdown comes. Apart from the socket, so that the framing runs the
/// same on any byte stream: the tests and the fuzzer feed it streams cut anywhere.
pub async fn serve_stream<R, W>(
    mut rd: R,
    wr: W,
    peer: SocketAddr,
    cx: &TcpContext,
    shutdown: &Shutdown,
) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let limits = cx.limits;
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(WRITE_QUEUE);
    let writer = tokio::spawn(async move {
        let mut wr = BufWriter::new(wr);
        while let Some(frame) = rx.recv().await {
            wr.write_all(&frame).await?;
            // Batch answers that are already waiting into one write.
            while let Ok(frame) = rx.try_recv() {
                wr.write_all(&frame).await?;
            }
            wr.flush().await?;
        }
        io::Result::Ok(())
    });
    let replier = Replier::Tcp(tx.clone());
    let mut message = Vec::with_capacity(512);
    let mut out = Vec::with_capacity(512);
    loop {
        let mut len = [0u8; 2];
        let read = tokio::select! {
            r = timeout(limits.idle_timeout, rd.read_exact(&mut len)) => r,
            _ = shutdown.wait() => break,
        };
        match read {
            Err(_) => break,
            Ok(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            Ok(Err(e)) => return Err(e),
            Ok(Ok(_)) => {}
        }
        message.resize(u16::from_be_bytes(len) as usize, 0);
        match timeout(limits.idle_timeout, rd.read_exact(&mut message)).await {
            Err(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "message arrived too slowly",
                ));
            }
            Ok(r) => r?,
        };
        let origin = Origin {
            transport: Transport::Tcp,
            peer,
            reply_to: peer,
            received: Instant::now(),
            observer: &cx.observer,
            replier: &replier,
        };
        // A zone transfer answers with many messages, written from this task.
        match super::transfer::serve(&cx.driver, &message, peer, &origin, &tx).await {
            Ok(true) => continue,
            Ok(false) => {}
            Err(()) => break,
        }
        let answered = match cx.driver.handle(&message, &origin, &mut out) {
            // Answered later by the driver: later queries on this connection need not wait.
            Step::Pending => continue,
            Step::Answer(o) => (o, true),
            Step::Drop(o) => (o, false),
        };
        let (mut observation, send) = answered;
        observation.elapsed = origin.received.elapsed();
        cx.observer.record_shared(&observation, &message);
        if send && tx.send(frame(&out)).await.is_err() {
            break; // the writer failed: the connection is gone
        }
    }
    // Answers still owed hold their own senders (the replier's among them): the writer
    // ends once they are delivered.
    drop(replier);
    drop(tx);
    match timeout(GRACE, writer).await {
        Ok(r) => r.map_err(io::Error::other)?,
        Err(_) => Ok(()),
    }
}
