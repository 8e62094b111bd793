//! `[cache]`: the response cache in front of the forwarder.

use std::time::Duration;

use serde::{Deserialize, Deserializer, de};

use super::Refusal;
use super::de::zone_list;
use crate::cache::{CacheSettings, TtlPolicy};
use crate::wire::ZoneName;

/// `[cache]`: the response cache in front of the forwarder (CoreDNS's `cache` plugin).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    /// Entries at most; at least 1 (the cache cannot be turned off).
    #[serde(default = "default_capacity")]
    pub capacity: u64,
    /// Bytes at most; default 1 KiB per entry of `capacity`.
    pub max_bytes: Option<u64>,
    #[serde(default = "default_min_ttl")]
    pub min_ttl: u64,
    #[serde(default = "default_success_cap")]
    pub success_cap: u64,
    #[serde(default = "default_denial_cap")]
    pub denial_cap: u64,
    #[serde(default = "default_servfail_ttl", deserialize_with = "servfail_ttl")]
    pub servfail_ttl: u64,
    /// Seconds past expiry an answer may be served when every upstream fails; 0: never.
    #[serde(default = "default_serve_stale")]
    pub serve_stale: u64,
    /// Hits that make an entry worth refreshing before it expires; 0: no prefetch.
    #[serde(default = "default_prefetch")]
    pub prefetch: u32,
    /// Prefetch when this share of the TTL is left, 0 to 100.
    #[serde(default = "default_prefetch_percent")]
    pub prefetch_percent: u32,
    #[serde(default, deserialize_with = "zone_list")]
    pub no_success: Vec<ZoneName>,
    #[serde(default, deserialize_with = "zone_list")]
    pub no_denial: Vec<ZoneName>,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            capacity: default_capacity(),
            max_bytes: None,
            min_ttl: default_min_ttl(),
            success_cap: default_success_cap(),
            denial_cap: default_denial_cap(),
            servfail_ttl: default_servfail_ttl(),
            serve_stale: default_serve_stale(),
            prefetch: default_prefetch(),
            prefetch_percent: default_prefetch_percent(),
            no_success: Vec::new(),
            no_denial: Vec::new(),
        }
    }
}

impl CacheConfig {
    pub(super) fn check(&self) -> Result<(), Refusal> {
        let refuse = |key, reason: String| Err(Refusal::new("cache", key, reason));
        if self.capacity == 0 {
            return refuse(
                "capacity",
                "0 entries: the cache holds at least 1 (it cannot be turned off)".into(),
            );
        }
        if self.max_bytes == Some(0) {
            return refuse("max_bytes", "0 bytes would hold no answer".into());
        }
        for (key, cap) in [
            ("success_cap", self.success_cap),
            ("denial_cap", self.denial_cap),
        ] {
            if self.min_ttl > cap {
                return refuse(
                    "min_ttl",
                    format!("{} s is above {key} ({cap} s)", self.min_ttl),
                )
                .map_err(|r| r.or_at(key));
            }
        }
        if self.prefetch_percent > 100 {
            return refuse(
                "prefetch_percent",
                format!("{} is out of range 0..=100", self.prefetch_percent),
            );
        }
        Ok(())
    }

    pub fn settings(&self) -> CacheSettings {
        let secs = Duration::from_secs;
        CacheSettings {
            capacity: self.capacity,
            max_bytes: self.max_bytes.unwrap_or(self.capacity.saturating_mul(1024)),
            ttl: TtlPolicy {
                min_ttl: secs(self.min_ttl),
                success_cap: secs(self.success_cap),
                denial_cap: secs(self.denial_cap),
                servfail_ttl: secs(self.servfail_ttl),
            },
            serve_stale: secs(self.serve_stale),
            prefetch_hits: self.prefetch,
            prefetch_percent: self.prefetch_percent,
            no_success: self.no_success.clone(),
            no_denial: self.no_denial.clone(),
        }
    }
}

// The defaults are the cache's own (CacheSettings::default), in the units of the file.
fn defaults() -> CacheSettings {
    CacheSettings::default()
}
fn default_capacity() -> u64 {
    defaults().capacity
}
fn default_min_ttl() -> u64 {
    defaults().ttl.min_ttl.as_secs()
}
fn default_success_cap() -> u64 {
    defaults().ttl.success_cap.as_secs()
}
fn default_denial_cap() -> u64 {
    defaults().ttl.denial_cap.as_secs()
}
fn default_servfail_ttl() -> u64 {
    defaults().ttl.servfail_ttl.as_secs()
}
fn default_serve_stale() -> u64 {
    defaults().serve_stale.as_secs()
}
fn default_prefetch() -> u32 {
    defaults().prefetch_hits
}
fn default_prefetch_percent() -> u32 {
    defaults().prefetch_percent
}

fn servfail_ttl<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let v = u64::deserialize(d)?;
    if v > 5 {
        return Err(de::Error::custom(format!(
            "servfail_ttl {v} is above 5 seconds (RFC 2308 §7.1)"
        )));
    }
    Ok(v)
}
