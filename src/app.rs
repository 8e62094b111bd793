//! Wiring: config → source → zone index → query handler → listeners. Owns start-up order
//! (the zone is loaded before any socket answers) and shutdown.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;

use thiserror::Error;
use tokio::net::TcpListener;

use crate::cache::ResponseCache;
use crate::config::Config;
use crate::dns::QueryHandler;
use crate::dns::handler::Resolver;
use crate::dns::tcp::{self, TcpLimits};
use crate::dns::udp;
use crate::forward::Forwarder;
use crate::shutdown::Shutdown;
use crate::source::ClusterEvent;
use crate::source::file::{self, ClusterFile, FileError};
use crate::zone::{ClusterIndex, ClusterZone, PodMode};

/// The sample cluster built into the binary (config/sample-cluster.yaml).
pub const SAMPLE_CLUSTER: &str = include_str!("../config/sample-cluster.yaml");

#[derive(Debug, Error)]
pub enum StartError {
    #[error("cluster source: {0}")]
    Source(#[from] FileError),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: io::Error },
    #[error("cannot start a thread: {0}")]
    Thread(io::Error),
}

/// A running server.
pub struct Server {
    udp_addrs: Vec<SocketAddr>,
    tcp_addrs: Vec<SocketAddr>,
    handler: Arc<QueryHandler>,
    shutdown: Shutdown,
    threads: Vec<JoinHandle<()>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Server {
    /// Loads the cluster, binds every listen address and starts answering. Must be called
    /// inside a Tokio runtime.
    pub async fn start(config: Config) -> Result<Server, StartError> {
        let shutdown = Shutdown::new();
        let zone = Arc::new(ClusterZone::new());
        let mut index = ClusterIndex::new(zone.clone(), config.index_settings());
        let mut threads = Vec::new();

        match &config.source.file {
            Some(path) => {
                let keep_pods = config.kubernetes.pods == PodMode::Verified;
                let mut source = ClusterFile::new(path.clone(), keep_pods);
                let first = source.poll()?;
                if let Some(e) = first.errors.into_iter().next() {
                    return Err(e.into());
                }
                index.apply_all(
                    first
                        .events
                        .into_iter()
                        .chain([ClusterEvent::InitialSyncDone]),
                );
                tracing::info!(file = %path.display(), services = zone.service_count(), "cluster file loaded");
                let watcher = watch_file(
                    source,
                    index,
                    config.source.poll_interval_ms,
                    shutdown.clone(),
                )
                .map_err(StartError::Thread)?;
                threads.push(watcher);
            }
            None => {
                let objects = file::parse(
                    &PathBuf::from("<built-in sample cluster>"),
                    SAMPLE_CLUSTER,
                    true,
                )?;
                let events = objects.into_iter().map(ClusterEvent::Apply);
                index.apply_all(events.chain([ClusterEvent::InitialSyncDone]));
                tracing::info!(
                    services = zone.service_count(),
                    "serving the built-in sample cluster"
                );
            }
        }

        let forward = config.forward_settings();
        let resolver =
            (!forward.upstreams.is_empty() || !forward.stub_domains.is_empty()).then(|| {
                Resolver::new(
                    ResponseCache::new(config.cache_settings()),
                    Forwarder::new(forward),
                    tokio::runtime::Handle::current(),
                )
            });
        if resolver.is_none() {
            tracing::info!("no upstreams: names outside the cluster zones are REFUSED");
        }
        let handler = Arc::new(QueryHandler::new(zone, config.zone_settings(), resolver));
        let workers = match config.server.udp_workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let limits = TcpLimits {
            idle_timeout: config.server.tcp_idle_timeout,
            max_connections: config.server.tcp_max_connections,
        };
        let (mut udp_addrs, mut tcp_addrs, mut tasks) = (Vec::new(), Vec::new(), Vec::new());
        for &addr in &config.listen {
            let listen_err = |source| StartError::Listen { addr, source };
            let (sockets, listener) = bind_pair(addr, workers).map_err(listen_err)?;
            udp_addrs.push(sockets[0].local_addr().map_err(listen_err)?);
            tcp_addrs.push(listener.local_addr().map_err(listen_err)?);
            threads.extend(
                udp::spawn_workers(sockets, handler.clone(), shutdown.clone())
                    .map_err(StartError::Thread)?,
            );
            tasks.push(tokio::spawn(tcp::serve(
                listener,
                handler.clone(),
                limits,
                shutdown.clone(),
            )));
        }
        for (u, t) in udp_addrs.iter().zip(&tcp_addrs) {
            tracing::info!(udp = %u, tcp = %t, "listening");
        }
        if let Some(r) = handler.resolver() {
            // Now that we answer, find out whether a local upstream sends queries back to us.
            tasks.push(tokio::spawn(r.forwarder.clone().probe_loops()));
        }
        Ok(Server {
            udp_addrs,
            tcp_addrs,
            handler,
            shutdown,
            threads,
            tasks,
        })
    }

    pub fn udp_addrs(&self) -> &[SocketAddr] {
        &self.udp_addrs
    }

    pub fn tcp_addrs(&self) -> &[SocketAddr] {
        &self.tcp_addrs
    }

    pub fn handler(&self) -> &Arc<QueryHandler> {
        &self.handler
    }

    pub fn shutdown_handle(&self) -> Shutdown {
        self.shutdown.clone()
    }

    /// Stops listening and waits for every thread and task to end.
    pub async fn stop(self) {
        self.shutdown.trigger();
        for t in self.tasks {
            let _ = t.await;
        }
        let threads = self.threads;
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await;
    }
}

/// Binds UDP and TCP on the same port; with port 0 the UDP port is chosen first and TCP
/// follows it (retrying a few times if another process holds that TCP port).
fn bind_pair(
    addr: SocketAddr,
    workers: usize,
) -> io::Result<(Vec<std::net::UdpSocket>, TcpListener)> {
    let mut last_err = None;
    for _ in 0..16 {
        let sockets = udp::bind(addr, workers)?;
        let port = sockets[0].local_addr()?.port();
        let tcp_addr = SocketAddr::new(addr.ip(), port);
        match bind_tcp(tcp_addr) {
            Ok(l) => return Ok((sockets, l)),
            Err(e) if addr.port() == 0 => last_err = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_err.unwrap_or_else(|| io::Error::other("no free port")))
}

fn bind_tcp(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// Polls the cluster file on its own thread (parsing a large file must not stall the
/// runtime) and applies what changed. A file that fails to parse is reported once per
/// change and the zone keeps its last good state.
fn watch_file(
    mut source: ClusterFile,
    mut index: ClusterIndex,
    every: std::time::Duration,
    shutdown: Shutdown,
) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name("cluster-file".into()).spawn(move || {
        while !shutdown.is_triggered() {
            std::thread::sleep(every);
            match source.poll() {
                Ok(poll) => {
                    for e in &poll.errors {
                        tracing::warn!("cluster file refused, still serving its last good state: {e}");
                    }
                    if !poll.events.is_empty() {
                        let n = poll.events.len();
                        index.apply_all(poll.events);
                        tracing::info!(source = %source.path().display(), changes = n, "cluster changes applied");
                    }
                }
                Err(e) => tracing::warn!("cluster source unreadable, still serving the last good state: {e}"),
            }
        }
    })
}
