//! The operator's HTTP endpoints, as CoreDNS serves them: `/health` (alive: 200 until
//! the process exits, lameduck included), `/ready` (200 once the zone is synced and
//! while not shutting down, else 503) and `/metrics` (Prometheus text). With
//! `[explain] http`, the health listener also answers `/explain` ([`explain`]).

pub mod explain;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;

use crate::metrics::Metrics;
use crate::shutdown::Shutdown;

pub use crate::config::Endpoint;

/// What the endpoints report on.
#[derive(Clone)]
pub struct AdminState {
    /// Whether what answers DNS is ready (the zone listed once, …).
    pub ready: Arc<dyn Fn() -> bool + Send + Sync>,
    pub metrics: Arc<Metrics>,
    /// Set on SIGTERM: `/ready` turns 503 for the lameduck period.
    pub draining: Arc<AtomicBool>,
    /// The default block's driver, when `/explain` is on (`[explain] http`).
    pub explain: Option<Arc<crate::server::Driver>>,
}

impl AdminState {
    pub fn is_ready(&self) -> bool {
        !self.draining.load(Ordering::Relaxed) && (self.ready)()
    }
}

fn router(endpoint: Endpoint, state: AdminState) -> Router {
    match endpoint {
        Endpoint::Health => {
            let health = Router::new().route("/health", get(|| async { "OK" }));
            match state.explain {
                Some(driver) => health.merge(
                    Router::new()
                        .route("/explain", get(explain::handler))
                        .with_state(driver),
                ),
                None => health,
            }
        }
        Endpoint::Ready => Router::new().route(
            "/ready",
            get(move || {
                let ready = state.is_ready();
                async move {
                    if ready {
                        (StatusCode::OK, "OK")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
                    }
                }
            }),
        ),
        Endpoint::Probes => {
            router(Endpoint::Health, state.clone()).merge(router(Endpoint::Ready, state))
        }
        Endpoint::Metrics => Router::new().route(
            "/metrics",
            get(move || {
                let text = state.metrics.render();
                async move {
                    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
                }
            }),
        ),
    }
}

/// Binds the endpoint's listener (so a bad address fails at start, not later).
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Binds with SO_REUSEPORT, so that a second instance can bind beside the first while
/// it drains (the NodeLocal mode's overlapping restarts).
pub fn bind_shared(addr: SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    socket.set_nonblocking(true)?;
    TcpListener::from_std(socket.into())
}

/// Serves one endpoint until `stop`.
pub async fn serve(listener: TcpListener, endpoint: Endpoint, state: AdminState, stop: Shutdown) {
    let app = router(endpoint, state);
    let served =
        axum::serve(listener, app).with_graceful_shutdown(async move { stop.wait().await });
    if let Err(e) = served.await {
        tracing::warn!(error = %e, ?endpoint, "http endpoint failed");
    }
}
