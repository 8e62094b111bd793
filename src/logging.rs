//! Logs: tracing to stderr, text or JSON, and consolidation of repeated errors (as
//! CoreDNS's `errors { consolidate }`), so a storm of upstream failures is a few lines,
//! not thousands. The query log line is written where queries are observed
//! (`server::observe`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Installs the global subscriber; `RUST_LOG` filters (default `info`).
pub fn init(format: LogFormat) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

/// Gathers repeated errors: the first of a kind is logged at once, the next ones within
/// `window` are counted and reported as one line when the window closes.
pub struct Consolidator {
    window: Duration,
    seen: Mutex<HashMap<&'static str, (Instant, u64)>>,
}

impl Consolidator {
    pub fn new(window: Duration) -> Self {
        Consolidator {
            window,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Reports an error of kind `kind`; `message` is built only when it is logged.
    pub fn error(&self, kind: &'static str, message: impl FnOnce() -> String) {
        if self.window.is_zero() {
            let text = message();
            tracing::warn!("{text}");
            return;
        }
        let now = Instant::now();
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        match seen.get_mut(kind) {
            Some((since, count)) if now.duration_since(*since) < self.window => *count += 1,
            Some((since, count)) => {
                let (suppressed, window) = (*count, now.duration_since(*since));
                *since = now;
                *count = 0;
                drop(seen);
                if suppressed > 0 {
                    tracing::warn!(
                        "{suppressed} more errors like this in the last {window:.0?}: {}",
                        message()
                    );
                } else {
                    tracing::warn!("{}", message());
                }
            }
            None => {
                seen.insert(kind, (now, 0));
                drop(seen);
                let text = message();
                tracing::warn!("{text}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consolidates_within_the_window() {
        let c = Consolidator::new(Duration::from_secs(60));
        let mut built = 0;
        for _ in 0..100 {
            c.error("upstream", || {
                built += 1;
                "upstream failed".into()
            });
        }
        assert_eq!(
            built, 1,
            "only the first error of the window is formatted and logged"
        );
    }
}
