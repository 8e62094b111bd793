//! How the zone answers: the zones served, TTL, pod mode and the other options of
//! CoreDNS's `kubernetes` plugin, in the form the query path wants them.

use std::net::IpAddr;

use super::names::QName;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PodMode {
    Disabled,
    #[default]
    Insecure,
    Verified,
}

/// A zone name as lower-case labels and its wire form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneName {
    pub labels: Vec<Box<[u8]>>,
    pub wire: Box<[u8]>,
    pub reverse: bool,
}

impl ZoneName {
    /// Parses `cluster.local`, `cluster.local.` or `.` (the root, matching every name).
    pub fn parse(text: &str) -> Option<ZoneName> {
        let trimmed = text.trim_end_matches('.').to_ascii_lowercase();
        let mut labels = Vec::new();
        let mut wire = Vec::new();
        if !trimmed.is_empty() {
            for l in trimmed.split('.') {
                if l.is_empty()
                    || l.len() > 63
                    || !l
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                {
                    return None;
                }
                wire.push(l.len() as u8);
                wire.extend_from_slice(l.as_bytes());
                labels.push(l.as_bytes().into());
            }
        }
        wire.push(0);
        if wire.len() > 255 {
            return None;
        }
        let reverse = trimmed == "in-addr.arpa"
            || trimmed == "ip6.arpa"
            || trimmed.ends_with(".in-addr.arpa")
            || trimmed.ends_with(".ip6.arpa");
        Some(ZoneName {
            labels,
            wire: wire.into(),
            reverse,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneSettings {
    /// Every zone served, cluster zones and reverse zones alike.
    pub zones: Vec<ZoneName>,
    pub ttl: u32,
    pub pods: PodMode,
    pub ignore_empty_service: bool,
    pub zonal: bool,
    /// Zones whose NXDOMAIN answers go on to the next handler.
    pub fallthrough: Vec<ZoneName>,
    /// Wire form of the first cluster zone, which PTR targets end in.
    pub ptr_zone_wire: Box<[u8]>,
    /// The addresses of `ns.dns.Z` when the cluster has no `kube-system/kube-dns`
    /// service: the specific addresses we listen on (CoreDNS falls back the same way).
    pub listen_ips: Box<[IpAddr]>,
}

impl ZoneSettings {
    /// The most specific zone holding `name`: where its labels start, and whether it is a
    /// reverse zone.
    pub fn find_zone(&self, name: &QName<'_>) -> Option<(usize, bool)> {
        self.zones
            .iter()
            .filter_map(|z| name.zone_start(&z.labels).map(|start| (start, z.reverse)))
            .min_by_key(|(start, _)| *start)
    }

    pub fn falls_through(&self, name: &QName<'_>) -> bool {
        self.fallthrough
            .iter()
            .any(|z| name.zone_start(&z.labels).is_some())
    }
}
