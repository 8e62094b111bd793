//! Logs: tracing to stderr, text or JSON; the optional query log (one line per query, as
//! CoreDNS's `log` plugin); and consolidation of repeated errors (as CoreDNS's
//! `errors { consolidate }`), so a storm of upstream failures is a few lines, not
//! thousands.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::dns::handler::{Plugin, Transport};
use crate::dns::wire::rcode;

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

/// Logs one answered query: `client`, `name`, `type`, `rcode`, flags, sizes, duration.
pub fn log_query(
    peer: SocketAddr,
    transport: Transport,
    query: &[u8],
    response: Option<(&[u8], Plugin)>,
    elapsed: Duration,
) {
    let (name, qtype) = question(query);
    let proto = if transport == Transport::Udp {
        "udp"
    } else {
        "tcp"
    };
    match response.filter(|(r, _)| r.len() >= 12) {
        Some((r, plugin)) => {
            let flags = flags(r);
            tracing::info!(
                target: "clusterdns::query",
                client = %peer, proto, name, qtype, rcode = rcode::name(r[3] & 0x0f), flags,
                request_size = query.len(), response_size = r.len(), plugin = ?plugin,
                duration_us = elapsed.as_micros() as u64,
                "query"
            );
        }
        None => tracing::info!(
            target: "clusterdns::query",
            client = %peer, proto, name, qtype, request_size = query.len(), "query dropped"
        ),
    }
}

fn question(q: &[u8]) -> (String, u16) {
    let mut name = String::new();
    let mut pos = 12;
    while let Some(&len) = q.get(pos) {
        if len == 0 || len & 0xc0 != 0 {
            break;
        }
        let Some(label) = q.get(pos + 1..pos + 1 + len as usize) else {
            break;
        };
        name.push_str(&String::from_utf8_lossy(label));
        name.push('.');
        pos += 1 + len as usize;
    }
    if name.is_empty() {
        name.push('.');
    }
    let qtype = q
        .get(pos + 1..pos + 3)
        .map_or(0, |t| u16::from_be_bytes([t[0], t[1]]));
    (name, qtype)
}

fn flags(r: &[u8]) -> String {
    let mut f = Vec::new();
    for (bit, byte, name) in [
        (0x80, 2, "qr"),
        (0x04, 2, "aa"),
        (0x02, 2, "tc"),
        (0x01, 2, "rd"),
        (0x80, 3, "ra"),
    ] {
        if r[byte] & bit != 0 {
            f.push(name);
        }
    }
    f.join(",")
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
    fn reads_the_question_for_the_log() {
        let q = [
            0u8, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, b'w', b'e', b'b', 0, 0, 28, 0, 1,
        ];
        assert_eq!(question(&q), ("web.".to_string(), 28));
        let mut r = q.to_vec();
        r[2] = 0x85;
        r[3] = 0x83;
        assert_eq!(flags(&r), "qr,aa,rd,ra");
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
