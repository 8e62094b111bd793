//! The NodeLocal mode's wiring: one cache in front of forwarders chosen by zone, bound
//! to the node-local addresses only, with the process's own network setup around it.
//!
//! Start-up order: the link first (its addresses must exist to be bound), then the
//! sockets, then the steering rules (they steer only while a socket is bound), then
//! `/ready`. Background tasks reconcile the link and rules every period, apply the
//! kube-dns ConfigMap, and ask the cluster DNS until it has answered once; none of them
//! is on the query path.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::watch;

use super::{Server, StartError};
use crate::cache::{ResponseCache, TtlPolicy};
use crate::config::{ClusterProtocol, Config, NodeLocalConfig, zone_text};
use crate::forward::{ForwardSettings, Forwarder, Nameserver, Question, Resolved};
use crate::metrics::Metrics;
use crate::nodelocal::kube_dns::{self, ConfigMapDir, KubeDnsConfig};
use crate::nodelocal::{Family, NetworkSetup, Reconciled, SetupError};
use crate::server::chain::CacheStage;
use crate::server::zone_forward::{ZoneForwardStage, ZoneRoute};
use crate::server::{Chain, Driver, Stage};
use crate::wire::ZoneName;

/// How often the cluster DNS is asked until it has answered once (for `/ready`).
const UPSTREAM_PROBE: Duration = Duration::from_millis(500);

/// What the running mode keeps beside the server's usual parts.
pub(crate) struct NodeLocalState {
    cache: Arc<ResponseCache>,
    /// The config the chain was last built from (read by the ConfigMap task).
    config: Arc<ArcSwap<Config>>,
    kube_dns: watch::Receiver<Arc<KubeDnsConfig>>,
    rules_in_place: Arc<AtomicBool>,
    upstream_answered: Arc<AtomicBool>,
}

impl NodeLocalState {
    /// Ready: sockets bound (this state exists only then), the steering rules in place
    /// (when it programs them) and the cluster DNS has answered once.
    pub(crate) fn readiness(&self) -> Arc<dyn Fn() -> bool + Send + Sync> {
        let rules = self.rules_in_place.clone();
        let answered = self.upstream_answered.clone();
        Arc::new(move || rules.load(Ordering::Relaxed) && answered.load(Ordering::Relaxed))
    }
}

impl Server {
    /// Starts the NodeLocal mode of `config` (whose `nodelocal` is set).
    pub(crate) async fn start_nodelocal(config: Config) -> Result<Server, StartError> {
        let nl = config.nodelocal.clone().unwrap_or_default();
        let metrics = Metrics::new();
        // node-cache's error types and the repairs at zero, so that a dashboard sees them
        // from the start.
        for label in [
            "iptables",
            "iptables_lock",
            "interface_add",
            "interface_check",
        ] {
            metrics.nodelocal.setup_errors.with_label_values(&[label]);
        }
        for step in ["link", "rules"] {
            metrics.nodelocal.repairs.with_label_values(&[step]);
        }
        let listen = nl.listen();
        let mut setup = NetworkSetup::new(nl.network());
        // The addresses must exist before they can be bound.
        match setup.ensure_link().await {
            Ok(Some(link)) => {
                tracing::info!(link = %nl.link_name, details = ?link.details, "link ensured")
            }
            Ok(None) => {}
            Err(e) => count_error(&metrics, "link", &e),
        }
        let cache = Arc::new(ResponseCache::new(
            config.cache_settings(),
            metrics.cache.clone(),
        ));
        let reload_failed = metrics.reload_failed.clone();
        let kube_dns = kube_dns::watch(
            ConfigMapDir::new(&nl.kube_dns_dir, listen.clone()),
            nl.kube_dns_poll_ms,
            move |_| reload_failed.inc(),
        );
        let chain = chain_of(&config, cache.clone(), &kube_dns.borrow(), &metrics);
        let driver = Driver::new(chain, metrics.panics.clone())
            .with_max_udp_size(config.server.max_udp_size);
        let state = NodeLocalState {
            cache,
            config: Arc::new(ArcSwap::from_pointee(config.clone())),
            kube_dns,
            rules_in_place: Arc::new(AtomicBool::new(false)),
            upstream_answered: Arc::new(AtomicBool::new(false)),
        };
        let mut server = Server {
            driver: Arc::new(driver),
            query_log: Arc::new(crate::server::observe::QueryLog::new(
                config.log.query_log(),
            )),
            metrics,
            draining: Arc::new(AtomicBool::new(false)),
            source: None,
            dns: Vec::new(),
            blocks: Vec::new(),
            http: Vec::new(),
            tasks: Vec::new(),
            nodelocal: None,
            config,
        };
        let driver = server.driver.clone();
        for addr in listen.iter().copied() {
            match server.bind_dns(addr, &listen, &driver) {
                Ok(l) => server.dns.push(l),
                Err(e) => {
                    server.stop().await;
                    return Err(e);
                }
            }
        }
        // Bound: the rules may steer to us now.
        let first = Reconciled {
            rules: match setup.ensure_rules().await {
                Ok(r) => r,
                Err(e) => {
                    count_error(&server.metrics, "rules", &e);
                    None
                }
            },
            ..Reconciled::default()
        };
        record(&first, &setup, &server.metrics);
        state
            .rules_in_place
            .store(setup.rules_in_place(), Ordering::Relaxed);
        server.tasks.push(tokio::spawn(reconcile_loop(
            setup,
            server.metrics.clone(),
            state.rules_in_place.clone(),
        )));
        server.tasks.push(tokio::spawn(apply_kube_dns(
            state.kube_dns.clone(),
            state.config.clone(),
            state.cache.clone(),
            server.driver.clone(),
            server.metrics.clone(),
        )));
        server.tasks.push(tokio::spawn(probe_cluster_dns(
            server.driver.clone(),
            nl.cluster_zone.clone(),
            state.upstream_answered.clone(),
        )));
        server.nodelocal = Some(state);
        for (endpoint, addr) in server.config.http_endpoints() {
            match server.bind_http(endpoint, addr).await {
                Ok(h) => server.http.push(h),
                Err(e) => {
                    server.stop().await;
                    return Err(e);
                }
            }
        }
        tracing::info!(addresses = ?listen, "NodeLocal mode answering");
        Ok(server)
    }

    /// Applies a changed config to the running mode: the forwarders and TTL caps are
    /// rebuilt (the cluster DNS's environment read again), the cache kept unless its
    /// bounds changed; the network and the listeners change at the next restart.
    pub(crate) fn reload_nodelocal(&mut self, new: Config) {
        let Some(state) = &mut self.nodelocal else {
            tracing::warn!("[nodelocal] added: the NodeLocal mode starts at the next restart");
            return;
        };
        let Some(nl) = &new.nodelocal else {
            tracing::warn!("[nodelocal] removed: the mode changes at the next restart");
            return;
        };
        let old = self.config.nodelocal.clone().unwrap_or_default();
        if nl.network() != old.network()
            || nl.health_listen != old.health_listen
            || nl.metrics_listen != old.metrics_listen
            || new.server != self.config.server
        {
            tracing::warn!(
                "the network, listeners and endpoints of [nodelocal] and [server] change at the next restart"
            );
        }
        if new.cache != self.config.cache {
            state.cache = Arc::new(ResponseCache::new(
                new.cache_settings(),
                self.metrics.cache.clone(),
            ));
        }
        let chain = chain_of(
            &new,
            state.cache.clone(),
            &state.kube_dns.borrow(),
            &self.metrics,
        );
        self.driver.set_chain(chain);
        state.config.store(Arc::new(new.clone()));
        self.query_log.set(new.log.query_log());
        let nl = nl.clone();
        // What needs a restart stays as it runs, so the next reload compares with it.
        let mut kept = new;
        kept.server = self.config.server.clone();
        kept.nodelocal = Some(NodeLocalConfig {
            link_name: old.link_name,
            link_kind: old.link_kind,
            addresses: old.addresses,
            cluster_ips: old.cluster_ips,
            dns_port: old.dns_port,
            health_port: old.health_port,
            backend: old.backend,
            setup_interface: old.setup_interface,
            setup_rules: old.setup_rules,
            reconcile_period_ms: old.reconcile_period_ms,
            health_listen: old.health_listen,
            metrics_listen: old.metrics_listen,
            ..nl.clone()
        });
        self.config = kept;
    }
}

/// The chain: one cache, then the forwarders by zone.
fn chain_of(
    config: &Config,
    cache: Arc<ResponseCache>,
    kube: &KubeDnsConfig,
    metrics: &Metrics,
) -> Chain {
    let nl = config.nodelocal.clone().unwrap_or_default();
    let own = nl.listen();
    let base = config.cache_settings().ttl;
    let caps = |success: u64, denial: u64| TtlPolicy {
        success_cap: Duration::from_secs(success),
        denial_cap: Duration::from_secs(denial),
        min_ttl: base.min_ttl.min(Duration::from_secs(success.min(denial))),
        ..base
    };
    let forwarder = |upstreams: Vec<SocketAddr>, force_tcp: bool| {
        let settings = ForwardSettings {
            upstreams: upstreams.into_iter().map(Nameserver::Addr).collect(),
            stub_domains: Vec::new(),
            force_tcp,
            ..config.forward_settings()
        };
        Arc::new(Forwarder::new(settings, metrics.forward.clone()))
    };
    let cluster_dns = match nl.cluster_upstreams(|v| std::env::var(v).ok()) {
        Ok(addrs) => not_ours(addrs, &own, "the cluster DNS"),
        Err(e) => {
            tracing::error!("{e}; the cluster zone is answered SERVFAIL until a reload finds it");
            Vec::new()
        }
    };
    let cluster = forwarder(cluster_dns, nl.cluster_protocol == ClusterProtocol::Tcp);
    let mut routes = vec![ZoneRoute {
        zone: nl.cluster_zone.clone(),
        forwarder: cluster.clone(),
        ttl: caps(nl.cluster_success_ttl, nl.cluster_denial_ttl),
    }];
    for zone in &nl.reverse_zones {
        routes.push(ZoneRoute {
            zone: zone.clone(),
            forwarder: cluster.clone(),
            ttl: caps(nl.reverse_ttl, nl.reverse_ttl),
        });
    }
    let external = caps(nl.external_ttl, nl.external_ttl);
    // `.`: the ConfigMap's upstreamNameservers, else [forward] (resolv.conf by default).
    let root = if kube.upstream_nameservers.is_empty() {
        Resolved::read(&config.forward_settings()).upstreams
    } else {
        kube.upstream_nameservers.clone()
    };
    let force_tcp = config.forward.force_tcp;
    routes.push(ZoneRoute {
        zone: ZoneName::parse(".").expect("root"),
        forwarder: forwarder(not_ours(root, &own, "the upstream nameservers"), force_tcp),
        ttl: external,
    });
    // Stub domains: [forward]'s, and the ConfigMap's (which win for the same zone).
    let mut stubs: Vec<(ZoneName, Vec<SocketAddr>)> =
        Resolved::read(&config.forward_settings()).stub_domains;
    for (zone, addrs) in &kube.stub_domains {
        let Some(zone) = ZoneName::parse(zone) else {
            continue; // the ConfigMap's parser checked it already
        };
        stubs.retain(|(z, _)| *z != zone);
        stubs.push((zone, addrs.clone()));
    }
    for (zone, addrs) in stubs {
        // A stub domain inside a zone of ours replaces nothing: the longer zone wins.
        let what = format!("stub domain {}", zone_text(&zone));
        routes.retain(|r| r.zone != zone);
        routes.push(ZoneRoute {
            zone,
            forwarder: forwarder(not_ours(addrs, &own, &what), force_tcp),
            ttl: external,
        });
    }
    Chain {
        stages: vec![
            Stage::Cache(CacheStage { cache }),
            Stage::ZoneForward(ZoneForwardStage::new(routes)),
        ],
    }
}

/// `addrs` without those we listen on ourselves (a loop), each refused loudly.
fn not_ours(addrs: Vec<SocketAddr>, own: &[SocketAddr], what: &str) -> Vec<SocketAddr> {
    addrs
        .into_iter()
        .filter(|a| match kube_dns::check_not_loop(*a, own) {
            Ok(()) => true,
            Err(e) => {
                tracing::error!("{what}: {e}; refused");
                false
            }
        })
        .collect()
}

fn count_error(metrics: &Metrics, step: &str, e: &SetupError) {
    let label = e.error_type().label();
    metrics
        .nodelocal
        .setup_errors
        .with_label_values(&[label])
        .inc();
    tracing::warn!(step, errortype = label, error = %e, "network setup failed; still answering");
}

/// Counts what a reconcile repaired and failed, and sets the steering gauge.
fn record(done: &Reconciled, setup: &NetworkSetup, metrics: &Metrics) {
    let m = &metrics.nodelocal;
    for e in &done.errors {
        count_error(metrics, "reconcile", e);
    }
    if let Some(link) = done
        .link
        .as_ref()
        .filter(|l| l.change == crate::nodelocal::Change::Repaired)
    {
        m.repairs.with_label_values(&["link"]).inc();
        tracing::warn!(details = ?link.details, "link repaired");
    }
    if let Some(rules) = done
        .rules
        .as_ref()
        .filter(|r| r.change == crate::nodelocal::Change::Repaired)
    {
        m.repairs.with_label_values(&["rules"]).inc();
        tracing::warn!(backend = rules.backend.label(), "steering rules repaired");
    }
    let settings = setup.settings();
    if !settings.setup_rules {
        return;
    }
    let backend = setup.backend().map_or("none", |b| b.label());
    let in_place = i64::from(setup.rules_in_place());
    for family in Family::BOTH {
        if settings.all_addresses().any(|a| Family::of(a) == family) {
            m.steering
                .with_label_values(&[family.label(), backend])
                .set(in_place);
        }
    }
}

async fn reconcile_loop(mut setup: NetworkSetup, metrics: Arc<Metrics>, rules: Arc<AtomicBool>) {
    let period = setup.settings().reconcile_period;
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let done = setup.reconcile().await;
        record(&done, &setup, &metrics);
        rules.store(setup.rules_in_place(), Ordering::Relaxed);
    }
}

/// Rebuilds the chain on every change of the kube-dns ConfigMap (the cache stays).
async fn apply_kube_dns(
    mut kube_dns: watch::Receiver<Arc<KubeDnsConfig>>,
    config: Arc<ArcSwap<Config>>,
    cache: Arc<ResponseCache>,
    driver: Arc<Driver>,
    metrics: Arc<Metrics>,
) {
    while kube_dns.changed().await.is_ok() {
        let kube = kube_dns.borrow_and_update().clone();
        // The cache of the running chain (a reload may have replaced it).
        let cache = driver
            .chain()
            .cache()
            .cloned()
            .unwrap_or_else(|| cache.clone());
        driver.set_chain(chain_of(&config.load(), cache, &kube, &metrics));
    }
}

/// Asks the cluster DNS for the cluster zone's SOA until it answers (any rcode): the
/// mode is not ready before, as a cache that cannot reach the cluster DNS is no use.
async fn probe_cluster_dns(driver: Arc<Driver>, zone: ZoneName, answered: Arc<AtomicBool>) {
    let question = Question {
        name: zone.wire.clone(),
        qtype: 6, // SOA
        qclass: 1,
        dnssec_ok: false,
        checking_disabled: false,
        client_tcp: false,
    };
    loop {
        let chain = driver.chain();
        let forwarder = chain.stages.iter().find_map(|s| match s {
            Stage::ZoneForward(z) => z
                .routes()
                .iter()
                .find(|r| r.zone == zone)
                .map(|r| r.forwarder.clone()),
            _ => None,
        });
        if let Some(f) = forwarder
            && f.forward(question.clone()).await.is_ok()
        {
            answered.store(true, Ordering::Relaxed);
            tracing::info!("the cluster DNS answered");
            return;
        }
        tokio::time::sleep(UPSTREAM_PROBE).await;
    }
}
