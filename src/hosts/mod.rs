//! Names from a hosts table (CoreDNS's `hosts` plugin): inline entries and a file in
//! `/etc/hosts` form, re-read when it changes. A room on the wire floor: the chain's
//! hosts stage asks [`Hosts::answer`], which reads the table published last (no lock,
//! no allocation) while a poller swaps in a new one.
//!
//! As CoreDNS answers: A and AAAA for names of its zones, PTR for the addresses it holds
//! (unless `no_reverse`); a name it holds with no record of the type asked is NODATA; a
//! name of its zones it does not hold goes on to the next stage when `fallthrough`
//! covers it, else SERVFAIL (without an SOA there is no NXDOMAIN to give). Any other
//! name, and a PTR for an address it lacks, goes on.

pub mod table;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use thiserror::Error;

use crate::wire::writer::{NameRef, ResponseWriter, Section};
use crate::wire::{MAX_NAME_LEN, QName, Rcode, ZoneName, rtype};
pub use table::{HostEntry, Table, parse_line};

/// What the hosts stage is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostsSettings {
    /// A file in `/etc/hosts` form, re-read when it changes.
    pub file: Option<PathBuf>,
    /// Lines given in the config itself; they never change until a reload.
    pub entries: Vec<HostEntry>,
    /// The names it answers for (PTR queries apart, as CoreDNS).
    pub zones: Vec<ZoneName>,
    pub ttl: u32,
    /// No PTR records from the entries.
    pub no_reverse: bool,
    /// Names of its zones it does not hold go on to the next stage when they are in
    /// one of these.
    pub fallthrough: Vec<ZoneName>,
    /// How often the file is checked for a change; zero: never.
    pub reload: Duration,
}

impl Default for HostsSettings {
    /// CoreDNS's defaults: every zone, TTL 3600, PTR records, the file checked every 5 s.
    fn default() -> Self {
        HostsSettings {
            file: None,
            entries: Vec::new(),
            zones: vec![ZoneName::parse(".").expect("root")],
            ttl: 3600,
            no_reverse: false,
            fallthrough: Vec::new(),
            reload: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, Error)]
pub enum HostsError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file (kept as it was before) has a line that is not a hosts line.
    #[error("{path}:{line}: {reason}")]
    Line {
        path: PathBuf,
        line: usize,
        reason: String,
    },
}

/// What the stage made of a query.
pub enum HostsOutcome {
    /// The writer holds the response (not finished).
    Answered,
    /// Not for this stage.
    Next,
}

/// A hosts table and the settings it answers with.
pub struct Hosts {
    settings: HostsSettings,
    table: ArcSwap<Table>,
    /// The file as last seen, so that it is read (and an error reported) once per change.
    seen: Mutex<Seen>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    Never,
    Missing,
    /// Its modification time and size.
    File(SystemTime, u64),
}

impl Hosts {
    /// Builds the table from the inline entries and the file, and, inside a Tokio
    /// runtime, starts watching the file. A file that cannot be read is reported and
    /// answers nothing until it can.
    pub fn start(settings: HostsSettings) -> Arc<Hosts> {
        let hosts = Arc::new(Hosts {
            table: ArcSwap::from_pointee(Table::new(&settings.entries, !settings.no_reverse)),
            settings,
            seen: Mutex::new(Seen::Never),
        });
        if let Err(e) = hosts.check_file() {
            tracing::error!("hosts: {e}");
        }
        if hosts.settings.file.is_some()
            && !hosts.settings.reload.is_zero()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(poll(Arc::downgrade(&hosts), hosts.settings.reload));
        }
        hosts
    }

    pub fn settings(&self) -> &HostsSettings {
        &self.settings
    }

    /// Reads the file again if it changed since it was last seen, and publishes the new
    /// table; on an error the table stays as it was. Returns whether a table was
    /// published.
    pub fn check_file(&self) -> Result<bool, HostsError> {
        let Some(path) = &self.settings.file else {
            return Ok(false);
        };
        let io = |source| HostsError::Io {
            path: path.clone(),
            source,
        };
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            // Reported once, not at every poll.
            Err(_) if *seen == Seen::Missing => return Ok(false),
            Err(e) => {
                *seen = Seen::Missing;
                return Err(io(e));
            }
        };
        let stamp = Seen::File(meta.modified().map_err(io)?, meta.len());
        if *seen == stamp {
            return Ok(false);
        }
        *seen = stamp;
        let text = std::fs::read_to_string(path).map_err(io)?;
        // Written while we read (an editor, a ConfigMap update): read it again at the
        // next check rather than publish half a file.
        let after = std::fs::metadata(path).map_err(io)?;
        if Seen::File(after.modified().map_err(io)?, after.len()) != stamp {
            *seen = Seen::Never;
            return Ok(false);
        }
        let entries = table::parse_text(&text).map_err(|(line, reason)| HostsError::Line {
            path: path.clone(),
            line,
            reason,
        })?;
        let table = Table::new(
            self.settings.entries.iter().chain(&entries),
            !self.settings.no_reverse,
        );
        tracing::info!(file = %path.display(), names = table.len(), "hosts file read");
        self.table.store(Arc::new(table));
        Ok(true)
    }

    /// Answers `name` (`qtype`) into `w` when the table speaks for it.
    pub fn answer(&self, name: &QName<'_>, qtype: u16, w: &mut ResponseWriter<'_>) -> HostsOutcome {
        let table = self.table.load();
        let s = &self.settings;
        let owner = NameRef::Ptr(name.suffix_offset(0));
        if qtype == rtype::PTR {
            let names =
                table::reverse_address(name.labels()).map_or(&[][..], |ip| table.names_of(ip));
            if names.is_empty() {
                return HostsOutcome::Next;
            }
            for n in names {
                w.name_record(
                    Section::Answer,
                    owner,
                    rtype::PTR,
                    s.ttl,
                    NameRef::LabelsWire(&[], n),
                );
            }
            w.set_authoritative();
            return HostsOutcome::Answered;
        }
        if !s.zones.iter().any(|z| name.zone_start(&z.labels).is_some()) {
            return HostsOutcome::Next;
        }
        let mut key = [0u8; MAX_NAME_LEN + 1];
        let Some(len) = wire_key(name, &mut key) else {
            return HostsOutcome::Next;
        };
        match table.addresses(&key[..len]) {
            Some(a) => {
                match qtype {
                    rtype::A => {
                        for ip in &a.v4 {
                            w.a(Section::Answer, owner, s.ttl, *ip);
                        }
                    }
                    rtype::AAAA => {
                        for ip in &a.v6 {
                            w.aaaa(Section::Answer, owner, s.ttl, *ip);
                        }
                    }
                    // A name it holds, with no record of this type: NODATA.
                    _ => {}
                }
                w.set_authoritative();
                HostsOutcome::Answered
            }
            None if s
                .fallthrough
                .iter()
                .any(|z| name.zone_start(&z.labels).is_some()) =>
            {
                HostsOutcome::Next
            }
            None => {
                w.set_rcode(Rcode::SERVFAIL);
                HostsOutcome::Answered
            }
        }
    }
}

/// The lower-case wire form of `name` in `buf`; its length.
fn wire_key(name: &QName<'_>, buf: &mut [u8]) -> Option<usize> {
    let mut at = 0;
    for l in name.labels() {
        let end = at + 1 + l.len();
        let slot = buf.get_mut(at..end)?;
        slot[0] = l.len() as u8;
        slot[1..].copy_from_slice(l);
        at = end;
    }
    *buf.get_mut(at)? = 0;
    Some(at + 1)
}

/// Checks the file every `period` while the table is in use (it stops once the chain
/// that held it has been replaced and dropped).
async fn poll(hosts: Weak<Hosts>, period: Duration) {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(hosts) = hosts.upgrade() else {
            return;
        };
        // The read is small, but it is file I/O: off the runtime's workers.
        let result = tokio::task::spawn_blocking(move || hosts.check_file()).await;
        if let Ok(Err(e)) = result {
            tracing::error!("hosts: {e}; the entries read last stay in use");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(hosts: &Hosts, name: &str) -> Option<Vec<std::net::Ipv4Addr>> {
        let wire = ZoneName::parse(name).unwrap().wire;
        hosts.table.load().addresses(&wire).map(|a| a.v4.clone())
    }

    #[test]
    fn a_broken_file_is_named_at_its_line_and_the_last_good_table_stays() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hosts");
        std::fs::write(&path, "10.0.0.1 db.example\n").unwrap();
        let settings = HostsSettings {
            file: Some(path.clone()),
            entries: vec![parse_line("10.0.0.9 inline.example").unwrap().unwrap()],
            ..HostsSettings::default()
        };
        // Outside a runtime: no poller, the test checks the file itself.
        let hosts = Hosts::start(settings);
        assert_eq!(
            lookup(&hosts, "db.example"),
            Some(vec!["10.0.0.1".parse().unwrap()])
        );
        assert!(lookup(&hosts, "inline.example").is_some());
        assert!(!hosts.check_file().unwrap(), "unchanged: not read again");

        std::fs::write(&path, "10.0.0.2 db.example\n# fine\nnot-an-ip db.example\n").unwrap();
        let err = hosts.check_file().unwrap_err().to_string();
        assert_eq!(
            err,
            format!("{}:3: \"not-an-ip\" is not an IP address", path.display())
        );
        assert_eq!(
            lookup(&hosts, "db.example"),
            Some(vec!["10.0.0.1".parse().unwrap()])
        );
        // Reported once, not at every check.
        assert!(!hosts.check_file().unwrap());

        std::fs::remove_file(&path).unwrap();
        assert!(hosts.check_file().is_err());
        assert!(!hosts.check_file().unwrap());
        assert!(lookup(&hosts, "db.example").is_some());

        std::fs::write(&path, "10.0.0.3 db.example\n").unwrap();
        assert!(hosts.check_file().unwrap());
        assert_eq!(
            lookup(&hosts, "db.example"),
            Some(vec!["10.0.0.3".parse().unwrap()])
        );
        assert!(
            lookup(&hosts, "inline.example").is_some(),
            "inline entries stay"
        );
    }
}
