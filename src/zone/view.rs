//! The read side of the zone: what a query looks at. Published by the index one service
//! (or one address) at a time into lock-free maps, so a query never waits for a writer
//! and a change never rebuilds the zone.

use std::hash::{Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use papaya::Equivalent;

use super::objects::Port;
use super::search::SearchPathCounter;

/// How a service answers for its own name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceKind {
    ClusterIp {
        v4: Box<[Ipv4Addr]>,
        v6: Box<[Ipv6Addr]>,
    },
    Headless,
    /// Target in wire form, lower-case (RDATA of the CNAME).
    ExternalName(Box<[u8]>),
    /// An ExternalName that is an IP literal or not a valid name: NXDOMAIN.
    ExternalNameInvalid,
}

/// A ready endpoint address under its DNS name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointView {
    pub name: Box<str>,
    pub addr: IpAddr,
    pub zone: Option<Arc<str>>,
    /// The ports of the EndpointSlice it came from.
    pub ports: Arc<[Port]>,
}

/// Everything needed to answer for one service and the names below it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceView {
    pub kind: ServiceKind,
    pub ports: Box<[Port]>,
    /// Ready endpoints from every slice of the service, sorted by (name, address);
    /// duplicates across slices are kept, because SRV weights count them.
    pub endpoints: Box<[EndpointView]>,
    /// Distinct ready addresses, for headless A/AAAA answers.
    pub v4: Box<[Ipv4Addr]>,
    pub v6: Box<[Ipv6Addr]>,
    /// The EndpointSlices the endpoints came from, with what they held: no answer reads
    /// it; it tells the person asking why a name has no address (`clusterdns explain`).
    pub slices: Box<[SliceSeen]>,
}

/// An EndpointSlice of a service, as counted when its view was built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SliceSeen {
    pub name: Arc<str>,
    /// Endpoints in it (each may hold several addresses), and how many are ready.
    pub endpoints: u32,
    pub ready: u32,
}

impl ServiceView {
    /// The endpoints called `name` (a contiguous run, as endpoints are sorted by name).
    pub fn endpoints_named(&self, name: &[u8]) -> &[EndpointView] {
        let start = self.endpoints.partition_point(|e| e.name.as_bytes() < name);
        let len = self.endpoints[start..]
            .iter()
            .take_while(|e| e.name.as_bytes() == name)
            .count();
        &self.endpoints[start..start + len]
    }
}

/// Key of the services map: namespace and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceKey {
    pub namespace: Arc<str>,
    pub name: Arc<str>,
}

/// A borrowed key, so a query can look a service up with the labels of its question.
pub struct ServiceKeyRef<'a> {
    pub namespace: &'a [u8],
    pub name: &'a [u8],
}

impl Hash for ServiceKey {
    fn hash<H: Hasher>(&self, h: &mut H) {
        ServiceKeyRef {
            namespace: self.namespace.as_bytes(),
            name: self.name.as_bytes(),
        }
        .hash(h)
    }
}

impl Hash for ServiceKeyRef<'_> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        h.write(self.namespace);
        h.write_u8(0xff);
        h.write(self.name);
    }
}

impl Equivalent<ServiceKey> for ServiceKeyRef<'_> {
    fn equivalent(&self, key: &ServiceKey) -> bool {
        key.namespace.as_bytes() == self.namespace && key.name.as_bytes() == self.name
    }
}

/// Borrowed namespace lookup by label bytes.
pub struct NamespaceRef<'a>(pub &'a [u8]);

impl Hash for NamespaceRef<'_> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        // Matches `str`'s Hash: the bytes, then 0xff.
        h.write(self.0);
        h.write_u8(0xff);
    }
}

impl Equivalent<Arc<str>> for NamespaceRef<'_> {
    fn equivalent(&self, key: &Arc<str>) -> bool {
        key.as_bytes() == self.0
    }
}

/// What is published for one address: nearly always one item, which then needs no
/// allocation of its own (a large cluster has one per pod and endpoint).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Names<T> {
    One(T),
    Many(Arc<[T]>),
}

impl<T> Names<T> {
    /// `None` for an empty list.
    pub fn from_vec(mut names: Vec<T>) -> Option<Names<T>> {
        match names.len() {
            0 => None,
            1 => names.pop().map(Names::One),
            _ => Some(Names::Many(names.into())),
        }
    }

    pub fn as_slice(&self) -> &[T] {
        match self {
            Names::One(n) => std::slice::from_ref(n),
            Names::Many(v) => v,
        }
    }
}

/// A PTR target: a name relative to the cluster zone (`web.shop.svc`), and whether it
/// names a ClusterIP (which then answers alone) rather than an endpoint.
pub type PtrTarget = (Arc<str>, bool);

/// The targets a PTR question answers with: a ClusterIP names its service alone;
/// otherwise every endpoint name holding the address, each once.
pub fn ptr_answer(targets: &[PtrTarget]) -> impl Iterator<Item = &Arc<str>> {
    let cluster_ip = targets.iter().any(|(_, c)| *c);
    targets
        .iter()
        .enumerate()
        .filter(move |(i, (t, c))| {
            *c == cluster_ip && !targets[..*i].iter().any(|(u, d)| d == c && u == t)
        })
        .map(|(_, (t, _))| t)
}

/// The published zone. Shared by every listener; written only by the index.
pub struct ClusterZone {
    pub(crate) services: papaya::HashMap<ServiceKey, Arc<ServiceView>>,
    /// Namespaces that exist and are exposed.
    pub(crate) namespaces: papaya::HashSet<Arc<str>>,
    /// PTR targets per address, relative names without the zone (`web.shop.svc`).
    pub(crate) ptr: papaya::HashMap<IpAddr, Names<PtrTarget>>,
    /// The namespace of each pod holding the address, once per pod (pods = "verified"
    /// only): several pods may share an address (host network), so the index removes
    /// one occurrence when one of them goes.
    pub(crate) pods: papaya::HashMap<IpAddr, Names<Arc<str>>>,
    serial: AtomicU32,
    synced: AtomicBool,
    listed: AtomicBool,
    /// Counts search-path expansions when `[search_path] metrics` is on: set by the
    /// wiring, which owns the metrics registry, and shared by every zone it makes.
    search_path: std::sync::OnceLock<Arc<SearchPathCounter>>,
}

impl Default for ClusterZone {
    fn default() -> Self {
        Self::new()
    }
}

impl ClusterZone {
    pub fn new() -> Self {
        ClusterZone {
            services: papaya::HashMap::new(),
            namespaces: papaya::HashSet::new(),
            ptr: papaya::HashMap::new(),
            pods: papaya::HashMap::new(),
            serial: AtomicU32::new(0),
            synced: AtomicBool::new(false),
            listed: AtomicBool::new(false),
            search_path: std::sync::OnceLock::new(),
        }
    }

    /// Runs `f` on the service's view. The view is borrowed, not cloned: no reference
    /// count is touched, so cores answering for the same service do not contend.
    pub fn with_service<R>(
        &self,
        namespace: &[u8],
        name: &[u8],
        f: impl FnOnce(Option<&ServiceView>) -> R,
    ) -> R {
        let services = self.services.pin();
        f(services
            .get(&ServiceKeyRef { namespace, name })
            .map(|v| &**v))
    }

    pub fn namespace_exists(&self, namespace: &[u8]) -> bool {
        self.namespaces.pin().contains(&NamespaceRef(namespace))
    }

    /// Runs `f` on the PTR targets of `ip`: every name contributed for it, in no order,
    /// repeats included (see [`ptr_answer`] for which of them answer).
    pub fn with_ptr_targets<R>(&self, ip: &IpAddr, f: impl FnOnce(Option<&[PtrTarget]>) -> R) -> R {
        let ptr = self.ptr.pin();
        f(ptr.get(ip).map(Names::as_slice))
    }

    pub fn pod_in_namespace(&self, ip: &IpAddr, namespace: &[u8]) -> bool {
        self.pods
            .pin()
            .get(ip)
            .is_some_and(|nss| nss.as_slice().iter().any(|n| n.as_bytes() == namespace))
    }

    /// SOA serial: Unix time of the last change.
    pub fn serial(&self) -> u32 {
        self.serial.load(Ordering::Relaxed)
    }

    pub(crate) fn set_serial(&self, serial: u32) {
        self.serial.store(serial, Ordering::Relaxed);
    }

    /// Whether names the zone does not know may be answered NXDOMAIN: set once the source
    /// has delivered its first complete view of the cluster, or when the Kubernetes source's
    /// `startup_timeout` runs out first (then the zone may still be partial, as with
    /// CoreDNS). Before it, would-be NXDOMAIN answers are SERVFAIL.
    pub fn synced(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }

    pub(crate) fn set_synced(&self) {
        self.synced.store(true, Ordering::Release);
    }

    /// Readiness (`/ready`): the source has delivered its first complete view of the
    /// cluster — every Kubernetes watch has finished its first list (a cluster file: it
    /// was read). Unlike [`ClusterZone::synced`], the startup timeout never sets it, so a
    /// server still listing stays out of a Service's endpoints. It never goes back to
    /// false: later relists keep serving the last known zone.
    pub fn listed(&self) -> bool {
        self.listed.load(Ordering::Acquire)
    }

    /// Marks the zone complete: [`ClusterZone::listed`] and [`ClusterZone::synced`].
    pub(crate) fn set_listed(&self) {
        self.listed.store(true, Ordering::Release);
        self.set_synced();
    }

    /// Every service's key, sorted: a snapshot for walking the zone (a transfer), taken
    /// without holding the map while the walk awaits.
    pub fn service_keys(&self) -> Vec<ServiceKey> {
        let mut keys: Vec<ServiceKey> = self.services.pin().keys().cloned().collect();
        keys.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        keys
    }

    /// Every address with a reverse name, sorted (a snapshot, as [`Self::service_keys`]).
    pub fn ptr_addresses(&self) -> Vec<IpAddr> {
        let mut ips: Vec<IpAddr> = self.ptr.pin().keys().copied().collect();
        ips.sort();
        ips
    }

    /// Every (pod address, namespace) known (`pods verified` only), sorted and distinct.
    pub fn pod_addresses(&self) -> Vec<(IpAddr, Arc<str>)> {
        let mut pods: Vec<(IpAddr, Arc<str>)> = self
            .pods
            .pin()
            .iter()
            .flat_map(|(ip, nss)| nss.as_slice().iter().map(|ns| (*ip, ns.clone())))
            .collect();
        pods.sort();
        pods.dedup();
        pods
    }

    /// Gives the zone the counter of search-path expansions (once; later calls are
    /// ignored).
    pub fn set_search_path_counter(&self, counter: Arc<SearchPathCounter>) {
        let _ = self.search_path.set(counter);
    }

    pub fn search_path_counter(&self) -> Option<&SearchPathCounter> {
        self.search_path.get().map(|c| &**c)
    }

    pub fn service_count(&self) -> usize {
        self.services.len()
    }
}
