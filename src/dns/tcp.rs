//! TCP (RFC 7766): length-prefixed messages, several in flight per connection. A reader
//! answers each message as it arrives and hands the answer to a writer task, so pipelined
//! queries never wait for each other. Idle connections, slow senders and connection
//! floods are bounded.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio::time::timeout;

use super::handler::{QueryHandler, Reply, Transport};
use crate::shutdown::Shutdown;

#[derive(Debug, Clone, Copy)]
pub struct TcpLimits {
    /// Longest wait for the next message, and longest time one message may take to arrive.
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

/// Answers up to this many messages ahead of a client that is slow to read.
const WRITE_QUEUE: usize = 64;

pub async fn serve(
    listener: TcpListener,
    handler: Arc<QueryHandler>,
    limits: TcpLimits,
    shutdown: Shutdown,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.wait() => return,
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
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "tcp connection limit reached; closing the new connection");
            continue;
        };
        let handler = handler.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let _slot = slot;
            tokio::select! {
                r = connection(stream, &handler, limits) => {
                    if let Err(e) = r {
                        tracing::debug!(%peer, error = %e, "tcp connection ended");
                    }
                }
                _ = shutdown.wait() => {}
            }
        });
    }
}

fn frame(message: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(message.len() + 2);
    frame.extend_from_slice(&(message.len() as u16).to_be_bytes());
    frame.extend_from_slice(message);
    frame
}

async fn connection(
    stream: TcpStream,
    handler: &Arc<QueryHandler>,
    limits: TcpLimits,
) -> io::Result<()> {
    let _ = stream.set_nodelay(true);
    let (mut rd, wr) = stream.into_split();
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
    let mut message = Vec::with_capacity(512);
    let mut out = Vec::with_capacity(512);
    loop {
        let mut len = [0u8; 2];
        match timeout(limits.idle_timeout, rd.read_exact(&mut len)).await {
            Err(_) => break,
            Ok(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            Ok(Err(e)) => return Err(e),
            Ok(Ok(_)) => {}
        }
        let len = u16::from_be_bytes(len) as usize;
        message.resize(len, 0);
        match timeout(limits.idle_timeout, rd.read_exact(&mut message)).await {
            Err(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "message arrived too slowly",
                ));
            }
            Ok(r) => r?,
        };
        match handler.handle(&message, Transport::Tcp, &mut out) {
            Reply::Drop => continue,
            Reply::Send => {}
            Reply::Defer => {
                // Answered when the upstream is: later queries on this connection need not wait.
                let (handler, tx, message) = (handler.clone(), tx.clone(), message.clone());
                tokio::spawn(async move {
                    if let Some(answer) = handler.handle_deferred(message, Transport::Tcp).await {
                        let _ = tx.send(frame(&answer)).await;
                    }
                });
                continue;
            }
        }
        if tx.send(frame(&out)).await.is_err() {
            break; // the writer failed: the connection is gone
        }
    }
    drop(tx);
    writer.await.map_err(io::Error::other)?
}
