//! How the zone answers: the zones served, TTL, pod mode and the other options of
//! CoreDNS's `kubernetes` plugin, in the form the query path wants them.

use std::net::IpAddr;

use super::acl::Cidr;
use crate::wire::{QName, ZoneName};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PodMode {
    Disabled,
    #[default]
    Insecure,
    Verified,
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
    /// Clients that may take the zone by AXFR (`[transfer] to`); empty: nobody.
    pub transfer_to: Vec<Cidr>,
    /// Answer TXT `<name>.explain.<zone>` with why `<name>` answers as it does.
    pub explain_dns: bool,
    /// What the index was told to leave out, for explanations.
    pub exposure: Exposure,
    /// Count search-path expansions, giving this many namespaces a label of their own
    /// (`[search_path] metrics`); 0: not counted.
    pub search_path_top: usize,
    /// `[search_path] autopath`.
    pub autopath: Autopath,
}

/// Whether and how far autopath rewrites first search-path expansions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Autopath {
    #[default]
    Off,
    /// Only to names of the cluster zone (the node has search domains of its own).
    InZone,
    /// Also to the typed name itself, through the forwarder.
    External,
}

/// The `namespaces` and `labels` options: the index never sees what they leave out, so
/// an explanation reads them to say why a name is unknown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exposure {
    /// Namespaces served; empty: every namespace.
    pub namespaces: Vec<String>,
    /// The label selector services and slices must match, if any.
    pub labels: Option<String>,
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

    /// Whether `client` may transfer the zones.
    pub fn may_transfer(&self, client: IpAddr) -> bool {
        self.transfer_to.iter().any(|c| c.contains(client))
    }

    pub fn falls_through(&self, name: &QName<'_>) -> bool {
        self.fallthrough
            .iter()
            .any(|z| name.zone_start(&z.labels).is_some())
    }
}
