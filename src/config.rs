//! The configuration file (TOML). Option names follow CoreDNS's `kubernetes` plugin so a
//! migrating operator recognises them. Unknown keys are errors, values are checked while
//! parsing, and every error names the file, the line and the reason.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer, de};
use thiserror::Error;

use crate::cache::{CacheSettings, TtlPolicy};
use crate::forward::{ForwardSettings, Policy, resolv_conf};
use crate::logging::QueryLogFormat;
use crate::source::kube::KubeSettings;
use crate::wire::ZoneName;
use crate::zone::{IndexSettings, PodMode, ZoneSettings};

/// The default TTL of cluster records, as CoreDNS (kubeadm configures 30).
pub const DEFAULT_TTL: u32 = 5;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {reason}")]
    Invalid {
        path: PathBuf,
        line: usize,
        column: usize,
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Addresses to answer DNS on, UDP and TCP.
    #[serde(default = "default_listen")]
    pub listen: Vec<SocketAddr>,
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub kubernetes: KubernetesConfig,
    #[serde(default)]
    pub source: SourceConfig,
    #[serde(default)]
    pub forward: ForwardConfig,
    #[serde(default)]
    pub cache: CacheConfig,
    #[serde(default)]
    pub health: HealthConfig,
    #[serde(default)]
    pub ready: ReadyConfig,
    #[serde(default)]
    pub metrics: MetricsConfig,
    #[serde(default)]
    pub log: LogConfig,
}

/// `[health]`: liveness on `/health` (CoreDNS's `health` plugin), and the lameduck period.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthConfig {
    /// Address of `/health`; `""` turns it off.
    #[serde(default = "default_health_listen", deserialize_with = "optional_addr")]
    pub listen: Option<SocketAddr>,
    /// Seconds between SIGTERM and closing the listeners, while `/ready` says 503 and
    /// DNS is still answered (CoreDNS's `lameduck`).
    #[serde(default = "default_lameduck", with = "seconds")]
    pub lameduck: Duration,
}

/// `[ready]`: readiness on `/ready` (CoreDNS's `ready` plugin).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadyConfig {
    #[serde(default = "default_ready_listen", deserialize_with = "optional_addr")]
    pub listen: Option<SocketAddr>,
}

/// `[metrics]`: Prometheus metrics on `/metrics` (CoreDNS's `prometheus` plugin).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    #[serde(default = "default_metrics_listen", deserialize_with = "optional_addr")]
    pub listen: Option<SocketAddr>,
}

/// `[log]`: the query log (CoreDNS's `log` plugin) and how errors are consolidated.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// Log every query: client, name, type, rcode, flags, size, duration.
    #[serde(default)]
    pub queries: bool,
    /// How the query log writes a query: CoreDNS's `log` format (default) or fields.
    #[serde(default)]
    pub query_format: QueryLogFormat,
    /// Seconds over which repeated errors are gathered into one line (CoreDNS's
    /// `errors { consolidate }`); 0 logs each one.
    #[serde(default = "default_consolidate", with = "seconds")]
    pub consolidate: Duration,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            listen: default_health_listen(),
            lameduck: default_lameduck(),
        }
    }
}

impl Default for ReadyConfig {
    fn default() -> Self {
        ReadyConfig {
            listen: default_ready_listen(),
        }
    }
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            listen: default_metrics_listen(),
        }
    }
}

impl LogConfig {
    /// The query log's format, or `None` when queries are not logged.
    pub fn query_log(&self) -> Option<QueryLogFormat> {
        self.queries.then_some(self.query_format)
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            queries: false,
            query_format: QueryLogFormat::default(),
            consolidate: default_consolidate(),
        }
    }
}

fn default_health_listen() -> Option<SocketAddr> {
    Some(SocketAddr::from(([127, 0, 0, 1], 8080)))
}
fn default_ready_listen() -> Option<SocketAddr> {
    Some(SocketAddr::from(([127, 0, 0, 1], 8181)))
}
fn default_metrics_listen() -> Option<SocketAddr> {
    Some(SocketAddr::from(([127, 0, 0, 1], 9153)))
}
fn default_lameduck() -> Duration {
    Duration::from_secs(5)
}
fn default_consolidate() -> Duration {
    Duration::from_secs(10)
}

/// An address, or `""` for "off".
fn optional_addr<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
    let text = String::deserialize(d)?;
    if text.is_empty() {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|_| {
        de::Error::custom(format!(
            "{text:?} is not an address (IP:PORT), nor \"\" for off"
        ))
    })
}

/// `[forward]`: where names outside the cluster zones go (CoreDNS's `forward` plugin).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardConfig {
    /// `IP`, `IP:PORT`, `[IPv6]:PORT`, or the path of a resolv.conf whose nameservers to
    /// use. Empty: nothing is forwarded (REFUSED).
    #[serde(default = "default_upstreams", deserialize_with = "upstream_list")]
    pub upstreams: Vec<Upstream>,
    #[serde(default)]
    pub policy: Policy,
    /// Stub domains: `"consul.local" = ["10.150.0.1"]`.
    #[serde(default, deserialize_with = "stub_domains")]
    pub stub_domains: Vec<(ZoneName, Vec<Upstream>)>,
    #[serde(default)]
    pub force_tcp: bool,
    #[serde(default)]
    pub prefer_udp: bool,
    #[serde(default = "default_fwd_timeout", with = "millis")]
    pub timeout_ms: Duration,
    #[serde(default = "default_fwd_deadline", with = "millis")]
    pub deadline_ms: Duration,
    #[serde(default = "default_max_fails")]
    pub max_fails: u32,
    #[serde(default = "default_health", with = "millis")]
    pub health_check_ms: Duration,
    #[serde(default = "default_max_concurrent")]
    pub max_concurrent: usize,
}

/// An upstream as written in the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upstream {
    Addr(SocketAddr),
    ResolvConf(PathBuf),
}

/// `[cache]`: the response cache in front of the forwarder (CoreDNS's `cache` plugin).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
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
    #[serde(default = "default_prefetch_percent")]
    pub prefetch_percent: u32,
    #[serde(default, deserialize_with = "zone_list")]
    pub no_success: Vec<ZoneName>,
    #[serde(default, deserialize_with = "zone_list")]
    pub no_denial: Vec<ZoneName>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// UDP sockets (and threads) per listen address, sharing the port with SO_REUSEPORT;
    /// 0 means one per core.
    #[serde(default)]
    pub udp_workers: usize,
    /// How long a TCP connection may sit idle, or take to deliver one message.
    #[serde(default = "default_tcp_idle", with = "seconds")]
    pub tcp_idle_timeout: Duration,
    /// Open TCP connections at most; beyond it new connections are closed at once.
    #[serde(default = "default_tcp_max")]
    pub tcp_max_connections: usize,
    /// The largest UDP answer, in bytes: a client's EDNS buffer size is honoured up to
    /// it (BIND's `max-udp-size`). The default, 1232, is the DNS flag day value, safe
    /// from IP fragmentation; 4096 answers as CoreDNS does for clients that ask for it.
    #[serde(default = "default_max_udp_size", deserialize_with = "max_udp_size")]
    pub max_udp_size: u16,
}

fn default_max_udp_size() -> u16 {
    crate::wire::writer::ADVERTISED_UDP_SIZE
}

fn max_udp_size<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    let v = u64::deserialize(d)?;
    match u16::try_from(v) {
        Ok(size @ 512..=4096) => Ok(size),
        _ => Err(de::Error::custom(format!(
            "max_udp_size {v} is out of range 512..=4096"
        ))),
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesConfig {
    /// Zones answered: cluster zones and reverse zones (`in-addr.arpa`, `0.10.in-addr.arpa` …).
    #[serde(default = "default_zones", deserialize_with = "zones")]
    pub zones: Vec<ZoneName>,
    #[serde(default = "default_ttl", deserialize_with = "ttl")]
    pub ttl: u32,
    #[serde(default)]
    pub pods: PodMode,
    /// Namespaces exposed; empty means all.
    #[serde(default)]
    pub namespaces: Vec<String>,
    #[serde(default)]
    pub endpoint_pod_names: bool,
    #[serde(default)]
    pub ignore_empty_service: bool,
    /// Zones whose NXDOMAIN answers go on to the next handler ("." for all).
    #[serde(default, deserialize_with = "zone_list")]
    pub fallthrough: Vec<ZoneName>,
    #[serde(default)]
    pub zonal: bool,
    /// The API server's URL (CoreDNS's `endpoint`). Alone it is used without credentials
    /// (`kubectl proxy`); with `kubeconfig` it replaces the kubeconfig's server.
    #[serde(default, deserialize_with = "endpoint_url")]
    pub endpoint: Option<String>,
    /// A kubeconfig file (CoreDNS's `kubeconfig`), relative to the config file's folder.
    /// Neither this nor `endpoint`: the pod's service account when running in a pod,
    /// else the default kubeconfig (`$KUBECONFIG`, `~/.kube/config`).
    #[serde(default)]
    pub kubeconfig: Option<PathBuf>,
    /// Only Services, EndpointSlices and Pods matching this label selector are served
    /// (CoreDNS's `labels`), e.g. `"environment in (prod),tier!=cache"`.
    #[serde(default, deserialize_with = "label_selector")]
    pub labels: Option<String>,
    /// Seconds to wait for the first list of every Kubernetes watch; until then (or this)
    /// unknown names get SERVFAIL, after it NXDOMAIN even if the list is not done.
    #[serde(default = "default_startup_timeout", with = "seconds")]
    pub startup_timeout: Duration,
}

fn default_startup_timeout() -> Duration {
    Duration::from_secs(5)
}

fn endpoint_url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let url = String::deserialize(d)?;
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() && url.parse::<axum::http::Uri>().is_ok() => Ok(Some(url)),
        _ => Err(de::Error::custom(format!(
            "endpoint {url:?} is not an http:// or https:// URL"
        ))),
    }
}

fn label_selector<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let text = String::deserialize(d)?;
    crate::source::selector::LabelSelector::parse(&text)
        .map_err(|e| de::Error::custom(format!("labels {text:?}: {e}")))?;
    Ok(Some(text))
}

/// `[source]`: a cluster file, the built-in sample, or (neither) the Kubernetes API.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// A cluster file (kubectl YAML/JSON) or a folder of them, relative to the config
    /// file's folder.
    pub file: Option<PathBuf>,
    /// Serve the sample cluster built into the binary.
    #[serde(default)]
    pub sample: bool,
    /// How often the cluster file is checked for changes.
    #[serde(default = "default_poll", with = "millis")]
    pub poll_interval_ms: Duration,
}

fn default_upstreams() -> Vec<Upstream> {
    vec![Upstream::ResolvConf("/etc/resolv.conf".into())]
}
fn default_fwd_timeout() -> Duration {
    Duration::from_secs(2)
}
fn default_fwd_deadline() -> Duration {
    Duration::from_secs(5)
}
fn default_max_fails() -> u32 {
    2
}
fn default_health() -> Duration {
    Duration::from_millis(500)
}
fn default_max_concurrent() -> usize {
    1000
}
fn default_capacity() -> u64 {
    9984
}
fn default_min_ttl() -> u64 {
    5
}
fn default_success_cap() -> u64 {
    3600
}
fn default_denial_cap() -> u64 {
    1800
}
fn default_servfail_ttl() -> u64 {
    5
}
fn default_serve_stale() -> u64 {
    3600
}
fn default_prefetch() -> u32 {
    2
}
fn default_prefetch_percent() -> u32 {
    10
}

impl Default for ForwardConfig {
    fn default() -> Self {
        ForwardConfig {
            upstreams: default_upstreams(),
            policy: Policy::default(),
            stub_domains: Vec::new(),
            force_tcp: false,
            prefer_udp: false,
            timeout_ms: default_fwd_timeout(),
            deadline_ms: default_fwd_deadline(),
            max_fails: default_max_fails(),
            health_check_ms: default_health(),
            max_concurrent: default_max_concurrent(),
        }
    }
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

fn upstream(text: &str) -> Result<Upstream, String> {
    if text.starts_with('/') {
        return Ok(Upstream::ResolvConf(text.into()));
    }
    if let Ok(a) = text.parse::<SocketAddr>() {
        return Ok(Upstream::Addr(a));
    }
    if let Ok(ip) = text.parse::<std::net::IpAddr>() {
        return Ok(Upstream::Addr(SocketAddr::new(ip, 53)));
    }
    Err(format!(
        "{text:?} is neither an address (IP, IP:PORT, [IPv6]:PORT) nor a resolv.conf path"
    ))
}

fn upstream_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Upstream>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|u| upstream(u).map_err(de::Error::custom))
        .collect()
}

fn stub_domains<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Vec<(ZoneName, Vec<Upstream>)>, D::Error> {
    let map = std::collections::BTreeMap::<String, Vec<String>>::deserialize(d)?;
    map.into_iter()
        .map(|(zone, ups)| {
            let z = ZoneName::parse(&zone)
                .ok_or_else(|| de::Error::custom(format!("{zone:?} is not a valid zone name")))?;
            let ups = ups
                .iter()
                .map(|u| upstream(u).map_err(de::Error::custom))
                .collect::<Result<Vec<_>, _>>()?;
            Ok((z, ups))
        })
        .collect()
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

fn default_listen() -> Vec<SocketAddr> {
    vec![SocketAddr::from(([127, 0, 0, 1], 5353))]
}
fn default_tcp_idle() -> Duration {
    Duration::from_secs(10)
}
fn default_tcp_max() -> usize {
    4096
}
fn default_ttl() -> u32 {
    DEFAULT_TTL
}
fn default_poll() -> Duration {
    Duration::from_millis(250)
}
fn default_zones() -> Vec<ZoneName> {
    ["cluster.local", "in-addr.arpa", "ip6.arpa"]
        .iter()
        .filter_map(|z| ZoneName::parse(z))
        .collect()
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            udp_workers: 0,
            tcp_idle_timeout: default_tcp_idle(),
            tcp_max_connections: default_tcp_max(),
            max_udp_size: default_max_udp_size(),
        }
    }
}

impl Default for KubernetesConfig {
    fn default() -> Self {
        KubernetesConfig {
            zones: default_zones(),
            ttl: DEFAULT_TTL,
            pods: PodMode::default(),
            namespaces: Vec::new(),
            endpoint_pod_names: false,
            ignore_empty_service: false,
            fallthrough: Vec::new(),
            zonal: false,
            endpoint: None,
            kubeconfig: None,
            labels: None,
            startup_timeout: default_startup_timeout(),
        }
    }
}

impl Default for Config {
    /// Serves the built-in sample cluster on 127.0.0.1:5353: what `clusterdns` does with
    /// no `--config`, so it answers `dig` on a laptop.
    fn default() -> Self {
        Config {
            listen: default_listen(),
            server: ServerConfig::default(),
            kubernetes: KubernetesConfig::default(),
            source: SourceConfig {
                file: None,
                sample: true,
                poll_interval_ms: default_poll(),
            },
            forward: ForwardConfig::default(),
            cache: CacheConfig::default(),
            health: HealthConfig::default(),
            ready: ReadyConfig::default(),
            metrics: MetricsConfig::default(),
            log: LogConfig::default(),
        }
    }
}

fn ttl<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let v = u32::deserialize(d)?;
    if v > 3600 {
        return Err(de::Error::custom(format!(
            "ttl {v} is out of range 0..=3600"
        )));
    }
    Ok(v)
}

fn zone_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ZoneName>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|z| {
            ZoneName::parse(z)
                .ok_or_else(|| de::Error::custom(format!("{z:?} is not a valid zone name")))
        })
        .collect()
}

fn zones<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ZoneName>, D::Error> {
    let zones = zone_list(d)?;
    if !zones.iter().any(|z| !z.reverse && !z.labels.is_empty()) {
        return Err(de::Error::custom(
            "zones must include a cluster zone such as \"cluster.local\"",
        ));
    }
    Ok(zones)
}

mod seconds {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_secs(u64::deserialize(d)?))
    }
}

mod millis {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?.max(10)))
    }
}

impl Config {
    /// Reads and checks a config file. Relative paths inside it are made relative to the
    /// file's folder, so clusterdns can be started from anywhere.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        let mut config = Config::parse(path, &text)?;
        if let Some(file) = &config.source.file
            && file.is_relative()
        {
            let base = path.parent().unwrap_or(Path::new("."));
            config.source.file = Some(base.join(file));
        }
        if let Some(file) = &config.kubernetes.kubeconfig
            && file.is_relative()
        {
            let base = path.parent().unwrap_or(Path::new("."));
            config.kubernetes.kubeconfig = Some(base.join(file));
        }
        Ok(config)
    }

    /// Parses config text; `path` is only used in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let invalid = |span: Option<std::ops::Range<usize>>, reason: String| {
            let at = span.map(|s| s.start).unwrap_or(0).min(text.len());
            let before = &text[..at];
            let line = before.matches('\n').count() + 1;
            let column = at - before.rfind('\n').map(|i| i + 1).unwrap_or(0) + 1;
            ConfigError::Invalid {
                path: path.to_owned(),
                line,
                column,
                reason,
            }
        };
        let config: Config =
            toml::from_str(text).map_err(|e| invalid(e.span(), e.message().to_owned()))?;
        if config.listen.is_empty() {
            let at = text.find("listen");
            return Err(invalid(
                at.map(|a| a..a),
                "listen is empty: give at least one address".into(),
            ));
        }
        if config.source.file.is_some() && config.source.sample {
            let at = text.find("sample");
            return Err(invalid(
                at.map(|a| a..a),
                "[source] takes either file or sample, not both".into(),
            ));
        }
        // Neither `file` nor `sample`: the Kubernetes API.
        Ok(config)
    }

    /// Whether the zone comes from the Kubernetes API (`[source]` names no file and no
    /// sample).
    pub fn uses_kubernetes(&self) -> bool {
        self.source.file.is_none() && !self.source.sample
    }

    /// What the Kubernetes source needs of `[kubernetes]`.
    pub fn kube_settings(&self) -> KubeSettings {
        let k = &self.kubernetes;
        KubeSettings {
            kubeconfig: k.kubeconfig.clone(),
            endpoint: k.endpoint.clone(),
            labels: k.labels.clone(),
            namespaces: k.namespaces.clone(),
            pods: k.pods == PodMode::Verified,
            startup_timeout: k.startup_timeout,
        }
    }

    pub fn zone_settings(&self) -> ZoneSettings {
        let k = &self.kubernetes;
        let ptr_zone_wire = k
            .zones
            .iter()
            .find(|z| !z.reverse)
            .map(|z| z.wire.clone())
            .unwrap_or_else(|| Box::new([0]));
        ZoneSettings {
            zones: k.zones.clone(),
            ttl: k.ttl,
            pods: k.pods,
            ignore_empty_service: k.ignore_empty_service,
            zonal: k.zonal,
            fallthrough: k.fallthrough.clone(),
            ptr_zone_wire,
            // A wildcard says nothing about where clients reach us; CoreDNS would list
            // every interface there, and leaves loopback out, which we keep: on a laptop
            // 127.0.0.1 is the one address that answers.
            listen_ips: self
                .listen
                .iter()
                .map(|a| a.ip())
                .filter(|ip| !ip.is_unspecified())
                .collect(),
        }
    }

    /// The forwarder's settings, with resolv.conf files read now. Loopback nameservers
    /// from a resolv.conf are kept but warned about: they are how forwarding loops start.
    pub fn forward_settings(&self) -> ForwardSettings {
        let f = &self.forward;
        let resolve = |ups: &[Upstream]| -> Vec<SocketAddr> {
            let mut out = Vec::new();
            for u in ups {
                match u {
                    Upstream::Addr(a) => out.push(*a),
                    Upstream::ResolvConf(path) => match resolv_conf::nameservers(path) {
                        Ok(found) => {
                            for a in found.iter().filter(|a| a.ip().is_loopback()) {
                                tracing::warn!(
                                    "{} lists {a}, a loopback resolver: if it forwards back to clusterdns, names will loop (clusterdns checks for this at start)",
                                    path.display()
                                );
                            }
                            out.extend(found);
                        }
                        Err(e) => {
                            tracing::warn!("cannot read upstreams from {}: {e}", path.display())
                        }
                    },
                }
            }
            out
        };
        ForwardSettings {
            upstreams: resolve(&f.upstreams),
            stub_domains: f
                .stub_domains
                .iter()
                .map(|(z, u)| (z.clone(), resolve(u)))
                .collect(),
            policy: f.policy,
            force_tcp: f.force_tcp,
            prefer_udp: f.prefer_udp,
            timeout: f.timeout_ms,
            deadline: f.deadline_ms,
            max_fails: f.max_fails,
            health_check: f.health_check_ms,
            max_concurrent: f.max_concurrent,
            consolidate: self.log.consolidate,
        }
    }

    pub fn cache_settings(&self) -> CacheSettings {
        let c = &self.cache;
        let secs = Duration::from_secs;
        CacheSettings {
            capacity: c.capacity.max(1),
            max_bytes: c.max_bytes.unwrap_or(c.capacity.max(1) * 1024),
            ttl: TtlPolicy {
                min_ttl: secs(c.min_ttl),
                success_cap: secs(c.success_cap),
                denial_cap: secs(c.denial_cap),
                servfail_ttl: secs(c.servfail_ttl),
            },
            serve_stale: secs(c.serve_stale),
            prefetch_hits: c.prefetch,
            prefetch_percent: c.prefetch_percent.min(100),
            no_success: c.no_success.clone(),
            no_denial: c.no_denial.clone(),
        }
    }

    /// The HTTP endpoints that are on, and their addresses.
    pub fn http_endpoints(&self) -> Vec<(crate::admin::Endpoint, SocketAddr)> {
        use crate::admin::Endpoint;
        [
            (Endpoint::Health, self.health.listen),
            (Endpoint::Ready, self.ready.listen),
            (Endpoint::Metrics, self.metrics.listen),
        ]
        .into_iter()
        .filter_map(|(e, a)| Some((e, a?)))
        .collect()
    }

    pub fn index_settings(&self) -> IndexSettings {
        IndexSettings {
            namespaces: self.kubernetes.namespaces.clone(),
            endpoint_pod_names: self.kubernetes.endpoint_pod_names,
            track_pods: self.kubernetes.pods == PodMode::Verified,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("c.toml"), text)
    }

    #[test]
    fn names_line_and_reason() {
        let err = parse("[source]\nsample = true\n[kubernetes]\nttl = 9000\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("c.toml:4:"), "{err}");
        assert!(err.contains("0..=3600"), "{err}");
        let err = parse("[source]\nsample = true\n[kubernetes]\nbogus = 1\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("c.toml:4:") && err.contains("bogus"),
            "{err}"
        );
        let err = parse("listen = [\"nope\"]\n[source]\nsample = true\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("c.toml:1:"), "{err}");
    }

    #[test]
    fn defaults_follow_coredns() {
        let c = parse("[source]\nsample = true\n").unwrap();
        assert_eq!(c.kubernetes.ttl, 5);
        assert_eq!(c.kubernetes.pods, PodMode::Insecure);
        assert_eq!(c.kubernetes.zones.len(), 3);
    }
}
