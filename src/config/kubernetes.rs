//! `[kubernetes]`: the zones served and the options of CoreDNS's `kubernetes` plugin.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer, de};

use std::net::IpAddr;

use super::de::{seconds, zone_list};
use super::{Refusal, first_repeat};
use crate::source::file::Selection;
use crate::source::kube::KubeSettings;
use crate::source::selector::LabelSelector;
use crate::wire::ZoneName;
use crate::zone::settings::Exposure;
use crate::zone::{IndexSettings, PodMode, ZoneSettings};

/// The default TTL of cluster records, as CoreDNS (kubeadm configures 30).
pub const DEFAULT_TTL: u32 = 5;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesConfig {
    /// Zones answered: cluster zones and reverse zones (`in-addr.arpa`, `0.10.in-addr.arpa` …),
    /// the latter also as CIDRs (`10.96.0.0/12`), as CoreDNS's `kubernetes` plugin takes them.
    #[serde(default = "default_zones", deserialize_with = "zones")]
    pub zones: Vec<ZoneName>,
    #[serde(default = "default_ttl", deserialize_with = "ttl")]
    pub ttl: u32,
    #[serde(default)]
    pub pods: PodMode,
    /// Namespaces exposed; empty means all. Each a Kubernetes name (an RFC 1123 label).
    #[serde(default)]
    pub namespaces: Vec<String>,
    #[serde(default)]
    pub endpoint_pod_names: bool,
    #[serde(default)]
    pub ignore_empty_service: bool,
    /// Zones whose NXDOMAIN answers go on to the next handler ("." for all); each must
    /// hold or lie in a served zone, or it would never apply.
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
    /// unknown names get SERVFAIL, after it NXDOMAIN even if the list is not done. At
    /// least 1.
    #[serde(default = "default_startup_timeout", with = "seconds")]
    pub startup_timeout: Duration,
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

impl KubernetesConfig {
    pub(super) fn check(&self) -> Result<(), Refusal> {
        let refuse = |key, reason: String| Err(Refusal::new("kubernetes", key, reason));
        for (i, ns) in self.namespaces.iter().enumerate() {
            if let Err(why) = kubernetes_name(ns) {
                return refuse(
                    "namespaces",
                    format!("{ns:?} is not a namespace name: {why}"),
                )
                .map_err(|r| r.entry(i));
            }
        }
        if let Some(i) = first_repeat(&self.namespaces) {
            return refuse(
                "namespaces",
                format!("{:?} is listed twice", self.namespaces[i]),
            )
            .map_err(|r| r.entry(i));
        }
        for (i, f) in self.fallthrough.iter().enumerate() {
            let overlaps = self
                .zones
                .iter()
                .any(|z| f.labels.ends_with(&z.labels) || z.labels.ends_with(&f.labels));
            if !overlaps {
                return refuse(
                    "fallthrough",
                    format!(
                        "{} is outside every zone served ({}): it would never apply",
                        dotted(f),
                        self.zones.iter().map(dotted).collect::<Vec<_>>().join(", ")
                    ),
                )
                .map_err(|r| r.entry(i));
            }
        }
        if self.startup_timeout.is_zero() {
            return refuse(
                "startup_timeout",
                "0 seconds would answer NXDOMAIN for every name before the first list".into(),
            );
        }
        Ok(())
    }

    pub fn zone_settings(&self) -> ZoneSettings {
        let ptr_zone_wire = self
            .zones
            .iter()
            .find(|z| !z.reverse)
            .map(|z| z.wire.clone())
            .unwrap_or_else(|| Box::new([0]));
        ZoneSettings {
            zones: self.zones.clone(),
            ttl: self.ttl,
            pods: self.pods,
            ignore_empty_service: self.ignore_empty_service,
            zonal: self.zonal,
            fallthrough: self.fallthrough.clone(),
            ptr_zone_wire,
            listen_ips: Box::new([]),
            transfer_to: Vec::new(),
            explain_dns: false,
            exposure: Exposure {
                namespaces: self.namespaces.clone(),
                labels: self.labels.clone(),
            },
            search_path_top: 0,
            autopath: Default::default(),
        }
    }

    /// The `labels` selector and the pods `pods verified` needs, for a cluster file.
    pub fn file_selection(&self) -> Selection {
        Selection {
            keep_pods: self.pods == PodMode::Verified,
            // A selector that does not parse was refused when the config was read.
            labels: self
                .labels
                .as_deref()
                .and_then(|l| LabelSelector::parse(l).ok())
                .unwrap_or_default(),
        }
    }

    /// What the Kubernetes source needs: where the API is, and what to watch.
    pub fn kube_settings(&self) -> KubeSettings {
        KubeSettings {
            kubeconfig: self.kubeconfig.clone(),
            endpoint: self.endpoint.clone(),
            labels: self.labels.clone(),
            namespaces: self.namespaces.clone(),
            pods: self.pods == PodMode::Verified,
            startup_timeout: self.startup_timeout,
        }
    }

    pub fn index_settings(&self) -> IndexSettings {
        IndexSettings {
            namespaces: self.namespaces.clone(),
            endpoint_pod_names: self.endpoint_pod_names,
            track_pods: self.pods == PodMode::Verified,
        }
    }
}

fn default_startup_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_ttl() -> u32 {
    DEFAULT_TTL
}
fn default_zones() -> Vec<ZoneName> {
    ["cluster.local", "in-addr.arpa", "ip6.arpa"]
        .iter()
        .filter_map(|z| ZoneName::parse(z))
        .collect()
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

fn ttl<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let v = u32::deserialize(d)?;
    if v > 3600 {
        return Err(de::Error::custom(format!(
            "ttl {v} is out of range 0..=3600"
        )));
    }
    Ok(v)
}

/// A zone name, or a CIDR that stands for its reverse zones.
fn zones<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ZoneName>, D::Error> {
    let mut zones: Vec<ZoneName> = Vec::new();
    for (i, entry) in Vec::<String>::deserialize(d)?.iter().enumerate() {
        let names = if entry.contains('/') {
            cidr_zones(entry).map_err(|why| {
                de::Error::custom(format!("zones[{i}] {entry:?} is not a CIDR: {why}"))
            })?
        } else {
            vec![ZoneName::parse(entry).ok_or_else(|| {
                de::Error::custom(format!("zones[{i}] {entry:?} is not a valid zone name"))
            })?]
        };
        for z in names {
            if zones.contains(&z) {
                return Err(de::Error::custom(format!(
                    "zones[{i}] {entry:?}: the zone {} is already listed",
                    dotted(&z)
                )));
            }
            zones.push(z);
        }
    }
    if !zones.iter().any(|z| !z.reverse && !z.labels.is_empty()) {
        return Err(de::Error::custom(
            "zones must include a cluster zone such as \"cluster.local\"",
        ));
    }
    Ok(zones)
}

/// The reverse zones of a CIDR, as CoreDNS's `kubernetes` plugin makes them: one zone
/// per octet (IPv4) or nibble (IPv6) boundary, so a prefix between two boundaries
/// becomes every zone of the next boundary down (`10.96.0.0/12`: `96.10.in-addr.arpa`
/// to `111.10.in-addr.arpa`). Bits beyond the prefix are ignored.
fn cidr_zones(text: &str) -> Result<Vec<ZoneName>, String> {
    let (ip, prefix) = text.split_once('/').ok_or("no /prefix")?;
    let ip: IpAddr = ip
        .parse()
        .map_err(|_| format!("{ip:?} is not an address"))?;
    let prefix: u32 = prefix
        .parse()
        .map_err(|_| format!("{prefix:?} is not a prefix length"))?;
    // (address bits, bits per label, the address as a number, the reverse tree's root)
    let (bits, step, value, root) = match ip {
        IpAddr::V4(a) => (32, 8, u128::from(u32::from(a)), "in-addr.arpa"),
        IpAddr::V6(a) => (128, 4, u128::from(a), "ip6.arpa"),
    };
    if prefix > bits {
        return Err(format!("the prefix is longer than {bits} bits"));
    }
    let boundary = prefix.div_ceil(step) * step;
    let keep = |v: u128, n: u32| {
        if n == 0 {
            0
        } else {
            v >> (bits - n) << (bits - n)
        }
    };
    let base = keep(value, prefix);
    (0..1u128 << (boundary - prefix))
        .map(|k| {
            let network = base | k.checked_shl(bits - boundary).unwrap_or(0);
            let labels = (0..boundary / step).rev().map(|l| {
                let digit = (network >> (bits - (l + 1) * step)) & ((1 << step) - 1);
                if step == 8 {
                    digit.to_string()
                } else {
                    format!("{digit:x}")
                }
            });
            let name: Vec<String> = labels.chain([root.to_owned()]).collect();
            ZoneName::parse(&name.join(".")).ok_or_else(|| "no zone name".to_owned())
        })
        .collect()
}

/// A zone as people write it, for messages.
fn dotted(z: &ZoneName) -> String {
    if z.labels.is_empty() {
        return ".".into();
    }
    z.labels
        .iter()
        .map(|l| String::from_utf8_lossy(l))
        .collect::<Vec<_>>()
        .join(".")
}

/// Whether `name` is a Kubernetes object name of the RFC 1123 label kind (namespaces).
fn kubernetes_name(name: &str) -> Result<(), &'static str> {
    let b = name.as_bytes();
    if b.is_empty() || b.len() > 63 {
        return Err("it must be 1 to 63 characters");
    }
    if !b
        .iter()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
    {
        return Err("only lower-case letters, digits and '-' are allowed");
    }
    if b[0] == b'-' || b[b.len() - 1] == b'-' {
        return Err("it must start and end with a letter or a digit");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(cidr: &str) -> Vec<String> {
        cidr_zones(cidr).unwrap().iter().map(dotted).collect()
    }

    #[test]
    fn cidrs_become_reverse_zones_as_coredns_makes_them() {
        assert_eq!(names("10.96.0.0/16"), ["96.10.in-addr.arpa"]);
        assert_eq!(names("10.96.0.5/24"), ["0.96.10.in-addr.arpa"]);
        assert_eq!(names("0.0.0.0/0"), ["in-addr.arpa"]);
        let twelve = names("10.96.0.0/12");
        assert_eq!(twelve.len(), 16);
        assert_eq!(twelve[0], "96.10.in-addr.arpa");
        assert_eq!(twelve[15], "111.10.in-addr.arpa");
        assert_eq!(
            names("fd00:10:96::/48"),
            ["6.9.0.0.0.1.0.0.0.0.d.f.ip6.arpa"]
        );
        assert_eq!(names("::/0"), ["ip6.arpa"]);
        let v6 = names("fd00::/7");
        assert_eq!(v6, ["c.f.ip6.arpa", "d.f.ip6.arpa"]);
        for bad in ["10.96.0.0/33", "10.96.0/16", "10.96.0.0/x", "fd00::/129"] {
            assert!(cidr_zones(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn namespace_names_are_rfc_1123_labels() {
        assert!(kubernetes_name("kube-system").is_ok());
        assert!(kubernetes_name("a").is_ok());
        for bad in ["", "Kube", "-a", "a-", "a_b", "a.b", &"x".repeat(64)] {
            assert!(kubernetes_name(bad).is_err(), "{bad:?}");
        }
    }
}
