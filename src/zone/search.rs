//! Search-path expansions: names a pod's resolver made by appending one of its search
//! domains (kubelet writes `<ns>.svc.Z svc.Z Z` with `ndots:5`) to a name that was not
//! meant for that part of the cluster zone. With `ndots:5` every external name is first
//! tried with each search domain: three wasted NXDOMAIN queries before the real one.
//!
//! Read from the same index as the answers: an expansion is a name whose part under the
//! search domain is not an object the zone holds.

use super::names::{ClusterName, classify};
use super::view::ClusterZone;
use crate::wire::QName;

/// Which search domain made the name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchDomain {
    /// `X.<ns>.svc.Z`: the first domain of a pod in `<ns>`; X is not a service there.
    Namespace,
    /// `X.svc.Z`: X's last label is not a namespace of the cluster.
    Svc,
    /// `X.Z`: X does not end in `svc`, `pod` or `dns`.
    Zone,
}

impl SearchDomain {
    pub fn label(self) -> &'static str {
        match self {
            SearchDomain::Namespace => "namespace",
            SearchDomain::Svc => "svc",
            SearchDomain::Zone => "zone",
        }
    }
}

/// A name read as a search-path expansion of `typed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expansion<'n> {
    pub domain: SearchDomain,
    /// The namespace of the querying pod (its first search domain), for
    /// [`SearchDomain::Namespace`].
    pub namespace: Option<&'n [u8]>,
    /// The labels the client typed (lower-case): X.
    pub typed: &'n [&'n [u8]],
}

/// Reads `name` (in a forward zone starting at label `zone_start`) as a search-path
/// expansion, or `None` when it is a name of the zone's own shapes over objects that
/// exist (`svc.ns.svc.Z` with that service, `pod` names, the apex, `dns-version` …).
pub fn expansion<'n>(
    zone: &ClusterZone,
    name: &'n QName<'n>,
    zone_start: usize,
) -> Option<Expansion<'n>> {
    let labels = &name.labels()[..zone_start];
    let (&last, rest) = labels.split_last()?;
    match last {
        b"svc" => {}
        b"pod" | b"dns" => return None,
        b"dns-version" if rest.is_empty() => return None,
        _ => {
            return Some(Expansion {
                domain: SearchDomain::Zone,
                namespace: None,
                typed: labels,
            });
        }
    }
    let (&namespace, typed) = rest.split_last()?;
    if !zone.namespace_exists(namespace) {
        return Some(Expansion {
            domain: SearchDomain::Svc,
            namespace: None,
            typed: rest,
        });
    }
    // `X.<ns>.svc.Z`: the label under the namespace names the service (names below it,
    // endpoints and ports, belong to it whether or not they exist).
    let (&service, _) = typed.split_last()?;
    let is_service = zone.with_service(namespace, service, |v| v.is_some());
    (!is_service).then_some(Expansion {
        domain: SearchDomain::Namespace,
        namespace: Some(namespace),
        typed,
    })
}

/// The name the client most likely meant by `typed`, relative to nothing (a full name,
/// without the trailing dot): in the cluster when the labels spell an object the zone
/// holds (`web.shop` → `web.shop.svc.Z`, `web.shop.svc` → `web.shop.svc.Z`), else the
/// name itself, which the resolver asks last, unchanged, once the search list is spent.
pub fn meant(zone: &ClusterZone, typed: &[&[u8]], zone_labels: &[&[u8]], zonal: bool) -> String {
    let dotted = |labels: &[&[u8]]| -> String {
        labels
            .iter()
            .map(|l| String::from_utf8_lossy(l))
            .collect::<Vec<_>>()
            .join(".")
    };
    let mut candidates: Vec<Vec<&[u8]>> = Vec::new();
    if typed.last() == Some(&&b"svc"[..]) || typed.last() == Some(&&b"pod"[..]) {
        candidates.push(typed.to_vec()); // `web.shop.svc`: the zone was left off
    }
    let mut with_svc = typed.to_vec();
    with_svc.push(b"svc");
    candidates.push(with_svc); // `web.shop`: the usual short form
    for c in candidates {
        let mut full = c.clone();
        full.extend_from_slice(zone_labels);
        if names_an_object(zone, &full, c.len(), zonal) {
            return dotted(&full);
        }
    }
    dotted(typed)
}

/// Whether `labels` (zone starting at `zone_start`) name a service or something below
/// one that the zone holds.
fn names_an_object(zone: &ClusterZone, labels: &[&[u8]], zone_start: usize, zonal: bool) -> bool {
    let mut wire = Vec::with_capacity(64);
    for l in labels {
        if l.is_empty() || l.len() > 63 {
            return false;
        }
        wire.push(l.len() as u8);
        wire.extend_from_slice(l);
    }
    wire.push(0);
    let Some(name) = QName::written(&wire, 0) else {
        return false;
    };
    let svc = match classify(&name, zone_start, zonal) {
        ClusterName::Service(s)
        | ClusterName::Endpoint(s, _)
        | ClusterName::Port(s, _, _)
        | ClusterName::Zonal(s, _, _) => s,
        _ => return false,
    };
    zone.with_service(svc.namespace, svc.service, |v| v.is_some())
}

/// How many search-path expansions the zone answered, per querying namespace, search
/// domain and rcode: `clusterdns_search_path_queries_total`. The `namespace` label is
/// bounded: the first `top` namespaces that make expansions get their own value (busy
/// namespaces show up first), every later one counts under `other`, and the `svc` and
/// `zone` domains, which carry no namespace, under `""`. A namespace keeps its label
/// once given, so every series only ever grows, as a Prometheus counter must.
pub struct SearchPathCounter {
    counter: prometheus::IntCounterVec,
    named: papaya::HashSet<std::sync::Arc<str>>,
    given: std::sync::atomic::AtomicUsize,
}

impl SearchPathCounter {
    pub fn new(counter: prometheus::IntCounterVec) -> Self {
        SearchPathCounter {
            counter,
            named: papaya::HashSet::new(),
            given: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// Counts `name` if it is a search-path expansion; `top` namespaces get a label.
    pub fn observe(
        &self,
        zone: &ClusterZone,
        name: &QName<'_>,
        zone_start: usize,
        rcode: crate::wire::Rcode,
        top: usize,
    ) {
        let Some(x) = expansion(zone, name, zone_start) else {
            return;
        };
        let named = self.named.pin();
        let label = match x.namespace.map(std::str::from_utf8) {
            None => "",
            Some(Err(_)) => "other",
            Some(Ok(ns)) => match named.get(&super::view::NamespaceRef(ns.as_bytes())) {
                Some(known) => known,
                None if self
                    .given
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                    < top =>
                {
                    named.insert(ns.into());
                    ns
                }
                None => {
                    // Stays at `top` and above; no wrap in any real lifetime.
                    "other"
                }
            },
        };
        self.counter
            .with_label_values(&[label, x.domain.label(), rcode.name()])
            .inc();
    }
}

/// Autopath (CoreDNS's `autopath`, without its pod watch): the name a pod's resolver
/// would end up answered with for the first expansion `X.<ns>.svc.Z` of `X`, so that one
/// query does what the whole search list would. In order: `X.svc.Z`, then `X.Z` when
/// either names an object of the zone; else `X.` itself, through the forwarder — unless
/// `external` is false (the node has search domains of its own, which the resolver
/// would try before `X.` and which cannot be checked without asking upstream).
///
/// Left alone: every name that is not the first expansion (the namespace must exist and
/// X must not name a service there: names below a service are that service's), X with
/// a `_` label (SRV-style names are never typed short), and `X` of a single label that
/// is a namespace (`shop.shop.svc.Z` is more likely a typo than `shop.`).
/// Returns the target in lower-case wire form.
pub fn autopath_target(
    zone: &ClusterZone,
    name: &QName<'_>,
    zone_start: usize,
    zonal: bool,
    external: bool,
) -> Option<Vec<u8>> {
    let x = expansion(zone, name, zone_start)?;
    if x.domain != SearchDomain::Namespace
        || x.typed.iter().any(|l| l.starts_with(b"_"))
        || (x.typed.len() == 1 && zone.namespace_exists(x.typed[0]))
    {
        return None;
    }
    let zone_labels = &name.labels()[zone_start..];
    let wire = |parts: &[&[&[u8]]]| -> Option<Vec<u8>> {
        let mut w = Vec::with_capacity(64);
        for l in parts.iter().flat_map(|p| p.iter()) {
            if l.is_empty() || l.len() > 63 {
                return None;
            }
            w.push(l.len() as u8);
            w.extend_from_slice(l);
        }
        w.push(0);
        (w.len() <= 255).then_some(w)
    };
    let in_zone: [&[&[u8]]; 2] = [&[b"svc"], &[]];
    for middle in in_zone {
        let mut full: Vec<&[u8]> = x.typed.to_vec();
        full.extend_from_slice(middle);
        let start = full.len();
        full.extend_from_slice(zone_labels);
        if names_an_object(zone, &full, start, zonal) {
            return wire(&[&full]);
        }
    }
    external.then(|| wire(&[x.typed])).flatten()
}
