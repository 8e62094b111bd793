//! `[forward]`: where names outside the cluster zones go.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, de};

use super::Refusal;
use super::de::{MIN_MILLIS, millis};
use crate::forward::{ForwardSettings, Policy};
use crate::wire::ZoneName;

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
    /// Failures in a row that mark an upstream down; 0: never marked down (as CoreDNS).
    #[serde(default = "default_max_fails")]
    pub max_fails: u32,
    #[serde(default = "default_health", with = "millis")]
    pub health_check_ms: Duration,
    /// Queries forwarded at once at most; beyond it REFUSED. At least 1.
    #[serde(default = "default_max_concurrent")]
    pub max_concurrent: usize,
}

/// An upstream as written in the config: an address or a resolv.conf (read by the
/// forwarder, not here).
pub use crate::forward::Nameserver as Upstream;

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

impl ForwardConfig {
    /// The forwarder's settings (no file is read here: resolv.conf files are the
    /// forwarder's to read).
    pub fn settings(&self, consolidate: Duration) -> ForwardSettings {
        ForwardSettings {
            upstreams: self.upstreams.clone(),
            stub_domains: self.stub_domains.clone(),
            policy: self.policy,
            force_tcp: self.force_tcp,
            prefer_udp: self.prefer_udp,
            timeout: self.timeout_ms,
            deadline: self.deadline_ms,
            max_fails: self.max_fails,
            health_check: self.health_check_ms,
            max_concurrent: self.max_concurrent,
            consolidate,
        }
    }
}

impl ForwardConfig {
    pub(super) fn check(&self) -> Result<(), Refusal> {
        let refuse = |key, reason: String| Err(Refusal::new("forward", key, reason));
        for (key, value) in [
            ("timeout_ms", self.timeout_ms),
            ("deadline_ms", self.deadline_ms),
            ("health_check_ms", self.health_check_ms),
        ] {
            if value < MIN_MILLIS {
                return refuse(
                    key,
                    format!(
                        "{} ms is below the minimum of {} ms",
                        value.as_millis(),
                        MIN_MILLIS.as_millis()
                    ),
                );
            }
        }
        if self.deadline_ms < self.timeout_ms {
            return refuse(
                "deadline_ms",
                format!(
                    "{} ms is shorter than timeout_ms ({} ms): no attempt could run its course",
                    self.deadline_ms.as_millis(),
                    self.timeout_ms.as_millis()
                ),
            )
            .map_err(|r| r.or_at("timeout_ms"));
        }
        if self.max_concurrent == 0 {
            return refuse(
                "max_concurrent",
                "0 would refuse every forwarded query".into(),
            );
        }
        if self.force_tcp && self.prefer_udp {
            return refuse(
                "prefer_udp",
                "force_tcp and prefer_udp contradict each other: set one".into(),
            )
            .map_err(|r| r.or_at("force_tcp"));
        }
        Ok(())
    }
}

fn default_upstreams() -> Vec<Upstream> {
    ForwardSettings::default().upstreams
}
// The defaults are the forwarder's own (ForwardSettings::default).
fn default_fwd_timeout() -> Duration {
    ForwardSettings::default().timeout
}
fn default_fwd_deadline() -> Duration {
    ForwardSettings::default().deadline
}
fn default_max_fails() -> u32 {
    ForwardSettings::default().max_fails
}
fn default_health() -> Duration {
    ForwardSettings::default().health_check
}
fn default_max_concurrent() -> usize {
    ForwardSettings::default().max_concurrent
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
            if ups.is_empty() {
                return Err(de::Error::custom(format!(
                    "stub domain {zone:?} has no upstreams"
                )));
            }
            let ups = ups
                .iter()
                .map(|u| upstream(u).map_err(de::Error::custom))
                .collect::<Result<Vec<_>, _>>()?;
            Ok((z, ups))
        })
        .collect()
}
