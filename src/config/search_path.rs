//! `[search_path]`: what clusterdns does about the names `ndots:5` makes a pod's resolver
//! try with every search domain before the real one.

use serde::{Deserialize, Deserializer, de};

use crate::zone::settings::Autopath;

/// `[search_path]`: insight into search-path expansions (`X.<ns>.svc.Z` where X is not a
/// service of `<ns>`, `X.svc.Z`, `X.Z`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchPathConfig {
    /// `clusterdns_search_path_queries_total{namespace, domain, rcode}`. Off by default:
    /// reading each answered name as an expansion costs two index lookups more.
    #[serde(default)]
    pub metrics: bool,
    /// Namespaces given a `namespace` label of their own (the first that make
    /// expansions); the rest count under `other`. 1 to 1000.
    #[serde(default = "default_top", deserialize_with = "top")]
    pub top_namespaces: usize,
    /// CoreDNS's `autopath`: answer the first expansion `X.<ns>.svc.<zone>` with a CNAME
    /// to the name the pod's resolver would end up with, and that name's answer, so the
    /// pod stops after one query (README: the ambiguity rules). Off by default: a pod
    /// that asks for a missing service of its namespace gets whatever `X.` is outside.
    #[serde(default)]
    pub autopath: bool,
    /// The node's own search domains (its resolv.conf), which a pod's resolver tries
    /// after the cluster's: when any is set, autopath rewrites only to names of the
    /// cluster zone, since whether `X.<domain>` exists is only known by asking.
    #[serde(default)]
    pub host_search: Vec<String>,
}

impl Default for SearchPathConfig {
    fn default() -> Self {
        SearchPathConfig {
            metrics: false,
            top_namespaces: default_top(),
            autopath: false,
            host_search: Vec::new(),
        }
    }
}

impl SearchPathConfig {
    /// What the zone stage is told: how many namespaces to label, 0 when not counting.
    pub fn counted_namespaces(&self) -> usize {
        if self.metrics { self.top_namespaces } else { 0 }
    }
}

impl SearchPathConfig {
    pub fn autopath(&self) -> Autopath {
        match (self.autopath, self.host_search.is_empty()) {
            (false, _) => Autopath::Off,
            (true, true) => Autopath::External,
            (true, false) => Autopath::InZone,
        }
    }
}

fn default_top() -> usize {
    20
}

fn top<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    let n = usize::deserialize(d)?;
    if !(1..=1000).contains(&n) {
        return Err(de::Error::custom(format!(
            "{n} is not in 1..=1000 (each namespace is a series of its own)"
        )));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::Config;

    #[test]
    fn counting_is_off_by_default_and_bounded() {
        let c = Config::parse(Path::new("c.toml"), "[source]\nsample = true\n").unwrap();
        assert_eq!(c.zone_settings().search_path_top, 0);
        let text = "[source]\nsample = true\n[search_path]\nmetrics = true\ntop_namespaces = 3\n";
        let c = Config::parse(Path::new("c.toml"), text).unwrap();
        assert_eq!(c.zone_settings().search_path_top, 3);
        use crate::zone::settings::Autopath;
        assert_eq!(c.zone_settings().autopath, Autopath::Off);
        let text = "[source]\nsample = true\n[search_path]\nautopath = true\n";
        let c = Config::parse(Path::new("c.toml"), text).unwrap();
        assert_eq!(c.zone_settings().autopath, Autopath::External);
        let text =
            "[source]\nsample = true\n[search_path]\nautopath = true\nhost_search = [\"corp\"]\n";
        let c = Config::parse(Path::new("c.toml"), text).unwrap();
        assert_eq!(c.zone_settings().autopath, Autopath::InZone);
        let text = "[source]\nsample = true\n[search_path]\ntop_namespaces = 0\n";
        let err = Config::parse(Path::new("c.toml"), text)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("c.toml:4:") && err.contains("1..=1000"),
            "{err}"
        );
    }
}
