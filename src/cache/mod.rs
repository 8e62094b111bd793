//! The response cache (moka): answers kept in wire form, keyed by the lower-cased
//! question name, type, class and DO bit. It sits in front of the forwarder, and in front
//! of any handler that produces wire responses (the node-local mode puts it before the
//! cluster DNS).

pub mod metrics;

use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use tokio::time::Instant;

pub use crate::wire::answer::{AnswerKind, CachedAnswer, TtlPolicy};
use crate::wire::{MAX_NAME_LEN, QName, Query, ZoneName};
pub use metrics::CacheMetrics;

/// Key bytes: lower-case wire name, type, class, DO.
pub const MAX_KEY_LEN: usize = MAX_NAME_LEN + 5;

/// Writes the cache key of `q` into `buf`; returns its length.
pub fn key_of(q: &Query<'_>, buf: &mut [u8; MAX_KEY_LEN]) -> usize {
    let mut n = 0;
    for l in q.labels() {
        buf[n] = l.len() as u8;
        buf[n + 1..n + 1 + l.len()].copy_from_slice(l);
        n += 1 + l.len();
    }
    buf[n] = 0;
    buf[n + 1..n + 3].copy_from_slice(&q.qtype.to_be_bytes());
    buf[n + 3..n + 5].copy_from_slice(&q.qclass.to_be_bytes());
    buf[n + 5] = u8::from(q.edns.is_some_and(|e| e.dnssec_ok));
    n + 6
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheSettings {
    /// Entries at most (CoreDNS: 9984).
    pub capacity: u64,
    /// Bytes at most, over all entries.
    pub max_bytes: u64,
    pub ttl: TtlPolicy,
    /// How long past expiry an answer may still be served when every upstream fails
    /// (RFC 8767); zero turns serve-stale off.
    pub serve_stale: Duration,
    /// Refresh an entry asked for `prefetch_hits` times once less than
    /// `prefetch_percent` of its TTL is left; 0 hits turns prefetch off.
    pub prefetch_hits: u32,
    pub prefetch_percent: u32,
    /// Zones whose positive answers are not cached.
    pub no_success: Vec<ZoneName>,
    /// Zones whose NXDOMAIN/NODATA answers are not cached.
    pub no_denial: Vec<ZoneName>,
}

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings {
            capacity: 9984,
            max_bytes: 9984 * 1024,
            ttl: TtlPolicy {
                min_ttl: Duration::from_secs(5),
                success_cap: Duration::from_secs(3600),
                denial_cap: Duration::from_secs(1800),
                servfail_ttl: Duration::from_secs(5),
            },
            serve_stale: Duration::from_secs(3600),
            prefetch_hits: 2,
            prefetch_percent: 10,
            no_success: Vec::new(),
            no_denial: Vec::new(),
        }
    }
}

/// A cached answer with the bookkeeping of prefetch.
#[derive(Debug)]
pub struct Entry {
    pub answer: CachedAnswer,
    hits: AtomicU32,
    prefetching: AtomicBool,
}

impl Entry {
    /// An answer served once and not kept (a chain with no cache stage before its
    /// forwarder).
    pub fn uncached(answer: CachedAnswer) -> Arc<Entry> {
        Arc::new(Entry {
            answer,
            hits: AtomicU32::new(0),
            prefetching: AtomicBool::new(false),
        })
    }
}

/// What a lookup found.
pub enum Lookup {
    /// Fresh; `prefetch` says this hit should start a background refresh.
    Fresh {
        entry: Arc<Entry>,
        prefetch: bool,
    },
    /// Expired but within the serve-stale window: usable only if upstreams fail.
    Stale(Arc<Entry>),
    Miss,
}

pub struct ResponseCache {
    /// Keyed by a keyed 64-bit hash of the key bytes rather than the bytes themselves:
    /// an inline key saves an allocation per entry, and every hit checks the stored
    /// question against the key bytes, so a collision can only cost a miss. The key is
    /// already a good hash, so moka uses it as it is ([`KeyIsHash`]).
    entries: moka::sync::Cache<u64, Arc<Entry>, KeyIsHash>,
    hasher: RandomState,
    settings: CacheSettings,
    metrics: CacheMetrics,
}

/// Hashes a `u64` key to itself: the cache's keys are already keyed SipHash values, and
/// hashing them again would only cost time on every lookup.
#[derive(Clone, Copy, Default)]
pub struct KeyIsHash;

/// The hasher of [`KeyIsHash`].
#[derive(Default)]
pub struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys are hashed here; fold anything else in, to stay correct.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl BuildHasher for KeyIsHash {
    type Hasher = KeyHasher;
    fn build_hasher(&self) -> KeyHasher {
        KeyHasher(0)
    }
}

/// The metrics index of an answer kind: success, or denial (SERVFAIL counts as denial,
/// as in CoreDNS).
fn kind_index(kind: AnswerKind) -> usize {
    usize::from(kind != AnswerKind::Success)
}

impl ResponseCache {
    pub fn new(settings: CacheSettings, metrics: CacheMetrics) -> Self {
        // Weights are bytes, at least max_bytes / capacity each: so the cache holds at most
        // `capacity` entries and at most `max_bytes` bytes.
        let unit = (settings.max_bytes / settings.capacity.max(1)).max(1);
        let entries = moka::sync::Cache::<u64, Arc<Entry>>::builder()
            .max_capacity(unit * settings.capacity.max(1))
            .eviction_listener({
                let m = metrics.clone();
                move |_, v: Arc<Entry>, cause| {
                    let i = kind_index(v.answer.kind);
                    m.entries[i].dec();
                    if matches!(cause, moka::notification::RemovalCause::Size) {
                        m.evictions[i].inc();
                    }
                }
            })
            .weigher(move |_, v| -> u32 {
                let bytes = (16 + v.answer.size()) as u64;
                bytes.max(unit).min(u32::MAX as u64) as u32
            })
            .build_with_hasher(KeyIsHash);
        ResponseCache {
            entries,
            hasher: RandomState::new(),
            settings,
            metrics,
        }
    }

    pub fn settings(&self) -> &CacheSettings {
        &self.settings
    }

    fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    /// The entry for `key`, fresh or not, without counting a lookup or touching its
    /// prefetch bookkeeping (for `clusterdns explain`).
    pub fn peek(&self, key: &[u8]) -> Option<Arc<Entry>> {
        self.entries
            .get(&self.hash(key))
            .filter(|e| e.answer.answers_key(key))
    }

    pub fn get(&self, key: &[u8], now: Instant) -> Lookup {
        let hash = self.hash(key);
        self.metrics.requests.inc();
        let Some(entry) = self
            .entries
            .get(&hash)
            .filter(|e| e.answer.answers_key(key))
        else {
            self.metrics.misses.inc();
            return Lookup::Miss;
        };
        let a = &entry.answer;
        if !a.is_fresh(now) {
            self.metrics.misses.inc();
            if now < a.stored + a.ttl() + self.settings.serve_stale {
                return Lookup::Stale(entry);
            }
            // Past any use. Entries carry no timer in moka (a per-entry timer costs about
            // 50 bytes each): an old entry goes when it is next asked for, or when
            // capacity pushes it out.
            self.entries.invalidate(&hash);
            return Lookup::Miss;
        }
        self.metrics.hits[kind_index(a.kind)].inc();
        let hits = entry.hits.fetch_add(1, Ordering::Relaxed) + 1;
        let s = &self.settings;
        let prefetch = s.prefetch_hits > 0
            && hits >= s.prefetch_hits
            && a.remaining(now) * 100 <= a.ttl() * s.prefetch_percent
            && !entry.prefetching.swap(true, Ordering::Relaxed);
        if prefetch {
            self.metrics.prefetch.inc();
        }
        Lookup::Fresh { entry, prefetch }
    }

    /// Stores an answer for `name` unless its kind is not cached in that name's zone.
    /// Returns the entry (also when not stored) so the caller can serve it.
    pub fn insert(&self, key: &[u8], name: &QName<'_>, answer: CachedAnswer) -> Arc<Entry> {
        let excluded =
            |zones: &[ZoneName]| zones.iter().any(|z| name.zone_start(&z.labels).is_some());
        let store = match answer.kind {
            AnswerKind::Success => !excluded(&self.settings.no_success),
            AnswerKind::Denial => !excluded(&self.settings.no_denial),
            AnswerKind::ServFail => true,
            AnswerKind::Uncacheable => false,
        };
        let entry = Arc::new(Entry {
            answer,
            hits: AtomicU32::new(0),
            prefetching: AtomicBool::new(false),
        });
        if store {
            self.metrics.entries[kind_index(entry.answer.kind)].inc();
            self.entries.insert(self.hash(key), entry.clone());
        }
        entry
    }

    /// Counts an answer served stale.
    pub fn served_stale(&self) {
        self.metrics.served_stale.inc();
    }

    pub fn entry_count(&self) -> u64 {
        self.entries.run_pending_tasks();
        self.entries.entry_count()
    }
}

#[cfg(test)]
mod tests;
