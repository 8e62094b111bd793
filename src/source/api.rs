//! The Kubernetes API shapes of Namespace, Service, EndpointSlice and Pod, reduced to the
//! fields DNS reads (serde skips the rest while parsing), and their conversion into the
//! slim objects of [`super::objects`].

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use serde::Deserialize;
use thiserror::Error;

use super::objects::{
    ClusterObject, Endpoint, EndpointSlice, Pod, Port, Protocol, Service, ServiceType,
};

/// Why an object of a known kind cannot be used.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("{kind} {namespace}/{name}: {reason}")]
pub struct ObjectError {
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
    pub reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Set by the API server on every change; what a watch resumes from.
    #[serde(default)]
    pub resource_version: String,
    /// The one annotation DNS reads: when the change an EndpointSlice carries was
    /// triggered, for the DNS programming latency metric.
    #[serde(
        default,
        rename = "annotations",
        deserialize_with = "last_change_trigger"
    )]
    pub last_change_trigger: Option<String>,
}

/// `endpoints.kubernetes.io/last-change-trigger-time`, set by the EndpointSlice controller.
pub const LAST_CHANGE_TRIGGER: &str = "endpoints.kubernetes.io/last-change-trigger-time";

fn last_change_trigger<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let annotations = Option::<BTreeMap<String, String>>::deserialize(d)?;
    Ok(annotations.and_then(|mut a| a.remove(LAST_CHANGE_TRIGGER)))
}

/// Milliseconds since the Unix epoch of an RFC 3339 time as Kubernetes writes them
/// (`2026-11-27T08:00:00Z`, `2026-11-27T08:00:00.123456+01:00`).
pub fn rfc3339_millis(text: &str) -> Option<u64> {
    let (date, time) = text.split_once(['T', 't'])?;
    let mut ymd = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, d) = (ymd.next()??, ymd.next()??, ymd.next()??);
    let (clock, offset_secs) = if let Some(c) = time.strip_suffix(['Z', 'z']) {
        (c, 0)
    } else {
        let at = time.rfind(['+', '-'])?;
        let (c, off) = time.split_at(at);
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let (oh, om) = off[1..].split_once(':')?;
        (
            c,
            sign * (oh.parse::<i64>().ok()? * 3600 + om.parse::<i64>().ok()? * 60),
        )
    };
    let (hms, frac) = clock.split_once('.').unwrap_or((clock, ""));
    let mut parts = hms.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (hh, mm, ss) = (parts.next()??, parts.next()??, parts.next()??);
    let millis: i64 = format!("{frac:0<3}").get(..3)?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // Days since the epoch of a civil date (H. Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    let secs = days * 86400 + hh * 3600 + mm * 60 + ss - offset_secs;
    u64::try_from(secs * 1000 + millis).ok()
}

#[derive(Debug, Deserialize)]
pub struct NamespaceApi {
    pub metadata: ObjectMeta,
}

#[derive(Debug, Deserialize)]
pub struct ServiceApi {
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: ServiceSpec,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSpec {
    #[serde(rename = "type")]
    pub type_: Option<String>,
    #[serde(rename = "clusterIP")]
    pub cluster_ip: Option<String>,
    #[serde(rename = "clusterIPs")]
    pub cluster_ips: Option<Vec<String>>,
    pub external_name: Option<String>,
    pub ports: Option<Vec<PortApi>>,
}

#[derive(Debug, Deserialize)]
pub struct PortApi {
    pub name: Option<String>,
    pub port: Option<i32>,
    pub protocol: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointSliceApi {
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub address_type: String,
    pub endpoints: Option<Vec<EndpointApi>>,
    pub ports: Option<Vec<PortApi>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointApi {
    #[serde(default)]
    pub addresses: Vec<String>,
    pub conditions: Option<ConditionsApi>,
    pub hostname: Option<String>,
    pub target_ref: Option<TargetRefApi>,
    pub zone: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ConditionsApi {
    pub ready: Option<bool>,
}

#[derive(Debug, Deserialize)]
pub struct TargetRefApi {
    pub kind: Option<String>,
    pub name: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct PodApi {
    pub metadata: ObjectMeta,
    pub status: Option<PodStatusApi>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodStatusApi {
    pub phase: Option<String>,
    #[serde(rename = "podIP")]
    pub pod_ip: Option<String>,
    #[serde(rename = "podIPs")]
    pub pod_ips: Option<Vec<PodIpApi>>,
}

#[derive(Debug, Deserialize)]
pub struct PodIpApi {
    pub ip: String,
}

/// The label that ties an EndpointSlice to its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

fn error(kind: &'static str, meta: &ObjectMeta, reason: impl Into<String>) -> ObjectError {
    ObjectError {
        kind,
        namespace: meta.namespace.clone(),
        name: meta.name.clone(),
        reason: reason.into(),
    }
}

fn require_name(
    kind: &'static str,
    meta: &ObjectMeta,
    namespaced: bool,
) -> Result<(), ObjectError> {
    if meta.name.is_empty() {
        return Err(error(kind, meta, "metadata.name is missing"));
    }
    if namespaced && meta.namespace.is_empty() {
        return Err(error(kind, meta, "metadata.namespace is missing"));
    }
    Ok(())
}

fn ports(
    kind: &'static str,
    meta: &ObjectMeta,
    ports: Option<Vec<PortApi>>,
) -> Result<Vec<Port>, ObjectError> {
    ports
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| {
            // An EndpointSlice port without a number means "all ports": nothing for SRV.
            let number = p.port?;
            Some((p.name, number, p.protocol))
        })
        .map(|(name, number, protocol)| {
            let port = u16::try_from(number)
                .ok()
                .filter(|&n| n != 0)
                .ok_or_else(|| error(kind, meta, format!("port {number} is out of range")))?;
            let protocol = match protocol.as_deref().unwrap_or("TCP") {
                "TCP" => Protocol::Tcp,
                "UDP" => Protocol::Udp,
                "SCTP" => Protocol::Sctp,
                other => return Err(error(kind, meta, format!("unknown protocol {other:?}"))),
            };
            Ok(Port {
                name: name.unwrap_or_default().to_ascii_lowercase().into(),
                protocol,
                port,
            })
        })
        .collect()
}

fn ip(kind: &'static str, meta: &ObjectMeta, text: &str) -> Result<IpAddr, ObjectError> {
    text.parse()
        .map_err(|_| error(kind, meta, format!("{text:?} is not an IP address")))
}

impl TryFrom<NamespaceApi> for ClusterObject {
    type Error = ObjectError;
    fn try_from(n: NamespaceApi) -> Result<Self, ObjectError> {
        require_name("Namespace", &n.metadata, false)?;
        Ok(ClusterObject::Namespace(n.metadata.name.into()))
    }
}

impl TryFrom<ServiceApi> for ClusterObject {
    type Error = ObjectError;
    fn try_from(s: ServiceApi) -> Result<Self, ObjectError> {
        const K: &str = "Service";
        let meta = &s.metadata;
        require_name(K, meta, true)?;
        let spec = s.spec;
        let kind = if spec.type_.as_deref() == Some("ExternalName") {
            let target = spec.external_name.unwrap_or_default();
            let target = target.trim_end_matches('.').to_ascii_lowercase();
            ServiceType::ExternalName(target.into())
        } else {
            let listed = spec.cluster_ips.unwrap_or_default();
            let first = spec.cluster_ip.unwrap_or_default();
            let all: Vec<&str> = if listed.is_empty() {
                vec![first.as_str()]
            } else {
                listed.iter().map(String::as_str).collect()
            };
            if all.contains(&"None") {
                ServiceType::Headless
            } else {
                // A Service being created may have no IP yet: it answers nothing until it has.
                let ips = all
                    .into_iter()
                    .filter(|a| !a.is_empty())
                    .map(|a| ip(K, meta, a))
                    .collect::<Result<Vec<_>, _>>()?;
                ServiceType::ClusterIp(ips.into())
            }
        };
        let ports = ports(K, meta, spec.ports)?;
        Ok(ClusterObject::Service(Service {
            namespace: meta.namespace.as_str().into(),
            name: meta.name.as_str().into(),
            kind,
            ports: ports.into(),
        }))
    }
}

impl TryFrom<EndpointSliceApi> for ClusterObject {
    type Error = ObjectError;
    fn try_from(s: EndpointSliceApi) -> Result<Self, ObjectError> {
        const K: &str = "EndpointSlice";
        let meta = &s.metadata;
        require_name(K, meta, true)?;
        let service = meta
            .labels
            .get(SERVICE_NAME_LABEL)
            .cloned()
            .unwrap_or_default();
        // FQDN slices are not answered by cluster DNS; keep the slice (so deletes match)
        // with no endpoints.
        let addresses_used = matches!(s.address_type.as_str(), "IPv4" | "IPv6");
        let mut endpoints = Vec::new();
        for e in s
            .endpoints
            .unwrap_or_default()
            .into_iter()
            .filter(|_| addresses_used)
        {
            let addresses = e
                .addresses
                .iter()
                .map(|a| ip(K, meta, a))
                .collect::<Result<Vec<_>, _>>()?;
            let pod_name = e
                .target_ref
                .filter(|t| t.kind.as_deref() == Some("Pod"))
                .and_then(|t| t.name)
                .map(|n| n.to_ascii_lowercase().into());
            endpoints.push(Endpoint {
                addresses: addresses.into(),
                ready: e.conditions.and_then(|c| c.ready).unwrap_or(true),
                hostname: e.hostname.map(|h| h.to_ascii_lowercase().into()),
                pod_name,
                zone: e.zone.map(|z| z.to_ascii_lowercase().into()),
            });
        }
        let ports = ports(K, meta, s.ports)?;
        Ok(ClusterObject::EndpointSlice(EndpointSlice {
            namespace: meta.namespace.as_str().into(),
            name: meta.name.as_str().into(),
            service: service.into(),
            endpoints: endpoints.into(),
            ports: Arc::from(ports),
            changed_at_ms: meta.last_change_trigger.as_deref().and_then(rfc3339_millis),
        }))
    }
}

/// Converts a Pod; `None` when it holds no IPs any more (Succeeded or Failed).
pub fn pod(p: PodApi) -> Result<Option<Pod>, ObjectError> {
    const K: &str = "Pod";
    let meta = &p.metadata;
    require_name(K, meta, true)?;
    let Some(status) = p.status else {
        return Ok(None);
    };
    if matches!(status.phase.as_deref(), Some("Succeeded" | "Failed")) {
        return Ok(None);
    }
    let mut ips = status
        .pod_ips
        .unwrap_or_default()
        .iter()
        .map(|i| ip(K, meta, &i.ip))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(primary) = status.pod_ip.filter(|p| !p.is_empty()) {
        let primary = ip(K, meta, &primary)?;
        if !ips.contains(&primary) {
            ips.insert(0, primary);
        }
    }
    if ips.is_empty() {
        return Ok(None);
    }
    Ok(Some(Pod {
        namespace: meta.namespace.as_str().into(),
        name: meta.name.as_str().into(),
        ips: ips.into(),
    }))
}

#[cfg(test)]
mod tests {
    use super::rfc3339_millis;

    #[test]
    fn reads_kubernetes_times() {
        assert_eq!(rfc3339_millis("1970-01-01T00:00:01Z"), Some(1000));
        assert_eq!(
            rfc3339_millis("2026-11-27T08:00:00Z"),
            Some(1_795_766_400_000)
        );
        assert_eq!(
            rfc3339_millis("2026-11-27T09:00:00.250+01:00"),
            Some(1_795_766_400_250)
        );
        assert_eq!(rfc3339_millis("2026-13-27T08:00:00Z"), None);
        assert_eq!(rfc3339_millis("yesterday"), None);
    }
}
