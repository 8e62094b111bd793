//! A fake Kubernetes API server: Namespaces, Services, EndpointSlices and Pods, listed
//! and watched the way kube-runtime's `watcher` (and client-go) use the real one.
//!
//! It serves, faithfully in shape: lists with `resourceVersion`, `limit` / `continue`
//! paging (`*List` kinds, items without `kind`/`apiVersion`); watches as newline-delimited
//! ADDED / MODIFIED / DELETED / BOOKMARK / ERROR events (an object moving out of a
//! selector is a DELETED, into it an ADDED); 410 Gone — an `ERROR` event holding a
//! `Status` for a watch, an HTTP 410 `Status` for a list or `continue` — once a
//! resourceVersion has been compacted; `PartialObjectMetadata` for
//! `Accept: …;as=PartialObjectMetadata…`; label selectors and the documented field
//! selectors of each kind (other fields are a 400, as there).
//!
//! Hooks let a test apply and delete objects, compact the history, drop every watch
//! connection, hold lists back, and (served on 127.0.0.1) go away and come back.
//!
//! What it does not model: consistent snapshots across pages (later pages show the
//! current state — the watch that follows replays what changed, so clients converge the
//! same way); `resourceVersionMatch=Exact` and lists at an old resourceVersion (served
//! at the current one); `remainingItemCount`; streaming lists (`sendInitialEvents`:
//! a 400); get, create, update and patch through HTTP (hooks instead); authentication
//! beyond one bearer token (any request is accepted unless [`FakeApi::require_token`]
//! names one), RBAC, admission and defaulting; protobuf; a server that
//! stops answering without closing connections (going away closes them).

mod http;
mod store;

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::serve::ListenerExt;
use serde_json::Value;
use tokio::sync::{broadcast, oneshot, watch};

pub use store::RESOURCES;
use store::{Change, Store};

/// The fake API server's state and hooks. Cheap to clone; every clone is the same server.
#[derive(Clone)]
pub struct FakeApi {
    inner: Arc<Inner>,
}

struct Inner {
    store: Mutex<Store>,
    /// Every change, sent while the store is locked (so a watch that drains this under
    /// the lock has seen everything up to the store's resourceVersion).
    changes: broadcast::Sender<Arc<Change>>,
    /// Bumped to end every open watch.
    drops: watch::Sender<u64>,
    /// `"verb plural"` of requests that wait until released.
    held: watch::Sender<BTreeSet<String>>,
    bookmark_every: Duration,
    /// Going away: requests still reaching it on open connections get 503.
    offline: AtomicBool,
    /// Requests served, by (verb, plural).
    served: Mutex<BTreeMap<(&'static str, String), u64>>,
    /// The bearer token every request must carry, if any.
    token: Mutex<Option<String>>,
}

impl Default for FakeApi {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeApi {
    /// An empty cluster; watches get a BOOKMARK every second.
    pub fn new() -> Self {
        Self::with_bookmarks_every(Duration::from_secs(1))
    }

    pub fn with_bookmarks_every(bookmark_every: Duration) -> Self {
        FakeApi {
            inner: Arc::new(Inner {
                store: Mutex::new(Store::default()),
                changes: broadcast::channel(1 << 16).0,
                drops: watch::channel(0).0,
                held: watch::channel(BTreeSet::new()).0,
                bookmark_every,
                offline: AtomicBool::new(false),
                served: Mutex::new(BTreeMap::new()),
                token: Mutex::new(None),
            }),
        }
    }

    fn store(&self) -> MutexGuard<'_, Store> {
        // A test that panicked while holding the lock has failed already.
        self.inner.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Creates or replaces an object (by its `kind`, `metadata.namespace` and
    /// `metadata.name`) and returns its new resourceVersion.
    ///
    /// # Panics
    /// If the object is not a JSON object of a kind the fake serves: a broken test.
    pub fn apply(&self, object: Value) -> u64 {
        self.apply_all([object])
    }

    /// [`FakeApi::apply`] for many objects at once (one lock); returns the last version.
    pub fn apply_all(&self, objects: impl IntoIterator<Item = Value>) -> u64 {
        let mut store = self.store();
        for object in objects {
            let kind = object
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let Some(resource) = store::resource_by_kind(kind) else {
                panic!("the fake API server does not serve kind {kind:?}");
            };
            let Value::Object(map) = object else {
                panic!("not a JSON object");
            };
            let change = store.put(resource, map);
            let _ = self.inner.changes.send(change);
        }
        store.rv
    }

    /// Deletes an object; false when there was none.
    pub fn delete(&self, kind: &str, namespace: &str, name: &str) -> bool {
        let Some(resource) = store::resource_by_kind(kind) else {
            return false;
        };
        let mut store = self.store();
        match store.delete(resource, namespace, name) {
            Some(change) => {
                let _ = self.inner.changes.send(change);
                true
            }
            None => false,
        }
    }

    /// Compacts the history: every resourceVersion handed out so far becomes too old to
    /// watch from (410 Gone), as after an etcd compaction. Open watches go on.
    pub fn compact(&self) {
        self.store().compact();
    }

    /// Ends every open watch connection (clients re-watch from their last version).
    pub fn drop_watches(&self) {
        self.inner.drops.send_modify(|n| *n += 1);
    }

    /// Makes requests of `verb` (`"list"` or `"watch"`) on `plural` wait, as a slow API
    /// server would, until [`FakeApi::release`]. A held watch looks at its
    /// resourceVersion only once released.
    pub fn hold(&self, verb: &str, plural: &str) {
        self.inner.held.send_modify(|h| {
            h.insert(format!("{verb} {plural}"));
        });
    }

    /// While on, every request gets 503 (as from an API server starting or stopping) and
    /// is not counted in [`FakeApi::served`]; connections stay open. For the in-process
    /// client; [`FakeApiServer::go_away`] closes the port as well.
    pub fn set_unavailable(&self, on: bool) {
        self.inner.offline.store(on, Ordering::SeqCst);
    }

    /// From now on, requests without `Authorization: Bearer <token>` get 401
    /// Unauthorized, as from a real API server; `None` accepts any. Open watches go on.
    pub fn require_token(&self, token: Option<&str>) {
        *self.inner.token.lock().unwrap_or_else(|e| e.into_inner()) = token.map(str::to_owned);
    }

    /// Whether a request's `Authorization` header is accepted.
    fn authorized(&self, header: Option<&[u8]>) -> bool {
        let required = self.inner.token.lock().unwrap_or_else(|e| e.into_inner());
        required
            .as_ref()
            .is_none_or(|t| header == Some(format!("Bearer {t}").as_bytes()))
    }

    /// Lets every held request go on.
    pub fn release(&self) {
        self.inner.held.send_modify(BTreeSet::clear);
    }

    /// The current resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.store().rv
    }

    /// Objects of `plural` stored now.
    pub fn count(&self, plural: &str) -> usize {
        let store = self.store();
        RESOURCES
            .iter()
            .position(|r| r.plural == plural)
            .map_or(0, |i| store.objects[i].len())
    }

    /// Requests served so far: `verb` is `"list"` (one per page) or `"watch"`.
    pub fn served(&self, verb: &str, plural: &str) -> u64 {
        let served = self.inner.served.lock().unwrap_or_else(|e| e.into_inner());
        served
            .iter()
            .filter(|((v, p), _)| *v == verb && p == plural)
            .map(|(_, n)| *n)
            .sum()
    }

    fn count_request(&self, verb: &'static str, plural: &str) {
        let mut served = self.inner.served.lock().unwrap_or_else(|e| e.into_inner());
        *served.entry((verb, plural.to_owned())).or_default() += 1;
    }

    /// The API as an axum router.
    pub fn router(&self) -> axum::Router {
        http::router(self.clone())
    }

    /// A kube client talking to the router in-process, without sockets.
    pub fn client(&self) -> kube::Client {
        kube::Client::new(self.router(), "default")
    }
}

/// The fake served over HTTP on a loopback address, for end-to-end tests of the binary.
pub struct FakeApiServer {
    api: FakeApi,
    addr: SocketAddr,
    running: Option<(oneshot::Sender<()>, tokio::task::JoinHandle<()>)>,
}

impl FakeApiServer {
    /// Serves `api` on 127.0.0.1 with an ephemeral port. Must be called in a runtime.
    pub async fn start(api: FakeApi) -> io::Result<FakeApiServer> {
        let mut server = FakeApiServer {
            api,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            running: None,
        };
        server.come_back().await?;
        Ok(server)
    }

    pub fn api(&self) -> &FakeApi {
        &self.api
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops answering: watches are cut, the port is closed (connections are refused)
    /// and open connections are closed. The cluster's state stays, and hooks still work.
    pub async fn go_away(&mut self) {
        self.api.inner.offline.store(true, Ordering::SeqCst);
        if let Some((stop, task)) = self.running.take() {
            let _ = stop.send(());
            // After the offline flag: a client re-watching on a kept-alive connection
            // gets a 503 rather than a watch that would hold the connection open.
            self.api.drop_watches();
            let mut task = task;
            if tokio::time::timeout(Duration::from_secs(2), &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }

    /// Serves again on the same address.
    pub async fn come_back(&mut self) -> io::Result<()> {
        if self.running.is_some() {
            return Ok(());
        }
        let listener = tokio::net::TcpListener::bind(self.addr).await?;
        self.api.inner.offline.store(false, Ordering::SeqCst);
        self.addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let router = self.api.router();
        let task = tokio::spawn(async move {
            // As the real API server (Go sets it on every connection): without it, small
            // watch events wait for the client's delayed ACK (Nagle), up to 40 ms.
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            let serve = axum::serve(listener, router).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            if let Err(e) = serve.await {
                tracing::warn!("fake API server: {e}");
            }
        });
        self.running = Some((stop, task));
        Ok(())
    }
}

#[cfg(test)]
mod tests;
