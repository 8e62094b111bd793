//! Wiring: config → source → zone index → chain and driver → listeners, plus the operator's
//! HTTP endpoints. Owns start-up order (the zone is loaded before any socket answers),
//! lameduck and shutdown. Reloading a running server lives in [`crate::reload`].

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use thiserror::Error;

use crate::admin::{self, AdminState, Endpoint};
use crate::cache::ResponseCache;
use crate::config::{BlockConfig, Config};
use crate::forward::Forwarder;
use crate::metrics::Metrics;
use crate::server::build::{self, Parts};
use crate::server::observe::QueryLog;
use crate::server::tcp::{self, TcpContext, TcpLimits};
use crate::server::udp::{self, Worker};
use crate::server::{Chain, Driver, Observer};
use crate::shutdown::Shutdown;
use crate::source::ClusterEvent;
use crate::source::file::{self, ClusterFile, FileError, Selection};
use crate::zone::{ClusterIndex, ClusterZone};

mod bind;
mod nodelocal;

use bind::{bind_pair, serves_both_families};

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
    #[error("Kubernetes API: {0}")]
    Kubernetes(#[from] crate::source::kube::ConnectError),
}

/// The source feeding a zone, and how to stop it.
pub(crate) struct SourceHandle {
    pub(crate) zone: Arc<ClusterZone>,
    pub(crate) stop: Shutdown,
    pub(crate) threads: Vec<JoinHandle<()>>,
    pub(crate) tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl SourceHandle {
    pub(crate) async fn stop(self) {
        self.stop.trigger();
        for t in self.tasks {
            let _ = t.await;
        }
        join_threads(self.threads).await;
    }
}

/// One DNS listen address: its UDP workers and TCP acceptor.
pub(crate) struct DnsListener {
    /// As configured (port 0 stays 0, so a reload recognises it).
    pub(crate) configured: SocketAddr,
    pub(crate) udp: SocketAddr,
    pub(crate) tcp: SocketAddr,
    pub(crate) stop: Shutdown,
    pub(crate) threads: Vec<JoinHandle<()>>,
    pub(crate) task: tokio::task::JoinHandle<()>,
}

/// A server block beside the default one: its own chain (and driver) and listeners.
pub(crate) struct Block {
    pub(crate) config: BlockConfig,
    /// Its forwarder and cache, kept when its chain is rebuilt on reload.
    pub(crate) upstreams: Option<Upstreams>,
    pub(crate) driver: Arc<Driver>,
    pub(crate) dns: Vec<DnsListener>,
}

/// One HTTP endpoint.
pub(crate) struct HttpListener {
    pub(crate) endpoint: Endpoint,
    pub(crate) configured: SocketAddr,
    pub(crate) local: SocketAddr,
    pub(crate) stop: Shutdown,
    pub(crate) task: tokio::task::JoinHandle<()>,
}

/// A running server.
pub struct Server {
    pub(crate) config: Config,
    pub(crate) driver: Arc<Driver>,
    /// Whether and how every query is logged (`[log]`, changed on reload).
    pub(crate) query_log: Arc<QueryLog>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) draining: Arc<AtomicBool>,
    pub(crate) source: Option<SourceHandle>,
    pub(crate) dns: Vec<DnsListener>,
    /// The server blocks beside the default one (whose driver and listeners are above).
    pub(crate) blocks: Vec<Block>,
    pub(crate) http: Vec<HttpListener>,
    pub(crate) tasks: Vec<tokio::task::JoinHandle<()>>,
    /// The NodeLocal mode's own parts, when `[nodelocal]` is set.
    pub(crate) nodelocal: Option<nodelocal::NodeLocalState>,
}

impl Server {
    /// Loads the cluster, binds every listen address and starts answering. Must be called
    /// inside a Tokio runtime.
    pub async fn start(config: Config) -> Result<Server, StartError> {
        if config.nodelocal.is_some() {
            return Server::start_nodelocal(config).await;
        }
        let metrics = Metrics::new();
        let zone = Arc::new(ClusterZone::new());
        // A caching forwarder (no `kubernetes` stage anywhere) reads no cluster.
        let source = match config.serves_zone() {
            true => Some(start_source(&config, zone.clone(), &metrics)?),
            false => None,
        };
        let upstreams = build_upstreams(&config, &metrics, None);
        let chain = chain_of(&config, zone.clone(), upstreams);
        let driver = Driver::new(chain, metrics.panics.clone())
            .with_max_udp_size(config.server.max_udp_size);
        let driver = Arc::new(driver);
        let mut server = Server {
            driver,
            query_log: Arc::new(QueryLog::new(config.log.query_log())),
            metrics,
            draining: Arc::new(AtomicBool::new(false)),
            source,
            dns: Vec::new(),
            blocks: Vec::new(),
            http: Vec::new(),
            tasks: Vec::new(),
            nodelocal: None,
            config,
        };
        let listen = server.config.listen.clone();
        let driver = server.driver.clone();
        for addr in listen.iter().copied() {
            let listener = server.bind_dns(addr, &listen, &driver)?;
            server.dns.push(listener);
        }
        for config in server.config.blocks.clone() {
            let block = server.start_block(config, zone.clone())?;
            server.blocks.push(block);
        }
        for (endpoint, addr) in server.config.http_endpoints() {
            let listener = server.bind_http(endpoint, addr).await?;
            server.http.push(listener);
        }
        let drivers =
            std::iter::once(&server.driver).chain(server.blocks.iter().map(|b| &b.driver));
        let forwarders: Vec<_> = drivers
            .filter_map(|d| d.chain().forwarder().cloned())
            .collect();
        for forwarder in forwarders {
            // Now that we answer, find out whether a local upstream sends queries back to us.
            server.tasks.push(tokio::spawn(forwarder.probe_loops()));
        }
        Ok(server)
    }

    /// Binds UDP and TCP on `addr`, one of the addresses of `listen`, and starts
    /// answering there.
    pub(crate) fn bind_dns(
        &self,
        addr: SocketAddr,
        listen: &[SocketAddr],
        driver: &Arc<Driver>,
    ) -> Result<DnsListener, StartError> {
        let listen_err = |source| StartError::Listen { addr, source };
        let workers = match self.config.server.udp_workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let dual_stack = serves_both_families(addr, listen);
        // NodeLocal: a new instance binds beside the old one and takes over (SO_REUSEPORT
        // on TCP too; UDP workers share their port that way in every mode).
        let overlap = self.config.nodelocal.is_some();
        let (sockets, listener) =
            bind_pair(addr, workers, dual_stack, overlap).map_err(listen_err)?;
        let udp = sockets[0].local_addr().map_err(listen_err)?;
        let tcp = listener.local_addr().map_err(listen_err)?;
        let stop = Shutdown::new();
        // The `server` label names where it answers (with the real port when 0 was asked).
        let observer = Arc::new(Observer::new(
            format!("dns://{udp}").into(),
            self.metrics.clone(),
            self.config.metrics.listen.is_some(),
            self.query_log.clone(),
        ));
        let worker = Worker {
            driver: driver.clone(),
            observer: observer.clone(),
            shutdown: stop.clone(),
        };
        let threads = udp::spawn_workers(sockets, worker).map_err(StartError::Thread)?;
        let cx = TcpContext {
            driver: driver.clone(),
            observer,
            limits: TcpLimits {
                idle_timeout: self.config.server.tcp_idle_timeout,
                max_connections: self.config.server.tcp_max_connections,
            },
        };
        let task = tokio::spawn(tcp::serve(listener, cx, stop.clone()));
        tracing::info!(%udp, %tcp, "listening");
        Ok(DnsListener {
            configured: addr,
            udp,
            tcp,
            stop,
            threads,
            task,
        })
    }

    pub(crate) async fn bind_http(
        &self,
        endpoint: Endpoint,
        addr: SocketAddr,
    ) -> Result<HttpListener, StartError> {
        let listener = if self.config.nodelocal.is_some() {
            admin::bind_shared(addr)
        } else {
            admin::bind(addr).await
        };
        let listener = listener.map_err(|source| StartError::Listen { addr, source })?;
        let local = listener
            .local_addr()
            .map_err(|source| StartError::Listen { addr, source })?;
        let stop = Shutdown::new();
        let state = self.admin_state();
        let task = tokio::spawn(admin::serve(listener, endpoint, state, stop.clone()));
        tracing::info!(%local, ?endpoint, "http endpoint");
        Ok(HttpListener {
            endpoint,
            configured: addr,
            local,
            stop,
            task,
        })
    }

    /// Builds a block's chain and binds its listeners.
    fn start_block(
        &self,
        config: BlockConfig,
        zone: Arc<ClusterZone>,
    ) -> Result<Block, StartError> {
        let upstreams = block_upstreams(&self.config, &config, &self.metrics);
        let chain = block_chain(&self.config, &config, zone, upstreams.clone());
        let driver = Driver::new(chain, self.metrics.panics.clone())
            .with_max_udp_size(self.config.server.max_udp_size);
        let driver = Arc::new(driver);
        let mut dns = Vec::new();
        for addr in config.listen.iter().copied() {
            match self.bind_dns(addr, &config.listen, &driver) {
                Ok(l) => dns.push(l),
                Err(e) => {
                    for l in dns {
                        l.stop.trigger();
                    }
                    return Err(e);
                }
            }
        }
        tracing::info!(block = %config.name, "server block started");
        Ok(Block {
            config,
            upstreams,
            driver,
            dns,
        })
    }

    fn admin_state(&self) -> AdminState {
        if let Some(nl) = &self.nodelocal {
            return AdminState {
                ready: nl.readiness(),
                metrics: self.metrics.clone(),
                draining: self.draining.clone(),
                // The mode holds no zone to explain.
                explain: None,
            };
        }
        let drivers: Vec<Arc<Driver>> = std::iter::once(&self.driver)
            .chain(self.blocks.iter().map(|b| &b.driver))
            .cloned()
            .collect();
        AdminState {
            // Ready when every block is (the blocks are fixed until a restart).
            ready: Arc::new(move || drivers.iter().all(|d| d.chain().is_ready())),
            metrics: self.metrics.clone(),
            draining: self.draining.clone(),
            explain: self.config.explain.http.then(|| self.driver.clone()),
        }
    }

    pub fn udp_addrs(&self) -> Vec<SocketAddr> {
        self.dns.iter().map(|l| l.udp).collect()
    }

    /// Where the block `name` answers over UDP.
    pub fn block_udp_addrs(&self, name: &str) -> Vec<SocketAddr> {
        let block = self.blocks.iter().find(|b| b.config.name == name);
        block.map_or_else(Vec::new, |b| b.dns.iter().map(|l| l.udp).collect())
    }

    /// Where the block `name` answers over TCP.
    pub fn block_tcp_addrs(&self, name: &str) -> Vec<SocketAddr> {
        let block = self.blocks.iter().find(|b| b.config.name == name);
        block.map_or_else(Vec::new, |b| b.dns.iter().map(|l| l.tcp).collect())
    }

    pub fn tcp_addrs(&self) -> Vec<SocketAddr> {
        self.dns.iter().map(|l| l.tcp).collect()
    }

    /// Where an HTTP endpoint listens (its real port when configured with port 0).
    pub fn http_addr(&self, endpoint: Endpoint) -> Option<SocketAddr> {
        self.http
            .iter()
            .find(|h| h.endpoint == endpoint)
            .map(|h| h.local)
    }

    pub fn driver(&self) -> &Arc<Driver> {
        &self.driver
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The lameduck period of the configuration.
    pub fn lameduck(&self) -> Duration {
        self.config.health.lameduck
    }

    /// Graceful stop, as CoreDNS does on SIGTERM: `/ready` turns 503 at once while DNS is
    /// still answered for `lameduck`; then the listeners close, answers owed over TCP are
    /// delivered, and everything ends.
    pub async fn shutdown(self, lameduck: Duration) {
        self.draining.store(true, Ordering::Relaxed);
        if !lameduck.is_zero() {
            tracing::info!(?lameduck, "lameduck: not ready, still answering");
            tokio::time::sleep(lameduck).await;
        }
        self.stop().await;
    }

    /// Stops listening and waits for every thread and task to end.
    pub async fn stop(self) {
        let mut dns = self.dns;
        dns.extend(self.blocks.into_iter().flat_map(|b| b.dns));
        for l in &dns {
            l.stop.trigger();
        }
        for l in dns {
            let _ = l.task.await;
            join_threads(l.threads).await;
        }
        if let Some(source) = self.source {
            source.stop().await;
        }
        for t in self.tasks {
            t.abort();
        }
        for h in self.http {
            h.stop.trigger();
            let _ = h.task.await;
        }
    }
}

async fn join_threads(threads: Vec<JoinHandle<()>>) {
    let _ = tokio::task::spawn_blocking(move || {
        for t in threads {
            let _ = t.join();
        }
    })
    .await;
}

/// The cache and the forwarder behind the zones.
#[derive(Clone)]
pub(crate) struct Upstreams {
    pub(crate) cache: Arc<ResponseCache>,
    pub(crate) forwarder: Arc<Forwarder>,
}

/// The cache and forwarder, when there are upstreams. An existing cache is kept (a
/// reload that leaves its settings alone keeps its contents).
pub(crate) fn build_upstreams(
    config: &Config,
    metrics: &Metrics,
    cache: Option<Arc<ResponseCache>>,
) -> Option<Upstreams> {
    // The forwarder reads the resolv.conf files it is given.
    let forwarder = Forwarder::new(config.forward_settings(), metrics.forward.clone());
    if !forwarder.has_upstreams() {
        tracing::info!("no upstreams: names outside the cluster zones are REFUSED");
        return None;
    }
    let cache = cache.unwrap_or_else(|| {
        Arc::new(ResponseCache::new(
            config.cache_settings(),
            metrics.cache.clone(),
        ))
    });
    Some(Upstreams {
        cache,
        forwarder: Arc::new(forwarder),
    })
}

/// The chain of the default block: its `chain` (by default the cluster zones, then,
/// when there are upstreams, the loop guard, the cache and the forwarder: CoreDNS's
/// kubernetes, loop, cache, forward).
pub(crate) fn chain_of(config: &Config, zone: Arc<ClusterZone>, up: Option<Upstreams>) -> Chain {
    let parts = Parts {
        zone: &zone,
        zone_settings: config.zone_settings(),
        upstreams: up.as_ref().map(|u| (&u.cache, &u.forwarder)),
        hosts: config.hosts.as_ref(),
    };
    build::chain(&config.chain, parts)
}

/// A block's forwarder and cache, from its own `[blocks.forward]` and `[blocks.cache]`.
pub(crate) fn block_upstreams(
    config: &Config,
    block: &BlockConfig,
    metrics: &Metrics,
) -> Option<Upstreams> {
    let settings = block.forward.settings(config.log.consolidate);
    let forwarder = Forwarder::new(settings, metrics.forward.clone());
    if !forwarder.has_upstreams() {
        tracing::info!(block = %block.name, "no upstreams: its forward stage passes everything on");
        return None;
    }
    Some(Upstreams {
        cache: Arc::new(ResponseCache::new(
            block.cache.settings(),
            metrics.cache.clone(),
        )),
        forwarder: Arc::new(forwarder),
    })
}

/// A block's chain: its stages in the order it names them.
pub(crate) fn block_chain(
    config: &Config,
    block: &BlockConfig,
    zone: Arc<ClusterZone>,
    up: Option<Upstreams>,
) -> Chain {
    let parts = Parts {
        zone: &zone,
        zone_settings: config.zone_settings(),
        upstreams: up.as_ref().map(|u| (&u.cache, &u.forwarder)),
        hosts: block.hosts.as_ref(),
    };
    build::chain(&block.chain, parts)
}

/// The upstreams of a running chain.
pub(crate) fn upstreams_of(chain: &Chain) -> Option<Upstreams> {
    Some(Upstreams {
        cache: chain.cache()?.clone(),
        forwarder: chain.forwarder()?.clone(),
    })
}

/// Starts the configured source feeding `zone`: the cluster file (first read before this
/// returns), or the built-in sample.
pub(crate) fn start_source(
    config: &Config,
    zone: Arc<ClusterZone>,
    metrics: &Metrics,
) -> Result<SourceHandle, StartError> {
    let stop = Shutdown::new();
    zone.set_search_path_counter(metrics.search_path.clone());
    let mut index = ClusterIndex::new(zone.clone(), config.index_settings());
    index.set_programming_metric(metrics.programming_duration.clone());
    let mut threads = Vec::new();
    let mut tasks = Vec::new();
    match &config.source.file {
        Some(path) => {
            let mut source = ClusterFile::new(path.clone(), config.file_selection());
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
            let watcher =
                file::spawn_polling(source, index, config.source.poll_interval_ms, stop.clone())
                    .map_err(StartError::Thread)?;
            threads.push(watcher);
        }
        None if config.uses_kubernetes() => {
            // Answers start at once; the watches fill the zone (see source::kube).
            let settings = config.kube_settings();
            tasks.push(crate::source::kube::spawn(&settings, index, stop.clone())?);
        }
        None => {
            let selection = Selection {
                keep_pods: true,
                ..config.file_selection()
            };
            let objects = file::parse(
                &PathBuf::from("<built-in sample cluster>"),
                SAMPLE_CLUSTER,
                &selection,
            )?;
            let events = objects.into_iter().map(ClusterEvent::Apply);
            index.apply_all(events.chain([ClusterEvent::InitialSyncDone]));
            tracing::info!(
                services = zone.service_count(),
                "serving the built-in sample cluster"
            );
        }
    }
    Ok(SourceHandle {
        zone,
        stop,
        threads,
        tasks,
    })
}
