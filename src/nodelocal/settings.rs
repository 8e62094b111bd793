//! What the node-local network setup is told: the link, its addresses, the ports the
//! steering rules cover, the firewall backend and how often it is all re-checked.
//!
//! Made from the `[nodelocal]` table of the config file (`config::NodeLocalConfig`); the
//! defaults here are node-cache's arrangement (a `dummy` link `nodelocaldns` holding
//! 169.254.20.10, DNS on port 53, health on 8080).

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use serde::Deserialize;

/// The network half of the NodeLocal mode.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkSettings {
    /// Name of the link holding the local addresses (at most 15 bytes, as the kernel
    /// allows).
    pub link_name: String,
    /// Kind of that link: `dummy` as node-cache, or `ifb` where the kernel has no dummy
    /// driver (both get local routes for their addresses while down).
    pub link_kind: LinkKind,
    /// Addresses only the node-local cache answers on (default 169.254.20.10). Host
    /// clients' queries to them are also left untracked.
    pub addresses: Vec<IpAddr>,
    /// The kube-dns ClusterIP(s), taken over while the cache is bound and handed back to
    /// kube-proxy when it is not. IPv4 and IPv6 may be mixed, here and in `addresses`.
    pub cluster_ips: Vec<IpAddr>,
    /// Port of DNS on those addresses, UDP and TCP.
    pub dns_port: u16,
    /// Port of the health endpoint on `addresses`, whose probe connections (host-local
    /// TCP) are left untracked, so a full conntrack table does not fail the probe and
    /// restart a cache that works; 0 for no such rules.
    pub health_port: u16,
    /// Which firewall the steering rules are written with.
    pub backend: BackendSetting,
    /// Create the link and its addresses (off where something else provides the
    /// addresses, e.g. Cilium's Local Redirect Policy).
    pub setup_interface: bool,
    /// Program the steering rules (off with Cilium's Local Redirect Policy).
    pub setup_rules: bool,
    /// How often the link, addresses and rules are checked and repaired.
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

    /// Checks what a field's parser cannot see; on refusal, the key it is about and why.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.addresses.is_empty() {
            return Err((
                "addresses",
                "empty: give at least the link-local address".into(),
            ));
        }
        let mut seen = HashSet::new();
        // Loopback cannot be put on the link nor steered to; with both steps off (the
        // addresses are someone else's), it serves a cache for this host alone.
        let steered = self.setup_interface || self.setup_rules;
        for a in self.all_addresses() {
            if a.is_unspecified() || a.is_multicast() || (steered && a.is_loopback()) {
                return Err((
                    "addresses",
                    format!(
                        "{a} cannot be a node-local address (unspecified, multicast, or loopback with setup_interface or setup_rules on)"
                    ),
                ));
            }
            if !seen.insert(a) {
                return Err((
                    "cluster_ips",
                    format!("{a} is listed twice in addresses and cluster_ips"),
                ));
            }
        }
        if self.dns_port == 0 {
            return Err(("dns_port", "0 is not a port to answer on".into()));
        }
        if self.health_port == self.dns_port {
            return Err(("health_port", "must differ from dns_port".into()));
        }
        Ok(())
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
