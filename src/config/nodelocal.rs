//! `[nodelocal]`: the NodeLocal mode — a caching forwarder on every node, at a link-local
//! address and the kube-dns ClusterIP(s), that sets up its own link and fail-open
//! steering rules. Its presence turns the mode on; `[forward]` then gives the `.`
//! upstreams, static stub domains and the forwarding limits, `[cache]` the bounds of the
//! one cache shared by every zone, and `[health] lameduck` the drain period.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer, de};

use super::Refusal;
use super::de::{optional_addr, zone_list};
use super::forward::ForwardConfig;
use crate::forward::Nameserver;
use crate::nodelocal::kube_dns::{self, upstream};
use crate::nodelocal::{BackendSetting, LinkKind, NetworkSettings};
use crate::wire::ZoneName;

/// How the cluster and reverse zones reach the cluster DNS.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClusterProtocol {
    /// Pooled, reused connections (node-cache's `force_tcp`, without its connection per
    /// query).
    #[default]
    Tcp,
    /// UDP, falling back to TCP for a truncated answer.
    Udp,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeLocalConfig {
    // The network (see `nodelocal::NetworkSettings`, whose defaults these are).
    #[serde(default = "d_link_name", deserialize_with = "link_name")]
    pub link_name: String,
    #[serde(default)]
    pub link_kind: LinkKind,
    /// Addresses only the cache answers on (default 169.254.20.10).
    #[serde(default = "d_addresses")]
    pub addresses: Vec<IpAddr>,
    /// The kube-dns ClusterIP(s), answered while the cache is bound and left to
    /// kube-proxy when it is not.
    #[serde(default)]
    pub cluster_ips: Vec<IpAddr>,
    #[serde(default = "d_dns_port")]
    pub dns_port: u16,
    /// Port of `/health` and `/ready` on the first address (left untracked by the rules);
    /// 0: no such rules.
    #[serde(default = "d_health_port")]
    pub health_port: u16,
    #[serde(default)]
    pub backend: BackendSetting,
    #[serde(default = "yes")]
    pub setup_interface: bool,
    #[serde(default = "yes")]
    pub setup_rules: bool,
    #[serde(default = "d_reconcile", deserialize_with = "reconcile")]
    pub reconcile_period_ms: Duration,

    // Serving.
    /// The cluster DNS (`IP` or `IP:PORT`); empty: the `kube-dns-upstream` Service from
    /// the environment kubelet sets, read again on every reload.
    #[serde(default, deserialize_with = "nameservers")]
    pub cluster_dns: Vec<SocketAddr>,
    /// The Service whose `<NAME>_SERVICE_HOST`/`_PORT` give the cluster DNS.
    #[serde(default = "d_service")]
    pub cluster_dns_service: String,
    #[serde(default)]
    pub cluster_protocol: ClusterProtocol,
    #[serde(default = "d_cluster_zone", deserialize_with = "zone")]
    pub cluster_zone: ZoneName,
    /// Also forwarded to the cluster DNS.
    #[serde(default = "d_reverse_zones", deserialize_with = "zone_list")]
    pub reverse_zones: Vec<ZoneName>,
    /// Seconds at most a positive / negative answer of the cluster zone is cached.
    #[serde(default = "d_cluster_success")]
    pub cluster_success_ttl: u64,
    #[serde(default = "d_cluster_denial")]
    pub cluster_denial_ttl: u64,
    /// Cap of both kinds in the reverse zones.
    #[serde(default = "d_other_ttl")]
    pub reverse_ttl: u64,
    /// Cap of both kinds for `.` and the stub domains.
    #[serde(default = "d_other_ttl")]
    pub external_ttl: u64,
    /// The mounted kube-dns ConfigMap (`stubDomains`, `upstreamNameservers`); an absent
    /// directory is an empty ConfigMap.
    #[serde(default = "d_kube_dns_dir")]
    pub kube_dns_dir: PathBuf,
    #[serde(default = "d_kube_dns_poll", deserialize_with = "kube_dns_poll")]
    pub kube_dns_poll_ms: Duration,
    /// `/health` and `/ready`; default the first address on `health_port`.
    #[serde(default)]
    pub health_listen: Option<SocketAddr>,
    /// `/metrics`; `""` for off.
    #[serde(default = "d_metrics", deserialize_with = "optional_addr")]
    pub metrics_listen: Option<SocketAddr>,
}

impl Default for NodeLocalConfig {
    fn default() -> Self {
        let n = NetworkSettings::default();
        NodeLocalConfig {
            link_name: n.link_name,
            link_kind: n.link_kind,
            addresses: n.addresses,
            cluster_ips: n.cluster_ips,
            dns_port: n.dns_port,
            health_port: n.health_port,
            backend: n.backend,
            setup_interface: n.setup_interface,
            setup_rules: n.setup_rules,
            reconcile_period_ms: n.reconcile_period,
            cluster_dns: Vec::new(),
            cluster_dns_service: d_service(),
            cluster_protocol: ClusterProtocol::default(),
            cluster_zone: d_cluster_zone(),
            reverse_zones: d_reverse_zones(),
            cluster_success_ttl: d_cluster_success(),
            cluster_denial_ttl: d_cluster_denial(),
            reverse_ttl: d_other_ttl(),
            external_ttl: d_other_ttl(),
            kube_dns_dir: d_kube_dns_dir(),
            kube_dns_poll_ms: d_kube_dns_poll(),
            health_listen: None,
            metrics_listen: d_metrics(),
        }
    }
}

impl NodeLocalConfig {
    /// What the link and rules are made from.
    pub fn network(&self) -> NetworkSettings {
        NetworkSettings {
            link_name: self.link_name.clone(),
            link_kind: self.link_kind,
            addresses: self.addresses.clone(),
            cluster_ips: self.cluster_ips.clone(),
            dns_port: self.dns_port,
            health_port: self.health_port,
            backend: self.backend,
            setup_interface: self.setup_interface,
            setup_rules: self.setup_rules,
            reconcile_period: self.reconcile_period_ms,
        }
    }

    /// Where DNS is answered: every address on `dns_port`, never a wildcard.
    pub fn listen(&self) -> Vec<SocketAddr> {
        self.network()
            .all_addresses()
            .map(|ip| SocketAddr::new(ip, self.dns_port))
            .collect()
    }

    /// Where `/health` and `/ready` are served.
    pub fn probes_listen(&self) -> SocketAddr {
        self.health_listen
            .unwrap_or_else(|| SocketAddr::new(self.addresses[0], self.health_port))
    }

    /// The cluster DNS: the configured addresses, else the Service's environment
    /// (`env` reads a variable; called again on reload).
    pub fn cluster_upstreams(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Vec<SocketAddr>, upstream::ClusterUpstreamError> {
        if !self.cluster_dns.is_empty() {
            return Ok(self.cluster_dns.clone());
        }
        upstream::cluster_dns_upstream(None, &self.cluster_dns_service, env).map(|a| vec![a])
    }

    pub(super) fn check(&self, forward: &ForwardConfig) -> Result<(), Refusal> {
        let refuse = |key, reason: String| Err(Refusal::new("nodelocal", key, reason));
        if let Err((key, reason)) = self.network().validate() {
            return refuse(key, reason);
        }
        if self.health_listen.is_none() && self.health_port == 0 {
            return refuse(
                "health_port",
                "0 leaves /health and /ready nowhere: give health_listen".into(),
            );
        }
        if self.cluster_denial_ttl == 0 && self.cluster_success_ttl == 0 {
            return refuse(
                "cluster_success_ttl",
                "0 with cluster_denial_ttl 0: nothing of the cluster zone would be cached".into(),
            );
        }
        // An upstream we answer on ourselves sends every query in a circle.
        let listen = self.listen();
        for (i, a) in self.cluster_dns.iter().enumerate() {
            if let Err(e) = upstream::check_not_loop(*a, &listen) {
                return Err(Refusal::new("nodelocal", "cluster_dns", e.to_string()).entry(i));
            }
        }
        for (i, u) in forward.upstreams.iter().enumerate() {
            if let Nameserver::Addr(a) = u
                && let Err(e) = upstream::check_not_loop(*a, &listen)
            {
                return Err(Refusal::new("forward", "upstreams", e.to_string()).entry(i));
            }
        }
        for (zone, ups) in &forward.stub_domains {
            for u in ups {
                if let Nameserver::Addr(a) = u
                    && let Err(e) = upstream::check_not_loop(*a, &listen)
                {
                    let reason = format!("{}: {e}", zone_text(zone));
                    return Err(Refusal::new("forward", "stub_domains", reason));
                }
            }
        }
        Ok(())
    }
}

/// A zone as written (`cluster.local`, `.`).
pub fn zone_text(zone: &ZoneName) -> String {
    if zone.labels.is_empty() {
        return ".".into();
    }
    let labels: Vec<_> = zone
        .labels
        .iter()
        .map(|l| String::from_utf8_lossy(l))
        .collect();
    labels.join(".")
}

fn yes() -> bool {
    true
}
fn d_link_name() -> String {
    NetworkSettings::default().link_name
}
fn d_addresses() -> Vec<IpAddr> {
    NetworkSettings::default().addresses
}
fn d_dns_port() -> u16 {
    NetworkSettings::default().dns_port
}
fn d_health_port() -> u16 {
    NetworkSettings::default().health_port
}
fn d_reconcile() -> Duration {
    NetworkSettings::default().reconcile_period
}
fn d_service() -> String {
    upstream::DEFAULT_UPSTREAM_SERVICE.into()
}
fn d_cluster_zone() -> ZoneName {
    ZoneName::parse("cluster.local").expect("zone name")
}
fn d_reverse_zones() -> Vec<ZoneName> {
    ["in-addr.arpa", "ip6.arpa"]
        .iter()
        .map(|z| ZoneName::parse(z).expect("zone name"))
        .collect()
}
// node-cache's Corefile template: `cache { success 9984 30; denial 9984 5 }` for the
// cluster zone, `cache 30` for the others.
fn d_cluster_success() -> u64 {
    30
}
fn d_cluster_denial() -> u64 {
    5
}
fn d_other_ttl() -> u64 {
    30
}
fn d_kube_dns_dir() -> PathBuf {
    kube_dns::DEFAULT_DIR.into()
}
fn d_kube_dns_poll() -> Duration {
    kube_dns::DEFAULT_POLL_PERIOD
}
fn d_metrics() -> Option<SocketAddr> {
    // CoreDNS's `prometheus :9253` of node-cache's template: every address, so that
    // Prometheus reaches it at the node's IP.
    Some(SocketAddr::from(([0, 0, 0, 0], 9253)))
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

fn reconcile<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let ms = u64::deserialize(d)?;
    if ms < 100 {
        return Err(de::Error::custom(format!(
            "reconcile_period_ms {ms} is below 100: the firewall tools would run constantly"
        )));
    }
    Ok(Duration::from_millis(ms))
}

fn kube_dns_poll<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let ms = u64::deserialize(d)?;
    if !(100..=10_000).contains(&ms) {
        return Err(de::Error::custom(format!(
            "kube_dns_poll_ms {ms} is out of range 100..=10000 (a ConfigMap change is applied within 10 s)"
        )));
    }
    Ok(Duration::from_millis(ms))
}

fn zone<'de, D: Deserializer<'de>>(d: D) -> Result<ZoneName, D::Error> {
    let text = String::deserialize(d)?;
    ZoneName::parse(&text)
        .filter(|z| !z.labels.is_empty())
        .ok_or_else(|| de::Error::custom(format!("{text:?} is not a zone name")))
}

fn nameservers<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<SocketAddr>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|t| {
            kube_dns::parse::nameserver(t).map_err(|e| de::Error::custom(format!("{t:?}: {e}")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use std::path::Path;

    fn parse(text: &str) -> Result<Config, super::super::ConfigError> {
        Config::parse(Path::new("c.toml"), text)
    }

    #[test]
    fn an_empty_table_gives_node_caches_arrangement() {
        let c = parse("[nodelocal]\n").unwrap();
        let n = c.nodelocal.unwrap();
        assert_eq!(n.network(), crate::nodelocal::NetworkSettings::default());
        assert_eq!(n.listen(), ["169.254.20.10:53".parse().unwrap()]);
        assert_eq!(n.probes_listen(), "169.254.20.10:8080".parse().unwrap());
        assert_eq!(super::zone_text(&n.cluster_zone), "cluster.local");
        assert_eq!((n.cluster_success_ttl, n.cluster_denial_ttl), (30, 5));
        assert_eq!((n.reverse_ttl, n.external_ttl), (30, 30));
        assert_eq!(n.cluster_protocol, super::ClusterProtocol::Tcp);
        assert!(
            parse("listen = [\"127.0.0.1:53\"]\n")
                .unwrap()
                .nodelocal
                .is_none()
        );
    }

    #[test]
    fn every_network_key_is_read() {
        let c = parse(
            "[nodelocal]\nlink_name = \"nl0\"\nlink_kind = \"ifb\"\n\
             addresses = [\"169.254.20.10\", \"fd00:20::10\"]\n\
             cluster_ips = [\"10.96.0.10\", \"fd00:96::a\"]\ndns_port = 5353\n\
             health_port = 0\nhealth_listen = \"127.0.0.1:9\"\nbackend = \"iptables-legacy\"\n\
             setup_interface = false\nsetup_rules = false\nreconcile_period_ms = 500\n",
        )
        .unwrap();
        let s = c.nodelocal.unwrap().network();
        assert_eq!(s.link_name, "nl0");
        assert_eq!(s.all_addresses().count(), 4);
        assert_eq!((s.dns_port, s.health_port), (5353, 0));
        assert_eq!(s.backend, crate::nodelocal::BackendSetting::IptablesLegacy);
        assert!(!s.setup_interface && !s.setup_rules);
        assert_eq!(s.reconcile_period, std::time::Duration::from_millis(500));
    }

    #[test]
    fn the_cluster_dns_comes_from_the_config_or_the_environment() {
        let c = parse("[nodelocal]\ncluster_dns = [\"10.96.0.11\", \"10.96.0.12:5353\"]\n")
            .unwrap()
            .nodelocal
            .unwrap();
        let none = |_: &str| None;
        let ups = c.cluster_upstreams(none).unwrap();
        assert_eq!(ups[1], "10.96.0.12:5353".parse().unwrap());
        let c = parse("[nodelocal]\n").unwrap().nodelocal.unwrap();
        assert!(c.cluster_upstreams(none).is_err());
        let env = |v: &str| (v == "KUBE_DNS_UPSTREAM_SERVICE_HOST").then(|| "10.96.0.20".into());
        assert_eq!(
            c.cluster_upstreams(env).unwrap(),
            ["10.96.0.20:53".parse().unwrap()]
        );
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
            ("\n[nodelocal]\naddresses = []\n", 3, "empty"),
            (
                "[nodelocal]\ncluster_ips = [\"169.254.20.10\"]\n",
                2,
                "listed twice",
            ),
            ("[nodelocal]\naddresses = [\"0.0.0.0\"]\n", 2, "unspecified"),
            ("[nodelocal]\nhealth_port = 53\n", 2, "differ"),
            ("[nodelocal]\nkube_dns_poll_ms = 60000\n", 2, "10000"),
            ("[nodelocal]\ncluster_zone = \".\"\n", 2, "zone name"),
            // Loops: an upstream that is one of our own listen addresses.
            (
                "[nodelocal]\ncluster_ips = [\"10.96.0.10\"]\ncluster_dns = [\"10.96.0.10\"]\n",
                3,
                "loop",
            ),
            (
                "[forward]\nupstreams = [\"169.254.20.10:53\"]\n[nodelocal]\n",
                2,
                "loop",
            ),
            (
                "listen = [\"127.0.0.1:53\"]\n[nodelocal]\n",
                1,
                "remove listen",
            ),
            (
                "[nodelocal]\n[[blocks]]\nname = \"b\"\nlisten = [\"127.0.0.1:54\"]\n",
                2,
                "remove [[blocks]]",
            ),
        ];
        for (text, line, reason) in cases {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.starts_with(&format!("c.toml:{line}:")), "{text}: {err}");
            assert!(err.contains(reason), "{text}: {err}");
        }
    }
}
