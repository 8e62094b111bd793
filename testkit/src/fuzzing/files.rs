//! `cluster_file` and `config`: arbitrary text through the readers of the files an
//! operator writes. Invariants: no panic, and every refusal can be said (its message is
//! formatted, as the server logs it). What a cluster file yields also goes into a zone
//! index, as the file source feeds it.

use std::path::Path;
use std::sync::Arc;

use clusterdns::config::Config;
use clusterdns::source::ClusterEvent;
use clusterdns::source::file::{Selection, parse};
use clusterdns::zone::{ClusterIndex, ClusterZone, IndexSettings};

/// A cluster file (YAML, of which JSON is a subset): the bytes a file source reads.
pub fn cluster_file(input: &[u8]) {
    // The file source refuses a file that is not UTF-8 before parsing it.
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    match parse(Path::new("cluster.yaml"), text, &Selection::all()) {
        Ok(objects) => {
            let zone = Arc::new(ClusterZone::new());
            let mut index = ClusterIndex::new(zone, IndexSettings::default());
            let events = objects.into_iter().map(ClusterEvent::Apply);
            index.apply_all(events.chain([ClusterEvent::InitialSyncDone]));
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

/// A config file (TOML).
pub fn config(input: &[u8]) {
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    match Config::parse(Path::new("clusterdns.toml"), text) {
        Ok(config) => {
            let _ = config.zone_settings();
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}
