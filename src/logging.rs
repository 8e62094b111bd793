//! Logs: tracing to stderr, text or JSON; the query log line (one per query, as CoreDNS's
//! `log` plugin: [`query`], written from what `server::observe` saw); and consolidation
//! of repeated errors (as CoreDNS's `errors { consolidate }`), so a storm of upstream
//! failures is a few lines, not thousands. It imports nothing else of the crate.

mod query;

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tracing::{Event, Subscriber};
use tracing_subscriber::field::Visit;
use tracing_subscriber::filter::{EnvFilter, filter_fn};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, fmt};

pub use query::{Answered, COREDNS_TARGET, QueryLine, QueryLogFormat, presentation};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// The filter when `RUST_LOG` is not set. The Kubernetes client libraries report every
/// failed request of a watch that retries (kube_client's `failed with error … (Connect)`
/// per attempt, `eof in poll`, kube_runtime's per-retry warnings); the watch reports the
/// same failure itself, at most once per 10 s with what it held back, so their lines
/// would only drown it. What kube_client says about its configuration (debug overrides,
/// a CA bundle it cannot reload) is kept, and kube_runtime's errors.
pub const DEFAULT_FILTER: &str = "info,kube_client=off,kube_client::config=warn,\
kube_client::client::tls=warn,kube_runtime=error,hyper=warn,hyper_util=warn,tower=warn";

/// Installs the global subscriber; `RUST_LOG` filters (default [`DEFAULT_FILTER`]).
/// Text is coloured only on a terminal, and never when `NO_COLOR` is set
/// (<https://no-color.org>): a file or `kubectl logs` would hold escape codes.
pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    match format {
        LogFormat::Text => {
            let ansi = use_colour(
                std::io::stderr().is_terminal(),
                std::env::var_os("NO_COLOR"),
            );
            let plain = fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(ansi)
                .with_filter(filter_fn(|m| m.target() != COREDNS_TARGET));
            let coredns = fmt::layer()
                .with_writer(std::io::stderr)
                .event_format(CoreDnsFormat)
                .with_filter(filter_fn(|m| m.target() == COREDNS_TARGET));
            tracing_subscriber::registry()
                .with(filter)
                .with(plain)
                .with(coredns)
                .init();
        }
        LogFormat::Json => fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .json()
            .flatten_event(true)
            .init(),
    }
}

/// Colour when writing to a terminal, unless `NO_COLOR` holds any non-empty value.
fn use_colour(stderr_is_terminal: bool, no_color: Option<OsString>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|v| v.is_empty())
}

/// The query log in CoreDNS's format, in text: `[INFO] ` and the line, exactly as
/// CoreDNS prints it (no timestamp, no target), so its parsers read it unchanged.
struct CoreDnsFormat;

impl<S, N> FormatEvent<S, N> for CoreDnsFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        writer.write_str("[INFO] ")?;
        let mut message = MessageOnly {
            out: &mut writer,
            result: Ok(()),
        };
        event.record(&mut message);
        message.result?;
        writeln!(writer)
    }
}

struct MessageOnly<'a, 'w> {
    out: &'a mut Writer<'w>,
    result: std::fmt::Result,
}

impl Visit for MessageOnly<'_, '_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            // A message's Debug is its Display (format_args!).
            self.result = write!(self.out, "{value:?}");
        }
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
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(use_colour(true, None));
        assert!(
            use_colour(true, Some(OsString::new())),
            "an empty NO_COLOR is unset"
        );
        assert!(!use_colour(true, Some("1".into())));
        assert!(!use_colour(false, None));
    }

    #[test]
    fn the_default_filter_parses_and_silences_the_client_libraries() {
        let f = EnvFilter::try_new(DEFAULT_FILTER).unwrap();
        let text = f.to_string();
        assert!(text.contains("kube_client=off") && text.contains("kube_runtime=error"));
    }

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
