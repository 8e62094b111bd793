//! One watch: a kube-runtime `watcher` over one kind (in one namespace, or all), its
//! events turned into [`Change`]s of slim objects on a bounded channel. Errors are
//! retried with backoff by the watcher and logged here at a rate a human can read.

use std::fmt;
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::Api;
use kube::runtime::watcher as watch_stream;
use kube::runtime::watcher::{self, Event};
use tokio::sync::mpsc;

use super::slim::{EndpointSliceShape, NamespaceShape, PodShape, ServiceShape, Shape, Slim};
use crate::shutdown::Shutdown;
use crate::source::objects::{ClusterObject, Kind, ObjectKey};

/// What one watch covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub kind: Kind,
    /// `None`: every namespace (and the cluster-scoped Namespaces).
    pub namespace: Option<String>,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = match self.kind {
            Kind::Namespace => NamespaceShape::PLURAL,
            Kind::Service => ServiceShape::PLURAL,
            Kind::EndpointSlice => EndpointSliceShape::PLURAL,
            Kind::Pod => PodShape::PLURAL,
        };
        match &self.namespace {
            Some(ns) => write!(f, "{plural} in {ns}"),
            None => f.write_str(plural),
        }
    }
}

/// A watch event, reduced to what the index loop needs.
#[derive(Debug)]
pub enum Change {
    /// A (re)list starts: what it does not list again is gone when it is done.
    ListStart,
    /// An object of the list.
    Listed(ClusterObject),
    /// The list is complete.
    ListDone,
    Apply(ClusterObject),
    Delete(ObjectKey),
}

/// A change and the index of the watch it came from.
pub type Message = (usize, Change);

/// Selectors every watch of a kind uses.
#[derive(Debug, Clone, Default)]
pub struct Selectors {
    /// The `labels` option: Services, EndpointSlices and Pods.
    pub labels: Option<String>,
}

/// Runs the watch until shutdown or until the receiving end is gone.
pub async fn run(
    client: kube::Client,
    target: Target,
    id: usize,
    selectors: Selectors,
    tx: mpsc::Sender<Message>,
    shutdown: Shutdown,
) {
    let mut config = watcher::Config::default();
    if let Some(labels) = &selectors.labels
        && target.kind != Kind::Namespace
    {
        config = config.labels(labels);
    }
    let ns = target.namespace.clone();
    let w = Watch {
        id,
        log: ErrorLog::new(target.to_string()),
        tx,
    };
    let work = async move {
        match (target.kind, ns) {
            (Kind::Namespace, _) => {
                w.pump(Api::<Slim<NamespaceShape>>::all(client), config)
                    .await
            }
            (Kind::Service, None) => w.pump(Api::<Slim<ServiceShape>>::all(client), config).await,
            (Kind::Service, Some(ns)) => {
                w.pump(Api::<Slim<ServiceShape>>::namespaced(client, &ns), config)
                    .await
            }
            (Kind::EndpointSlice, None) => {
                w.pump(Api::<Slim<EndpointSliceShape>>::all(client), config)
                    .await
            }
            (Kind::EndpointSlice, Some(ns)) => {
                let api = Api::<Slim<EndpointSliceShape>>::namespaced(client, &ns);
                w.pump(api, config).await
            }
            // Finished pods hold no IP: the API server leaves them out (and a pod that
            // finishes arrives as a deletion).
            (Kind::Pod, ns) => {
                let config = config.fields("status.phase!=Succeeded,status.phase!=Failed");
                let api = match ns {
                    Some(ns) => Api::<Slim<PodShape>>::namespaced(client, &ns),
                    None => Api::<Slim<PodShape>>::all(client),
                };
                w.pump(api, config).await
            }
        }
    };
    tokio::select! {
        () = work => {}
        () = shutdown.wait() => {}
    }
}

struct Watch {
    id: usize,
    log: ErrorLog,
    tx: mpsc::Sender<Message>,
}

impl Watch {
    async fn pump<S: Shape>(mut self, api: Api<Slim<S>>, config: watcher::Config) {
        // The backoff is applied here rather than by kube-runtime's `StreamBackoff`, which
        // draws the next delay before the error is seen and so cannot be told that an
        // error is in fact the API server answering.
        let mut events = watch_stream(api, config).boxed();
        let mut backoff = WatchBackoff::default();
        while let Some(item) = events.next().await {
            let change = match item {
                Err(e) => {
                    self.log.error(&e);
                    if is_gone(&e) {
                        // 410 Gone is the API server answering: it is back (typically after
                        // a restart, which loses every watch's position), so the relist
                        // must not wait out the backoff grown while it was away.
                        backoff.reset();
                    }
                    tokio::time::sleep(backoff.next_delay()).await;
                    continue;
                }
                Ok(event) => {
                    backoff.reset();
                    self.log.recovered();
                    match event {
                        Event::Init => Some(Change::ListStart),
                        Event::InitDone => Some(Change::ListDone),
                        Event::InitApply(o) => self.usable(o).map(Change::Listed),
                        Event::Apply(o) => {
                            let key = o.key();
                            Some(self.usable(o).map_or(Change::Delete(key), Change::Apply))
                        }
                        Event::Delete(o) => Some(Change::Delete(o.key())),
                    }
                }
            };
            if let Some(change) = change
                && self.tx.send((self.id, change)).await.is_err()
            {
                return; // the index loop has stopped
            }
        }
    }

    /// The slim object, or `None` when it serves nothing or cannot be used (then it is
    /// treated as absent, and the log says why).
    fn usable<S: Shape>(&mut self, o: Slim<S>) -> Option<ClusterObject> {
        match o.object {
            Ok(object) => object,
            Err(e) => {
                self.log.bad_object(&e);
                None
            }
        }
    }
}

/// Backoff between failed attempts: 500 ms doubling to 5 s, each delay drawn from the
/// upper half of that (jitter, so replicas do not retry in step).
/// kube-runtime's default goes up to 30 s (as client-go does); a DNS server is better
/// served by noticing a returning API server within seconds, and a failed attempt
/// against a down server costs one refused connection.
struct WatchBackoff {
    next: Duration,
}

const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

impl Default for WatchBackoff {
    fn default() -> Self {
        WatchBackoff {
            next: FIRST_BACKOFF,
        }
    }
}

impl WatchBackoff {
    fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = (base * 2).min(MAX_BACKOFF);
        base.mul_f64(0.5 + rand::random::<f64>() / 2.0)
    }

    fn reset(&mut self) {
        self.next = FIRST_BACKOFF;
    }
}

/// A 410 Gone, in a watch event or as the answer to a list or watch request: the
/// resourceVersion is too old, and only a new list helps.
fn is_gone(e: &watcher::Error) -> bool {
    use watcher::Error::{InitialListFailed, WatchError, WatchFailed, WatchStartFailed};
    match e {
        WatchError(status) => status.code == 410,
        InitialListFailed(kube::Error::Api(status))
        | WatchStartFailed(kube::Error::Api(status))
        | WatchFailed(kube::Error::Api(status)) => status.code == 410,
        _ => false,
    }
}

/// How often one watch may warn; what it suppresses in between is counted.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// Rate-limited logging of one watch's failures.
struct ErrorLog {
    watch: String,
    last_warn: Option<Instant>,
    suppressed: u64,
    /// Failures since the watch last worked, and when the first of them happened.
    failing: Option<(Instant, u64)>,
}

impl ErrorLog {
    fn new(watch: String) -> Self {
        ErrorLog {
            watch,
            last_warn: None,
            suppressed: 0,
            failing: None,
        }
    }

    fn may_warn(&mut self) -> Option<u64> {
        let now = Instant::now();
        if self.last_warn.is_some_and(|t| now - t < WARN_EVERY) {
            self.suppressed += 1;
            return None;
        }
        self.last_warn = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }

    fn error(&mut self, e: &watcher::Error) {
        if is_gone(e) {
            // Not a failure: the API server compacted its history past our position.
            tracing::info!(watch = %self.watch, "resourceVersion expired (410 Gone): listing again, applied as a difference");
            return;
        }
        let (since, n) = self.failing.get_or_insert((Instant::now(), 0));
        *n += 1;
        let (since, n) = (*since, *n);
        if let Some(suppressed) = self.may_warn() {
            tracing::warn!(
                watch = %self.watch,
                error = %e,
                failures = n,
                failing_for = ?since.elapsed(),
                suppressed_warnings = suppressed,
                "Kubernetes watch failing; retrying with backoff, the last known zone keeps serving"
            );
        }
    }

    fn recovered(&mut self) {
        if let Some((since, n)) = self.failing.take() {
            tracing::info!(watch = %self.watch, failures = n, after = ?since.elapsed(), "Kubernetes watch working again");
        }
    }

    fn bad_object(&mut self, e: &crate::source::api::ObjectError) {
        if let Some(suppressed) = self.may_warn() {
            tracing::warn!(watch = %self.watch, suppressed_warnings = suppressed, "object ignored: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_its_cap_and_resets() {
        let mut b = WatchBackoff::default();
        let delays: Vec<Duration> = (0..8).map(|_| b.next_delay()).collect();
        assert!(delays[0] >= FIRST_BACKOFF / 2 && delays[0] <= FIRST_BACKOFF);
        assert!(delays[7] >= MAX_BACKOFF / 2 && delays[7] <= MAX_BACKOFF);
        b.reset();
        assert!(b.next_delay() <= FIRST_BACKOFF);
    }

    #[test]
    fn warnings_are_rate_limited() {
        let mut log = ErrorLog::new("pods".into());
        assert_eq!(log.may_warn(), Some(0));
        assert_eq!(log.may_warn(), None);
        assert_eq!(log.may_warn(), None);
        log.last_warn = Some(Instant::now() - WARN_EVERY);
        assert_eq!(log.may_warn(), Some(2));
    }
}
