//! `[hosts]` (and `[blocks.hosts]`): the hosts stage's table (CoreDNS's `hosts` plugin).

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer, de};

use super::Refusal;
use super::de::{MIN_MILLIS, millis, zone_list};
use crate::hosts::{HostEntry, HostsSettings, parse_line};
use crate::wire::ZoneName;

/// The largest TTL a record may have (RFC 2181 §8).
const MAX_TTL: u32 = i32::MAX as u32;

/// `[hosts]`: names from inline entries and a hosts file. The stage answers only where
/// `"hosts"` stands in the block's `chain`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostsConfig {
    /// A file in `/etc/hosts` form; a relative path is taken from the config's folder.
    pub file: Option<PathBuf>,
    /// Lines in `/etc/hosts` form: `"10.0.0.1 db.example db"`.
    #[serde(default, deserialize_with = "host_lines")]
    pub entries: Vec<HostEntry>,
    /// The names the table answers for (PTR queries apart); default: every name.
    #[serde(default = "default_zones", deserialize_with = "zone_list")]
    pub zones: Vec<ZoneName>,
    #[serde(default = "default_ttl")]
    pub ttl: u32,
    /// No PTR records from the entries.
    #[serde(default)]
    pub no_reverse: bool,
    /// Names of `zones` the table lacks go on to the next stage when in one of these
    /// (`["."]`: all); otherwise they are answered SERVFAIL, as CoreDNS does.
    #[serde(default, deserialize_with = "zone_list")]
    pub fallthrough: Vec<ZoneName>,
    /// How often the file is checked for a change, in milliseconds; 0: never.
    #[serde(default = "default_reload", with = "millis")]
    pub reload_ms: Duration,
}

impl HostsConfig {
    /// `section` names the table in refusals (`hosts`, or `blocks` for a block's).
    pub(super) fn check(&self, section: &'static str) -> Result<(), Refusal> {
        let refuse = |key, reason: &str| Err(Refusal::new(section, key, reason));
        if self.file.is_none() && self.entries.is_empty() {
            return refuse(
                "entries",
                "no file and no entries: give a hosts file, entries, or both",
            );
        }
        if self.zones.is_empty() {
            return refuse(
                "zones",
                "empty: give at least one zone (\".\" for every name)",
            );
        }
        if self.ttl > MAX_TTL {
            return refuse("ttl", "above 2147483647 (RFC 2181 §8)");
        }
        if !self.reload_ms.is_zero() && self.reload_ms < MIN_MILLIS {
            return refuse("reload_ms", "below the minimum of 10 ms (0 turns it off)");
        }
        Ok(())
    }

    pub fn settings(&self) -> HostsSettings {
        HostsSettings {
            file: self.file.clone(),
            entries: self.entries.clone(),
            zones: self.zones.clone(),
            ttl: self.ttl,
            no_reverse: self.no_reverse,
            fallthrough: self.fallthrough.clone(),
            reload: self.reload_ms,
        }
    }
}

// The defaults are the stage's own (HostsSettings::default).
fn default_zones() -> Vec<ZoneName> {
    HostsSettings::default().zones
}
fn default_ttl() -> u32 {
    HostsSettings::default().ttl
}
fn default_reload() -> Duration {
    HostsSettings::default().reload
}

fn host_lines<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<HostEntry>, D::Error> {
    let mut entries = Vec::new();
    for (i, line) in Vec::<String>::deserialize(d)?.iter().enumerate() {
        match parse_line(line) {
            Ok(Some(e)) => entries.push(e),
            Ok(None) => {
                return Err(de::Error::custom(format!(
                    "entry {i} ({line:?}) holds no address and name"
                )));
            }
            Err(reason) => {
                return Err(de::Error::custom(format!("entry {i} ({line:?}): {reason}")));
            }
        }
    }
    Ok(entries)
}
