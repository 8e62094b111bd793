//! The configuration file (TOML). Option names follow CoreDNS's `kubernetes` plugin so a
//! migrating operator recognises them. Unknown keys are errors, values are checked while
//! parsing, and every error names the file, the line and the reason.
//!
//! One file per section; each section's type owns its defaults and turns itself into
//! the settings of the part of the server it configures.

mod blocks;
mod cache;
mod de;
mod endpoints;
mod explain;
mod forward;
mod hosts;
mod kubernetes;
mod log;
mod nodelocal;
mod position;
mod search_path;
mod server;
mod source;
mod transfer;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;

use crate::cache::CacheSettings;
use crate::forward::ForwardSettings;
use crate::zone::{IndexSettings, ZoneSettings};
use position::Positions;

pub use blocks::{BlockConfig, StageName};
pub use cache::CacheConfig;
pub use endpoints::{Endpoint, HealthConfig, MetricsConfig, ReadyConfig};
pub use explain::ExplainConfig;
pub use forward::{ForwardConfig, Upstream};
pub use hosts::HostsConfig;
pub use kubernetes::{DEFAULT_TTL, KubernetesConfig};
pub use log::LogConfig;
pub use nodelocal::{ClusterProtocol, NodeLocalConfig, zone_text};
pub use position::Refusal;
pub use search_path::SearchPathConfig;
pub use server::ServerConfig;
pub use source::SourceConfig;
pub use transfer::TransferConfig;

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
    #[serde(default)]
    pub transfer: TransferConfig,
    #[serde(default)]
    pub explain: ExplainConfig,
    #[serde(default)]
    pub search_path: SearchPathConfig,
    /// Server blocks beside the default one.
    #[serde(default)]
    pub blocks: Vec<BlockConfig>,
    /// The NodeLocal mode: present, it replaces the cluster zone's serving (see
    /// [`NodeLocalConfig`]).
    #[serde(default)]
    pub nodelocal: Option<NodeLocalConfig>,
    /// The default block's stages, in order, by the names `[[blocks]]` use.
    #[serde(default = "blocks::default_chain")]
    pub chain: Vec<StageName>,
    /// The table of the default block's `hosts` stage.
    pub hosts: Option<HostsConfig>,
}

fn default_listen() -> Vec<SocketAddr> {
    vec![SocketAddr::from(([127, 0, 0, 1], 5353))]
}

/// The index of the first element equal to an earlier one.
fn first_repeat<T: PartialEq>(items: &[T]) -> Option<usize> {
    (1..items.len()).find(|&i| items[..i].contains(&items[i]))
}

impl Default for Config {
    /// Serves the built-in sample cluster on 127.0.0.1:5353: what `clusterdns` does with
    /// no `--config`, so it answers `dig` on a laptop.
    fn default() -> Self {
        Config {
            listen: default_listen(),
            server: ServerConfig::default(),
            kubernetes: KubernetesConfig::default(),
            source: SourceConfig::sample(),
            forward: ForwardConfig::default(),
            cache: CacheConfig::default(),
            health: HealthConfig::default(),
            ready: ReadyConfig::default(),
            metrics: MetricsConfig::default(),
            log: LogConfig::default(),
            transfer: TransferConfig::default(),
            explain: ExplainConfig::default(),
            search_path: SearchPathConfig::default(),
            blocks: Vec::new(),
            nodelocal: None,
            chain: blocks::default_chain(),
            hosts: None,
        }
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
        let tables = config.hosts.iter_mut();
        for hosts in tables.chain(config.blocks.iter_mut().filter_map(|b| b.hosts.as_mut())) {
            if let Some(file) = &hosts.file
                && file.is_relative()
            {
                let base = path.parent().unwrap_or(Path::new("."));
                hosts.file = Some(base.join(file));
            }
        }
        Ok(config)
    }

    /// Parses config text; `path` is only used in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let positions = Positions::new(text);
        let invalid = |span: Option<std::ops::Range<usize>>, reason: String| {
            let at = span.map(|s| s.start).unwrap_or(0).min(text.len());
            let before = &text[..at];
            let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
            ConfigError::Invalid {
                path: path.to_owned(),
                line: before.matches('\n').count() + 1,
                column: before[line_start..].chars().count() + 1,
                reason,
            }
        };
        let config: Config = toml::from_str(text).map_err(|e| {
            let key = e.span().and_then(|s| positions.key_at(s.start));
            let reason = match key {
                Some(key) => format!("{key}: {}", e.message()),
                None => e.message().to_owned(),
            };
            invalid(e.span(), reason)
        })?;
        config
            .check()
            .map_err(|r| invalid(positions.of(&r), format!("{}: {}", r.path(), r.reason)))?;
        Ok(config)
    }

    /// Checks what each value means beside the others: what a single value's parser
    /// cannot see (an empty list, a duplicate, two keys that contradict each other). Also
    /// run after the command line has overridden the file.
    pub fn check(&self) -> Result<(), Refusal> {
        if self.listen.is_empty() {
            return Err(Refusal::new(
                "",
                "listen",
                "empty: give at least one address",
            ));
        }
        if let Some(i) = first_repeat(&self.listen) {
            return Err(
                Refusal::new("", "listen", format!("{} is listed twice", self.listen[i])).entry(i),
            );
        }
        self.server.check()?;
        self.kubernetes.check()?;
        self.source.check()?;
        self.forward.check()?;
        self.cache.check()?;
        blocks::check_chain("", &self.chain, self.hosts.as_ref())?;
        blocks::check_blocks(&self.listen, &self.blocks)?;
        if let Some(n) = &self.nodelocal {
            // Its own listeners and endpoints: what would be ignored is refused.
            if self.listen != default_listen() {
                let reason = "the NodeLocal mode answers at [nodelocal] addresses and cluster_ips on dns_port; remove listen";
                return Err(Refusal::new("", "listen", reason));
            }
            if !self.blocks.is_empty() {
                let reason =
                    "the NodeLocal mode is one block of its own ([nodelocal]); remove [[blocks]]";
                return Err(Refusal::new("blocks", "name", reason).entry(0));
            }
            return n.check(&self.forward);
        }
        self.check_endpoints()
    }

    /// Each HTTP endpoint needs an address of its own, and not one DNS answers TCP on.
    fn check_endpoints(&self) -> Result<(), Refusal> {
        let endpoints = [
            ("health", self.health.listen),
            ("ready", self.ready.listen),
            ("metrics", self.metrics.listen),
        ];
        for (i, (section, addr)) in endpoints.iter().enumerate() {
            let Some(addr) = addr.filter(|a| a.port() != 0) else {
                continue;
            };
            if let Some((other, _)) = endpoints[..i].iter().find(|(_, a)| *a == Some(addr)) {
                return Err(Refusal::new(
                    section,
                    "listen",
                    format!(
                        "{addr} is also {other}.listen: each endpoint needs its own address (or \"\" for off)"
                    ),
                ));
            }
            if self.listen.contains(&addr) {
                return Err(Refusal::new(
                    section,
                    "listen",
                    format!("{addr} is also where DNS listens (TCP)"),
                ));
            }
        }
        Ok(())
    }

    /// Whether the zone comes from the Kubernetes API (`[source]` names no file and no
    /// sample).
    pub fn uses_kubernetes(&self) -> bool {
        self.source.file.is_none() && !self.source.sample
    }

    /// Whether some block answers from the cluster zone: without a `kubernetes` stage
    /// anywhere (a caching forwarder), no source is started.
    pub fn serves_zone(&self) -> bool {
        let kubernetes = |chain: &[StageName]| chain.contains(&StageName::Kubernetes);
        kubernetes(&self.chain) || self.blocks.iter().any(|b| kubernetes(&b.chain))
    }

    pub fn zone_settings(&self) -> ZoneSettings {
        // A wildcard says nothing about where clients reach us; CoreDNS would list
        // every interface there, and leaves loopback out, which we keep: on a laptop
        // 127.0.0.1 is the one address that answers.
        let listen_ips = self
            .listen
            .iter()
            .map(|a| a.ip())
            .filter(|ip| !ip.is_unspecified())
            .collect();
        ZoneSettings {
            listen_ips,
            transfer_to: self.transfer.to.clone(),
            explain_dns: self.explain.dns,
            search_path_top: self.search_path.counted_namespaces(),
            autopath: self.search_path.autopath(),
            ..self.kubernetes.zone_settings()
        }
    }

    pub fn forward_settings(&self) -> ForwardSettings {
        self.forward.settings(self.log.consolidate)
    }

    pub fn cache_settings(&self) -> CacheSettings {
        self.cache.settings()
    }

    /// The HTTP endpoints that are on, and their addresses.
    pub fn http_endpoints(&self) -> Vec<(Endpoint, SocketAddr)> {
        if let Some(n) = &self.nodelocal {
            let probes = Some((Endpoint::Probes, n.probes_listen()));
            let metrics = n.metrics_listen.map(|a| (Endpoint::Metrics, a));
            return probes.into_iter().chain(metrics).collect();
        }
        [
            (Endpoint::Health, self.health.listen),
            (Endpoint::Ready, self.ready.listen),
            (Endpoint::Metrics, self.metrics.listen),
        ]
        .into_iter()
        .filter_map(|(e, a)| Some((e, a?)))
        .collect()
    }

    /// What the cluster file (or the built-in sample) serves of what it holds.
    pub fn file_selection(&self) -> crate::source::file::Selection {
        self.kubernetes.file_selection()
    }

    pub fn index_settings(&self) -> IndexSettings {
        self.kubernetes.index_settings()
    }

    /// What the Kubernetes source needs of `[kubernetes]`.
    pub fn kube_settings(&self) -> crate::source::kube::KubeSettings {
        self.kubernetes.kube_settings()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::PodMode;

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
