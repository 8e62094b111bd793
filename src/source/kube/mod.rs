//! The Kubernetes API source: watches Namespaces (metadata only), Services,
//! EndpointSlices and — for `pods = "verified"` — Pods, and drives the zone index with
//! what they tell.
//!
//! ```text
//!   watch task per kind (and namespace) ──Change──> index loop ──> ClusterIndex ──> zone
//!   (kube-runtime watcher, paged lists,      (bounded      (one task: owns the index,
//!    backoff, slim objects while parsing)     channel)      relists as differences)
//! ```
//! Objects are cut to their slim form while each page or event is parsed, and nothing
//! else keeps them: no kube `Store`, no second copy. A relist (`Init` … `InitDone`, after a
//! 410 Gone or a restarted watch) applies each object as it arrives — unchanged ones cost
//! a comparison — and remembers only the keys it saw; at `InitDone` the keys it did not
//! see are deleted. Names that still exist therefore never disappear, and a relist of a
//! large cluster holds one page of objects and one set of keys, not a second cluster.
//!
//! Start-up: the server answers at once. Until every watch has listed once, a name the
//! zone does not know yet is SERVFAIL rather than NXDOMAIN (positive answers are
//! served); after `startup_timeout` unknown names get NXDOMAIN anyway, as with CoreDNS,
//! while readiness ([`crate::zone::ClusterZone::listed`]) waits for the real first sync.

mod connect;
mod slim;
mod token;
mod watch;

use std::collections::HashSet;
use std::hash::BuildHasher;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

pub use connect::ConnectError;
pub use watch::Target;
use watch::{Change, Message, Selectors};

use super::ClusterEvent;
use super::objects::{Kind, ObjectKey};
use crate::shutdown::Shutdown;
use crate::zone::ClusterIndex;

/// What the Kubernetes source needs from the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeSettings {
    pub kubeconfig: Option<PathBuf>,
    pub endpoint: Option<String>,
    /// Label selector for Services, EndpointSlices and Pods.
    pub labels: Option<String>,
    /// Namespaces watched; empty: all (one watch per kind).
    pub namespaces: Vec<String>,
    pub pods: bool,
    pub startup_timeout: Duration,
}

impl KubeSettings {
    /// The watches to run: namespaces, then each kind once, or once per namespace when
    /// `namespaces` restricts them (the API then sends nothing from other namespaces).
    pub fn targets(&self) -> Vec<Target> {
        let mut kinds = vec![Kind::Service, Kind::EndpointSlice];
        if self.pods {
            kinds.push(Kind::Pod);
        }
        let mut targets = vec![Target {
            kind: Kind::Namespace,
            namespace: None,
        }];
        for kind in kinds {
            if self.namespaces.is_empty() {
                targets.push(Target {
                    kind,
                    namespace: None,
                });
            }
            for ns in &self.namespaces {
                targets.push(Target {
                    kind,
                    namespace: Some(ns.clone()),
                });
            }
        }
        targets
    }
}

/// Changes in flight between the watches and the index loop, at most.
const CHANNEL: usize = 1024;

/// Connects (without any network I/O) and starts the watches and the index loop on the
/// current runtime. The returned task ends on `shutdown`.
pub fn spawn(
    settings: &KubeSettings,
    index: ClusterIndex,
    shutdown: Shutdown,
) -> Result<tokio::task::JoinHandle<()>, ConnectError> {
    let client = connect::client(settings.kubeconfig.as_deref(), settings.endpoint.as_deref())?;
    Ok(spawn_with_client(client, settings, index, shutdown))
}

/// [`spawn`] with a ready client (tests hand it the fake API server's router).
pub fn spawn_with_client(
    client: kube::Client,
    settings: &KubeSettings,
    index: ClusterIndex,
    shutdown: Shutdown,
) -> tokio::task::JoinHandle<()> {
    let targets = settings.targets();
    let (tx, rx) = mpsc::channel(CHANNEL);
    let selectors = Selectors {
        labels: settings.labels.clone(),
    };
    let mut watches = Vec::new();
    for (id, t) in targets.iter().enumerate() {
        watches.push(tokio::spawn(watch::run(
            client.clone(),
            t.clone(),
            id,
            selectors.clone(),
            tx.clone(),
            shutdown.clone(),
        )));
    }
    drop(tx);
    tracing::info!(watches = targets.len(), "watching the Kubernetes API");
    let lp = IndexLoop {
        index,
        watches: targets.into_iter().map(WatchState::new).collect(),
        started: Instant::now(),
        pending_sync: true,
    };
    let timeout = settings.startup_timeout;
    tokio::spawn(async move {
        lp.run(rx, timeout, shutdown).await;
        for w in watches {
            let _ = w.await;
        }
    })
}

struct WatchState {
    target: Target,
    /// Has completed a list at least once.
    listed: bool,
    /// During a (re)list: the keys listed so far, as hashes (see [`Seen`]).
    seen: Option<Seen>,
    list_started: Instant,
}

impl WatchState {
    fn new(target: Target) -> Self {
        WatchState {
            target,
            listed: false,
            seen: None,
            list_started: Instant::now(),
        }
    }
}

/// The keys a (re)list has seen, kept as 64-bit hashes (randomly keyed per list): a
/// relist of 150,000 pods then holds 8 bytes a key, and none of the listed objects'
/// strings outlive their page. Two keys colliding (odds about n²/2⁶⁵, 10⁻⁹ for
/// 150,000) would keep one deleted object until its next event or relist.
#[derive(Default)]
struct Seen {
    hasher: std::hash::RandomState,
    keys: HashSet<u64>,
}

impl Seen {
    fn insert(&mut self, key: &ObjectKey) {
        self.keys.insert(self.hasher.hash_one(key));
    }

    fn contains(&self, key: &ObjectKey) -> bool {
        self.keys.contains(&self.hasher.hash_one(key))
    }
}

struct IndexLoop {
    index: ClusterIndex,
    watches: Vec<WatchState>,
    started: Instant,
    pending_sync: bool,
}

/// Changes applied together (one SOA serial stamp) when they are already waiting.
const BATCH: usize = 256;

impl IndexLoop {
    async fn run(mut self, mut rx: mpsc::Receiver<Message>, timeout: Duration, shutdown: Shutdown) {
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut timed_out = false;
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            let first = tokio::select! {
                m = rx.recv() => m,
                () = &mut deadline, if !timed_out => {
                    timed_out = true;
                    self.startup_timeout(timeout);
                    continue;
                }
                () = shutdown.wait() => None,
            };
            let Some(first) = first else { return };
            self.handle(first, &mut batch);
            while batch.len() < BATCH {
                match rx.try_recv() {
                    Ok(m) => self.handle(m, &mut batch),
                    Err(_) => break,
                }
            }
            self.index.apply_all(batch.drain(..));
        }
    }

    fn startup_timeout(&self, timeout: Duration) {
        let zone = self.index.zone();
        if zone.synced() {
            return;
        }
        zone.set_synced();
        let waiting: Vec<String> = self
            .watches
            .iter()
            .filter(|w| !w.listed)
            .map(|w| w.target.to_string())
            .collect();
        tracing::warn!(
            ?timeout,
            waiting_for = ?waiting,
            "startup_timeout: the first list is not complete; unknown names now get NXDOMAIN (not ready until it completes)"
        );
    }

    fn handle(&mut self, (id, change): Message, batch: &mut Vec<ClusterEvent>) {
        let Some(w) = self.watches.get_mut(id) else {
            return;
        };
        match change {
            Change::Apply(o) => batch.push(ClusterEvent::Apply(o)),
            Change::Delete(k) => batch.push(ClusterEvent::Delete(k)),
            Change::ListStart => {
                w.seen = Some(Seen::default());
                w.list_started = Instant::now();
            }
            Change::Listed(o) => {
                if let Some(seen) = &mut w.seen {
                    seen.insert(&o.key());
                }
                batch.push(ClusterEvent::Apply(o));
            }
            Change::ListDone => {
                let seen = w.seen.take().unwrap_or_default();
                // What the list applied must be in the index before it is compared.
                self.index.apply_all(batch.drain(..));
                let w = &mut self.watches[id];
                let gone =
                    self.index
                        .keys_not_in(w.target.kind, w.target.namespace.as_deref(), |k| {
                            seen.contains(k)
                        });
                let (listed, removed) = (seen.keys.len(), gone.len());
                drop(seen);
                self.index
                    .apply_all(gone.into_iter().map(ClusterEvent::Delete));
                let first = !w.listed;
                w.listed = true;
                let took = w.list_started.elapsed();
                if first {
                    tracing::info!(watch = %w.target, objects = listed, ?took, "listed");
                } else {
                    tracing::info!(watch = %w.target, objects = listed, removed, ?took, "listed again; applied as a difference");
                }
                if self.pending_sync && self.watches.iter().all(|w| w.listed) {
                    self.pending_sync = false;
                    self.index.apply(ClusterEvent::InitialSyncDone);
                    tracing::info!(
                        took = ?self.started.elapsed(),
                        services = self.index.zone().service_count(),
                        "initial sync from the Kubernetes API complete: ready"
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
