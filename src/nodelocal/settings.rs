//! What the node-local network setup is told: the link, its addresses, the ports the
//! steering rules cover, the firewall backend and how often it is all re-checked.
//!
//! Read from the `[nodelocal]` table of the config file; every key has a default, so an
//! empty table gives node-cache's arrangement (a `dummy` link `nodelocaldns` holding
//! 169.254.20.10, DNS on port 53, health on 8080).

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Deserializer, de};

use crate::config::ConfigError;

/// The network half of the NodeLocal mode.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSettings {
    /// Name of the link holding the local addresses (at most 15 bytes, as the kernel
    /// allows).
    #[serde(default = "default_link_name", deserialize_with = "link_name")]
    pub link_name: String,
    /// Kind of that link: `dummy` as node-cache, or `ifb` where the kernel has no dummy
    /// driver (both get local routes for their addresses while down).
    #[serde(default)]
    pub link_kind: LinkKind,
    /// Addresses only the node-local cache answers on (default 169.254.20.10). Host
    /// clients' queries to them are also left untracked.
    #[serde(default = "default_addresses")]
    pub addresses: Vec<IpAddr>,
    /// The kube-dns ClusterIP(s), taken over while the cache is bound and handed back to
    /// kube-proxy when it is not. IPv4 and IPv6 may be mixed, here and in `addresses`.
    #[serde(default)]
    pub cluster_ips: Vec<IpAddr>,
    /// Port of DNS on those addresses, UDP and TCP.
    #[serde(default = "default_dns_port")]
    pub dns_port: u16,
    /// Port of the health endpoint on `addresses`, whose probe connections (host-local
    /// TCP) are left untracked, so a full conntrack table does not fail the probe and
    /// restart a cache that works; 0 for no such rules.
    #[serde(default = "default_health_port")]
    pub health_port: u16,
    /// Which firewall the steering rules are written with.
    #[serde(default)]
    pub backend: BackendSetting,
    /// Create the link and its addresses (off where something else provides the
    /// addresses, e.g. Cilium's Local Redirect Policy).
    #[serde(default = "yes")]
    pub setup_interface: bool,
    /// Program the steering rules (off with Cilium's Local Redirect Policy).
    #[serde(default = "yes")]
    pub setup_rules: bool,
    /// How often the link, addresses and rules are checked and repaired.
    #[serde(
        default = "default_reconcile",
        rename = "reconcile_period_ms",
        deserialize_with = "period"
    )]
    pub reconcile_period: Duration,
}

/// Kind of the link holding the addresses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkKind {
    #[default]
    Dummy,
    Ifb,
}

impl LinkKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkKind::Dummy => "dummy",
            LinkKind::Ifb => "ifb",
        }
    }
}

/// The backend as configured: one of the three, or `auto` (what kube-proxy uses).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BackendSetting {
    #[default]
    Auto,
    Nft,
    IptablesNft,
    IptablesLegacy,
}

impl Default for NetworkSettings {
    fn default() -> Self {
        NetworkSettings {
            link_name: default_link_name(),
            link_kind: LinkKind::default(),
            addresses: default_addresses(),
            cluster_ips: Vec::new(),
            dns_port: default_dns_port(),
            health_port: default_health_port(),
            backend: BackendSetting::default(),
            setup_interface: true,
            setup_rules: true,
            reconcile_period: default_reconcile(),
        }
    }
}

impl NetworkSettings {
    /// Every address the link holds and the rules steer: `addresses`, then `cluster_ips`.
    pub fn all_addresses(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.addresses.iter().chain(&self.cluster_ips).copied()
    }

    /// Checks what serde cannot see field by field; the reason names the key.
    pub fn validate(&self) -> Result<(), String> {
        if self.addresses.is_empty() {
            return Err("addresses is empty: give at least the link-local address".into());
        }
        let mut seen = HashSet::new();
        for a in self.all_addresses() {
            if a.is_unspecified() || a.is_multicast() || a.is_loopback() {
                return Err(format!(
                    "{a} cannot be a node-local address (unspecified, multicast or loopback)"
                ));
            }
            if !seen.insert(a) {
                return Err(format!("{a} is listed twice in addresses and cluster_ips"));
            }
        }
        if self.dns_port == 0 {
            return Err("dns_port must not be 0".into());
        }
        if self.health_port == self.dns_port {
            return Err("health_port must differ from dns_port".into());
        }
        Ok(())
    }

    /// Reads the `[nodelocal]` table of a config file (other tables are left to the rest
    /// of the config); an absent table gives the defaults.
    pub fn load(path: &Path) -> Result<NetworkSettings, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        NetworkSettings::parse(path, &text)
    }

    /// Parses config text; `path` is only used in errors.
    pub fn parse(path: &Path, text: &str) -> Result<NetworkSettings, ConfigError> {
        #[derive(Deserialize)]
        struct File {
            #[serde(default)]
            nodelocal: Option<NetworkSettings>,
        }
        let invalid = |at: usize, reason: String| {
            let at = at.min(text.len());
            let before = &text[..at];
            ConfigError::Invalid {
                path: path.to_owned(),
                line: before.matches('\n').count() + 1,
                column: at - before.rfind('\n').map(|i| i + 1).unwrap_or(0) + 1,
                reason,
            }
        };
        let file: File = toml::from_str(text).map_err(|e| {
            invalid(
                e.span().map(|s| s.start).unwrap_or(0),
                e.message().to_owned(),
            )
        })?;
        let settings = file.nodelocal.unwrap_or_default();
        settings
            .validate()
            .map_err(|reason| invalid(text.find("[nodelocal]").unwrap_or(0), reason))?;
        Ok(settings)
    }
}

fn default_link_name() -> String {
    "nodelocaldns".into()
}
fn default_addresses() -> Vec<IpAddr> {
    vec![IpAddr::V4(Ipv4Addr::new(169, 254, 20, 10))]
}
fn default_dns_port() -> u16 {
    53
}
fn default_health_port() -> u16 {
    8080
}
fn default_reconcile() -> Duration {
    Duration::from_secs(10)
}
fn yes() -> bool {
    true
}

fn link_name<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let name = String::deserialize(d)?;
    // IFNAMSIZ is 16 with the NUL; the kernel also refuses '/', ':' and whitespace.
    let ok = !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && !name.contains(['/', ':'])
        && !name.chars().any(char::is_whitespace);
    if !ok {
        return Err(de::Error::custom(format!(
            "{name:?} is not a link name (1 to 15 bytes, no '/', ':' or spaces)"
        )));
    }
    Ok(name)
}

fn period<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let ms = u64::deserialize(d)?;
    if ms < 100 {
        return Err(de::Error::custom(format!(
            "reconcile_period_ms {ms} is below 100: the firewall tools would run constantly"
        )));
    }
    Ok(Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<NetworkSettings, ConfigError> {
        NetworkSettings::parse(Path::new("c.toml"), text)
    }

    #[test]
    fn an_absent_or_empty_table_gives_node_caches_defaults() {
        let absent = parse("listen = [\"127.0.0.1:53\"]\n").unwrap();
        assert_eq!(absent, NetworkSettings::default());
        let empty = parse("[nodelocal]\n").unwrap();
        assert_eq!(empty, absent);
        assert_eq!(empty.link_name, "nodelocaldns");
        assert_eq!(empty.link_kind, LinkKind::Dummy);
        assert_eq!(
            empty.addresses,
            ["169.254.20.10".parse::<IpAddr>().unwrap()]
        );
        assert_eq!((empty.dns_port, empty.health_port), (53, 8080));
        assert_eq!(empty.backend, BackendSetting::Auto);
        assert!(empty.setup_interface && empty.setup_rules);
        assert_eq!(empty.reconcile_period, Duration::from_secs(10));
    }

    #[test]
    fn every_key_is_read() {
        let s = parse(
            "[other]\nx = 1\n[nodelocal]\nlink_name = \"nl0\"\nlink_kind = \"ifb\"\n\
             addresses = [\"169.254.20.10\", \"fd00:20::10\"]\n\
             cluster_ips = [\"10.96.0.10\", \"fd00:96::a\"]\ndns_port = 5353\n\
             health_port = 0\nbackend = \"iptables-legacy\"\nsetup_interface = false\n\
             setup_rules = false\nreconcile_period_ms = 500\n",
        )
        .unwrap();
        assert_eq!(s.link_name, "nl0");
        assert_eq!(s.link_kind, LinkKind::Ifb);
        assert_eq!(s.all_addresses().count(), 4);
        assert_eq!((s.dns_port, s.health_port), (5353, 0));
        assert_eq!(s.backend, BackendSetting::IptablesLegacy);
        assert!(!s.setup_interface && !s.setup_rules);
        assert_eq!(s.reconcile_period, Duration::from_millis(500));
    }

    #[test]
    fn bad_values_are_refused_with_line_and_reason() {
        let cases = [
            ("[nodelocal]\nbackend = \"ipfw\"\n", 2, "ipfw"),
            (
                "[nodelocal]\nlink_name = \"a-much-too-long-name\"\n",
                2,
                "link name",
            ),
            (
                "[nodelocal]\naddresses = [\"169.254.20.300\"]\n",
                2,
                "invalid",
            ),
            ("[nodelocal]\nreconcile_period_ms = 5\n", 2, "below 100"),
            ("[nodelocal]\nlinkname = \"x\"\n", 2, "unknown field"),
            ("\n[nodelocal]\naddresses = []\n", 2, "addresses is empty"),
            (
                "[nodelocal]\ncluster_ips = [\"169.254.20.10\"]\n",
                1,
                "listed twice",
            ),
            ("[nodelocal]\naddresses = [\"0.0.0.0\"]\n", 1, "unspecified"),
            ("[nodelocal]\nhealth_port = 53\n", 1, "differ"),
        ];
        for (text, line, reason) in cases {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.starts_with(&format!("c.toml:{line}:")), "{text}: {err}");
            assert!(err.contains(reason), "{text}: {err}");
        }
    }
}
